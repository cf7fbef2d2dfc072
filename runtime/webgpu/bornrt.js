// bornrt.js: run a bornc WebGPU bundle in a browser (the same behaviour as bornrt_webgpu.py).
//
//   import { loadBundle } from "./bornrt.js";
//   const model = await loadBundle(".");              // device, buffers, pipelines, bind groups made once
//   const outputs = await model.run({ x: Float32Array.from(...) });   // {name: {shape, dtype, data}}
//
// One inference: inputs written into the arena buffer, every dispatch of manifest.json recorded into one command
// encoder (one compute pass), outputs copied into one staging buffer, one submit, one mapAsync. Tensors are
// 32-bit words on the GPU (float16 as f32, narrow integers as i32/u32, int64 as i32; the caller passes numbers).

const FORMAT_VERSION = 1;
const LIMIT_NAMES = {
  max_storage_buffers_per_shader_stage: "maxStorageBuffersPerShaderStage",
  max_storage_buffer_binding_size: "maxStorageBufferBindingSize",
  max_buffer_size: "maxBufferSize",
  max_compute_workgroup_storage_size: "maxComputeWorkgroupStorageSize",
  max_compute_workgroups_per_dimension: "maxComputeWorkgroupsPerDimension",
  max_compute_invocations_per_workgroup: "maxComputeInvocationsPerWorkgroup",
};
const ARRAYS = { float32: Float32Array, int32: Int32Array, uint32: Uint32Array };

export class BundleError extends Error {}

const round256 = (n) => Math.max(Math.ceil(n / 256) * 256, 256);

// IEEE half bits <-> numbers, for bundles compiled with shader-f16 (float16 held as halves in the low 16 bits)
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function halfBits(x) {
  f32[0] = x;
  const b = u32[0], sign = (b >>> 16) & 0x8000, exp = (b >>> 23) & 0xff, man = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (man ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = man | 0x800000, shift = 14 - e;
    let h = m >> shift;
    const rest = m & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rest > half || (rest === half && (h & 1))) h += 1;
    return sign | h;
  }
  let h = (e << 10) | (man >> 13);
  const rest = man & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h += 1;
  return sign | h;
}
function fromHalf(h) {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

async function fetchOk(url, kind) {
  const r = await fetch(url);
  if (!r.ok) throw new BundleError(`cannot fetch ${url}: HTTP ${r.status}`);
  return kind === "json" ? r.json() : kind === "text" ? r.text() : r.arrayBuffer();
}

async function readWeights(base, m) {
  const data = new Uint8Array(await fetchOk(`${base}/weights.bin`, "bin"));
  const magic = new TextDecoder().decode(data.subarray(0, 8));
  if (data.length < 64 || magic !== "BORNCWT1") throw new BundleError("weights.bin: not a bornc weights file");
  const dv = new DataView(data.buffer);
  const header = dv.getUint32(12, true);
  const size = Number(dv.getBigUint64(16, true));
  const payload = data.subarray(header, header + size);
  if (payload.length !== size || size !== m.weights_bytes) throw new BundleError("weights.bin: truncated");
  if (data.length !== header + size) throw new BundleError("weights.bin: longer than its header says");
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", payload));
  const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  if (hex !== m.weights_sha256) throw new BundleError("weights.bin: SHA-256 mismatch (corrupted or from another build)");
  return payload;
}

export async function loadBundle(base = ".") {
  const m = await fetchOk(`${base}/manifest.json`, "json");
  if (m.backend !== "webgpu" || m.format_version !== FORMAT_VERSION) throw new BundleError("not a WebGPU bundle of format 1");
  if (!navigator.gpu) throw new BundleError("this browser has no WebGPU (navigator.gpu is missing)");
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) throw new BundleError("no WebGPU adapter");
  const requiredLimits = {};
  for (const [k, v] of Object.entries(m.webgpu.required_limits || {})) {
    const name = LIMIT_NAMES[k];
    if (adapter.limits[name] < v) throw new BundleError(`the bundle needs ${name} = ${v}, the adapter offers ${adapter.limits[name]}`);
    requiredLimits[name] = v;
  }
  const requiredFeatures = m.webgpu.required_features || [];
  for (const f of requiredFeatures) if (!adapter.features.has(f)) throw new BundleError(`the adapter lacks ${f}`);
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  const payload = await readWeights(base, m);
  const U = GPUBufferUsage;
  const arena = device.createBuffer({ size: round256(m.arena_bytes), usage: U.STORAGE | U.COPY_DST | U.COPY_SRC });
  const weights = device.createBuffer({ size: round256(payload.length), usage: U.STORAGE | U.COPY_DST });
  if (payload.length) device.queue.writeBuffer(weights, 0, payload);
  let rb = 0;
  const where = m.outputs.map((o) => { const p = rb; rb += round256(o.bytes); return p; });
  const status = m.webgpu.status_offset;      // one word: nonzero when a run-time index was out of range
  const readback = device.createBuffer({ size: round256(rb) + 256, usage: U.MAP_READ | U.COPY_DST });
  const pipelines = {};                 // shader modules compiled concurrently
  await Promise.all(m.webgpu.kernels.map(async (k) => {
    const module = device.createShaderModule({ code: await fetchOk(`${base}/${k}`, "text"), label: k });
    const info = await module.getCompilationInfo();
    const errors = info.messages.filter((x) => x.type === "error");
    if (errors.length) throw new BundleError(`${k}: ` + errors.map((x) => `line ${x.lineNum}: ${x.message}`).join("; "));
    pipelines[k] = await device.createComputePipelineAsync({ layout: "auto", compute: { module, entryPoint: "main" }, label: k });
  }));
  const buffers = { arena, weights };
  const steps = m.dispatches.map((d) => {
    const pipeline = pipelines[d.kernel];
    const entries = d.bindings.map((b, i) => ({ binding: i, resource: { buffer: buffers[b.buffer], offset: b.offset, size: b.size } }));
    return { pipeline, group: device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }), wg: d.workgroups };
  });

  async function run(feeds) {
    for (const spec of m.inputs) {
      const x = feeds[spec.name];
      if (x === undefined) throw new BundleError(`missing input ${spec.name}`);
      const n = spec.shape.reduce((a, b) => a * b, 1);
      if (x.length !== n) throw new BundleError(`input ${spec.name}: expected ${n} elements (shape ${spec.shape}), got ${x.length}`);
      const words = spec.half_bits ? Uint32Array.from(x, (v) => halfBits(Number(v)))
        : ARRAYS[spec.gpu_dtype].from(x, (v) => Number(v));
      if (words.length) device.queue.writeBuffer(arena, spec.offset, words);
    }
    if (status !== undefined) device.queue.writeBuffer(arena, status, new Uint32Array(1));
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    for (const s of steps) {
      pass.setPipeline(s.pipeline);
      pass.setBindGroup(0, s.group);
      pass.dispatchWorkgroups(s.wg[0], s.wg[1], s.wg[2]);
    }
    pass.end();
    m.outputs.forEach((o, i) => enc.copyBufferToBuffer(arena, o.offset, readback, where[i], round256(o.bytes)));
    if (status !== undefined) enc.copyBufferToBuffer(arena, status, readback, round256(rb), 4);
    device.queue.submit([enc.finish()]);
    await readback.mapAsync(GPUMapMode.READ);
    const raw = readback.getMappedRange().slice(0);
    readback.unmap();
    if (status !== undefined && new Uint32Array(raw, round256(rb), 1)[0] !== 0) {
      throw new BundleError("a run-time index (Gather, GatherElements, ScatterElements, ScatterND, RoiAlign batch index or sampling grid) is out of range");
    }
    const out = {};
    m.outputs.forEach((o, i) => {
      const n = o.shape.reduce((a, b) => a * b, 1);
      const words = new ARRAYS[o.gpu_dtype](raw, where[i], n);
      out[o.name] = { shape: o.shape, dtype: o.dtype, data: o.half_bits ? Float32Array.from(words, (w) => fromHalf(w & 0xffff)) : words };
    });
    return out;
  }
  return { manifest: m, device, adapter, run, dispatches: steps.length, submits: 1 };
}

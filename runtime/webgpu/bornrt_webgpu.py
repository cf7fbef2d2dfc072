"""bornrt_webgpu: run a bornc WebGPU bundle from Python through the ``wgpu`` package (needs numpy and wgpu only).

    import bornrt_webgpu
    model = bornrt_webgpu.load("out/")            # device, buffers, pipelines and bind groups made once
    outputs = model.run({"x": x})                 # {output name: numpy array}

    python3 bornrt_webgpu.py out/ --input x=x.npy -o outputs.npz [--bench N]

One inference = the inputs written into the arena buffer, every dispatch of ``manifest.json`` recorded into one
command encoder (one compute pass), the outputs copied into one staging buffer, one submit, one map. The commands
are the same for every inference, so the next inference's are recorded while the GPU runs this one. Tensors are
held as 32-bit words on the GPU (float16/bfloat16 as f32, narrow integers as i32/u32, int64 as i32): inputs are
converted here, int64 inputs that do not fit 32 bits are refused, outputs are converted back to their dtypes.

The adapter: $BORNC_WGPU_ADAPTER (a substring of its name or backend, e.g. "Vulkan"), else a discrete or
integrated GPU, else Vulkan, else the first one offered. The device is created once per process with WebGPU's
default limits, raised only to what the bundle's ``required_limits`` say (the adapter must offer them).
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time

import numpy as np

FORMAT_VERSION = 1
_DEVICES: dict = {}


class BundleError(Exception):
    """A bad bundle, a wrong input, or a device that cannot run the bundle (one readable line)."""


def _runtime_dir() -> None:
    """Mesa's Vulkan loader warns (one line per probe) when XDG_RUNTIME_DIR is unset or not a private directory
    of this user; it only needs one for window-system sockets, which a compute bundle never opens. Give it a
    private temporary one (mode 0700) in that case, before wgpu loads the driver."""
    d = os.environ.get("XDG_RUNTIME_DIR", "")
    try:
        st = os.stat(d) if d else None
        ok = st is not None and os.path.isdir(d) and st.st_uid == os.getuid() and (st.st_mode & 0o077) == 0
    except (OSError, AttributeError):             # AttributeError: no os.getuid (Windows, where Mesa is not used)
        ok = not hasattr(os, "getuid")
    if not ok:
        import atexit
        import shutil
        import tempfile
        os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="bornc-xdg-")
        atexit.register(shutil.rmtree, os.environ["XDG_RUNTIME_DIR"], True)


def _adapter():
    _runtime_dir()
    import wgpu
    adapters = wgpu.gpu.enumerate_adapters_sync()
    if not adapters:
        raise BundleError("no WebGPU adapter: install a GPU driver or Mesa's Vulkan driver (Debian package mesa-vulkan-drivers)")
    want = os.environ.get("BORNC_WGPU_ADAPTER", "").lower()

    def desc(a):
        i = a.info
        return f"{i.get('device', '')} {i.get('backend_type', '')} {i.get('adapter_type', '')}".lower()
    if want:
        for a in adapters:
            if want in desc(a):
                return a
        raise BundleError(f"no adapter matches BORNC_WGPU_ADAPTER={want!r}; have: " + "; ".join(desc(a) for a in adapters))
    rank = lambda a: (a.info.get("adapter_type", "") not in ("DiscreteGPU", "IntegratedGPU"),  # noqa: E731
                      a.info.get("backend_type", "") != "Vulkan")
    return sorted(adapters, key=rank)[0]


def get_device(limits: dict | None = None, features: tuple = ()):
    """The process's device for these limits and features (made once, then shared by every bundle)."""
    key = (tuple(sorted((limits or {}).items())), tuple(sorted(features)), os.environ.get("BORNC_WGPU_ADAPTER", ""))
    if key not in _DEVICES:
        adapter = _adapter()
        req = {}
        for k, v in (limits or {}).items():
            name = k.replace("_", "-")
            have = adapter.limits.get(name)
            if have is not None and have < v:
                raise BundleError(f"the bundle needs {name} = {v}, the adapter offers {have}")
            req[name] = v
        missing = [f for f in features if f not in adapter.features]
        if missing:
            raise BundleError(f"the adapter lacks feature(s) {', '.join(missing)}")
        dev = adapter.request_device_sync(required_features=list(features), required_limits=req)
        _DEVICES[key] = (adapter, dev)
    return _DEVICES[key]


class Model:
    """A loaded bundle. ``run(feeds)`` -> {output name: numpy array}; ``inputs`` / ``outputs``: manifest entries."""

    def __init__(self, folder):
        _runtime_dir()
        import wgpu
        self.folder = os.path.abspath(str(folder))
        try:
            with open(os.path.join(self.folder, "manifest.json")) as f:
                m = json.load(f)
        except (OSError, ValueError) as ex:
            raise BundleError(f"{folder} is not a bornc WebGPU bundle ({ex})") from None
        if m.get("backend") != "webgpu" or m.get("format_version") != FORMAT_VERSION:
            raise BundleError(f"{folder}: not a WebGPU bundle of format {FORMAT_VERSION}")
        self.manifest, self.inputs, self.outputs = m, m["inputs"], m["outputs"]
        payload = self._weights(m)
        wg = m["webgpu"]
        self.adapter, self.device = get_device(wg.get("required_limits"), tuple(wg.get("required_features", ())))
        dev = self.device
        U = wgpu.BufferUsage
        self.arena = dev.create_buffer(size=_round(m["arena_bytes"]), usage=U.STORAGE | U.COPY_DST | U.COPY_SRC)
        self.weights = dev.create_buffer(size=_round(max(len(payload), 256)), usage=U.STORAGE | U.COPY_DST)
        if payload:
            dev.queue.write_buffer(self.weights, 0, payload)
        self.status_offset = wg.get("status_offset")
        self.readback_size = _round(sum(_round(o["bytes"]) for o in self.outputs)) + 256     # outputs, status word
        self.readback = dev.create_buffer(size=self.readback_size, usage=U.MAP_READ | U.COPY_DST)
        modules, pipelines = {}, {}
        for k in wg["kernels"]:
            with open(os.path.join(self.folder, k)) as f:
                modules[k] = dev.create_shader_module(code=f.read(), label=k)
            pipelines[k] = dev.create_compute_pipeline(layout="auto", compute={"module": modules[k], "entry_point": "main"}, label=k)
        self.steps = []
        bufs = {"arena": self.arena, "weights": self.weights}
        for d in m["dispatches"]:
            pl = pipelines[d["kernel"]]
            entries = [{"binding": b, "resource": {"buffer": bufs[x["buffer"]], "offset": x["offset"], "size": x["size"]}}
                       for b, x in enumerate(d["bindings"])]
            bg = dev.create_bind_group(layout=pl.get_bind_group_layout(0), entries=entries)
            self.steps.append((pl, bg, tuple(d["workgroups"])))
        self.dispatches, self.submits = len(self.steps), 1
        where, pos = [], 0
        for o in self.outputs:                        # each output's place in the staging buffer
            where.append(pos)
            pos += _round(o["bytes"])
        self._layout, self._next = (pos, where), None

    def _weights(self, m) -> bytes:
        path = os.path.join(self.folder, "weights.bin")
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as ex:
            raise BundleError(f"cannot read {path}: {ex}") from None
        if len(data) < 64 or data[:8] != b"BORNCWT1":
            raise BundleError(f"{path}: not a bornc weights file")
        import struct
        version, header, size = struct.unpack_from("<IIQ", data, 8)
        payload = data[header:header + size]
        if len(payload) != size or size != m["weights_bytes"] or len(data) != header + size:
            raise BundleError(f"{path}: truncated ({len(payload)} of {m['weights_bytes']} bytes)")
        digest = hashlib.sha256(payload).digest()
        if digest != data[24:56] or digest.hex() != m["weights_sha256"]:
            raise BundleError(f"{path}: SHA-256 mismatch, the weights file is corrupted or belongs to another build")
        return payload

    def _convert_in(self, spec, x) -> bytes:
        a = np.asarray(x)
        if a.dtype.kind == "V" and _is_ml_dtype(spec["dtype"]):     # .npy files hold bfloat16, int4... as raw bytes
            import ml_dtypes
            want = np.dtype(getattr(ml_dtypes, spec["dtype"]))
            if want.itemsize == a.dtype.itemsize:
                a = a.view(want)
        if list(a.shape) != list(spec["shape"]):
            raise BundleError(f"input {spec['name']!r}: expected shape {tuple(spec['shape'])}, got {tuple(a.shape)}")
        if a.dtype.name != spec["dtype"]:
            raise BundleError(f"input {spec['name']!r}: expected dtype {spec['dtype']}, got {a.dtype.name}")
        if spec["dtype"] in ("int64", "uint64") and a.size:
            lo, hi = (-2 ** 31, 2 ** 31 - 1) if spec["dtype"] == "int64" else (0, 2 ** 32 - 1)
            if a.min() < lo or a.max() > hi:
                raise BundleError(f"input {spec['name']!r}: {spec['dtype']} values outside the 32-bit range the GPU holds")
        if spec.get("half_bits"):                      # shader-f16 bundles hold IEEE halves in the low 16 bits
            return np.ascontiguousarray(a.view(np.uint16).astype(np.uint32)).tobytes()
        return np.ascontiguousarray(a.astype(spec["gpu_dtype"])).tobytes()

    def _record(self):
        """The command buffer of one inference: every dispatch in one compute pass, then the outputs and the
        status word copied into the staging buffer. The same every time (inputs sit at fixed arena offsets), so
        ``run`` records the next one while the GPU runs the current one."""
        enc = self.device.create_command_encoder()
        cp = enc.begin_compute_pass()
        current = None
        for pl, bg, (x, y, z) in self.steps:
            if pl is not current:                      # consecutive dispatches often share a kernel
                cp.set_pipeline(pl)
                current = pl
            cp.set_bind_group(0, bg)
            cp.dispatch_workgroups(x, y, z)
        cp.end()
        for o, p in zip(self.outputs, self._layout[1]):
            enc.copy_buffer_to_buffer(self.arena, o["offset"], self.readback, p, _round(o["bytes"]))
        if self.status_offset is not None:
            enc.copy_buffer_to_buffer(self.arena, self.status_offset, self.readback, self._layout[0], 4)
        return enc.finish()

    def close(self) -> None:
        """Free the model's GPU buffers now (wgpu keeps a dropped buffer's memory until it is destroyed: a process
        that loads many bundles would grow without this). The model cannot run afterwards."""
        for name in ("arena", "weights", "readback"):
            buf = self.__dict__.pop(name, None)
            if buf is not None:
                try:
                    buf.destroy()
                except Exception:  # noqa: BLE001 - a device already lost: nothing left to free
                    pass
        self._next = None

    def __del__(self):
        self.close()

    def gpu_ms(self) -> float:
        """ms from submitting one inference's recorded commands (on the inputs already in the arena) to its
        outputs mapped, with no host work in between: the GPU part of an inference."""
        cb = self._next or self._record()
        self._next = None
        t = time.perf_counter()
        self.device.queue.submit([cb])
        self.readback.map_sync(1)
        self.readback.unmap()
        return (time.perf_counter() - t) * 1e3

    def run(self, feeds: dict, timing: dict | None = None) -> dict:
        """One inference. ``feeds``: {input name: array of the manifest's shape and dtype}. With ``timing``, fills
        ``inputs_ms`` (converting and queueing the inputs), ``gpu_wait_ms`` (submit to mapped outputs) and
        ``record_ms`` (recording the next inference's commands, which overlaps the GPU's work)."""
        names = {i["name"] for i in self.inputs}
        extra = set(feeds) - names
        if extra:
            raise BundleError(f"unknown input(s) {sorted(extra)}; the model takes {sorted(names)}")
        dev = self.device
        t0 = time.perf_counter()
        for spec in self.inputs:
            if spec["name"] not in feeds:
                raise BundleError(f"missing input {spec['name']!r}")
            data = self._convert_in(spec, feeds[spec["name"]])
            if data:
                dev.queue.write_buffer(self.arena, spec["offset"], data)
        if self.status_offset is not None:
            dev.queue.write_buffer(self.arena, self.status_offset, bytes(4))
        cb = self._next or self._record()
        self._next = None
        t1 = time.perf_counter()
        dev.queue.submit([cb])                       # the queue runs the input writes above first
        self._next = self._record()                  # the next inference's commands, while the GPU works
        t_rec = time.perf_counter()
        self.readback.map_sync(1)       # wgpu.MapMode.READ
        try:
            raw = bytes(self.readback.read_mapped(0, self.readback_size, copy=True))
        finally:
            self.readback.unmap()
        t2 = time.perf_counter()
        if timing is not None:
            timing["inputs_ms"], timing["record_ms"], timing["gpu_wait_ms"] = (t1 - t0) * 1e3, (t_rec - t1) * 1e3, (t2 - t1) * 1e3
        pos, where = self._layout
        if self.status_offset is not None and raw[pos:pos + 4] != bytes(4):
            raise BundleError("a run-time index (Gather, GatherElements, ScatterElements, ScatterND, RoiAlign batch index or sampling grid) is out of range")
        out = {}
        for o, p in zip(self.outputs, where):
            n = int(np.prod(o["shape"], dtype=np.int64))
            a = np.frombuffer(raw, o["gpu_dtype"], n, p).reshape(o["shape"])
            if o.get("half_bits"):
                out[o["name"]] = (a & 0xFFFF).astype(np.uint16).view(np.float16)
            else:
                out[o["name"]] = _to_dtype(a, o["dtype"])
        return out


def _round(n: int) -> int:
    return max(-(-int(n) // 256) * 256, 256)


def _is_ml_dtype(dtype: str) -> bool:
    """True for the ONNX types numpy has only through ml_dtypes (bfloat16, int4, float8...)."""
    return dtype == "bfloat16" or dtype.startswith(("int4", "uint4", "int2", "uint2", "float8", "float4"))


def _to_dtype(a: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == a.dtype.name:
        return a.copy()
    if dtype == "bool":
        return a != 0
    if _is_ml_dtype(dtype):
        import ml_dtypes
        return a.astype(getattr(ml_dtypes, dtype))
    return a.astype(dtype)


def load(folder) -> Model:
    """Load a bundle folder (raises BundleError on a bad bundle or a device that cannot run it)."""
    return Model(folder)


def main(argv=None) -> int:
    import argparse
    p = argparse.ArgumentParser(prog="bornrt_webgpu", description="Run a bornc WebGPU bundle through wgpu.")
    p.add_argument("bundle")
    p.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy")
    p.add_argument("-o", "--output", help="write outputs to this .npz")
    p.add_argument("--bench", type=int, default=0, metavar="N", help="time N inferences, print the median (ms)")
    a = p.parse_args(argv)
    try:
        m = load(a.bundle)
        feeds = {}
        for item in a.input:
            name, _, path = item.partition("=")
            feeds[name] = np.load(path)
        rng = np.random.default_rng(0)
        for spec in m.inputs:
            if spec["name"] not in feeds:
                feeds[spec["name"]] = rng.standard_normal(spec["shape"]).astype(spec["dtype"]) if spec["dtype"].startswith("float") \
                    else np.zeros(spec["shape"], spec["dtype"])
        outs = m.run(feeds)
        if a.bench:
            ts = []
            for _ in range(a.bench):
                t = time.perf_counter()
                m.run(feeds)
                ts.append((time.perf_counter() - t) * 1e3)
            print(f"median {sorted(ts)[len(ts) // 2]:.3f} ms over {a.bench} runs; {m.dispatches} dispatches, 1 submit")
        if a.output:
            np.savez(a.output, **outs)
        for k, v in outs.items():
            print(f"{k}: shape {v.shape} dtype {v.dtype}")
    except (BundleError, OSError, ValueError) as ex:
        print(f"bornrt_webgpu: error: {ex}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark the webgpu target on this machine's WebGPU adapter (through wgpu), beside PyTorch when it has CUDA.

    python examples/bench_webgpu.py --models ../shared/models [--json out.json] [--runs 30]

Prints, per real model: max abs error against the stored onnxruntime outputs, median latency of one inference
through bornrt_webgpu (inputs written, one submit, outputs mapped) and of the GPU part alone (submit to mapped),
dispatches and submits per inference, and PyTorch's median latency for the same ONNX model (converted with
onnx2torch when it is installed, after Constant nodes become initializers and GlobalMaxPool a ReduceMax; CUDA,
TF32 off). Then our tiled matmul, implicit-GEMM conv and elementwise kernels (add, mul and a fused chain at
several sizes) against torch.matmul / conv2d / add / mul / eager chain: each kernel dispatched K times in one
compute pass recorded before the clock starts, submit-to-readback timed minus an empty pass (GPU time), against
CUDA events around K PyTorch calls; the two timed in turn, medians. The GPU's clocks are raised first by two
seconds of matrix products. A benchmark, not a test: figures vary with clocks and load.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

import bornc
from bornc.backends.webgpu.runner import load_webgpu_artifact
from bornc.bench import _median_ms
from bornc.compile import compile_model
from bornc.frontend.onnx_import import from_proto

try:
    import torch
except ImportError:           # the figures beside PyTorch are then left out
    torch = None


def _median(fn, runs: int, warmup: int = 3) -> float:
    return _median_ms(fn, runs, warmup)


def _cuda() -> bool:
    return torch is not None and torch.cuda.is_available()


def _for_onnx2torch(proto):
    """The same model in forms onnx2torch converts: Constant nodes as initializers, GlobalMaxPool as ReduceMax
    over the spatial axes (keepdims). Semantics are unchanged."""
    from onnx import numpy_helper
    g = proto.graph
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 18)
    keep = []
    for n in g.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            t = numpy_helper.from_array(numpy_helper.to_array(n.attribute[0].t), n.output[0])
            g.initializer.append(t)
            continue
        if n.op_type == "GlobalMaxPool":
            rank = next((len(v.type.tensor_type.shape.dim) for v in list(g.value_info) + list(g.input) if v.name == n.input[0]), 3)
            if opset >= 18:
                axes = helper.make_tensor(n.output[0] + "_axes", TensorProto.INT64, [rank - 2], list(range(2, rank)))
                g.initializer.append(axes)
                keep.append(helper.make_node("ReduceMax", [n.input[0], axes.name], list(n.output), keepdims=1))
            else:
                keep.append(helper.make_node("ReduceMax", [n.input[0]], list(n.output), keepdims=1, axes=list(range(2, rank))))
            continue
        keep.append(n)
    del g.node[:]
    g.node.extend(keep)
    return proto


def torch_latency(path: Path, feeds: dict, runs: int, expected: dict | None = None) -> tuple[float | None, str]:
    """Median ms of the ONNX model converted to PyTorch (onnx2torch), on CUDA with TF32 off; the note gives the
    converted model's max abs error against the expected outputs (a check of the conversion)."""
    if not _cuda():
        return None, "no CUDA"
    try:
        from onnx2torch import convert
        net = convert(_for_onnx2torch(onnx.load(str(path)))).cuda().eval()
    except Exception as ex:  # noqa: BLE001 - not every model converts
        return None, f"onnx2torch: {str(ex).splitlines()[0][:80]}"
    proto = onnx.load(str(path), load_external_data=False)
    names = [i.name for i in proto.graph.input if i.name not in {x.name for x in proto.graph.initializer}]
    args = [torch.from_numpy(np.ascontiguousarray(feeds[n])).cuda() for n in names]

    def step():
        with torch.no_grad():
            net(*args)
        torch.cuda.synchronize()
    try:
        with torch.no_grad():
            got = net(*args)
        got = [got] if isinstance(got, torch.Tensor) else list(got)
        note = ""
        if expected:
            errs = [float(np.max(np.abs(g.detach().cpu().numpy().astype(np.float64) - e))) for g, e in zip(got, expected.values())]
            note = f"err {max(errs):.2e}"
        return _median(step, runs), note
    except Exception as ex:  # noqa: BLE001
        return None, f"torch run: {str(ex).splitlines()[0][:80]}"


def bench_models(folder: Path, runs: int) -> list[dict]:
    rows = []
    for d in sorted(p for p in folder.iterdir() if (p / "model.onnx").is_file()):
        card = json.loads((d / "card.json").read_text())
        feeds = {i["name"]: np.load(d / i["file"]) for i in card["inputs"]}
        expected = {o["name"]: np.load(d / o["file"]) for o in card["outputs"]}
        model = bornc.load_onnx(d / "model.onnx", input_shapes={k: v.shape for k, v in feeds.items() if v.ndim})
        with tempfile.TemporaryDirectory() as tmp:
            compile_model(model, "webgpu", tmp)
            run = load_webgpu_artifact(tmp)
            outs = run(feeds)
            err = max(float(np.max(np.abs(outs[k].astype(np.float64) - v))) for k, v in expected.items())
            m = run.model
            total = _median(lambda: m.run(feeds), runs)
            waits = [m.gpu_ms() for _ in range(runs)]
            row = {"model": d.name, "max_abs_err": err, "ms": total, "gpu_ms": statistics.median(waits),
                   "dispatches": m.dispatches, "submits": m.submits}
        row["torch_ms"], row["torch_note"] = torch_latency(d / "model.onnx", feeds, runs, expected)
        rows.append(row)
        print(f"{d.name:28s} err {err:9.2e}  bornc {row['ms']:9.3f} ms (GPU part {row['gpu_ms']:8.3f})  "
              f"{row['dispatches']:4d} dispatches, {row['submits']} submit   torch "
              + (f"{row['torch_ms']:8.3f} ms ({row['torch_note']})" if row["torch_ms"] is not None else row["torch_note"]),
              flush=True)
    return rows


def _one_op_bundle(nodes, inputs, outputs, tmp, target: str = "webgpu"):
    g = helper.make_graph(nodes, "k", inputs, outputs)
    model = from_proto(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    compile_model(model, target, tmp)
    return model, load_webgpu_artifact(tmp)


def time_dispatches(run, feeds: dict, reps: int, label: str) -> float:
    """Median GPU ms of one of the bundle's ``label`` dispatches, each recorded ``reps`` times in one pass: the
    command buffer is recorded before the clock starts (recording is host work, measured by the model rows),
    then submit-to-readback is timed and the same for an empty pass subtracted (the readback's own latency)."""
    m = run.model
    m.run(feeds)
    steps = [s for s, d in zip(m.steps, m.manifest["dispatches"]) if d["label"] == label]
    dev = m.device

    def record(n):
        enc = dev.create_command_encoder()
        cp = enc.begin_compute_pass()
        for _ in range(n):
            for pl, bg, (x, y, z) in steps:
                cp.set_pipeline(pl)
                cp.set_bind_group(0, bg)
                cp.dispatch_workgroups(x, y, z)
        cp.end()
        return enc.finish()

    def timed(cb):
        t = time.perf_counter()
        dev.queue.submit([cb])
        dev.queue.read_buffer(m.arena, 0, 256)
        return (time.perf_counter() - t) * 1e3
    timed(record(reps))
    full = statistics.median(timed(record(reps)) for _ in range(5))
    empty = statistics.median(timed(record(0)) for _ in range(5))
    return max(full - empty, 1e-6) / reps


def torch_time(fn, reps: int) -> float:
    """Median GPU ms of one call of ``fn``, from CUDA events around ``reps`` calls (five passes)."""
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(5):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(reps):
            fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / reps)
    return statistics.median(times)


#: the elementwise cases: ONNX nodes over inputs a, b (float32 [n]) into y, and the same in PyTorch
ELEMENTWISE = {
    "add": ([helper.make_node("Add", ["a", "b"], ["y"])], lambda a, b, out: torch.add(a, b, out=out)),
    "mul": ([helper.make_node("Mul", ["a", "b"], ["y"])], lambda a, b, out: torch.mul(a, b, out=out)),
    "relu(a*b+a)": ([helper.make_node("Mul", ["a", "b"], ["p"]), helper.make_node("Add", ["p", "a"], ["q"]),
                     helper.make_node("Relu", ["q"], ["y"])], lambda a, b, out: torch.clamp_min(a * b + a, 0.0, out=out)),
}


def bench_elementwise(sizes: list[int], reps: int) -> list[dict]:
    """Each case of ELEMENTWISE at each size: bornc's kernel (fused into one FusedElementwise for the chain)
    dispatched at least ``reps`` times per pass (up to 2000, so that a pass lasts about 10 ms), against PyTorch
    eager on the same GPU; the two timed in turn, five times, medians. TB/s counts 12 bytes per element (two
    inputs read, one output written), for both."""
    rows = []
    f = TensorProto.FLOAT
    for n in sizes:
        a = np.random.default_rng(0).standard_normal(n, np.float32)
        b = np.random.default_rng(1).standard_normal(n, np.float32)
        for name, (nodes, tfn) in ELEMENTWISE.items():
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    model, run = _one_op_bundle(nodes, [helper.make_tensor_value_info("a", f, [n]), helper.make_tensor_value_info("b", f, [n])],
                                                [helper.make_tensor_value_info("y", f, [n])], tmp)
                except Exception as ex:  # noqa: BLE001 - a size past the adapter's limits: reported, not fatal
                    rows.append({"kernel": f"{name} {n:,} fp32", "error": f"{type(ex).__name__}: {str(ex)[:120]}"})
                    continue
                want = bornc.run(model, {"a": a, "b": b})["y"]
                err = float(np.max(np.abs(run({"a": a, "b": b})["y"] - want)))
                label = run.model.manifest["dispatches"][0]["label"]
                k = int(min(2000, max(reps, 10.0 / time_dispatches(run, {"a": a, "b": b}, reps, label))))
                ours, theirs = [], []
                for _ in range(5):
                    ours.append(time_dispatches(run, {"a": a, "b": b}, k, label))
                    if _cuda():
                        ta, tb = torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()
                        out = torch.empty_like(ta)
                        theirs.append(torch_time(lambda: tfn(ta, tb, out), k))
            row = {"kernel": f"{name} {n:,} fp32", "ms": statistics.median(ours), "max_abs_err": err, "dispatches_per_pass": k}
            row["tb_per_s"] = 12 * n / row["ms"] / 1e9
            if theirs:
                row["torch_ms"] = statistics.median(theirs)
                row["torch_tb_per_s"] = 12 * n / row["torch_ms"] / 1e9
                row["ratio"] = row["torch_ms"] / row["ms"]
            rows.append(row)
    return rows


def bench_matmul_f16(sizes: list[int], reps: int) -> list[dict]:
    """float16 MatMul on the webgpu-f16 target (tiles staged as halves, f32 accumulation) beside PyTorch fp16
    (its tensor cores) and fp32; the relative error is against the float64 product of the same halves."""
    rows, f = [], TensorProto.FLOAT16
    rng = np.random.default_rng(1)
    for n in sizes:
        a = rng.standard_normal((n, n)).astype(np.float16)
        b = rng.standard_normal((n, n)).astype(np.float16)
        with tempfile.TemporaryDirectory() as tmp:
            try:
                _, run = _one_op_bundle([helper.make_node("MatMul", ["a", "b"], ["y"])],
                                        [helper.make_tensor_value_info("a", f, [n, n]), helper.make_tensor_value_info("b", f, [n, n])],
                                        [helper.make_tensor_value_info("y", f, [n, n])], tmp, target="webgpu-f16")
            except Exception as ex:  # noqa: BLE001 - an adapter without shader-f16: reported, not fatal
                rows.append({"kernel": f"matmul {n}^3 fp16 (webgpu-f16)", "error": f"{type(ex).__name__}: {str(ex)[:120]}"})
                continue
            want = a.astype(np.float64) @ b.astype(np.float64)
            y = run({"a": a, "b": b})["y"].astype(np.float64)
            ms = time_dispatches(run, {"a": a, "b": b}, reps, run.model.manifest["dispatches"][0]["label"])
        row = {"kernel": f"matmul {n}^3 fp16 (webgpu-f16)", "ms": ms, "tflops": 2 * n ** 3 / ms / 1e9,
               "max_rel_err": float(np.max(np.abs(y - want)) / np.max(np.abs(want)))}
        if _cuda():
            ta, tb = torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()
            row["torch_ms"] = torch_time(lambda: torch.matmul(ta, tb), reps)
            row["torch_tflops"] = 2 * n ** 3 / row["torch_ms"] / 1e9
            fa, fb = ta.float(), tb.float()
            row["torch_fp32_tflops"] = 2 * n ** 3 / torch_time(lambda: torch.matmul(fa, fb), reps) / 1e9
        rows.append(row)
    return rows


def bench_kernels(matmul_sizes, conv, ew_elems: list[int], reps: int, f16: bool = False) -> list[dict]:
    rows = []
    f = TensorProto.FLOAT
    rng = np.random.default_rng(0)
    if _cuda():
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    for n in matmul_sizes:
        with tempfile.TemporaryDirectory() as tmp:
            _, run = _one_op_bundle([helper.make_node("MatMul", ["a", "b"], ["y"])],
                                    [helper.make_tensor_value_info("a", f, [n, n]), helper.make_tensor_value_info("b", f, [n, n])],
                                    [helper.make_tensor_value_info("y", f, [n, n])], tmp)
            a, b = rng.standard_normal((n, n), np.float32), rng.standard_normal((n, n), np.float32)
            y = run({"a": a, "b": b})["y"]
            rel = float(np.max(np.abs(y - a @ b)) / np.max(np.abs(a @ b)))
            ms = time_dispatches(run, {"a": a, "b": b}, reps, "MatMul")
        row = {"kernel": f"matmul {n}x{n}x{n} fp32", "ms": ms, "tflops": 2 * n ** 3 / ms / 1e9, "max_rel_err": rel}
        if _cuda():
            ta, tb = torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()
            row["torch_ms"] = torch_time(lambda: torch.matmul(ta, tb), reps)
            row["torch_tflops"] = 2 * n ** 3 / row["torch_ms"] / 1e9
        rows.append(row)
    nb, c, hw, k = conv
    with tempfile.TemporaryDirectory() as tmp:
        w = (rng.standard_normal((k, c, 3, 3)) * 0.05).astype(np.float32)
        winit = helper.make_tensor("w", f, w.shape, w.ravel())
        g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "c",
                              [helper.make_tensor_value_info("x", f, [nb, c, hw, hw])],
                              [helper.make_tensor_value_info("y", f, [nb, k, hw, hw])], initializer=[winit])
        model = from_proto(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
        compile_model(model, "webgpu", tmp, opt_level=0)
        run = load_webgpu_artifact(tmp)
        x = rng.standard_normal((nb, c, hw, hw), np.float32)
        y = run({"x": x})["y"]
        ms = time_dispatches(run, {"x": x}, reps, "Conv")
        flops = 2 * nb * k * c * 9 * hw * hw
        row = {"kernel": f"conv3x3 {nb}x{c}x{hw}x{hw} -> {k} fp32", "ms": ms, "tflops": flops / ms / 1e9}
        if _cuda():
            tx, tw = torch.from_numpy(x).cuda(), torch.from_numpy(w).cuda()
            ref = torch.nn.functional.conv2d(tx, tw, padding=1)
            row["max_rel_err"] = float((torch.from_numpy(y).cuda() - ref).abs().max() / ref.abs().max())
            row["torch_ms"] = torch_time(lambda: torch.nn.functional.conv2d(tx, tw, padding=1), reps)
            row["torch_tflops"] = flops / row["torch_ms"] / 1e9
        rows.append(row)
    if f16:
        rows += bench_matmul_f16(matmul_sizes, reps)
    rows += bench_elementwise(ew_elems, reps)
    for r in rows:
        if "error" in r:
            print(f"{r['kernel']:36s} {r['error']}", flush=True)
            continue
        ours = f"{r['tflops']:.2f} TFLOP/s" if "tflops" in r else f"{r['tb_per_s']:.2f} TB/s"
        theirs = (f"{r['torch_tflops']:.2f} TFLOP/s" if "torch_tflops" in r else
                  f"{r['torch_tb_per_s']:.2f} TB/s" if "torch_tb_per_s" in r else "n/a")
        ratio = f"   torch/bornc {r['torch_ms'] / r['ms']:.2f}" if "torch_ms" in r else ""
        if "torch_fp32_tflops" in r:
            ratio += f"   (torch fp32 {r['torch_fp32_tflops']:.2f} TFLOP/s)"
        print(f"{r['kernel']:36s} bornc {r['ms']:9.3f} ms {ours:>16s}   torch {r.get('torch_ms', float('nan')):9.3f} ms {theirs:>16s}{ratio}",
              flush=True)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=Path, help="folder of model folders (model.onnx, card.json, inputs/, expected/)")
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--matmul", type=int, nargs="*", default=[1024, 4096])
    p.add_argument("--conv", type=int, nargs=4, default=[8, 128, 56, 128], metavar=("N", "C", "HW", "K"))
    p.add_argument("--elementwise", type=int, nargs="*", default=[1 << 20, 1 << 24, 1 << 25, 1 << 26, 1 << 28],
                   help="element counts of the elementwise cases (add, mul, a fused chain)")
    p.add_argument("--reps", type=int, default=20, help="dispatches per timed pass in the kernel benchmarks")
    p.add_argument("--f16", action="store_true", help="also float16 MatMul on webgpu-f16 beside PyTorch fp16 and fp32")
    p.add_argument("--json", type=Path)
    a = p.parse_args(argv)
    from bornc.backends.webgpu.runner import host
    adapter, _ = host().get_device()
    if _cuda():                                    # clocks up before anything is timed
        x = torch.randn(4096, 4096, device="cuda")
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 2.0:
            x = x @ x / 4096
        torch.cuda.synchronize()
    print(f"adapter: {adapter.info.get('device')} ({adapter.info.get('backend_type')}, {adapter.info.get('adapter_type')}); "
          f"torch: {torch.__version__ + (' ' + torch.cuda.get_device_name() if _cuda() else ' (no CUDA)') if torch else 'absent'}")
    res = {"adapter": dict(adapter.info), "models": bench_models(a.models, a.runs) if a.models else [],
           "kernels": bench_kernels(a.matmul, a.conv, a.elementwise, a.reps, a.f16)}
    if a.json:
        a.json.write_text(json.dumps(res, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="xdg-"))
    sys.exit(main())

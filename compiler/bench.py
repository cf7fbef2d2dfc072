"""``bornc bench``: latency of a compiled artifact beside onnxruntime (one thread) on the same inputs, on this
machine, in one process: median of N runs after W warm-up runs (the machines are noisy: medians and ratios,
never a single run). Also reports the fraction of the CPU's fp32 peak (for a native target measured here by
:func:`measured_peak_gflops`, else ``peak_gflops`` of the target description, per core) and the artifact's cold
start (a fresh ``model_run`` process to its first output).
"""
from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from .errors import BorncError
from .ir.types import np_dtype
from .targets import get_target


#: how bench's random inputs are drawn (said with every figure measured on them)
RANDOM_INPUTS = "random inputs (seed 0: floats standard normal, integers in [0, 16), bools fair)"


def random_inputs(manifest: dict, seed: int = 0) -> dict:
    """One random array per manifest input (see RANDOM_INPUTS), for timing when no inputs are given."""
    rng = np.random.default_rng(seed)
    out = {}
    for t in manifest["inputs"]:
        dt = np_dtype(t["dtype"])
        if dt.kind == "f":
            out[t["name"]] = rng.standard_normal(t["shape"]).astype(dt)
        elif dt == np.bool_:
            out[t["name"]] = rng.random(t["shape"]) < 0.5
        else:
            out[t["name"]] = rng.integers(0, 16, t["shape"]).astype(dt)
    return out


def _median_ms(fn, runs: int, warmup: int) -> float:
    """Median milliseconds of ``runs`` calls of ``fn`` after ``warmup`` (one callable: :func:`interleaved_ms`)."""
    return interleaved_ms({"fn": fn}, runs, warmup, blocks=1)["fn"]


#: seconds between two blocks of interleaved_ms: the thread pools of both sides (onnxruntime's and bornc's)
#: keep their workers spinning for a few ms after a call, which would steal the cores of the next block
SETTLE_S = 0.02


def interleaved_ms(fns: dict, runs: int, warmup: int, blocks: int = 5) -> dict[str, float]:
    """Median milliseconds per callable of ``fns``, timed in alternating blocks: each of ``blocks`` rounds runs
    every callable ceil(runs / blocks) times in turn (after ``warmup`` calls each; at least ``runs`` timed calls
    in all), so a drift of clock speed or cache state touches all of them alike. Each block starts SETTLE_S after
    the previous one, with one untimed call."""
    for f in fns.values():
        for _ in range(warmup):
            f()
    times: dict[str, list] = {k: [] for k in fns}
    blocks = max(1, min(blocks, runs))
    per = -(-runs // blocks)                       # at least ``runs`` timed calls each
    for _ in range(blocks):
        for k, f in fns.items():
            time.sleep(SETTLE_S)
            f()
            for _ in range(per):
                t0 = time.perf_counter()
                f()
                times[k].append((time.perf_counter() - t0) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def _ort_runner(model_path, manifest: dict, feeds: dict, bind: dict | None, res: dict, threads: int = 1):
    """onnxruntime (``threads`` intra-op threads, its default ORT_ENABLE_ALL) on the source model with the same inputs, as a
    callable; None when it is not installed, the target does not run on this CPU, or it cannot load the model
    (then ``res["onnxruntime_error"]`` says why)."""
    from .targets import get_target
    if not (model_path and Path(model_path).is_file()) or get_target(manifest["target"]).run not in ("native", "python", "wgpu"):
        return None
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    try:
        sess = ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])
    except Exception as ex:  # noqa: BLE001 - onnxruntime may not load every model bornc compiles
        res["onnxruntime_error"] = str(ex).splitlines()[0][:200]
        return None
    ort_feeds = dict(feeds)
    ort_feeds.update({k: np.asarray(v) for k, v in (bind or {}).items()})
    missing = [i.name for i in sess.get_inputs() if i.name not in ort_feeds]
    if missing:
        res["onnxruntime_error"] = f"no value for input(s) {', '.join(missing)} (bound at compile time? give --bind)"
        return None
    ort_in = {i.name: ort_feeds[i.name] for i in sess.get_inputs()}
    return lambda: sess.run(None, ort_in)


def _bench_bare_metal(art: Path, manifest: dict, feeds: dict, res: dict) -> dict:
    """A bare-metal artifact under qemu-system-arm -icount shift=0: instructions per inference (deterministic:
    one run tells all; not a cycle count on a chip, whose memory waits and pipeline qemu does not model), per
    multiply-accumulate (manifest flops / 2), the stack a run used, and the flash and RAM the firmware takes."""
    from .backends.c.runner import Subprocess
    if "firmware" not in manifest:
        raise BorncError(f"{art}: no firmware sizes in manifest.json (compiled with --no-build? run bornc compile "
                         "with the toolchain present)")
    runner = Subprocess(art, manifest)
    runner(feeds, bench=1)
    res.update(runs=1, warmup=0, threads=1, firmware=manifest["firmware"], **runner.stats)
    if manifest.get("flops"):
        res["instructions_per_mac"] = res["instructions"] / (manifest["flops"] / 2)
    return res


def bench_artifact(art: str | Path, model_path: str | None = None, feeds: dict | None = None, runs: int = 50,
                   warmup: int = 5, bind: dict | None = None, threads: int = 1) -> dict:
    """Figures for one artifact: ms medians of bornc and onnxruntime (timed in alternating blocks in this process,
    :func:`interleaved_ms`), ratio, GFLOP/s, peak fraction, cold start; the python target adds its allocations
    and the reference interpreter's time, webgpu the GPU part. ``threads``: both sides run on that many threads
    (a C artifact is capped at it through its C API: InputError above the count it was compiled for)."""
    from .executors import load_artifact
    art = Path(art)
    manifest = json.loads((art / "manifest.json").read_text())
    res = {"artifact": str(art), "target": manifest["target"], "runs": runs, "warmup": warmup,
           "inputs": "given" if feeds or not manifest["inputs"] else RANDOM_INPUTS}
    feeds = feeds or random_inputs(manifest)
    if get_target(manifest["target"]).bare_metal:
        return _bench_bare_metal(art, manifest, feeds, res)
    runner = load_artifact(art)
    if hasattr(runner, "set_threads"):
        runner.set_threads(threads)
    res["threads"] = threads
    model_path = model_path or manifest["source_model"].get("path")
    ort_fn = _ort_runner(model_path, manifest, feeds, bind, res, threads)
    backend = manifest.get("backend")
    if backend == "python":
        bornc_fn = lambda: runner(feeds, copy=False)  # noqa: E731
    elif backend == "webgpu" or hasattr(runner, "ffi"):
        bornc_fn = lambda: runner(feeds)  # noqa: E731
    else:                                          # a subprocess (qemu-user, sanitizers): model_run times itself
        bornc_fn = None
        res["bornc_ms"] = runner(feeds, bench=runs)["__median_ms__"]
    fns = {k: f for k, f in (("bornc", bornc_fn), ("onnxruntime", ort_fn)) if f is not None}
    ms = interleaved_ms(fns, runs, warmup) if fns else {}
    res.update({f"{k}_ms": v for k, v in ms.items()})
    if "onnxruntime_ms" in res:
        res["ratio_ort_over_bornc"] = res["onnxruntime_ms"] / res["bornc_ms"]
    if backend == "python":
        res["allocated_bytes_per_inference"], res["retained_bytes_per_inference"] = _allocations(bornc_fn)
        if model_path and Path(model_path).is_file():
            from .frontend.onnx_import import load_onnx
            from .interpreter import run
            shapes = {t["name"]: tuple(t["shape"]) for t in manifest["inputs"] if t["shape"] is not None}
            ref = load_onnx(model_path, input_shapes=shapes, bind=bind or None)
            res["reference_ms"] = _median_ms(lambda: run(ref, feeds), max(runs // 5, 3), 1)
    elif backend == "webgpu":
        _gpu_figures(runner.model, feeds, runs, res)
    res["cold_start_ms"] = _cold_start(art, manifest, feeds)
    b = manifest.get("budget", {})
    if b.get("code_bytes") is not None and b.get("runtime_bytes") is not None:
        res.update(code_bytes=b["code_bytes"] + b["runtime_bytes"], runtime_bytes=b["runtime_bytes"],
                   weights_bytes=b.get("weights_bytes", manifest.get("weights_bytes", 0)))
    flops = manifest.get("flops")
    if flops:
        res["gflops"] = flops
        res["bornc_gflop_per_s"] = flops / 1e9 / (res["bornc_ms"] / 1e3)
        tgt = get_target(manifest["target"])
        peak = measured_peak_gflops(tgt) if tgt.run == "native" else None
        res["peak_source"] = "measured" if peak else "target"
        peak = peak or tgt.extra.get("peak_gflops")
        if peak:
            res["peak_gflops_per_core"] = peak
            res["peak_fraction"] = res["bornc_gflop_per_s"] / (peak * threads)
    return res


_PEAK_PROBE = r"""
#include <stdio.h>
#include <time.h>
typedef float v __attribute__((vector_size(%(width)d)));
int main(void) {
    v c[16], a, b;
    struct timespec t0, t1;
    long k, n = 20000000;
    int i;
    float s = 0;
    for (i = 0; i < %(lanes)d; ++i) { a[i] = 1.0f - 1e-7f; b[i] = 1e-7f; }
    for (i = 0; i < 16; ++i) c[i] = a * (float)i;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (k = 0; k < n; ++k)
        for (i = 0; i < 16; ++i) c[i] = c[i] * a + b;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    for (i = 0; i < 16; ++i) s += c[i][0];
    printf("%%.3f %%g\n", 2.0 * %(lanes)d * 16 * n / ((t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec)) / 1e9, s);
    return 0;
}
"""
_peaks: dict = {}


def measured_peak_gflops(target) -> float | None:
    """One core's fp32 FMA peak on this machine in GFLOP/s, for a native target: 16 independent chains of fused
    multiply-adds on the widest vector the target's features allow (AVX-512: 64 bytes, AVX2: 32, else 16),
    built with the target's compiler and flags (contraction on) and timed for about 0.1-0.5 s; the best of 3.
    None when the probe cannot be built or run. Cached per target for the process."""
    if target.name in _peaks:
        return _peaks[target.name]
    width = 64 if "avx512f" in target.features else 32 if "avx2" in target.features else 16
    best = None
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = Path(tmp) / "peak.c", Path(tmp) / "peak"
        src.write_text(_PEAK_PROBE % {"width": width, "lanes": width // 4})
        try:
            b = subprocess.run([target.cc, *target.cflags, "-std=gnu99", "-ffp-contract=fast", str(src), "-o", str(exe)],
                               capture_output=True, timeout=60)
            if b.returncode == 0:
                for _ in range(3):
                    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
                    if r.returncode == 0:
                        best = max(best or 0.0, float(r.stdout.split()[0]))
        except (OSError, subprocess.SubprocessError, ValueError, IndexError):
            best = None
    _peaks[target.name] = best
    return best


def _gpu_figures(m, feeds: dict, runs: int, res: dict) -> None:
    """The GPU part of a WebGPU inference (submit to outputs mapped, median), dispatches and the adapter."""
    m.run(feeds)
    res["gpu_wait_ms"] = statistics.median(m.gpu_ms() for _ in range(max(runs // 2, 3)))
    res["dispatches_per_inference"], res["submits_per_inference"] = m.dispatches, m.submits
    info = m.adapter.info
    res["adapter"] = f"{info.get('device', '')} ({info.get('backend_type', '')}, {info.get('adapter_type', '')})"


def _allocations(fn) -> tuple[int, int]:
    """Bytes one call of ``fn`` allocates, measured with tracemalloc after two warm-up calls: the peak above
    what was allocated before the call (transient), and what is still held after it (retained)."""
    import tracemalloc
    fn()
    fn()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        fn()
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - before, max(after - before, 0)


def _cold_start(art: Path, manifest: dict, feeds: dict) -> float | None:
    from .targets import get_target
    exe = art / "build" / "model_run"
    if not exe.exists() or get_target(manifest["target"]).run != "native":
        return None
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [str(exe), "-o", tmp]
        for k, t in enumerate(manifest["inputs"]):
            p = Path(tmp) / f"in{k}.npy"
            np.save(p, feeds[t["name"]])
            cmd += ["--input", f"{t['name']}={p}"]
        if manifest["compile"]["weights"] == "file":
            cmd += ["--weights", str(art / "weights.bin")]
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            r = subprocess.run(cmd, capture_output=True)
            times.append((time.perf_counter() - t0) * 1e3)
            if r.returncode:
                raise BorncError(f"model_run failed: {r.stderr.decode()[:300]}")
        return statistics.median(times)

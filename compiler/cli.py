"""The ``bornc`` command line: a thin layer over the library.

User errors (BorncError, unreadable files) print one line ``bornc: error: ...`` and exit with status 2;
``--debug`` shows the traceback instead.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from . import __version__, limits
from .errors import BorncError, InputError

log = logging.getLogger("bornc")


# ------------------------------------------------------------------------------------------------ arg parsing
def _parse_shape(text: str) -> tuple[str, tuple]:
    name, sep, dims = text.rpartition("=")
    if not sep or not name:
        raise BorncError(f"--input-shape {text!r}: expected NAME=D1,D2,... (for example x=1,3,224,224)")
    try:
        shape = tuple(int(d) for d in dims.split(",") if d.strip() != "") if dims.strip() else ()
    except ValueError:
        raise BorncError(f"--input-shape {text!r}: dimensions must be integers") from None
    if any(d < 0 for d in shape):
        raise BorncError(f"--input-shape {text!r}: dimensions must be >= 0")
    return name, shape


def _parse_bind(text: str) -> tuple[str, object]:
    name, sep, value = text.rpartition("=")
    if not sep or not name:
        raise BorncError(f"--bind {text!r}: expected NAME=VALUE (for example sr=16000)")
    if value.endswith(".npy"):
        return name, _load_npy(value, f"--bind {name}")
    for conv in (int, float):
        try:
            return name, conv(value)
        except ValueError:
            pass
    raise BorncError(f"--bind {text!r}: VALUE must be a number or a .npy file")


def _load_npy(path: str, what: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(f"{what}: file {path!r} not found") from None
    except Exception as ex:  # noqa: BLE001 - numpy raises several types for bad files
        raise InputError(f"{what}: {path!r} is not a readable .npy file ({type(ex).__name__}: {ex})") from None


def _shapes(args) -> dict:
    """{input name: shape}, and {sequence input name: [shape of element 0, 1, ...]} from ``NAME[k]=D1,D2``."""
    pairs, empty = [], {}
    for text in args.input_shape or []:
        if text.endswith("=[]"):                # an empty sequence
            empty[text[:-3]] = []
        else:
            pairs.append(_parse_shape(text))
    return {**_group_indexed(pairs, BorncError, "--input-shape "), **empty}


def _group_indexed(pairs: list, error, what: str) -> dict:
    """(name, value) pairs with those named ``NAME[0]`` ... ``NAME[n-1]`` gathered into a list under NAME (a
    sequence); ``error`` (an exception class) when the indices are not 0 to n-1, each once."""
    import re
    out, elems = {}, {}
    for k, v in pairs:
        m = re.fullmatch(r"(.+)\[(\d+)\]", k)
        if m:
            elems.setdefault(m.group(1), {})[int(m.group(2))] = v
        else:
            out[k] = v
    for name, got in elems.items():
        if sorted(got) != list(range(len(got))):
            raise error(f"{what}{name}[k]: give elements 0 to {max(got)} of the sequence, each once")
        out[name] = [got[k] for k in range(len(got))]
    return out


def _binds(args) -> dict:
    return dict(_parse_bind(s) for s in (args.bind or []))


def _load_model(args, opt_level: int | None = None):
    """Import the model and run the pass pipeline of ``opt_level`` (default: ``--opt-level``)."""
    from .frontend.onnx_import import load_onnx
    from .passes.pipeline import optimize
    model = load_onnx(args.model, input_shapes=_shapes(args), bind=_binds(args))
    level = args.opt_level if opt_level is None else opt_level
    return optimize(model, level, verify_each=getattr(args, "verify", False)) if level else model


def _read_inputs(args) -> dict[str, np.ndarray]:
    feeds: dict[str, np.ndarray] = {}
    if args.inputs:
        try:
            with np.load(args.inputs, allow_pickle=False) as z:
                feeds.update({k: z[k] for k in z.files})
        except FileNotFoundError:
            raise InputError(f"--inputs: file {args.inputs!r} not found") from None
        except Exception as ex:  # noqa: BLE001
            raise InputError(f"--inputs: {args.inputs!r} is not a readable .npz file ({ex})") from None
    for item in args.input or []:
        name, sep, path = item.rpartition("=")
        if not sep or not name:
            raise InputError(f"--input {item!r}: expected NAME=FILE.npy")
        feeds[name] = _load_npy(path, f"--input {name}")
    return _group_sequences(feeds)


def _group_sequences(feeds: dict) -> dict:
    """Arrays named ``NAME[0]`` ... ``NAME[n-1]`` (files cannot hold a list) as the sequence input NAME."""
    return _group_indexed(list(feeds.items()), InputError, "input ")


def _flat_outputs(outs: dict) -> dict:
    """Outputs as arrays: a sequence output as ``NAME[0]`` ... ``NAME[n-1]``, an empty optional left out."""
    flat = {}
    for k, v in outs.items():
        if isinstance(v, list):
            flat.update({f"{k}[{j}]": e for j, e in enumerate(v)})
        elif v is not None:
            flat[k] = v
    return flat


def _write_outputs(outs: dict, dest: str) -> str:
    from .golden import safe_name
    from .ir.types import npy_safe
    outs = {k: npy_safe(v) for k, v in outs.items()}       # float8/int4/bfloat16 as raw bytes numpy can read back
    if dest.endswith(".npz"):
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        with open(dest, "wb") as f:
            np.savez(f, **outs)
        return f"wrote {len(outs)} output(s) to {dest}"
    d = Path(dest)
    d.mkdir(parents=True, exist_ok=True)
    for k, v in outs.items():
        np.save(d / (safe_name(k) + ".npy"), np.asarray(v))
    return f"wrote {len(outs)} .npy file(s) to {d}/"


def _fmt_count(n: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f}{unit}"
    return f"{n:g}"


# ------------------------------------------------------------------------------------------------ commands
def cmd_inspect(args) -> int:
    from .analysis import summarize, summarize_unsupported
    from .errors import UnsupportedOpError
    from .frontend.onnx_import import read_model_proto
    from .ir.printer import format_model
    if args.opt_level is None:
        args.opt_level = 2 if (args.passes or args.plan) else 0
    if args.passes:
        return _inspect_passes(args)
    try:
        model = _load_model(args)
    except UnsupportedOpError as ex:
        proto, _ = read_model_proto(args.model)
        info = summarize_unsupported(proto, ex.missing)
        if args.json:
            print(json.dumps(info, indent=2))
        else:
            print(f"model: {args.model}\nnodes: {info['nodes']}\nunsupported ops: {ex}")
        return 2
    if args.ir:
        sys.stdout.write(format_model(model))
        return 0
    if args.plan:
        return _inspect_plan(args, model)
    info = summarize(model)
    info["model"] = str(args.model)
    info["sha256"] = model.source_sha256
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"model: {args.model}  (sha256 {model.source_sha256[:16]}..., opsets "
          + ", ".join(f"{k}:{v}" for k, v in info["opsets"].items()) + ")")
    print("inputs:")
    for i in info["inputs"]:
        print(f"  {i['name']:<32} {i['type']}")
    print("outputs:")
    for o in info["outputs"]:
        print(f"  {o['name']:<32} {o['type']}")
    print(f"nodes: {info['nodes']}   parameters: {_fmt_count(info['parameters'])} ({info['parameter_bytes']:,} bytes)   "
          f"FLOPs: {_fmt_count(info['flops'])}")
    print(f"{'op':<28}{'count':>7}{'FLOPs':>12}")
    for op, n in info["op_histogram"].items():
        print(f"  {op:<26}{n:>7}{_fmt_count(info['flops_per_op'].get(op, 0)):>12}")
    if info["subgraph_op_histogram"]:
        print("in subgraphs: " + ", ".join(f"{k} {v}" for k, v in info["subgraph_op_histogram"].items()))
    print("unsupported ops: none")
    return 0


def _inspect_passes(args) -> int:
    from .frontend.onnx_import import load_onnx
    from .passes.pipeline import run_pipeline
    from .targets import get_target
    model = load_onnx(args.model, input_shapes=_shapes(args), bind=_binds(args))
    target = get_target(args.target)
    _, records = run_pipeline(model, args.opt_level, target=target if target.backend != "reference" else None)
    if args.json:
        print(json.dumps({"opt_level": args.opt_level, "target": target.name, "passes": [r.__dict__ for r in records]},
                         indent=2))
        return 0
    print(f"{'pass':<36}{'nodes':>8}{'constants':>11}")
    prev = records[0].nodes
    for r in records:
        print(f"{r.name:<36}{r.nodes:>8}{r.constants:>11}" + (f"  ({r.nodes - prev:+d})" if r.nodes != prev else ""))
        prev = r.nodes
    print(f"opt level {args.opt_level}, target {target.name}: {records[0].nodes} -> {records[-1].nodes} nodes")
    return 0


def _inspect_plan(args, model) -> int:
    from .memory import plan_model
    from .targets import get_target
    target = get_target(args.target)
    plan = plan_model(model, target.alignment, args.schedule, io_in_arena=args.io_in_arena or target.io_in_arena)
    if args.plot:
        _plot_plan(plan, args.plot)
    if args.json:
        print(json.dumps({"plan": plan.to_json()}, indent=1))
        return 0
    s = plan.summary()
    print(f"schedule {s['schedule']}, {s['algorithm']}, alignment {s['alignment']} bytes, model inputs/outputs "
          f"{'in the arena' if plan.io_in_arena else 'caller-owned (outside the arena)'}")
    print(f"arena_bytes        {plan.arena_bytes:>14,}")
    print(f"lower_bound_bytes  {plan.lower_bound_bytes:>14,}  (arena / lower bound = {plan.arena_bytes / max(plan.lower_bound_bytes, 1):.3f})")
    print(f"no_reuse_bytes     {plan.no_reuse_bytes:>14,}")
    print(f"weights_bytes      {plan.weights_bytes:>14,}")
    print(f"{'tensor':<48}{'offset':>12}{'size':>12}{'steps':>12}")
    for t in plan.to_json()["tensors"]:
        shared = "" if t["buffer"] == t["name"] else f"  (shares {t['buffer']})"
        print(f"{t['name'][:47]:<48}{t['offset']:>12}{t['size']:>12}{str(t['first_step']) + '-' + str(t['last_step']):>12}{shared}")
    if args.plot:
        print(f"wrote {args.plot}")
    return 0


def _plot_plan(plan, path: str) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Rectangle
    except ImportError:
        raise BorncError("--plot needs matplotlib: pip install 'bornc[plot]'") from None
    fig, ax = plt.subplots(figsize=(10, 5))
    for name, (off, size, first, last) in plan.offsets.items():
        ax.add_patch(Rectangle((first, off / 1024), last - first + 1, size / 1024, alpha=0.6, edgecolor="black", linewidth=0.3))
    ax.set_xlim(0, plan.steps)
    ax.set_ylim(0, max(plan.arena_bytes, 1) * 1.05 / 1024)
    ax.axhline(plan.lower_bound_bytes / 1024, color="red", linewidth=0.8, label="lower bound")
    ax.set_xlabel("step")
    ax.set_ylabel("arena offset (KiB)")
    ax.set_title(f"arena {plan.arena_bytes:,} B, lower bound {plan.lower_bound_bytes:,} B")
    ax.legend()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def cmd_debug(args) -> int:
    if args.opt_level is None:
        args.opt_level = 2
    if args.target:
        return _debug_target(args)
    from .debug import bisect
    rtol = 1e-4 if args.rtol is None else args.rtol
    atol = 1e-5 if args.atol is None else args.atol
    model = _load_model(args, opt_level=0)
    feeds = _read_inputs(args)
    d = bisect(model, feeds, args.opt_level, rtol, atol)
    if d is None:
        print(f"no divergence: every value shared by opt level 0 and {args.opt_level} agrees within rtol {rtol} atol {atol}")
        return 0
    print(f"first divergence (opt level 0 vs {args.opt_level}, rtol {rtol}, atol {atol}):")
    print(f"  node {d.node!r} ({d.op}) output {d.value!r}: max abs err {d.max_abs_err:.4g}")
    _print_input_stats(d.inputs)
    return 1


def _print_input_stats(inputs: list) -> None:
    for i in inputs:
        stats = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in i.items() if k != "name")
        print(f"  input {i['name']!r}: {stats}")


def _err(v) -> str:
    return "-" if v is None else f"{v:.3g}"


def _debug_target(args) -> int:
    """bornc debug MODEL --target T: the artifact's values, node by node, against the reference and onnxruntime."""
    from .backends.common.text import comment_text
    from .debug import per_node
    from .targets import get_target
    t = get_target(args.target)
    rtol = 1e-3 if args.rtol is None else args.rtol
    atol = 1e-4 if args.atol is None else args.atol
    model = _load_model(args, opt_level=0)
    res = per_node(model, _read_inputs(args), t.name, args.model, rtol, atol, args.opt_level)
    beside = "onnxruntime beside it" if res.with_ort else "onnxruntime not available for this model"
    print(f"{len(res.rows)} values compared: the {t.name} artifact (opt level {args.opt_level}, every value that survives "
          f"optimization exposed) against the reference interpreter, {beside}; rtol {rtol} atol {atol}")
    if args.all:
        print(f"  {'node':<32}{'op':<20}{'target-ref':>11}{'target-ort':>11}{'ort-ref':>11}  ok")
        for r in res.rows:
            print(f"  {comment_text(r.node, 31):<32}{comment_text(r.op, 19):<20}{_err(r.target_vs_ref):>11}"
                  f"{_err(r.target_vs_ort):>11}{_err(r.ort_vs_ref):>11}  {'yes' if r.within else 'NO'}")
    if res.first is None:
        worst = max(res.rows, key=lambda r: r.target_vs_ref or 0.0, default=None)
        tail = f"; largest error {_err(worst.target_vs_ref)} at node {worst.node!r} ({worst.op})" if worst else ""
        print(f"no divergence: every value of the {t.name} artifact agrees with the reference{tail}")
        return 0
    f = res.first
    ort = (f" (onnxruntime there: {_err(f.ort_vs_ref)} from the reference, {_err(f.target_vs_ort)} from {t.name})"
           if res.with_ort else "")
    print(f"first divergence: node {f.node!r} ({f.op}) output {f.value!r}: max abs err {_err(f.target_vs_ref)} "
          f"against the reference{ort}")
    _print_input_stats(res.first_inputs)
    return 1


def cmd_compile(args) -> int:
    if "," in (args.target or ""):
        return _compile_multi(args)
    from .compile import compile_model
    from .targets import get_target
    if args.opt_level is None:
        args.opt_level = 2
    target = get_target(args.target)
    model = _load_model(args, opt_level=0)
    self_test = None
    if args.self_test_data:
        with np.load(args.self_test_data, allow_pickle=False) as z:
            feeds = {k: z[k] for k in z.files}
        from .interpreter import run
        self_test = {"inputs": feeds, "outputs": run(model, feeds), "rtol": 1e-3, "atol": 1e-4}
    name = args.name or Path(args.model).stem
    quantize = None
    if args.quantize:
        from .quantize import RANDOM_WARNING, QuantizeConfig
        quantize = QuantizeConfig.from_options(model, args.quantize, args.calibration, args.validation,
                                               args.calibrate_method, args.keep_float, args.fallback_threshold,
                                               args.target_cosine)
        if quantize.random_calibration:
            print(RANDOM_WARNING, file=sys.stderr)
    elif args.calibration or args.validation or args.keep_float:
        raise BorncError("--calibration, --validation and --keep-float go with --quantize int8 (or fp16)")
    res = compile_model(model, target, args.output, name=name, opt_level=args.opt_level, weights=args.weights,
                        schedule=args.schedule, cflags=args.cflags.split() if args.cflags else None, self_test=self_test,
                        ram=args.ram, flash=args.flash, build=not args.no_build, source=args.model, quantize=quantize,
                        sanitize=args.sanitize, threads=args.threads)
    m = res.manifest
    if quantize is not None:
        from .quantize import format_report
        for line in format_report(m["quantization"], warning=not quantize.random_calibration):
            print(line)
    b = m["budget"]
    print(f"compiled {args.model} for {target.name} into {args.output}/ ({m['nodes']} kernels, weights {m['compile']['weights']})")
    in_ram = " + weights" if m["compile"]["weights"] == "file" or target.backend != "c" else ""
    stack = f" + stack estimate {b['stack_estimate']:,}" if b["stack_estimate"] else ""
    ram_parts = f"arena {m['arena_bytes']:,} + I/O{stack}{in_ram}"
    if "firmware" in m:              # bare metal: measured from the linked firmware.elf
        fw = m["firmware"]
        ram_parts = f"arena {fw['arena']:,} + I/O {fw['io']:,} + other {fw['state']:,} + stack reserved {fw['stack_reserved']:,}"
    print(f"  RAM     needed {b['ram_needed']:>14,} bytes ({ram_parts})" + (f"   budget {b['ram_budget']:,}" if b["ram_budget"] else ""))
    print(f"  storage needed {b['flash_needed']:>14,} bytes (code {b['code_bytes']:,} + runtime {b['runtime_bytes']:,}"
          f" + weights {b['weights_bytes']:,}; {b['sized_by']})" + (f"   budget {b['flash_budget']:,}" if b["flash_budget"] else ""))
    for f in sorted(res.built):
        print(f"  built {res.built[f]}")
    for note in res.notes:
        print(f"  note: {note}")
    return 0


def cmd_bench(args) -> int:
    from .bench import bench_artifact
    feeds = _read_inputs(args) or None
    r = bench_artifact(args.artifact, args.model, feeds, args.runs, args.warmup, _binds(args), threads=args.threads)
    if args.json:
        print(json.dumps(r, indent=1))
        return 0
    if "instructions" in r:
        _print_bare_metal_bench(r)
        return 0
    print(f"{r['artifact']} on {r['target']}: median of {r['runs']} runs after {r['warmup']} warm-up")
    if r["inputs"] != "given":
        print(f"  inputs       {r['inputs']}: no --input/--inputs given; latency can depend on the values")
    print(f"  bornc        {r['bornc_ms']:10.3f} ms" + (f"   {r['bornc_gflop_per_s']:.1f} GFLOP/s" if "bornc_gflop_per_s" in r else "")
          + (f" ({100 * r['peak_fraction']:.0f}% of {_cores(r['threads'])} fp32 peak, {r['peak_gflops_per_core']:.0f} GFLOP/s a core"
             f"{' measured here' if r.get('peak_source') == 'measured' else ' by the target file'})" if "peak_fraction" in r else "")
          + f"   {r['threads']} thread{'s' if r['threads'] > 1 else ''}")
    if "gpu_wait_ms" in r:
        print(f"  on the GPU   {r['gpu_wait_ms']:10.3f} ms   (submit to outputs mapped; {r['dispatches_per_inference']} dispatches, "
              f"{r['submits_per_inference']} submit; adapter {r['adapter']})")
    if "onnxruntime_ms" in r:
        print(f"  onnxruntime  {r['onnxruntime_ms']:10.3f} ms   ({r['threads']} thread{'s' if r['threads'] > 1 else ''}, CPU)"
              f"   onnxruntime / bornc = {r['ratio_ort_over_bornc']:.2f}")
    if "onnxruntime_error" in r:
        print(f"  onnxruntime  could not load the model: {r['onnxruntime_error']}")
    if "reference_ms" in r:
        print(f"  reference    {r['reference_ms']:10.3f} ms   (bornc's numpy reference interpreter)")
    if "allocated_bytes_per_inference" in r:
        print(f"  allocations  {r['allocated_bytes_per_inference']:>10,} bytes per inference at peak "
              f"({r['retained_bytes_per_inference']:,} retained; tracemalloc, outputs reused)")
    if r.get("cold_start_ms") is not None:
        print(f"  cold start   {r['cold_start_ms']:10.3f} ms   (fresh model_run process to its first output, .npy in and out)")
    if r.get("code_bytes") is not None:
        print(f"  code size    {r['code_bytes']:>10,} bytes   (model code {r['code_bytes'] - r['runtime_bytes']:,} + runtime "
              f"{r['runtime_bytes']:,}; weights {r['weights_bytes']:,} bytes beside it)")
    return 0


#: operators whose FLOPs are two per multiply-accumulate (per-MAC figures make sense for them)
_MAC_OPS = {"Conv", "QConv", "FusedConv", "Gemm", "FusedGemm", "MatMul", "FusedMatMul", "QMatMul", "ConvTranspose"}


def _print_bare_metal_bench(r: dict) -> None:
    """bornc bench's text for a bare-metal artifact (bench._bench_bare_metal's figures): instructions per
    inference and per MAC, RAM and flash by part, then instructions by operator, largest first."""
    fw = r["firmware"]
    print(f"{r['artifact']} on {r['target']}: one inference under qemu-system-arm -icount shift=0 (instructions "
          "executed, not cycles on a chip)")
    print(f"  instructions {r['instructions']:>12,} per inference" +
          (f"   {r['instructions_per_mac']:.2f} per multiply-accumulate" if "instructions_per_mac" in r else ""))
    print(f"  RAM          {fw['arena'] + fw['io'] + fw['state'] + r['stack_bytes']:>12,} bytes   (arena {fw['arena']:,} + "
          f"I/O buffers {fw['io']:,} + runtime state {fw['state']:,} + stack used {r['stack_bytes']:,})")
    print(f"  flash        {fw['kernels'] + fw['weights'] + fw['runtime']:>12,} bytes   (kernels {fw['kernels']:,} + "
          f"weights {fw['weights']:,} + runtime {fw['runtime']:,}; build/firmware.elf)")
    by_op: dict = {}
    for k in r.get("kernels", []):
        n, ins, flops = by_op.get(k["op"], (0, 0, 0))
        by_op[k["op"]] = (n + 1, ins + k["instructions"], flops + k.get("flops", 0))
    if by_op:
        print("  by operator  (kernels, instructions, share, instructions per multiply-accumulate)")
    for op, (n, ins, flops) in sorted(by_op.items(), key=lambda kv: -kv[1][1]):
        per_mac = f"{ins / (flops / 2):8.2f}" if op in _MAC_OPS and flops else "       -"
        print(f"    {op:<20} {n:4} {ins:>12,} {100 * ins / max(r['instructions'], 1):5.1f}% {per_mac}")


def _cores(n: int) -> str:
    return "one core's" if n == 1 else f"{n} cores'"


def _compile_multi(args) -> int:
    """``--target a,b,c``: one artifact per target in OUT/<target>/ and OUT/manifest.json listing them in this
    order; `bornc run OUT/` (and executors.load_artifact) runs the first one that can run on the machine."""
    import shutil

    from .resources import resource_dir
    from .targets import get_target
    names = [get_target(t.strip()).name for t in args.target.split(",") if t.strip()]
    if len(set(names)) != len(names):
        raise BorncError(f"--target {args.target}: a target is named twice")
    out = Path(args.output)
    for name in names:
        sub = argparse.Namespace(**{**vars(args), "target": name, "output": str(out / name)})
        cmd_compile(sub)
    (out / "manifest.json").write_text(json.dumps({"format_version": 1, "backend": "multi", "targets": names,
                                                   "name": args.name or Path(args.model).stem}, indent=1) + "\n")
    shutil.copyfile(resource_dir("runtime") / "python" / "bornrt.py", out / "bornrt.py")    # the standalone loader
    print(f"wrote {out}/manifest.json: `bornc run {out}/` (or `python3 {out}/bornrt.py {out}/ --input ...`, "
          f"numpy only) runs the first of {', '.join(names)} that can run there")
    return 0


def _is_artifact(path: str) -> bool:
    return (Path(path) / "manifest.json").is_file()


def cmd_run(args) -> int:
    from .interpreter import run
    feeds = _read_inputs(args)
    if _is_artifact(args.model):
        from .executors import Chosen, load_artifact
        runner = load_artifact(args.model)
        if isinstance(runner, Chosen):
            print(runner.summary(), file=sys.stderr)
        outs = runner(feeds)
    elif args.target:
        from .executors import get_executor
        from .frontend.onnx_import import load_onnx
        model = load_onnx(args.model, input_shapes=_shapes(args), bind=_binds(args))
        ex = get_executor(args.target)
        if args.opt_level is not None and hasattr(ex, "opt_level"):
            ex.opt_level = args.opt_level
        outs = ex.prepare(model)(feeds)
    else:
        if args.opt_level is None:
            args.opt_level = 0
        outs = run(_load_model(args), feeds)
    outs = _flat_outputs(outs)
    if args.output:
        print(_write_outputs(outs, args.output))
    elif not args.top:
        for k, v in outs.items():
            a = np.asarray(v)
            stats = f" min {a.min():.6g} max {a.max():.6g} mean {a.astype(np.float64).mean():.6g}" if a.size and a.dtype.kind in "biuf" else ""
            print(f"{k}: {a.dtype}{list(a.shape)}{stats}")
    if args.top:
        labels = [s.strip() for s in args.labels.split(",")] if args.labels else []
        for line in top_classes(outs, args.top, labels):
            print(line)
    return 0


def top_classes(outs: dict, k: int, labels: list[str]) -> list[str]:
    """For every numeric output, the ``k`` largest entries along its last axis that is not 1, for each leading
    index (the first 8 rows): class index, its label when ``labels`` has one, and the value (a probability for
    a softmax output)."""
    lines = []
    for name, v in outs.items():
        a = np.asarray(v)
        if a.dtype.kind not in "biuf" or a.size == 0:
            continue
        while a.ndim > 1 and a.shape[-1] == 1:        # [N, C, 1, 1] classifier heads rank along C
            a = a.reshape(a.shape[:-1])
        rows = a.reshape(-1, a.shape[-1]) if a.ndim else a.reshape(1, 1)
        for r, row in enumerate(rows[:8]):
            best = np.argsort(-row.astype(np.float64), kind="stable")[:k]
            where = f"[{r}]" if len(rows) > 1 else ""
            picks = ", ".join(f"class {int(c)}{f' ({labels[c]})' if c < len(labels) else ''} {float(row[c]):.4f}" for c in best)
            lines.append(f"{name}{where}: {picks}")
    return lines


def cmd_targets(args) -> int:
    from .targets import load_targets
    rows = [(t.name, ", ".join(t.aliases), t.backend, t.status(), t.description) for t in load_targets().values()]
    if args.json:
        print(json.dumps([dict(zip(("name", "aliases", "backend", "status", "description"), r)) for r in rows], indent=2))
        return 0
    print(f"{'target':<12}{'aliases':<16}{'backend':<11}{'status':<16}description")
    notes = []
    for r in rows:
        status = r[3]
        if status != "ready":                     # the reason (tool, Debian package) goes below the table
            notes.append(f"[{len(notes) + 1}] {r[0]}: {status}")
            status = f"not ready [{len(notes)}]"
        print(f"{r[0]:<12}{r[1]:<16}{r[2]:<11}{status:<16}{r[4]}")
    for n in notes:
        print(n)
    return 0


def cmd_conformance(args) -> int:
    from .conformance import run_conformance, write_ops_matrix
    from .golden import repo_root

    def progress(i, n, name, status):
        if args.verbose:
            print(f"[{i}/{n}] {name}: {status}", file=sys.stderr)

    res = run_conformance(args.executor, args.filter, progress, args.sample, args.seed, args.via_cli)
    if not (args.filter or args.sample or args.via_cli):
        docs = Path(args.docs) if args.docs else repo_root() / "docs"
        docs.mkdir(parents=True, exist_ok=True)
        (docs / f"conformance-{res['executor']}.json").write_text(json.dumps(res, indent=1, sort_keys=True) + "\n")
        write_ops_matrix(docs, docs / "ops.md")
    if args.json:
        print(json.dumps({k: res[k] for k in ("executor", "passed", "failed", "unsupported", "total", "bound", "per_op")}))
        return 0
    print(f"{'op':<36}{'passed':>8}{'failed':>8}{'unsupp':>8}")
    for op, c in res["per_op"].items():
        print(f"{op:<36}{c['passed']:>8}{c['failed']:>8}{c['unsupported']:>8}")
    if args.verbose:
        for name, (status, detail) in res["cases"].items():
            if status != "passed":
                print(f"{name}: {status}: {detail}")
    pct = 100 * res["passed"] / max(res["total"], 1)
    print(f"executor {res['executor']}: {res['passed']} passed, {res['failed']} failed, {res['unsupported']} unsupported, "
          f"{res['total']} total ({pct:.1f}% passed; {res['bound']} with --bind) in {res['seconds']}s")
    return 0


def cmd_golden(args) -> int:
    from . import golden
    names = args.cases or golden.list_cases()
    if args.action == "list":
        for n in golden.list_cases():
            c = golden.load_case(n)
            print(f"{n:<36} targets: {', '.join(c.targets)}")
        return 0
    if args.action == "fetch":
        for n in names:
            print(golden.model_path(golden.load_case(n)))
        return 0
    if args.action == "record":
        for n in names:
            for line in golden.record(golden.load_case(n), ort=not args.no_ort):
                print(line)
        return 0
    from .targets import get_target
    target = get_target(args.target).name
    rows, skipped = [], []
    for n in names:
        case = golden.load_case(n)
        if target not in case.targets and "reference" != target:
            skipped.append(n)
            continue
        rows.extend(golden.check(case, target))
    print(f"{'case':<30}{'output':<34}{'max abs err':>12}{'max rel err':>12}  {'tolerance':<26}result")
    for r in rows:
        print(f"{r.case:<30}{r.output[:33]:<34}{r.max_abs:>12.3g}{r.max_rel:>12.3g}  {f'rtol {r.rtol:g} atol {r.atol:g}':<26}"
              f"{'pass' if r.ok else 'FAIL'}{' ' + r.note if r.note else ''}")
    bad = [r for r in rows if not r.ok]
    print(f"{len(rows) - len(bad)}/{len(rows)} outputs pass on {target}" + (f" ({len(skipped)} case(s) not for this target)" if skipped else ""))
    return 1 if bad or not rows else 0


def _threshold(v: str):
    if v.lower() == "none":
        return None
    try:
        return float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or none, not {v!r}") from None


def one_line(msg: str) -> str:
    """``msg`` with every control or line-separating character escaped (names from a model may hold them), so
    that an error is always one line."""
    return "".join(c if c.isprintable() or c == " " else ascii(c)[1:-1] for c in msg)


def _byte_count(v: str) -> int:
    """'4096', '64K', '512M', '2G' -> bytes (powers of 1024)."""
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(v[-1:].upper(), 1)
    try:
        n = int(v[:-1] if scale > 1 else v) * scale
    except ValueError:
        n = 0
    if not 0 < n <= limits.MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"expected a byte count from 1 to {limits.MAX_LIMIT} such as 4096, 512M or 2G, not {v!r}")
    return n


# ------------------------------------------------------------------------------------------------ main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bornc", description="Compile ONNX models into standalone inference artifacts.")
    p.add_argument("--version", action="version", version=f"bornc {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = p.add_subparsers(dest="command", required=True)

    def model_args(sp, opt_help="optimizer level: 0 turns every pass off"):
        sp.add_argument("model", help="path to an .onnx file")
        sp.add_argument("--opt-level", type=int, choices=[0, 1, 2], default=None, help=opt_help)
        sp.add_argument("--verify", action="store_true", help="run the IR verifier after every pass")
        sp.add_argument("--input-shape", action="append", metavar="NAME=D1,D2,...",
                            help="bind an input's symbolic dims (repeatable); NAME[k]=D1,... fixes element k of a "
                                 "sequence input (elements 0 to n-1 give its length; NAME=[] an empty one)")
        sp.add_argument("--bind", action="append", metavar="NAME=VALUE", help="turn a scalar input into a constant (repeatable)")
        sp.add_argument("--max-constant-bytes", type=_byte_count, metavar="N[K|M|G]", default=None,
                        help="largest tensor bornc evaluates or allocates while compiling (default 1G)")

    sp = sub.add_parser("inspect", help="show a model's inputs, outputs, ops, parameters and FLOPs")
    model_args(sp, "optimizer level (default 0, or 2 with --passes / --plan)")
    sp.add_argument("--json", action="store_true", help="print one JSON object")
    sp.add_argument("--ir", action="store_true", help="print the IR as text")
    sp.add_argument("--passes", action="store_true", help="node counts before and after each pass")
    sp.add_argument("--plan", action="store_true", help="the static memory plan (arena, lower bound, tensors)")
    sp.add_argument("--plot", metavar="PLAN.png", help="with --plan: draw the arena over time (needs matplotlib)")
    sp.add_argument("--schedule", choices=["topological", "memory"], default="topological", help="node order for --plan")
    sp.add_argument("--target", default="reference",
                    help="target whose legalization --passes shows and whose alignment --plan uses")
    sp.add_argument("--io-in-arena", action="store_true", help="plan model inputs and outputs inside the arena")
    sp.set_defaults(fn=cmd_inspect)

    sp = sub.add_parser("compile", help="compile a model into an artifact for a target")
    model_args(sp, "optimizer level (default 2)")
    sp.add_argument("--target", required=True, help="target name or alias (see `bornc targets`)")
    sp.add_argument("-o", "--output", required=True, metavar="DIR", help="artifact folder")
    sp.add_argument("--weights", choices=["auto", "embed", "file"], default="auto",
                    help="weights as const arrays in the code, or in weights.bin (auto: embed up to 2 MiB)")
    sp.add_argument("--schedule", choices=["topological", "memory"], default="topological")
    sp.add_argument("--cflags", help="compiler flags replacing the target's (quoted, space separated)")
    sp.add_argument("--threads", type=int, metavar="N",
                    help="C targets: worker threads the artifact runs on (default: the target's cores; "
                         "the C API and `bornc bench --threads` can lower it at run time)")
    sp.add_argument("--self-test-data", metavar="INPUTS.npz", help="embed this input and its reference output for --self-test")
    sp.add_argument("--ram", type=int, help="device RAM in bytes (default: the target's)")
    sp.add_argument("--flash", type=int, help="device storage in bytes (default: the target's)")
    sp.add_argument("--name", help="C symbol prefix (default: the model file name)")
    sp.add_argument("--no-build", action="store_true", help="write sources and Makefile only")
    sp.add_argument("--sanitize", action="store_true",
                    help="C targets: build with AddressSanitizer and UndefinedBehaviorSanitizer (for testing; "
                         "bornc run then runs build/model_run)")
    sp.add_argument("--quantize", choices=["int8", "fp16"],
                    help="int8: static post-training quantization (needs --calibration); fp16: weights stored as float16")
    sp.add_argument("--calibration", metavar="CAL.npz|DIR|random:N",
                    help="calibration inputs: an .npz keyed by input name (sets stacked on a leading axis allowed), "
                         "a folder of them, or random:N (smoke tests only: its accuracy figures mean nothing)")
    sp.add_argument("--validation", metavar="VAL.npz|DIR",
                    help="inputs for the accuracy report, distinct from calibration (default: every 4th calibration set, held out)")
    sp.add_argument("--calibrate-method", choices=["minmax", "percentile", "entropy"], default="percentile",
                    help="activation ranges: min/max, 0.01-99.99th percentiles (default), or KL-divergence (TensorRT)")
    sp.add_argument("--keep-float", metavar="NODE,...", help="node names to leave in float")
    sp.add_argument("--fallback-threshold", type=_threshold, default=0.002, metavar="X|none",
                    help="keep layers float whose sensitivity (1 - output cosine with only that layer int8) exceeds X, "
                         "then the most sensitive until --target-cosine is met (default 0.002; none: no fallback)")
    sp.add_argument("--target-cosine", type=float, default=0.995, metavar="C",
                    help="output cosine vs float32 the automatic fallback works toward on calibration data (default 0.995)")
    sp.set_defaults(fn=cmd_compile)

    sp = sub.add_parser("run", help="run a model with the reference interpreter, or a compiled artifact folder")
    model_args(sp, "optimizer level for a model file (default 0: the model as imported)")
    sp.add_argument("--input", action="append", metavar="NAME=FILE.npy", help="an input (repeatable)")
    sp.add_argument("--inputs", metavar="FILE.npz", help="all inputs from one .npz keyed by input name")
    sp.add_argument("-o", "--output", metavar="OUT.npz|DIR/", help="write outputs to an .npz or one .npy per output in DIR")
    sp.add_argument("--target", help="for a model file: compile it for this target (as bornc compile does, into a "
                                     "temporary folder) and run the artifact")
    sp.add_argument("--top", type=int, default=0, metavar="K", help="print each output's K largest entries along its "
                                                                   "last axis that is not 1 (a classifier's top classes; "
                                                                   "the first 8 rows of a batch)")
    sp.add_argument("--labels", metavar="A,B,...", help="with --top: names of the classes, in index order")
    sp.set_defaults(fn=cmd_run)

    sp = sub.add_parser("bench", help="time a compiled artifact beside onnxruntime (same inputs, same thread count)")
    sp.add_argument("artifact", help="artifact folder from bornc compile")
    sp.add_argument("--model", help="the source .onnx for onnxruntime (default: the path in the manifest)")
    sp.add_argument("--input", action="append", metavar="NAME=FILE.npy")
    sp.add_argument("--inputs", metavar="FILE.npz")
    sp.add_argument("--bind", action="append", metavar="NAME=VALUE", help="values of inputs bound at compile time (for onnxruntime)")
    sp.add_argument("--runs", type=int, default=50)
    sp.add_argument("--warmup", type=int, default=5)
    sp.add_argument("--threads", type=int, default=1, metavar="N",
                    help="threads for both bornc (at most what the artifact was compiled for) and onnxruntime (default 1)")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(fn=cmd_bench)

    sp = sub.add_parser("debug", help="find the first node whose output differs: between opt level 0 and another level, "
                                      "or (--target) between a target's artifact, the reference and onnxruntime")
    model_args(sp, "optimizer level to compare with level 0, or of the target's artifact (default 2)")
    sp.add_argument("--target", help="compare this target's artifact, node by node, with the reference interpreter "
                                     "and onnxruntime")
    sp.add_argument("--all", action="store_true", help="with --target: print every value's errors")
    sp.add_argument("--input", action="append", metavar="NAME=FILE.npy")
    sp.add_argument("--inputs", metavar="FILE.npz")
    sp.add_argument("--rtol", type=float, default=None, help="default 1e-4 (opt levels), 1e-3 (--target)")
    sp.add_argument("--atol", type=float, default=None, help="default 1e-5 (opt levels), 1e-4 (--target)")
    sp.set_defaults(fn=cmd_debug)

    sp = sub.add_parser("targets", help="list the targets and whether they are ready on this machine")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(fn=cmd_targets)

    sp = sub.add_parser("conformance", help="run the ONNX backend node tests on an executor")
    sp.add_argument("--executor", default="reference")
    sp.add_argument("--json", action="store_true", help="print one JSON object (passed, failed, unsupported, total, per_op)")
    sp.add_argument("--filter", metavar="REGEX", help="only cases whose name matches (results are then not written to docs/)")
    sp.add_argument("--docs", metavar="DIR", help="where to write conformance-<executor>.json and ops.md (default: docs/)")
    sp.add_argument("--sample", type=int, metavar="N", help="only N cases drawn at random (seeded; results not written)")
    sp.add_argument("--seed", type=int, default=0, help="seed of --sample (default 0)")
    sp.add_argument("--via-cli", action="store_true",
                    help="run each case through `bornc compile` and `bornc run` in subprocesses (slow; results not written)")
    sp.add_argument("-v", "--verbose", action="store_true", help="print each case and the reasons of failures")
    sp.set_defaults(fn=cmd_conformance)

    sp = sub.add_parser("golden", help="record or check golden outputs")
    sp.add_argument("action", choices=["record", "check", "list", "fetch"],
                    help="record expected outputs, check them on a target, list the cases, or fetch a case's model and print its path")
    sp.add_argument("cases", nargs="*", help="case names under golden/ (default: all)")
    sp.add_argument("--target", default="reference", help="target to check on (default: reference)")
    sp.add_argument("--no-ort", action="store_true", help="record without the onnxruntime cross-check")
    sp.set_defaults(fn=cmd_golden)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="%(name)s: %(message)s")
    if getattr(args, "max_constant_bytes", None):
        limits.set_max_constant_bytes(args.max_constant_bytes)
    try:
        return int(args.fn(args) or 0)
    except BrokenPipeError:
        return 0
    except (BorncError, OSError) as ex:
        if args.debug:
            raise
        msg = str(ex) if isinstance(ex, BorncError) else f"{type(ex).__name__}: {ex}"
        print(f"bornc: error: {one_line(msg)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

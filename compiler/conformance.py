"""Conformance against the ONNX backend node tests.

Each case of ``onnx.backend.test.case.node.collect_testcases()`` (a model, inputs, expected outputs) is
imported, run on an executor and compared the way onnx's backend test runner compares
(``onnx/backend/test/runner/__init__.py``: equal shapes and dtypes, then ``assert_allclose`` with the case's
rtol/atol; strings compared exactly; bfloat16 with rtol at least 2**-6). A case is *unsupported* when import
or the target reports an unsupported operator, *failed* for any other error or mismatch, *passed* otherwise.
Every case counts in the total.

Each case takes the user's path: the model is imported as ``bornc compile case.onnx`` imports it (for a
static-shape target with ``--bind`` for the shape-deciding inputs, see :func:`case_binds`), compiled through
:func:`bornc.compile.compile_model` with the target's own compiler and flags, and run as ``bornc run`` runs the
artifact. Nothing is expanded at import: what a target cannot lower, legalization rewrites.
"""
from __future__ import annotations

import json
import re
import signal
import time
import warnings
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import BorncError, UnsupportedOpError
from .executors import get_executor
from .frontend.onnx_import import from_proto
from .ir.types import npy_safe

_ALIASES = {"sce": "SoftmaxCrossEntropyLoss", "nllloss": "NegativeLogLikelihoodLoss", "gru": "GRU", "lstm": "LSTM",
            "rnn": "RNN", "dft": "DFT", "stft": "STFT", "lrn": "LRN", "basic_conv": "Conv", "batchnorm": "BatchNormalization",
            "convtranspose": "ConvTranspose", "instancenorm": "InstanceNormalization", "layer_normalization": "LayerNormalization",
            "group_normalization": "GroupNormalization", "globalaveragepool": "GlobalAveragePool", "quantizelinear": "QuantizeLinear",
            "dequantizelinear": "DequantizeLinear", "logsoftmax": "LogSoftmax", "maxpool": "MaxPool", "averagepool": "AveragePool",
            "simple_rnn": "RNN", "sequence": "Sequence*", "optional": "Optional*", "strnorm": "StringNormalizer",
            "ai_onnx_ml": "ai.onnx.ml", "training": "training", "mvn": "MeanVarianceNormalization"}


def op_of_case(case) -> str:
    """The operator a node test case exercises: its only op, else the op named by the test name."""
    ops = {n.op_type for n in case.model.graph.node}
    if len(ops) == 1:
        return ops.pop()
    name = re.sub(r"^test_", "", case.name)
    import onnx.defs
    flat = name.replace("_", "").lower()
    best = ""
    for s in onnx.defs.get_all_schemas():
        low = s.name.lower()
        if flat.startswith(low) and len(low) > len(best):
            best = s.name
    if best:
        return best
    for k, v in sorted(_ALIASES.items(), key=lambda kv: -len(kv[0])):
        if name.startswith(k):
            return v
    return case.model.graph.node[0].op_type


class _Timeout(Exception):
    pass


@contextmanager
def _time_limit(seconds: float):
    def handler(signum, frame):
        raise _Timeout()
    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _compare(exp, got, rtol, atol) -> str | None:
    """None when ``got`` matches ``exp`` under onnx's rules, else a short reason."""
    if isinstance(exp, list):
        if not isinstance(got, list) or len(got) != len(exp):
            return f"expected a sequence of {len(exp)}, got {type(got).__name__}"
        for e, g in zip(exp, got):
            r = _compare(e, g, rtol, atol)
            if r:
                return r
        return None
    if exp is None:
        return None if got is None else "expected an empty optional"
    if got is None:
        return "got an empty optional"
    exp, got = np.asarray(exp), np.asarray(got)
    if exp.shape != got.shape:
        return f"shape {got.shape} != expected {exp.shape}"
    if exp.dtype == object or exp.dtype.kind in "US":
        return None if np.array_equal(exp.astype(object), got.astype(object)) else "string values differ"
    if exp.dtype != got.dtype:
        return f"dtype {got.dtype} != expected {exp.dtype}"
    r = rtol
    if got.dtype.name == "bfloat16":
        r = max(rtol, 2 ** -6)
    if got.dtype.kind not in "biufc" or got.dtype.name in ("bfloat16",) or "float8" in got.dtype.name or "float4" in got.dtype.name \
            or got.dtype.name in ("int4", "uint4", "int2", "uint2"):
        exp, got = exp.astype(np.float32), got.astype(np.float32)
    try:
        np.testing.assert_allclose(got, exp, rtol=r, atol=atol)
    except AssertionError as ex:
        line = [ln for ln in str(ex).splitlines() if "Max absolute" in ln]
        return "values differ" + (f" ({line[0].strip()})" if line else "")
    return None


def _feeds(case, inputs) -> dict:
    names = [i.name for i in case.model.graph.input]
    from onnx import numpy_helper
    out = {}
    for n, v in zip(names, inputs):
        if hasattr(v, "SerializeToString") and not isinstance(v, np.ndarray):
            v = numpy_helper.to_array(v)
        elif isinstance(v, np.generic):      # some cases give scalars as numpy scalars: feed 0-d arrays
            v = np.asarray(v)
        out[n] = v
    return out


def check_data_sets(case, model, run) -> tuple[str, str]:
    """Run every data set of ``case`` through ``run`` (feeds -> outputs; inputs the model bound at compile time
    are left out) and compare with the expected outputs: ('passed', '') or ('failed', reason)."""
    from onnx import numpy_helper
    for inputs, expected in case.data_sets:
        feeds = _feeds(case, inputs)
        outs = run({k: v for k, v in feeds.items() if k in model.graph.inputs})
        got = [outs[o] for o in model.graph.outputs]
        expected = [numpy_helper.to_array(e) if hasattr(e, "SerializeToString") else e for e in expected]
        for k, (e, g) in enumerate(zip(expected, got)):
            why = _compare(e, g, case.rtol, case.atol)
            if why:
                return "failed", f"output {k}: {why}"
    return "passed", ""


def case_binds(case) -> dict:
    """The graph inputs a static-shape target needs bound, as a user passes them to ``bornc compile --bind
    NAME=FILE.npy``: inputs (of at most 64 elements) that an op reads as a shape- or parameter-deciding value
    (``value_inputs`` of its registry entry: Reshape's shape, TopK's k, ReduceX's axes...), plus, when the model's
    shapes stay unknown without them, every small integer input. A case with several data sets is bound only where
    every set gives the same value."""
    from .ops import registry
    sets = [_feeds(case, inputs) for inputs, _ in case.data_sets]
    feeds = sets[0]
    deciding = {n.input[k] for n in case.model.graph.node
                for k in getattr(registry.get(n.op_type, n.domain), "value_inputs", ()) if k < len(n.input)}

    def same(k):
        return all(isinstance(f.get(k), np.ndarray) and np.array_equal(f[k], feeds[k]) for f in sets)
    small = {k: v for k, v in feeds.items() if isinstance(v, np.ndarray) and v.size <= 64 and same(k)}
    bind = {k: v for k, v in small.items() if k in deciding and v.dtype.kind in "biuf"}
    try:
        static = _import(case, bind).is_static()
    except BorncError:
        static = False
    if not static:
        bind.update({k: v for k, v in small.items() if v.dtype.kind in "iu"})
    return bind


def _import(case, bind: dict, static: bool = False):
    """The case's model imported as ``bornc compile case.onnx --input-shape ... --bind ...`` imports it; for a
    static-shape target (``static``) sequence inputs get their element shapes too (``--input-shape NAME[k]=...``)."""
    inputs, _ = case.data_sets[0]
    feeds = _feeds(case, inputs)
    shapes = {k: v.shape for k, v in feeds.items() if isinstance(v, np.ndarray)}
    unbound = _only_unbound(case.model, shapes)
    if static:
        unbound.update(sequence_shapes(case.model, feeds))
    return from_proto(case.model, input_shapes={k: s for k, s in unbound.items() if k not in bind}, bind=bind or None)


def sequence_shapes(proto, feeds: dict) -> dict:
    """{sequence input: [element shapes]} for the inputs of sequence type (or optional sequence) fed a list, and
    {optional tensor input: shape} for one fed an array."""
    out = {}
    for i in proto.graph.input:
        kind = i.type.WhichOneof("value")
        if kind == "optional_type":
            kind = i.type.optional_type.elem_type.WhichOneof("value")
        if kind == "sequence_type" and isinstance(feeds.get(i.name), list):
            out[i.name] = [np.asarray(e).shape for e in feeds[i.name]]
        elif kind == "tensor_type" and i.type.WhichOneof("value") == "optional_type" and isinstance(feeds.get(i.name), np.ndarray):
            out[i.name] = feeds[i.name].shape
    return out


def import_case(case, static: bool) -> tuple:
    """(model, names of the bound inputs) for a case, imported for a target that needs static shapes (binds from
    :func:`case_binds`) or not (none)."""
    bind = case_binds(case) if static else {}
    return _import(case, bind, static), sorted(bind)


def run_case(case, executor, timeout: float = 60.0) -> tuple[str, str, list]:
    """Run one case through the executor's compile path: (status, detail, bound input names) with status in
    passed / failed / unsupported."""
    bound: list = []
    try:
        with _time_limit(timeout), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, bound = import_case(case, getattr(executor, "static", False))
            return (*check_data_sets(case, model, executor.prepare(model)), bound)
    except UnsupportedOpError as ex:
        return "unsupported", str(ex), bound
    except _Timeout:
        return "failed", f"timeout after {timeout:g}s", bound
    except BorncError as ex:
        return "failed", f"{type(ex).__name__}: {str(ex)[:300]}", bound
    except Exception as ex:  # noqa: BLE001 - a crash is a failed case, reported with its type
        return "failed", f"crash {type(ex).__name__}: {str(ex)[:300]}", bound


def run_case_cli(case, target: str, folder: Path, timeout: float = 300.0) -> tuple[str, str, list]:
    """Run one case exactly as a user would, in subprocesses: ``bornc compile case.onnx --target T -o A
    [--input-shape ...] [--bind NAME=FILE.npy ...]``, then ``bornc run A --inputs set.npz -o out.npz`` for each
    data set; (status, detail, bound input names) as :func:`run_case`."""
    import subprocess
    import sys
    from onnx import numpy_helper
    from .targets import get_target
    bcmd = [sys.executable, "-m", "bornc"]
    static = get_target(target).backend in ("c", "webgpu")
    bind = case_binds(case) if static else {}
    (folder / "case.onnx").write_bytes(case.model.SerializeToString())
    cmd = [*bcmd, "compile", str(folder / "case.onnx"), "--target", target, "-o", str(folder / "A")]
    feeds = _feeds(case, case.data_sets[0][0])
    unbound = _only_unbound(case.model, {k: v.shape for k, v in feeds.items() if isinstance(v, np.ndarray)})
    if static:
        unbound.update(sequence_shapes(case.model, feeds))
    for k, shape in unbound.items():
        if k in bind:
            continue
        if isinstance(shape, list):             # a sequence input: one --input-shape per element
            cmd += [a for j, s in enumerate(shape) for a in ("--input-shape", f"{k}[{j}]=" + ",".join(map(str, s)))]
            cmd += [] if shape else ["--input-shape", f"{k}=[]"]
        else:
            cmd += ["--input-shape", f"{k}=" + ",".join(str(d) for d in shape)]
    for j, (k, v) in enumerate(sorted(bind.items())):
        np.save(folder / f"bind{j}.npy", v)
        cmd += ["--bind", f"{k}={folder / f'bind{j}.npy'}"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode:
        err = (r.stderr.strip().splitlines() or ["(no message)"])[-1]
        return ("unsupported" if "unsupported operator" in err else "failed"), err[:300], sorted(bind)
    names = [o.name for o in case.model.graph.output]
    for s, (inputs, expected) in enumerate(case.data_sets):
        feeds = {}
        for k, v in _feeds(case, inputs).items():
            if k in bind or v is None:
                continue
            if isinstance(v, list):             # files hold arrays: a sequence as NAME[0], NAME[1], ...
                feeds.update({f"{k}[{j}]": npy_safe(np.asarray(e)) for j, e in enumerate(v)})
            else:
                feeds[k] = npy_safe(v) if isinstance(v, np.ndarray) else v
        np.savez(folder / f"in{s}.npz", **feeds)
        r = subprocess.run([*bcmd, "run", str(folder / "A"), "--inputs", str(folder / f"in{s}.npz"), "-o",
                            str(folder / f"out{s}.npz")], capture_output=True, text=True, timeout=timeout)
        if r.returncode:
            return "failed", (r.stderr.strip().splitlines() or ["(no message)"])[-1][:300], sorted(bind)
        with np.load(folder / f"out{s}.npz", allow_pickle=False) as z:
            got = {k: z[k] for k in z.files}
        for k, (name, e) in enumerate(zip(names, expected)):
            e = numpy_helper.to_array(e) if hasattr(e, "SerializeToString") else e
            g = got.get(name)
            if g is None and isinstance(e, list):  # a sequence output comes back as NAME[0], NAME[1], ...
                g = [got[f"{name}[{j}]"] for j in range(len(e)) if f"{name}[{j}]" in got]
            if g is None and e is None:
                continue                        # an empty optional output: no file
            if g is not None and not isinstance(g, list) and g.dtype.kind == "V" and isinstance(e, np.ndarray) and g.dtype.itemsize == e.dtype.itemsize:
                g = g.view(e.dtype)          # .npz holds ml_dtypes values (int4, float8...) as raw bytes
            why = "missing" if g is None else _compare(e, g, case.rtol, case.atol)
            if why:
                return "failed", f"output {k}: {why}", sorted(bind)
    return "passed", "", sorted(bind)


def sample_cases(cases: list, n: int, seed: int) -> list:
    """``n`` cases drawn without replacement with numpy's generator seeded by ``seed`` (in suite order)."""
    rng = np.random.default_rng(seed)
    pick = sorted(rng.choice(len(cases), size=min(n, len(cases)), replace=False).tolist())
    return [cases[i] for i in pick]


def _only_unbound(proto, shapes: dict) -> dict:
    """Input shapes to bind: only inputs whose declared shape is not fully static."""
    out = {}
    for i in proto.graph.input:
        tt = i.type.tensor_type if i.type.HasField("tensor_type") else None
        if tt is None or i.name not in shapes:
            continue
        if not tt.HasField("shape") or any(not d.HasField("dim_value") for d in tt.shape.dim):
            out[i.name] = shapes[i.name]
    return out


def collect_cases():
    """The onnx node test cases (about 1,900 with onnx 1.23)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        from onnx.backend.test.case.node import collect_testcases
        return list(collect_testcases())


def executor_key(name: str) -> str:
    """The canonical name of an executor: a target's own name ('c' and 'host' are x86_64)."""
    if name in ("reference", "c"):
        return "x86_64" if name == "c" else name
    from .targets import get_target
    return get_target(name).name


def run_conformance(executor_name: str = "reference", pattern: str | None = None, progress=None,
                    sample: int | None = None, seed: int = 0, via_cli: bool = False) -> dict:
    """Run every node test case (or those whose name matches ``pattern``, or a seeded ``sample`` of them) on an
    executor, each through the user's compile path. A C target that runs on this machine compiles its cases in
    batches (``conformance_c``); ``via_cli`` runs each case through the ``bornc`` command line instead
    (:func:`run_case_cli`), the slow check that the two agree.

    Returns {"executor", "passed", "failed", "unsupported", "total", "bound" (cases that needed --bind),
    "per_op": {op: {passed, failed, unsupported}}, "cases": {name: [status, detail]}, "case_ops": {name: op},
    "case_binds": {name: [input names]}, "seconds"}."""
    from .targets import get_target
    key = executor_key(executor_name)
    batched_c = not via_cli and key != "reference" and get_target(key).backend == "c" and get_target(key).run == "native"
    executor = None if batched_c or via_cli else get_executor(key)
    cases = collect_cases()
    if pattern:
        rx = re.compile(pattern)
        cases = [c for c in cases if rx.search(c.name)]
    if sample:
        cases = sample_cases(cases, sample, seed)
    t0 = time.time()
    res = {"executor": key, "passed": 0, "failed": 0, "unsupported": 0, "total": len(cases)}
    per_op: dict = defaultdict(lambda: {"passed": 0, "failed": 0, "unsupported": 0})
    details, case_ops, binds = {}, {}, {}
    batched = {}
    from .progress import progress as bar_for
    bar = bar_for(total=len(cases), desc=f"conformance {key}", unit="case")
    if batched_c:
        from .conformance_c import run_c_cases
        batched = run_c_cases(cases, key, done=bar.update)
    for i, c in enumerate(cases):
        if via_cli:
            import tempfile
            with tempfile.TemporaryDirectory(prefix="bornc-cli-case-") as tmp:
                status, detail, bound = run_case_cli(c, key, Path(tmp))
        else:
            status, detail, bound = batched[c.name] if c.name in batched else run_case(c, executor)
        res[status] += 1
        case_ops[c.name] = op_of_case(c)
        per_op[case_ops[c.name]][status] += 1
        details[c.name] = [status, detail]
        if bound:
            binds[c.name] = list(bound)
        if progress:
            progress(i + 1, len(cases), c.name, status)
        if c.name not in batched:
            bar.update(1)
    bar.close()
    res["bound"] = len(binds)
    res["per_op"] = {k: per_op[k] for k in sorted(per_op)}
    res["cases"] = details
    res["case_ops"] = case_ops
    res["case_binds"] = binds
    res["seconds"] = round(time.time() - t0, 1)
    return res


def write_ops_matrix(results_dir: Path, out: Path) -> None:
    """Write ``docs/ops.md``: one row per op, one column per executor whose results are in ``results_dir``
    (files ``conformance-<executor>.json``), each cell passed/total for that op's cases."""
    runs = {}
    for p in sorted(results_dir.glob("conformance-*.json")):
        data = json.loads(p.read_text())
        runs[data["executor"]] = data
    ops = sorted({op for r in runs.values() for op in r["per_op"]})
    lines = ["# Operator support matrix", "",
             "Generated by `bornc conformance --executor E` from the ONNX backend node tests "
             "(`onnx.backend.test.case.node.collect_testcases()`); each cell is passed/total cases for that op.", ""]
    for name, r in runs.items():
        lines.append(f"- **{name}**: {r['passed']}/{r['total']} passed ({100 * r['passed'] / max(r['total'], 1):.1f}%), "
                     f"{r['failed']} failed, {r['unsupported']} unsupported")
    lines += ["", "| op | " + " | ".join(runs) + " |", "|---|" + "---|" * len(runs)]
    for op in ops:
        cells = []
        for r in runs.values():
            c = r["per_op"].get(op)
            if c is None:
                cells.append("")
                continue
            tot = c["passed"] + c["failed"] + c["unsupported"]
            mark = "" if c["passed"] == tot else (" (unsupported)" if c["unsupported"] == tot else "")
            cells.append(f"{c['passed']}/{tot}{mark}")
        lines.append(f"| {op} | " + " | ".join(cells) + " |")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")

"""Conformance against the ONNX backend node tests.

Each case of ``onnx.backend.test.case.node.collect_testcases()`` (a model, inputs, expected outputs) is
imported, run on an executor and compared the way onnx's backend test runner compares
(``onnx/backend/test/runner/__init__.py``: equal shapes and dtypes, then ``assert_allclose`` with the case's
rtol/atol; strings compared exactly; bfloat16 with rtol at least 2**-6). A case is *unsupported* when import
reports an unsupported operator, *failed* for any other error or mismatch, *passed* otherwise. Every case
counts in the total.
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


def import_static(case, expand):
    """Import a case for a static-shape target: a static-shape compiler specializes on the small integer inputs
    that decide shapes or parameters, as `bornc compile --bind` does (those an op reads as value inputs, or every
    small integer input when shapes stay unknown). Cases with several data sets bind nothing."""
    from .ops import registry
    inputs, _ = case.data_sets[0]
    feeds = _feeds(case, inputs)
    shapes = {k: v.shape for k, v in feeds.items() if isinstance(v, np.ndarray)}
    unbound = _only_unbound(case.model, shapes)
    bind = {}
    if len(case.data_sets) == 1:
        deciding = {n.input[k] for n in case.model.graph.node
                    for k in getattr(registry.get(n.op_type, n.domain), "value_inputs", ()) if k < len(n.input)}
        small = {k: v for k, v in feeds.items() if isinstance(v, np.ndarray) and v.dtype.kind in "iu" and v.size <= 64}
        bind = {k: v for k, v in feeds.items() if k in deciding and isinstance(v, np.ndarray) and v.dtype.kind in "iuf" and v.size <= 64}
        model = from_proto(case.model, input_shapes={k: s for k, s in unbound.items() if k not in bind}, bind=bind or None,
                           expand=expand)
        if not model.is_static() and small:
            bind = small
    return from_proto(case.model, input_shapes={k: s for k, s in unbound.items() if k not in bind}, bind=bind or None,
                      expand=expand)


def run_case(case, executor, timeout: float = 60.0) -> tuple[str, str]:
    """Run one case: returns (status, detail) with status in passed / failed / unsupported."""
    try:
        with _time_limit(timeout), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            inputs, expected = case.data_sets[0]
            feeds = _feeds(case, inputs)
            shapes = {k: v.shape for k, v in feeds.items() if isinstance(v, np.ndarray)}
            if getattr(executor, "static", False):
                model = import_static(case, executor.expand)
            else:
                model = from_proto(case.model, input_shapes=_only_unbound(case.model, shapes),
                                   expand=getattr(executor, "expand", None))
            return check_data_sets(case, model, executor.prepare(model))
    except UnsupportedOpError as ex:
        return "unsupported", str(ex)
    except _Timeout:
        return "failed", f"timeout after {timeout:g}s"
    except BorncError as ex:
        return "failed", f"{type(ex).__name__}: {str(ex)[:300]}"
    except Exception as ex:  # noqa: BLE001 - a crash is a failed case, reported with its type
        return "failed", f"crash {type(ex).__name__}: {str(ex)[:300]}"


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


def run_conformance(executor_name: str = "reference", pattern: str | None = None, progress=None) -> dict:
    """Run every node test case (or those whose name matches ``pattern``) on an executor.

    Returns {"executor", "passed", "failed", "unsupported", "total", "per_op": {op: {passed, failed,
    unsupported}}, "cases": {name: [status, detail]}, "case_ops": {name: op}, "seconds"}."""
    executor = get_executor(executor_name) if executor_name != "c" else None
    cases = collect_cases()
    if pattern:
        rx = re.compile(pattern)
        cases = [c for c in cases if rx.search(c.name)]
    t0 = time.time()
    res = {"executor": executor_name, "passed": 0, "failed": 0, "unsupported": 0, "total": len(cases)}
    per_op: dict = defaultdict(lambda: {"passed": 0, "failed": 0, "unsupported": 0})
    details, case_ops = {}, {}
    batched = {}
    if executor_name == "c":
        from .conformance_c import run_c_cases
        batched = run_c_cases(cases)
    for i, c in enumerate(cases):
        status, detail = batched[c.name] if c.name in batched else run_case(c, executor)
        res[status] += 1
        case_ops[c.name] = op_of_case(c)
        per_op[case_ops[c.name]][status] += 1
        details[c.name] = [status, detail]
        if progress:
            progress(i + 1, len(cases), c.name, status)
    res["per_op"] = {k: per_op[k] for k in sorted(per_op)}
    res["cases"] = details
    res["case_ops"] = case_ops
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

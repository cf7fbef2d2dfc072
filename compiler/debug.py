"""Mismatch bisector (``bornc debug``): find the first node whose output diverges between two runs.

The model runs at ``--opt-level 0`` (the reference) and at the chosen level, recording every intermediate
value. Values that exist in both (passes keep the names of the values they preserve; a fused node's output is
the last fused op's output) are compared in the optimized model's schedule order; the first whose error exceeds
``atol + rtol * |reference|`` is reported with its node, its inputs' statistics and the error.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .golden import compare
from .interpreter import run
from .ir.graph import Model
from .passes.pipeline import optimize


@dataclass
class Divergence:
    """The first diverging value: node name and op, value name, max abs error, and input statistics."""

    node: str
    op: str
    value: str
    max_abs_err: float
    inputs: list
    compared: int


def _stats(v) -> dict:
    a = np.asarray(v)
    if a.dtype.kind not in "biuf" or a.size == 0:
        return {"dtype": str(a.dtype), "shape": list(a.shape)}
    f = a.astype(np.float64)
    return {"dtype": str(a.dtype), "shape": list(a.shape), "min": float(f.min()), "max": float(f.max()),
            "mean": float(f.mean()), "std": float(f.std()), "nan": int(np.isnan(f).sum())}


def _record(model: Model, feeds) -> tuple[dict, list]:
    values: dict = dict(feeds)
    values.update(model.graph.constants)
    order = []

    def observe(node, outs):
        for name, v in zip(node.outputs, outs):
            if name:
                values[name] = v
        order.append(node)
    run(model, feeds, observer=observe)
    return values, order


def bisect(model: Model, feeds, opt_level: int = 2, rtol: float = 1e-4, atol: float = 1e-5,
           candidate: Model | None = None) -> Divergence | None:
    """Compare ``model`` (as imported) with its optimized form (or ``candidate``) value by value; returns the
    first divergence beyond tolerance, or None when every shared value agrees."""
    ref, _ = _record(model, feeds)
    cand_model = candidate if candidate is not None else optimize(model, opt_level)
    got, order = _record(cand_model, feeds)
    compared = 0
    for node in order:
        for name in node.outputs:
            if not name or name not in ref or not isinstance(ref[name], np.ndarray):
                continue
            a, b = np.asarray(ref[name]), np.asarray(got[name])
            compared += 1
            if a.shape != b.shape:
                return Divergence(node.name, node.op, name, float("inf"), [], compared)
            if a.dtype.kind not in "biuf":
                continue
            err = np.abs(a.astype(np.float64) - b.astype(np.float64))
            bad = ~(err <= atol + rtol * np.abs(a.astype(np.float64))) & ~(np.isnan(a) & np.isnan(b))
            if np.any(bad):
                ins = [{"name": i, **_stats(got[i])} for i in node.inputs if i and i in got]
                return Divergence(node.name, node.op, name, float(np.nanmax(err)), ins, compared)
    return None


# ------------------------------------------------------------------------------- per node, against a target
@dataclass
class NodeRow:
    """One value of the per-node comparison: max abs errors (None where a side lacks the value) of the target
    against the reference, of the target against onnxruntime, and of onnxruntime against the reference."""

    node: str
    op: str
    value: str
    target_vs_ref: float | None
    target_vs_ort: float | None
    ort_vs_ref: float | None
    within: bool


def _max_err(a, b) -> float | None:
    """Max abs error between two values (golden.compare: NaN = NaN, inf = inf); None when one is missing."""
    if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
        return None
    if a.dtype.kind not in "biuf" or b.dtype.kind not in "biuf":
        return 0.0 if np.array_equal(a, b) else float("inf")
    return compare(a, b, 0.0, 0.0)[1]


def _close(ref, got, rtol: float, atol: float) -> bool:
    """``|got - ref| <= atol + rtol * |ref|`` everywhere (golden.compare); a value the target did not return is
    not close."""
    if got is None:
        return False
    if ref.dtype.kind not in "biuf" or got.dtype.kind not in "biuf":
        return bool(np.array_equal(ref, got))
    return compare(got, ref, rtol, atol)[0]


def exposed(model: Model, names: list[str]) -> Model:
    """A copy of ``model`` whose graph also returns the values ``names`` (every intermediate the target should
    expose), in that order after the model's own outputs."""
    from .ir.graph import Graph
    g = model.graph
    outs = list(g.outputs) + [n for n in names if n not in g.outputs]
    return Model(Graph(g.name, g.inputs, outs, g.nodes, g.constants, g.types), model.opsets, model.producer,
                 model.source_sha256, model.metadata)


def target_values(model: Model, feeds: dict, target: str, names: list[str], opt_level: int = 2) -> dict:
    """The values ``names`` as the artifact for ``target`` computes them: the model with those values exposed as
    outputs, compiled through the one compile path (:class:`bornc.executors.ArtifactExecutor`) and run."""
    from .executors import get_executor
    ex = get_executor(target)
    ex.opt_level = opt_level
    return ex.prepare(exposed(model, names), name="debug")(feeds)


def surviving_values(model: Model, target: str, opt_level: int = 2) -> set[str]:
    """The values that still exist after optimizing and legalizing ``model`` for ``target`` (a fused node's
    output keeps the name of the last fused op's output; the values inside a fusion are gone). Exposing only
    these keeps every fusion of the real artifact."""
    from .targets import get_target
    opt = optimize(model, opt_level, target=get_target(target))
    return {o for _, n in opt.graph.walk() for o in n.outputs if o}


def onnxruntime_values(path: str, feeds: dict, names: list[str]) -> dict | None:
    """The values ``names`` as onnxruntime (1 thread, all graph optimizations off) computes them from the ONNX
    file, every one of them added as a graph output; None when onnxruntime is not installed or cannot run the
    model."""
    try:
        import onnx
        import onnxruntime as ort
    except ImportError:
        return None
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    try:
        proto = onnx.load(path)
        have = {o.name for o in proto.graph.output}
        proto.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names if n not in have)
        sess = ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])
        wanted = [o.name for o in sess.get_outputs()]
        got = sess.run(wanted, {i.name: feeds[i.name] for i in sess.get_inputs() if i.name in feeds})
    except Exception:  # noqa: BLE001 - a model onnxruntime cannot run: the comparison goes on without it
        return None
    return {n: np.asarray(v) for n, v in zip(wanted, got)}


@dataclass
class PerNode:
    """The per-node comparison: every row in schedule order, whether onnxruntime took part, the first row out
    of tolerance (None when all agree) and the reference statistics of that node's inputs."""

    rows: list
    with_ort: bool
    first: NodeRow | None
    first_inputs: list


def per_node(model: Model, feeds: dict, target: str, onnx_path: str | None = None, rtol: float = 1e-3,
             atol: float = 1e-4, opt_level: int = 2) -> PerNode:
    """Compare, value by value in the reference's schedule order, the artifact for ``target`` at ``opt_level``
    (every value that survives its optimization exposed as an output, :func:`surviving_values`) with the
    reference interpreter and with onnxruntime (when ``onnx_path`` is given and onnxruntime runs it). ``model``: as imported (opt level 0). A value is within tolerance when
    ``|target - reference| <= atol + rtol * |reference|`` everywhere (NaN equal to NaN). Raises what compiling
    for the target raises (UnsupportedOpError...)."""
    ref, order = _record(model, feeds)
    kept = surviving_values(model, target, opt_level)
    names = [o for n in order for o in n.outputs if o in kept and isinstance(ref.get(o), np.ndarray)]
    got = target_values(model, feeds, target, names, opt_level)
    ort_vals = onnxruntime_values(onnx_path, feeds, names) if onnx_path else None
    rows, nodes = [], []
    for node in order:
        for o in node.outputs:
            if o not in names:
                continue
            r, t = ref[o], (np.asarray(got[o]) if o in got else None)
            w = ort_vals.get(o) if ort_vals else None
            rows.append(NodeRow(node.name, node.op, o, _max_err(t, r), _max_err(t, w), _max_err(w, r),
                                _close(r, t, rtol, atol)))
            nodes.append(node)
    bad = next((k for k, row in enumerate(rows) if not row.within), None)
    first = rows[bad] if bad is not None else None
    ins = [{"name": i, **_stats(ref[i])} for i in nodes[bad].inputs if i and i in ref] if bad is not None else []
    return PerNode(rows, ort_vals is not None, first, ins)

"""Control flow and containers: If, Loop, Scan, sequences and optionals.

Source: ONNX operator spec (If 1-24, Loop 1-24, Scan 9-24, Sequence* 11-24, Optional* 15-24). Subgraphs see
the enclosing scope; the interpreter provides ``ctx.run_graph(graph, feeds) -> outputs``.
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError, SpecViolation
from .registry import InferCtx, OptionalType, SequenceType, TensorType, register


def _branch_types(g) -> list:
    return [g.types.get(o) for o in g.outputs]


def _if_infer(ctx: InferCtx) -> list:
    """Outputs typed from both branches: the same number of outputs and the same dtypes (the spec's If), dims
    kept where the branches agree. Raises SpecViolation otherwise."""
    then_t, else_t = _branch_types(ctx.attrs["then_branch"]), _branch_types(ctx.attrs["else_branch"])
    n = len([o for o in ctx.node.outputs])
    if len(then_t) != len(else_t) or len(then_t) < n:
        raise SpecViolation(f"node {ctx.node.name!r} (If): its branches give {len(then_t)} and {len(else_t)} outputs, "
                            f"the node has {n}")
    for k, (a, b) in enumerate(zip(then_t, else_t)):
        if isinstance(a, TensorType) and isinstance(b, TensorType) and a.dtype != b.dtype:
            raise SpecViolation(f"node {ctx.node.name!r} (If): output {k} is {a.dtype} in then_branch and {b.dtype} "
                                f"in else_branch")
    out = []
    for a, b in zip(then_t, else_t):
        if isinstance(a, TensorType) and isinstance(b, TensorType):
            same = a.shape is not None and b.shape is not None and len(a.shape) == len(b.shape)
            out.append(TensorType(a.dtype, tuple(x if x == y else None for x, y in zip(a.shape, b.shape)) if same else None))
        else:
            out.append(a or b)
    return out


@register("If", attrs={"then_branch": None, "else_branch": None}, infer=_if_infer, versions="1-24")
def ref_if(ctx, cond):
    branch = ctx.attrs["then_branch"] if bool(np.asarray(cond).ravel()[0]) else ctx.attrs["else_branch"]
    return tuple(ctx.run_graph(branch, {}))


def _loop_infer(ctx: InferCtx) -> list:
    body = ctx.attrs["body"]
    for k, want in ((0, "int64"), (1, "bool")):      # M and cond (ONNX Loop: int64 and bool, one element each)
        t = ctx.types[k] if k < len(ctx.types) else None
        if isinstance(t, TensorType) and t.dtype != want:
            raise SpecViolation(f"node {ctx.node.name!r} (Loop): input {k} ({'M' if k == 0 else 'cond'}) is {t.dtype}, "
                                f"the operator takes {want}")
    n_carried = len(ctx.node.inputs) - 2
    carried = [ctx.types[2 + i] for i in range(n_carried)]
    scans = []
    for o in body.outputs[1 + n_carried:]:
        t = body.types.get(o)
        scans.append(TensorType(t.dtype, None if t.shape is None else (None,) + tuple(t.shape))
                     if isinstance(t, TensorType) else SequenceType(None))
    return carried + scans


@register("Loop", attrs={"body": None}, infer=_loop_infer, value_inputs=(0, 1), versions="1-24")
def ref_loop(ctx, max_trip=None, cond=None, *carried):
    body = ctx.attrs["body"]
    n_carried = len(carried)
    trips = int(np.asarray(max_trip).ravel()[0]) if max_trip is not None else None
    keep = bool(np.asarray(cond).ravel()[0]) if cond is not None else True
    state = list(carried)
    scans: list[list] = [[] for _ in body.outputs[1 + n_carried:]]
    i = 0
    while keep and (trips is None or i < trips):
        feeds = {body.inputs[0]: np.array(i, dtype=np.int64), body.inputs[1]: np.array(keep)}
        feeds.update(zip(body.inputs[2:], state))
        outs = ctx.run_graph(body, feeds)
        keep = bool(np.asarray(outs[0]).ravel()[0])
        state = outs[1:1 + n_carried]
        for k, v in enumerate(outs[1 + n_carried:]):
            scans[k].append(v)
        i += 1
    res = list(state)
    for k, vals in enumerate(scans):
        if vals:
            res.append(np.stack(vals) if isinstance(vals[0], np.ndarray) else vals)
        else:
            t = body.types.get(body.outputs[1 + n_carried + k])
            shape = (0,) + tuple(d or 0 for d in (t.shape or ())) if isinstance(t, TensorType) else (0,)
            res.append(np.zeros(shape, dtype=np.dtype(t.dtype) if isinstance(t, TensorType) else np.float32))
    return tuple(res)


@register("Scan", attrs={"body": None, "num_scan_inputs": 1, "scan_input_axes": None, "scan_input_directions": None,
                         "scan_output_axes": None, "scan_output_directions": None}, versions="9-24")
def ref_scan(ctx, *args):
    a = ctx.attrs
    body = a["body"]
    m = a["num_scan_inputs"]
    n = len(args) - m
    state, xs = list(args[:n]), list(args[n:])
    in_axes = a["scan_input_axes"] or [0] * m
    in_dirs = a["scan_input_directions"] or [0] * m
    xs = [np.moveaxis(x, ax % x.ndim, 0) for x, ax in zip(xs, in_axes)]
    xs = [x[::-1] if d else x for x, d in zip(xs, in_dirs)]
    steps = xs[0].shape[0] if xs else 0
    collected: list[list] = []
    for t in range(steps):
        feeds = dict(zip(body.inputs[:n], state))
        feeds.update(zip(body.inputs[n:], [x[t] for x in xs]))
        outs = ctx.run_graph(body, feeds)
        state = outs[:n]
        if not collected:
            collected = [[] for _ in outs[n:]]
        for k, v in enumerate(outs[n:]):
            collected[k].append(v)
    k_out = len(body.outputs) - n
    out_axes = a["scan_output_axes"] or [0] * k_out
    out_dirs = a["scan_output_directions"] or [0] * k_out
    res = list(state)
    for k in range(k_out):
        vals = collected[k] if collected else []
        y = np.stack(vals[::-1] if out_dirs[k] else vals)
        res.append(np.moveaxis(y, 0, out_axes[k] % y.ndim))
    return tuple(res)


# ---------------------------------------------------------------------------------------------------- sequences
def _seq_of(ctx: InferCtx, i: int = 0) -> list:
    t = ctx.types[i] if i < len(ctx.types) else None
    return [t if isinstance(t, SequenceType) else SequenceType(t)]


@register("SequenceEmpty", attrs={"dtype": 1}, infer=lambda c: [SequenceType(None)], versions="11-24")
def ref_sequenceempty(ctx):
    return []


@register("SequenceConstruct", infer=lambda c: [SequenceType(c.types[0])], versions="11-24")
def ref_sequenceconstruct(ctx, *xs):
    return list(xs)


@register("SequenceInsert", infer=_seq_of, versions="11-24")
def ref_sequenceinsert(ctx, seq, x, pos=None):
    out = list(seq)
    out.insert(len(out) if pos is None else int(np.asarray(pos).ravel()[0]), x)
    return out


@register("SequenceAt", infer=lambda c: [c.types[0].elem if isinstance(c.types[0], SequenceType) else None], versions="11-24")
def ref_sequenceat(ctx, seq, pos):
    return seq[int(np.asarray(pos).ravel()[0])]


@register("SequenceErase", infer=_seq_of, versions="11-24")
def ref_sequenceerase(ctx, seq, pos=None):
    out = list(seq)
    out.pop(-1 if pos is None else int(np.asarray(pos).ravel()[0]))
    return out


@register("SequenceLength", infer=lambda c: [TensorType("int64", ())], versions="11-24")
def ref_sequencelength(ctx, seq):
    return np.array(len(seq), dtype=np.int64)


@register("SplitToSequence", attrs={"axis": 0, "keepdims": 1}, infer=lambda c: [SequenceType(TensorType(c.dtype(0), None))],
          versions="11-24")
def ref_splittosequence(ctx, x, split=None):
    ax = ctx.attrs["axis"] % x.ndim
    if split is None:
        parts = [np.take(x, i, axis=ax) if not ctx.attrs["keepdims"] else np.take(x, [i], axis=ax) for i in range(x.shape[ax])]
        return parts
    if split.ndim == 0:
        s = int(split)
        return np.split(x, list(range(s, x.shape[ax], s)), axis=ax)
    return np.split(x, np.cumsum(split)[:-1], axis=ax)


@register("ConcatFromSequence", attrs={"axis": 0, "new_axis": 0}, versions="11-24")
def ref_concatfromsequence(ctx, seq):
    if ctx.attrs["new_axis"]:
        return np.stack(seq, axis=ctx.attrs["axis"])
    return np.concatenate(seq, axis=ctx.attrs["axis"])


@register("SequenceMap", attrs={"body": None}, infer=lambda c: [SequenceType(c.attrs["body"].types.get(o)) for o in c.attrs["body"].outputs],
          versions="17-24")
def ref_sequencemap(ctx, seq, *extra):
    body = ctx.attrs["body"]
    outs = [[] for _ in body.outputs]
    for i in range(len(seq)):
        feeds = {body.inputs[0]: seq[i]}
        for name, e in zip(body.inputs[1:], extra):
            feeds[name] = e[i] if isinstance(e, list) else e
        for k, v in enumerate(ctx.run_graph(body, feeds)):
            outs[k].append(v)
    return tuple(outs)


# ---------------------------------------------------------------------------------------------------- optionals
@register("Optional", attrs={"type": None}, infer=lambda c: [OptionalType(c.types[0] if c.types else None)], versions="15-24")
def ref_optional(ctx, x=None):
    return x


@register("OptionalHasElement", infer=lambda c: [TensorType("bool", ())], versions="15-24")
def ref_optionalhaselement(ctx, x=None):
    return np.array(x is not None)


def _opt_elem(ctx: InferCtx) -> list:
    t = ctx.types[0]
    return [t.elem if isinstance(t, OptionalType) else t]


@register("OptionalGetElement", infer=_opt_elem, versions="15-24")
def ref_optionalgetelement(ctx, x):
    if x is None:
        raise ShapeError(f"OptionalGetElement {ctx.node.name!r}: the optional is empty")
    return x

"""Data-movement and shape operators: Cast, Reshape, Transpose, Concat, Split, Slice, Gather/Scatter, Pad,
Expand, Tile, Shape, Range, and friends.

Source: ONNX operator spec, opsets 7 to 24. Axes-as-attribute forms of older opsets are rewritten into the
input forms at import (``frontend/onnx_canon.py``), so these kernels implement the newest signature. Output
types of these cheap ops come from evaluating the kernel on the known shapes (``infer_by_evaluation``), with
``value_inputs`` naming the inputs whose values decide the output shape.
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError, SpecViolation
from ..ir.types import dtype_name, np_dtype, onnx_elem_to_name
from ..pyrt import rt
from .registry import InferCtx, TensorType, decomposition, infer_by_evaluation, register, same_as_input
from .registry import get as registry_get

try:
    import ml_dtypes
except ImportError:  # pragma: no cover
    ml_dtypes = None


def _axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


# ------------------------------------------------------------------------------------------------ Cast
def _float_to_string(x: np.ndarray) -> np.ndarray:
    flat = [("NaN" if np.isnan(v) else ("INF" if v > 0 else "-INF")) if not np.isfinite(v) else repr(v)
            for v in x.astype(np.float64).ravel().tolist()] if x.dtype.kind == "f" else [str(v) for v in x.ravel().tolist()]
    if x.dtype == np.float32:
        flat = [s if s in ("NaN", "INF", "-INF") else np.format_float_positional(np.float32(float(s)), unique=True, trim="-")
                if abs(float(s)) >= 1e-4 and abs(float(s)) < 1e16 or float(s) == 0 else np.format_float_scientific(np.float32(float(s)), unique=True, trim="-")
                for s in flat]
    return np.array(flat, dtype=object).reshape(x.shape)


def to_float8e8m0(x: np.ndarray, saturate: bool, round_mode: str) -> np.ndarray:
    """float8_e8m0fnu of ``x``: ``float_to_e8m0`` of the Python runtime (spec: Cast, opset 24, round_mode)."""
    return rt.float_to_e8m0(x, saturate, round_mode).view(ml_dtypes.float8_e8m0fnu)


def cast_array(x: np.ndarray, to: str, saturate: bool = True, round_mode: str = "up") -> np.ndarray:
    """ONNX Cast (spec opsets 6-24): numeric casts as numpy does them, strings parsed and printed, and the
    float8 types saturated to their largest finite value when ``saturate`` (spec table "Saturation")."""
    if to == "string":
        return _float_to_string(x) if x.dtype != object else x.copy()
    dt = np_dtype(to)
    if x.dtype == object:
        return np.array([float(s) if dt.kind == "f" else int(s) for s in x.ravel()], dtype=np.float64 if dt.kind == "f" else np.int64).reshape(x.shape).astype(dt)
    if to == "float8_e8m0fnu":
        return to_float8e8m0(x.astype(np.float32), saturate, round_mode)
    if to.startswith("float8") or to.startswith("float4"):
        src = x.astype(np.float32)
        if saturate and ml_dtypes is not None:
            m = float(ml_dtypes.finfo(dt).max)
            if to in ("float8_e5m2", "float8_e5m2fnuz", "float8_e4m3fnuz", "float8_e4m3fn", "float4_e2m1fn"):
                src = np.where(np.isnan(src), src, np.clip(src, -m, m))
        return src.astype(dt)
    if x.dtype.kind == "f" and x.dtype.itemsize == 1 or (ml_dtypes is not None and x.dtype in (np.dtype(ml_dtypes.float4_e2m1fn),)):
        return x.astype(np.float32).astype(dt)
    if to in ("int4", "uint4") and x.dtype.kind == "f":
        return np.round(x.astype(np.float32)).astype(dt)
    with np.errstate(all="ignore"):
        return x.astype(dt)


@register("Cast", attrs={"to": 1, "saturate": 1, "round_mode": "up"},
          infer=lambda c: [TensorType(onnx_elem_to_name(c.attrs["to"]), c.shape(0))], versions="6-24", props=("storage",))
def ref_cast(ctx, x):
    return cast_array(x, onnx_elem_to_name(ctx.attrs["to"]), bool(ctx.attrs["saturate"]), ctx.attrs["round_mode"])


@register("CastLike", attrs={"saturate": 1, "round_mode": "up"},
          infer=lambda c: [TensorType(c.dtype(1), c.shape(0))], versions="15-24", props=("storage",))
def ref_castlike(ctx, x, like):
    return cast_array(x, dtype_name(like.dtype), bool(ctx.attrs["saturate"]), ctx.attrs["round_mode"])


@register("Identity", infer=same_as_input, versions="1-24", props=("view", "storage"))
def ref_identity(ctx, x):
    return x if not isinstance(x, np.ndarray) else x.copy()


@register("Dropout", attrs={"seed": None}, stateful=True,
          versions="12-24 (ratio/training_mode inputs; identity unless training_mode)")
def ref_dropout(ctx, x, ratio=None, training_mode=None):
    """Inference: identity (mask all True). Training: keep each element with probability 1 - ratio, scaled by
    1 / (1 - ratio); the mask draws from numpy's Mersenne Twister seeded with the ``seed`` attribute, so a seeded
    node is reproducible."""
    p = 0.5 if ratio is None else float(np.asarray(ratio).ravel()[0])
    if training_mode is None or not bool(np.asarray(training_mode).ravel()[0]) or p == 0:
        return (x.copy(), np.ones(x.shape, dtype=bool)) if ctx.n_outputs > 1 else x.copy()
    seed = ctx.attrs["seed"]
    rng = np.random.RandomState(int(seed)) if seed is not None else np.random.RandomState()
    mask = rng.uniform(0, 1.0, x.shape) >= p
    y = (mask * x * (1 / (1 - p))).astype(x.dtype)
    return (y, mask) if ctx.n_outputs > 1 else y


# ------------------------------------------------------------------------------------------------ shapes
@register("Reshape", attrs={"allowzero": 0}, value_inputs=(1,), versions="5-24", props=("view", "storage"))
def ref_reshape(ctx, x, shape):
    shape = [int(s) for s in shape]
    if not ctx.attrs["allowzero"]:
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x.reshape(shape)


@register("Flatten", attrs={"axis": 1}, versions="1-24", props=("view", "storage"))
def ref_flatten(ctx, x):
    ax = _axis(ctx.attrs["axis"], x.ndim)
    return x.reshape(int(np.prod(x.shape[:ax], dtype=np.int64)), -1) if x.size else x.reshape(int(np.prod(x.shape[:ax])), int(np.prod(x.shape[ax:])))


@register("Transpose", attrs={"perm": None}, versions="1-24", props=("storage",))
def ref_transpose(ctx, x):
    perm = ctx.attrs["perm"]
    return np.transpose(x, perm if perm is not None else None).copy()


@register("Squeeze", value_inputs=(1,), versions="13-24 (axes input; opset 1-11 attribute rewritten)", props=("view", "storage"))
def ref_squeeze(ctx, x, axes=None):
    if axes is None:
        return np.squeeze(x)
    return np.squeeze(x, axis=tuple(_axis(int(a), x.ndim) for a in axes))


@register("Unsqueeze", value_inputs=(1,), versions="13-24 (axes input; opset 1-11 attribute rewritten)", props=("view", "storage"))
def ref_unsqueeze(ctx, x, axes):
    axes = np.atleast_1d(axes)
    rank = x.ndim + len(axes)
    shape = list(x.shape)
    for a in sorted(_axis(int(a), rank) for a in axes):
        shape.insert(a, 1)
    return x.reshape(shape)


@register("Shape", attrs={"start": 0, "end": None},
          infer=lambda c: [TensorType("int64", (None,) if c.shape(0) is None else
                                      (len(range(*slice(c.attrs["start"], c.attrs["end"]).indices(len(c.shape(0))))),))],
          versions="1-24")
def ref_shape(ctx, x):
    return np.array(x.shape[slice(ctx.attrs["start"], ctx.attrs["end"])], dtype=np.int64)


@register("Size", infer=lambda c: [TensorType("int64", ())], versions="1-24")
def ref_size(ctx, x):
    return np.array(x.size, dtype=np.int64)


def _constantofshape_infer(ctx) -> list:
    v = ctx.attrs["value"]
    dtype = "float32" if v is None else TensorType.of(np.asarray(v)).dtype
    shape = ctx.const(0)
    return [TensorType(dtype, None if shape is None else tuple(int(s) for s in shape))]


@register("ConstantOfShape", attrs={"value": None}, infer=_constantofshape_infer, value_inputs=(0,), versions="9-24")
def ref_constantofshape(ctx, shape):
    v = ctx.attrs["value"]
    v = np.zeros(1, np.float32) if v is None else v
    return np.full([int(s) for s in shape], v.ravel()[0], dtype=v.dtype)


@register("Expand", value_inputs=(1,), versions="8-24", props=("storage",))
def ref_expand(ctx, x, shape):
    shape = [int(s) for s in shape]
    out_shape = np.broadcast_shapes(x.shape, tuple(shape))
    return np.broadcast_to(x, out_shape).copy()


@register("Tile", value_inputs=(1,), versions="6-24", props=("storage",))
def ref_tile(ctx, x, repeats):
    return np.tile(x, [int(r) for r in repeats])


@register("Range", value_inputs=(0, 1, 2), versions="11-24")
def ref_range(ctx, start, limit, delta):
    start, limit, delta = (np.asarray(v).reshape(()) for v in (start, limit, delta))
    n = max(int(np.ceil((float(limit) - float(start)) / float(delta))), 0)
    return (start + np.arange(n, dtype=np.float64 if start.dtype.kind == "f" else np.int64) * delta).astype(start.dtype)


# ------------------------------------------------------------------------------------------------ concat/split
def _concat_infer(ctx: InferCtx) -> list:
    shapes = [ctx.shape(i) for i in range(len(ctx.types))]
    if any(s is None for s in shapes):
        return [TensorType(ctx.dtype(0), None)]
    ax = _axis(ctx.attrs["axis"], len(shapes[0]))
    out = list(shapes[0])
    for s in shapes[1:]:
        if len(s) != len(out) or any(a != b for k, (a, b) in enumerate(zip(s, out)) if k != ax and None not in (a, b)):
            raise ShapeError(f"Concat {ctx.node.name!r}: shapes {shapes} differ outside axis {ax}")
    out[ax] = None if any(s[ax] is None for s in shapes) else sum(s[ax] for s in shapes)
    return [TensorType(ctx.dtype(0), tuple(out))]


@register("Concat", attrs={"axis": 0}, infer=_concat_infer, versions="4-24", props=("storage",))
def ref_concat(ctx, *xs):
    return np.concatenate(xs, axis=ctx.attrs["axis"])


@register("Split", attrs={"axis": 0, "num_outputs": None}, value_inputs=(1,),
          versions="13-24 (split input; opset 2-11 attribute rewritten; num_outputs since 18)", props=("storage",), outputs=None)
def ref_split(ctx, x, split=None):
    ax = _axis(ctx.attrs["axis"], x.ndim)
    n = ctx.attrs["num_outputs"] or ctx.n_outputs
    if split is None:
        chunk = -(-x.shape[ax] // n)
        split = [min(chunk, x.shape[ax] - chunk * i) for i in range(n)]
    idx = np.cumsum([int(s) for s in split])[:-1]
    return tuple(np.split(x, idx, axis=ax))


@register("Slice", value_inputs=(1, 2, 3, 4), versions="10-24 (inputs; opset 1-9 attributes rewritten)", props=("storage",))
def ref_slice(ctx, x, starts, ends, axes=None, steps=None):
    return x[rt.slices(x.shape, starts, ends, axes, steps)].copy()


# ------------------------------------------------------------------------------------------------ gather/scatter
@register("Gather", attrs={"axis": 0}, versions="1-24", props=("storage",))
def ref_gather(ctx, x, indices):
    ax = _axis(ctx.attrs["axis"], x.ndim)
    return np.take(x, rt.in_range(indices, x.shape[ax]), axis=ax)


def _element_shapes(ctx: InferCtx, axis: int) -> None:
    """GatherElements / ScatterElements shapes (ONNX spec; onnxruntime checks the same): indices of the data's
    rank, no longer than the data along every axis but ``axis`` (the other coordinates of an element come from
    its position in indices); ScatterElements' updates of the indices' shape. Raises SpecViolation."""
    x, idx = ctx.types[0], ctx.types[1] if len(ctx.types) > 1 else None
    upd = ctx.types[2] if len(ctx.types) > 2 else None
    if not (isinstance(x, TensorType) and isinstance(idx, TensorType) and x.is_static and idx.is_static):
        return
    why = None
    if len(idx.shape) != len(x.shape):
        why = f"indices of rank {len(idx.shape)} for data of rank {len(x.shape)}"
    elif any(i > d for k, (i, d) in enumerate(zip(idx.shape, x.shape)) if k != axis):
        why = f"indices shape {list(idx.shape)} exceeds data shape {list(x.shape)} off axis {axis}"
    elif isinstance(upd, TensorType) and upd.is_static and tuple(upd.shape) != tuple(idx.shape):
        why = f"updates shape {list(upd.shape)} differs from indices shape {list(idx.shape)}"
    if why:
        raise SpecViolation(f"node {ctx.node.name!r} ({ctx.node.op}): {why}")


def _scatternd_shapes(ctx: InferCtx) -> None:
    """ScatterND shapes (ONNX spec): indices of rank >= 1 whose last dim k is at most the data's rank, and
    updates of shape indices.shape[:-1] + data.shape[k:]. Raises SpecViolation."""
    x, idx, upd = (ctx.types[k] if len(ctx.types) > k else None for k in range(3))
    if not all(isinstance(t, TensorType) and t.is_static for t in (x, idx, upd)):
        return
    k = idx.shape[-1] if idx.shape else None
    if k is None or k > len(x.shape):
        raise SpecViolation(f"node {ctx.node.name!r} (ScatterND): indices shape {list(idx.shape)} for data of rank {len(x.shape)}")
    want = tuple(idx.shape[:-1]) + tuple(x.shape[k:])
    if tuple(upd.shape) != want:
        raise SpecViolation(f"node {ctx.node.name!r} (ScatterND): updates shape {list(upd.shape)}, the spec asks {list(want)}")


def _const_indices_in_range(ctx: InferCtx, idx, extent) -> None:
    """Constant indices ``idx`` within [-d, d) of ``extent`` (bornrt.in_range), at compile time; SpecViolation."""
    try:
        rt.in_range(idx, extent)
    except rt.BornrtError as ex:
        raise SpecViolation(f"node {ctx.node.name!r} ({ctx.node.op}): {ex}") from None


def _gatherelements_infer(ctx: InferCtx) -> list:
    """The indices' shape with the data's dtype; shapes checked against the spec, constant indices against the
    data's extent along the axis (SpecViolation)."""
    x, idx = ctx.types[0], ctx.consts[1] if len(ctx.consts) > 1 else None
    it = ctx.types[1] if len(ctx.types) > 1 else None
    if not (isinstance(x, TensorType) and isinstance(it, TensorType)) or x.shape is None:
        return infer_by_evaluation(registry_get("GatherElements"), ctx)
    if it.dtype not in ("int32", "int64"):
        raise SpecViolation(f"node {ctx.node.name!r} (GatherElements): indices of dtype {it.dtype}, the spec asks int32 or int64")
    ax = _axis(ctx.attrs.get("axis", 0), len(x.shape))
    _element_shapes(ctx, ax)
    if idx is not None and x.is_static:
        _const_indices_in_range(ctx, idx, x.shape[ax])
    return [TensorType(x.dtype, it.shape)]


@register("GatherElements", attrs={"axis": 0}, infer=_gatherelements_infer, versions="11-24")
def ref_gatherelements(ctx, x, indices):
    ax = _axis(ctx.attrs["axis"], x.ndim)
    return np.take_along_axis(x, rt.in_range(indices, x.shape[ax]), axis=ax)


@register("GatherND", attrs={"batch_dims": 0}, versions="11-24")
def ref_gathernd(ctx, x, indices):
    b = ctx.attrs["batch_dims"]
    bshape = x.shape[:b]
    nb = int(np.prod(bshape, dtype=np.int64))
    xs = x.reshape((nb,) + x.shape[b:])
    k = indices.shape[-1]
    ids = rt.in_range(indices, x.shape[b:b + k]).reshape((nb,) + indices.shape[b:])
    outs = []
    for i in range(nb):
        ii = ids[i].reshape(-1, k)
        outs.append(np.stack([xs[i][tuple(r)] for r in ii]) if len(ii) else np.zeros((0,) + xs.shape[1 + k:], x.dtype))
    out = np.stack(outs)
    return out.reshape(bshape + indices.shape[b:-1] + x.shape[b + k:])


def _reduce_into(data, idx_tuple, upd, reduction):
    if reduction == "none":
        data[idx_tuple] = upd
    elif reduction == "add":
        np.add.at(data, idx_tuple, upd)
    elif reduction == "mul":
        np.multiply.at(data, idx_tuple, upd)
    elif reduction == "max":
        np.maximum.at(data, idx_tuple, upd)
    elif reduction == "min":
        np.minimum.at(data, idx_tuple, upd)
    else:
        raise ShapeError(f"unknown reduction {reduction!r}")


def _scatter_infer(ctx: InferCtx) -> list:
    """Type of the data; shapes checked against the spec, and constant indices against the data's shape, here
    at compile time."""
    x, idx = ctx.types[0], ctx.consts[1] if len(ctx.consts) > 1 else None
    if isinstance(x, TensorType) and x.shape is not None:
        if ctx.node.op == "ScatterND":
            _scatternd_shapes(ctx)
        else:
            _element_shapes(ctx, _axis(ctx.attrs.get("axis", 0), len(x.shape)) if x.shape else 0)
    if idx is not None and isinstance(x, TensorType) and x.is_static and x.shape:
        if ctx.node.op == "ScatterND":
            _const_indices_in_range(ctx, idx, x.shape[:idx.shape[-1]] if idx.ndim and idx.shape[-1] <= len(x.shape) else x.shape)
        else:
            _const_indices_in_range(ctx, idx, x.shape[_axis(ctx.attrs.get("axis", 0), len(x.shape))])
    return same_as_input(ctx)


@register("ScatterElements", attrs={"axis": 0, "reduction": "none"}, infer=_scatter_infer, versions="11-24")
def ref_scatterelements(ctx, x, indices, updates):
    ax = _axis(ctx.attrs["axis"], x.ndim)
    out = x.copy()
    idx = rt.in_range(indices, x.shape[ax])
    grid = list(np.indices(idx.shape, sparse=True))
    grid[ax] = idx
    _reduce_into(out, tuple(grid), updates, ctx.attrs["reduction"])
    return out


@register("Scatter", attrs={"axis": 0}, infer=_scatter_infer, versions="9-10 (deprecated; as ScatterElements)")
def ref_scatter(ctx, x, indices, updates):
    ctx.attrs.setdefault("reduction", "none")
    return ref_scatterelements(ctx, x, indices, updates)


@register("ScatterND", attrs={"reduction": "none"}, infer=_scatter_infer, versions="11-24")
def ref_scatternd(ctx, x, indices, updates):
    out = x.copy()
    k = indices.shape[-1]
    ids = rt.in_range(indices, x.shape[:k]).reshape(-1, k)
    upd = updates.reshape((ids.shape[0],) + x.shape[k:])
    for i in range(ids.shape[0]):
        _reduce_into(out, tuple(ids[i]), upd[i], ctx.attrs["reduction"])
    return out


# ------------------------------------------------------------------------------------------------ pad
@register("Pad", attrs={"mode": "constant"}, value_inputs=(1, 2, 3),
          versions="11-24 (pads/value/axes as inputs; opset 2 attributes rewritten; wrap since 19)")
def ref_pad(ctx, x, pads, value=None, axes=None):
    rank = x.ndim
    axes = list(range(rank)) if axes is None else [_axis(int(a), rank) for a in axes]
    n = len(axes)
    width = [(0, 0)] * rank
    for k, a in enumerate(axes):
        width[a] = (int(pads[k]), int(pads[k + n]))
    # negative pads crop
    sl = tuple(slice(-b if b < 0 else 0, (x.shape[i] + e) if e < 0 else None) for i, (b, e) in enumerate(width))
    x = x[sl]
    width = [(max(b, 0), max(e, 0)) for b, e in width]
    mode = ctx.attrs["mode"]
    if mode == "constant":
        v = 0 if value is None or value.size == 0 else value.ravel()[0]
        return np.pad(x, width, mode="constant", constant_values=v)
    return np.pad(x, width, mode={"reflect": "reflect", "edge": "edge", "wrap": "wrap"}[mode])


# ------------------------------------------------------------------------------------------------ misc
@register("OneHot", attrs={"axis": -1}, value_inputs=(1,), versions="9-24")
def ref_onehot(ctx, indices, depth, values):
    d = int(np.asarray(depth).ravel()[0])
    ind = indices.astype(np.int64)
    ind = np.where(ind < 0, ind + d, ind)
    rank = indices.ndim + 1
    ax = _axis(ctx.attrs["axis"], rank)
    hot = np.arange(d).reshape((1,) * ax + (d,) + (1,) * (rank - ax - 1))
    y = np.expand_dims(ind, ax) == hot
    return np.where(y, values[1], values[0]).astype(values.dtype)


@register("Trilu", attrs={"upper": 1}, infer=same_as_input, value_inputs=(1,), versions="14-24")
def ref_trilu(ctx, x, k=None):
    k = 0 if k is None else int(k)
    return np.triu(x, k) if ctx.attrs["upper"] else np.tril(x, k)


@register("NonZero", dynamic=True, versions="9-24")
def ref_nonzero(ctx, x):
    return np.array(np.nonzero(x), dtype=np.int64).reshape(x.ndim, -1)


def _compress_infer(ctx: InferCtx) -> list:
    """Compress's output type: static when the condition is a constant (its count of true entries, within the
    axis's extent, is the output's length along the axis; the whole tensor flattened when ``axis`` is absent),
    else the axis's length is unknown (data-dependent)."""
    x, cond = ctx.types[0], ctx.consts[1] if len(ctx.consts) > 1 else None
    if not isinstance(x, TensorType) or x.shape is None:
        return [TensorType(getattr(x, "dtype", "float32"), None)]
    ax = ctx.attrs["axis"]
    if ax is not None:
        ax = _axis(ax, len(x.shape))
        if not 0 <= ax < len(x.shape):
            raise SpecViolation(f"node {ctx.node.name!r} (Compress): axis {ctx.attrs['axis']} out of range for rank {len(x.shape)}")
    extent = x.size if ax is None and x.is_static else (x.shape[ax] if ax is not None else None)
    n = None
    if cond is not None and isinstance(extent, int):
        n = int(np.count_nonzero(np.asarray(cond).ravel()[:extent]))
    return [TensorType(x.dtype, (n,) if ax is None else x.shape[:ax] + (n,) + x.shape[ax + 1:])]


@register("Compress", attrs={"axis": None}, infer=_compress_infer, value_inputs=(1,), dynamic=True, versions="11-24")
def ref_compress(ctx, x, cond):
    return np.compress(cond, x, axis=ctx.attrs["axis"])


@decomposition("Compress", values=True)
def decompose_compress(node, opset, in_types, values):
    """Compress with a constant condition is a Gather of the constant indices of its true entries (along the
    axis, or of the flattened tensor when ``axis`` is absent)."""
    from .body import FunctionBody, attr_of
    x = in_types[0]
    if not isinstance(x, TensorType) or not x.is_static or values[1] is None:
        return None
    ax = attr_of(node, "axis")
    extent = x.size if ax is None else x.shape[_axis(ax, len(x.shape))]
    idx = np.nonzero(np.asarray(values[1]).ravel()[:extent])[0].astype(np.int64)
    b = FunctionBody()
    src = b.op("Reshape", ["x", b.const(np.array([-1], np.int64))]) if ax is None else "x"
    b.op("Gather", [src, b.const(idx)], "y", axis=0 if ax is None else int(ax))
    return b.function("Compress", ["x", "condition"], ["y"])


@register("TopK", attrs={"axis": -1, "largest": 1, "sorted": 1}, value_inputs=(1,),
          versions="11-24 (K input; opset 1 attribute rewritten)", outputs=2)
def ref_topk(ctx, x, k):
    k = int(np.asarray(k).ravel()[0])
    ax = _axis(ctx.attrs["axis"], x.ndim)
    # stable sort; ties keep the lower index first (spec)
    key = -x if ctx.attrs["largest"] else x
    if x.dtype.kind == "u" and ctx.attrs["largest"]:
        key = -(x.astype(np.int64))
    idx = np.argsort(key, axis=ax, kind="stable")
    idx = np.take(idx, np.arange(k), axis=ax)
    return np.take_along_axis(x, idx, axis=ax), idx.astype(np.int64)


@register("Unique", attrs={"axis": None, "sorted": 1}, dynamic=True, versions="11-24", outputs=4)
def ref_unique(ctx, x):
    return rt.unique(ctx.attrs, x)


@register("DepthToSpace", attrs={"blocksize": 1, "mode": "DCR"}, versions="1-24")
def ref_depthtospace(ctx, x):
    n, c, h, w = x.shape
    b = ctx.attrs["blocksize"]
    if ctx.attrs["mode"] == "DCR":
        t = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    else:
        t = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    return t.reshape(n, c // (b * b), h * b, w * b)


@register("SpaceToDepth", attrs={"blocksize": 1, "mode": "DCR"}, versions="1-25 (CRD mode since 25)")
def ref_spacetodepth(ctx, x):
    n, c, h, w = x.shape
    b = ctx.attrs["blocksize"]
    t = x.reshape(n, c, h // b, b, w // b, b)
    t = t.transpose(0, 1, 3, 5, 2, 4) if ctx.attrs["mode"] == "CRD" else t.transpose(0, 3, 5, 1, 2, 4)
    return t.reshape(n, c * b * b, h // b, w // b)


@register("EyeLike", attrs={"dtype": None, "k": 0}, versions="9-24")
def ref_eyelike(ctx, x):
    dt = np_dtype(onnx_elem_to_name(ctx.attrs["dtype"])) if ctx.attrs["dtype"] is not None else x.dtype
    return np.eye(x.shape[0], x.shape[1], k=ctx.attrs["k"], dtype=dt)


@decomposition("EyeLike")
def decompose_eyelike(node, opset, in_types):
    """EyeLike of a static 2-D shape is a constant: ones on diagonal ``k`` (ONNX spec, EyeLike-9)."""
    from onnx import helper, numpy_helper
    t = in_types[0]
    if not isinstance(t, TensorType) or not t.is_static or len(t.shape) != 2:
        return None
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    dt = np_dtype(onnx_elem_to_name(attrs["dtype"])) if attrs.get("dtype") is not None else np_dtype(t.dtype)
    if dt.kind not in "biuf":
        return None
    eye = np.eye(t.shape[0], t.shape[1], k=int(attrs.get("k", 0)), dtype=dt)
    return helper.make_function("", "EyeLike", ["input"], ["output"],
                                [helper.make_node("Constant", [], ["output"], value=numpy_helper.from_array(eye, "eye"))],
                                [helper.make_opsetid("", 18)])


@register("CumSum", attrs={"exclusive": 0, "reverse": 0}, infer=same_as_input, value_inputs=(1,), versions="11-24")
def ref_cumsum(ctx, x, axis):
    return rt.cumulative(ctx.attrs, x, axis, np.add)


@register("CumProd", attrs={"exclusive": 0, "reverse": 0}, infer=same_as_input, value_inputs=(1,), versions="26")
def ref_cumprod(ctx, x, axis):
    return rt.cumulative(ctx.attrs, x, axis, np.multiply)


@register("ReverseSequence", attrs={"batch_axis": 1, "time_axis": 0}, infer=same_as_input, versions="10-24")
def ref_reversesequence(ctx, x, lens):
    y = x.copy()
    b, t = ctx.attrs["batch_axis"], ctx.attrs["time_axis"]
    for i, n in enumerate(lens):
        src = [slice(None)] * x.ndim
        src[b], src[t] = i, slice(0, int(n))
        dst = list(src)
        dst[t] = slice(int(n) - 1, None, -1) if n > 0 else slice(0, 0)
        y[tuple(src)] = x[tuple(dst)]
    return y


@decomposition("ReverseSequence")
def decompose_reversesequence(node, opset, in_types):
    """ReverseSequence with run-time sequence_lens as a GatherElements along the time axis: index
    lens[b] - 1 - t where t < lens[b], t elsewhere (ONNX spec, ReverseSequence-10), broadcast to x's shape."""
    from .body import FunctionBody, attr_of
    x = in_types[0]
    if not isinstance(x, TensorType) or not x.is_static or len(x.shape) < 2:
        return None
    rank = len(x.shape)
    b_ax, t_ax = attr_of(node, "batch_axis", 1) % rank, attr_of(node, "time_axis", 0) % rank
    at = lambda ax, n: [n if k == ax else 1 for k in range(rank)]  # noqa: E731
    b = FunctionBody()
    t = b.const(np.arange(x.shape[t_ax], dtype=np.int64).reshape(at(t_ax, x.shape[t_ax])))
    lens = b.op("Reshape", [b.op("Cast", ["sequence_lens"], to=7), b.const(np.array(at(b_ax, x.shape[b_ax]), np.int64))])
    rev = b.op("Sub", [b.op("Sub", [lens, b.scalar(1, np.int64)]), t])
    idx = b.op("Where", [b.op("Less", [t, lens]), rev, t])
    idx = b.op("Expand", [idx, b.const(np.array(x.shape, np.int64))])
    b.op("GatherElements", ["input", idx], "Y", axis=t_ax)
    return b.function("ReverseSequence", ["input", "sequence_lens"], ["Y"])


@register("CenterCropPad", attrs={"axes": None}, value_inputs=(1,), versions="18-24")
def ref_centercroppad(ctx, x, shape):
    axes = ctx.attrs["axes"] or list(range(x.ndim))
    y = x
    for a, s in zip(axes, shape):
        a, s = _axis(a, x.ndim), int(s)
        d = y.shape[a]
        if d > s:
            st = (d - s) // 2
            y = np.take(y, np.arange(st, st + s), axis=a)
        elif d < s:
            before = (s - d) // 2
            w = [(0, 0)] * y.ndim
            w[a] = (before, s - d - before)
            y = np.pad(y, w)
    return y

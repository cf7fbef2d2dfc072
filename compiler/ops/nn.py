"""Neural-network operators: Conv, ConvTranspose, pooling, Gemm/MatMul, normalizations, Softmax family.

Source: ONNX operator spec (opsets 7 to 24). Convolution is computed as im2col over a strided window view
followed by a matrix product (grouped: one product per group; depthwise: one multiply-add per kernel tap).
Padding rules (``auto_pad`` SAME_UPPER/SAME_LOWER/VALID, ``ceil_mode``) follow the spec text of Conv and
MaxPool/AveragePool.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import ShapeError, SpecViolation
from ..pyrt import rt
from .registry import InferCtx, TensorType, broadcast_shapes, decomposition, register, same_as_input

# window geometry shared with the python target (runtime/python/bornrt.py)
conv_pads, windows, _out_size = rt.conv_pads, rt.windows, rt.out_size
_convtranspose_geometry, _pool_geometry = rt.convtranspose_geometry, rt.pool_geometry

_CONV_ATTRS = {"auto_pad": "NOTSET", "dilations": None, "group": 1, "kernel_shape": None, "pads": None, "strides": None}


def _spatial(attrs, x_shape, kernel):
    nd = len(kernel)
    strides = list(attrs.get("strides") or [1] * nd)
    dil = list(attrs.get("dilations") or [1] * nd)
    pads = conv_pads(x_shape[2:], kernel, strides, dil, attrs.get("auto_pad", "NOTSET"), attrs.get("pads"))
    return strides, dil, pads


def check_kernel(node, attrs: dict, xs, ws) -> None:
    """A convolution's input and weight of one rank (at least 3) and, when given, ``kernel_shape`` equal to the
    weight's spatial dims (ONNX Conv/ConvTranspose/ConvInteger/QLinearConv): the kernels loop over
    kernel_shape and read the weight. Raises SpecViolation."""
    if xs is None or ws is None:
        return
    why = None
    if len(xs) != len(ws) or len(xs) < 3:
        why = f"input of rank {len(xs)} and weight of rank {len(ws)}"
    elif attrs.get("kernel_shape") and list(attrs["kernel_shape"]) != list(ws[2:]):
        why = f"kernel_shape {list(attrs['kernel_shape'])} but the weight's spatial dims are {list(ws[2:])}"
    if why:
        raise SpecViolation(f"node {node.name!r} ({node.op}): {why}")


def _conv_infer(ctx: InferCtx) -> list:
    xs, ws = ctx.shape(0), ctx.shape(1)
    if xs is None or ws is None:
        return [TensorType(ctx.dtype(0), None)]
    check_kernel(ctx.node, ctx.attrs, xs, ws)
    kernel = list(ctx.attrs["kernel_shape"] or ws[2:])
    strides, dil, pads = _spatial(ctx.attrs, xs, kernel)
    g = ctx.attrs["group"]
    if not isinstance(g, int) or g < 1 or (isinstance(ws[0], int) and ws[0] % g):
        raise SpecViolation(f"Conv {ctx.node.name!r}: group {g} does not divide the weight's {ws[0]} output channels")
    if xs[1] is not None and xs[1] != ws[1] * ctx.attrs["group"]:
        raise SpecViolation(f"Conv {ctx.node.name!r}: input has {xs[1]} channels, weight {tuple(ws)} with group "
                         f"{ctx.attrs['group']} expects {ws[1] * ctx.attrs['group']}")
    out = [_out_size(n, k, s, d, pb, pe) for n, k, s, d, (pb, pe) in zip(xs[2:], kernel, strides, dil, pads)]
    return [TensorType(ctx.dtype(0), (xs[0], ws[0], *out))]


def conv_nchw(x, w, b, group, strides, dilations, pads):
    """Grouped N-d convolution. x (N, C, *S), w (M, C/group, *K), b (M,) or None -> (N, M, *O)."""
    nd = x.ndim - 2
    kernel = w.shape[2:]
    xp = np.pad(x, [(0, 0), (0, 0)] + list(pads)) if any(p != (0, 0) for p in pads) else x
    out_sp = [_out_size(xp.shape[2 + i], kernel[i], strides[i], dilations[i], 0, 0) for i in range(nd)]
    v = windows(xp, kernel, strides, dilations, out_sp)          # (N, C, *K, *O)
    n, c = x.shape[:2]
    m = w.shape[0]
    cg, mg = c // group, m // group
    k = int(np.prod(kernel, dtype=np.int64))
    if cg == 1 and mg == 1:                                       # depthwise: multiply-add per tap
        wf = w.reshape(m, k)
        y = np.zeros((n, m) + tuple(out_sp), dtype=np.result_type(x, w))
        for t in range(k):
            tap = np.unravel_index(t, kernel)
            sl = v[(slice(None), slice(None)) + tuple(tap)]
            y += sl * wf[:, t].reshape((1, m) + (1,) * nd)
    else:
        y = np.empty((n, m) + tuple(out_sp), dtype=np.result_type(x, w))
        for g in range(group):
            cols = v[:, g * cg:(g + 1) * cg].reshape(n, cg * k, -1)          # im2col (copy)
            wg = w[g * mg:(g + 1) * mg].reshape(mg, cg * k)
            y[:, g * mg:(g + 1) * mg] = np.matmul(wg, cols).reshape((n, mg) + tuple(out_sp))
    if b is not None:
        y += b.reshape((1, m) + (1,) * nd)
    return y


@register("Conv", attrs=_CONV_ATTRS, infer=_conv_infer, versions="1-24")
def ref_conv(ctx, x, w, b=None):
    kernel = list(ctx.attrs["kernel_shape"] or w.shape[2:])
    strides, dil, pads = _spatial(ctx.attrs, x.shape, kernel)
    return conv_nchw(x, w, b, ctx.attrs["group"], strides, dil, pads).astype(x.dtype, copy=False)


def _convtranspose_infer(ctx: InferCtx) -> list:
    xs, ws = ctx.shape(0), ctx.shape(1)
    if xs is None or ws is None or not all(isinstance(d, int) for d in xs):
        return [TensorType(ctx.dtype(0), None)]
    check_kernel(ctx.node, ctx.attrs, xs, ws)
    *_, out = _convtranspose_geometry(ctx.attrs, xs, ws)
    return [TensorType(ctx.dtype(0), (xs[0], ws[1] * ctx.attrs["group"], *out))]


@register("ConvTranspose", attrs={**_CONV_ATTRS, "output_padding": None, "output_shape": None},
          infer=_convtranspose_infer, versions="1-24")
def ref_convtranspose(ctx, x, w, b=None):
    """Scatter form: each input pixel adds W[:, :, tap] to output position i*stride + tap*dilation."""
    kernel, strides, dil, pads, full, out = _convtranspose_geometry(ctx.attrs, x.shape, w.shape)
    group = ctx.attrs["group"]
    n, c = x.shape[:2]
    cg, mg = c // group, w.shape[1]
    nd = x.ndim - 2
    in_sp = x.shape[2:]
    y = np.zeros((n, mg * group) + tuple(full), dtype=np.result_type(x, w))
    for g in range(group):
        xg = x[:, g * cg:(g + 1) * cg]
        for tap in np.ndindex(*kernel):
            contrib = np.tensordot(xg, w[g * cg:(g + 1) * cg][(slice(None), slice(None)) + tap], axes=([1], [0]))
            contrib = np.moveaxis(contrib, -1, 1)                         # (N, mg, *in_sp)
            sl = tuple(slice(tap[i] * dil[i], tap[i] * dil[i] + strides[i] * (in_sp[i] - 1) + 1, strides[i]) for i in range(nd))
            y[(slice(None), slice(g * mg, (g + 1) * mg)) + sl] += contrib
    if any(b < 0 or e < 0 for b, e in pads):     # negative padding (output_shape larger than full): add zeros
        y = np.pad(y, [(0, 0), (0, 0)] + [(max(-b, 0), max(-e, 0)) for b, e in pads])
        pads = [(max(b, 0), max(e, 0)) for b, e in pads]
    crop = tuple(slice(pads[i][0], pads[i][0] + out[i]) for i in range(nd))
    y = y[(slice(None), slice(None)) + crop]
    if b is not None:
        y = y + b.reshape((1, -1) + (1,) * nd)
    return np.ascontiguousarray(y).astype(x.dtype, copy=False)


def _node_attrs(node) -> dict:
    from onnx import helper
    out = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in out.items()}


def _conv3d_parts(node, in_types):
    """(x, w types, attributes) of a 3-D Conv/ConvTranspose with static shapes, else None."""
    x, w = in_types[0], in_types[1] if len(in_types) > 1 else None
    if not all(isinstance(t, TensorType) and t.is_static for t in (x, w)) or len(x.shape) != 5 or len(w.shape) != 5:
        return None
    return x, w, {"auto_pad": "NOTSET", "group": 1, **_node_attrs(node)}


@decomposition("Conv")
def decompose_conv3d(node, opset, in_types):
    """3-D Conv as a sum over depth taps kd of 2-D Convs: the input rows od*SD + kd*DD (after depth padding)
    folded into the batch ([N*OD, C, H, W]) convolved with the weight's kd slice; the bias added by the first."""
    from .body import FunctionBody
    got = _conv3d_parts(node, in_types)
    if got is None:
        return None
    x, w, a = got
    kernel, strides, dil, pads, outs = rt.conv_geometry(a, x.shape, w.shape)
    n, c, dd, h, ww = x.shape
    od, m = outs[0], w.shape[0]
    if min(outs) <= 0:
        return None
    b = FunctionBody()
    xp = "x"
    if pads[0] != (0, 0):
        pv = np.zeros(10, np.int64)
        pv[2], pv[7] = pads[0]
        xp = b.op("Pad", ["x", b.const(pv)])
    w2 = {"kernel_shape": kernel[1:], "strides": strides[1:], "dilations": dil[1:], "group": int(a["group"]),
          "pads": [pads[1][0], pads[2][0], pads[1][1], pads[2][1]]}
    terms = []
    for kd in range(kernel[0]):
        start = kd * dil[0]
        sl = b.op("Slice", [xp, b.const(np.array([start], np.int64)), b.const(np.array([start + (od - 1) * strides[0] + 1], np.int64)),
                            b.const(np.array([2], np.int64)), b.const(np.array([strides[0]], np.int64))])
        rows = b.op("Reshape", [b.transpose(sl, [0, 2, 1, 3, 4]), b.const(np.array([n * od, c, h, ww], np.int64))])
        wk = b.op("Gather", ["w", b.const(np.array(kd, np.int64))], axis=2)
        bias = ["B"] if kd == 0 and len(node.input) > 2 and node.input[2] else []
        terms.append(b.op("Conv", [rows, wk] + bias, **w2))
    y = terms[0] if len(terms) == 1 else b.op("Sum", terms)
    y = b.op("Reshape", [y, b.const(np.array([n, od, m, outs[1], outs[2]], np.int64))])
    b.op("Transpose", [y], "y", perm=[0, 2, 1, 3, 4])
    return b.function("Conv", ["x", "w", "B"][:len(node.input)], ["y"])


@decomposition("ConvTranspose")
def decompose_convtranspose3d(node, opset, in_types):
    """3-D ConvTranspose as a sum over depth taps kd of 2-D ConvTransposes of the depth slices folded into the
    batch ([N*D, C, H, W], uncropped), each spread along depth to rows id*SD + kd*DD (zeros between, by Pad),
    then cropped by the pads and the bias added (ONNX spec, ConvTranspose output size formula)."""
    from .body import FunctionBody
    got = _conv3d_parts(node, in_types)
    if got is None:
        return None
    x, w, a = got
    kernel, strides, dil, pads, full, outs = rt.convtranspose_geometry(a, x.shape, w.shape)
    if any(p < 0 for pr in pads for p in pr) or min(outs) <= 0:
        return None
    n, c, d, h, ww = x.shape
    g = int(a["group"])
    m = w.shape[1] * g
    opad = list(a.get("output_padding") or [0, 0, 0])
    b = FunctionBody()
    rows = b.op("Reshape", [b.transpose("x", [0, 2, 1, 3, 4]), b.const(np.array([n * d, c, h, ww], np.int64))])
    w2 = {"kernel_shape": kernel[1:], "strides": strides[1:], "dilations": dil[1:], "group": g,
          "output_padding": opad[1:], "pads": [0, 0, 0, 0]}
    span = (d - 1) * strides[0] + 1
    terms = []
    for kd in range(kernel[0]):
        wk = b.op("Gather", ["w", b.const(np.array(kd, np.int64))], axis=2)
        z = b.op("ConvTranspose", [rows, wk], **w2)                       # [N*D, M, FH, FW]
        z = b.transpose(b.op("Reshape", [z, b.const(np.array([n, d, m, full[1], full[2]], np.int64))]), [0, 2, 1, 3, 4])
        if strides[0] > 1:
            z = b.op("Unsqueeze", [z, b.const(np.array([3], np.int64))])
            pv = np.zeros(12, np.int64)
            pv[9] = strides[0] - 1
            z = b.op("Reshape", [b.op("Pad", [z, b.const(pv)]), b.const(np.array([n, m, d * strides[0], full[1], full[2]], np.int64))])
            z = b.op("Slice", [z, b.const(np.array([0], np.int64)), b.const(np.array([span], np.int64)), b.const(np.array([2], np.int64))])
        pv = np.zeros(10, np.int64)
        pv[2], pv[7] = kd * dil[0], full[0] - kd * dil[0] - span
        terms.append(b.op("Pad", [z, b.const(pv)]))
    y = terms[0] if len(terms) == 1 else b.op("Sum", terms)
    starts = [p[0] for p in pads]
    y = b.op("Slice", [y, b.const(np.array(starts, np.int64)), b.const(np.array([s + o for s, o in zip(starts, outs)], np.int64)),
                       b.const(np.array([2, 3, 4], np.int64))])
    if len(node.input) > 2 and node.input[2]:
        b.op("Add", [y, b.op("Reshape", ["B", b.const(np.array([1, m, 1, 1, 1], np.int64))])], "y")
    else:
        b.op("Identity", [y], "y")
    return b.function("ConvTranspose", ["x", "w", "B"][:len(node.input)], ["y"])


def _roialign_infer(ctx: InferCtx) -> list:
    """(num_rois, C, output_height, output_width) in X's dtype; rois must be (num_rois, 4)."""
    xs, rs = ctx.shape(0), ctx.shape(1)
    if xs is not None and len(xs) != 4:
        raise SpecViolation(f"node {ctx.node.name!r} (RoiAlign): X has rank {len(xs)}, the spec asks 4 (N, C, H, W)")
    if rs is not None and (len(rs) != 2 or rs[1] not in (4, None)):
        raise SpecViolation(f"node {ctx.node.name!r} (RoiAlign): rois of shape {list(rs)}, the spec asks (num_rois, 4)")
    c = xs[1] if xs is not None else None
    r = rs[0] if rs is not None else None
    return [TensorType(ctx.dtype(0), (r, c, int(ctx.attrs["output_height"]), int(ctx.attrs["output_width"])))]


@register("RoiAlign", attrs={"coordinate_transformation_mode": "half_pixel", "mode": "avg", "output_height": 1,
                             "output_width": 1, "sampling_ratio": 0, "spatial_scale": 1.0},
          infer=_roialign_infer, versions="10-22 (opset 10's output_half_pixel made explicit at import)")
def ref_roialign(ctx, x, rois, batch_indices):
    return rt.roi_align(ctx.attrs, x, rois, batch_indices)


# ---------------------------------------------------------------------------------------------------- pooling
_POOL_ATTRS = {"auto_pad": "NOTSET", "ceil_mode": 0, "dilations": None, "kernel_shape": None, "pads": None,
               "strides": None}


def _pool_infer(ctx: InferCtx) -> list:
    xs = ctx.shape(0)
    if xs is None:
        return [TensorType(ctx.dtype(0), None)] * len(ctx.node.outputs)
    *_, out = _pool_geometry(ctx.attrs, xs)
    shape = (*xs[:2], *out)
    res = [TensorType(ctx.dtype(0), shape)]
    return res + [TensorType("int64", shape)] * (len(ctx.node.outputs) - 1)


def _pool_windows(x, attrs, fill):
    kernel, strides, dil, pads, ext, out = _pool_geometry(attrs, x.shape)
    width = [(0, 0), (0, 0)] + [(pb, pe + e) for (pb, pe), e in zip(pads, ext)]
    xp = np.pad(x, width, constant_values=fill)
    return windows(xp, kernel, strides, dil, out), kernel, strides, dil, pads, ext, out


@register("MaxPool", attrs={**_POOL_ATTRS, "storage_order": 0}, infer=_pool_infer, versions="8-24")
def ref_maxpool(ctx, x):
    fill = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    v, kernel, strides, dil, pads, ext, out = _pool_windows(x, ctx.attrs, fill)
    nd = len(kernel)
    k = int(np.prod(kernel))
    flat = v.reshape(x.shape[:2] + (k,) + tuple(out))
    y = flat.max(axis=2)
    if ctx.n_outputs < 2:
        return y
    arg = flat.argmax(axis=2)
    taps = np.unravel_index(arg, kernel)
    grids = np.indices(tuple(out))
    coords = [grids[i] * strides[i] - pads[i][0] + taps[i] * dil[i] for i in range(nd)]
    sp = x.shape[2:]
    if ctx.attrs["storage_order"] == 0:
        idx = np.zeros_like(arg)
        for i in range(nd):
            idx = idx * sp[i] + coords[i]
    else:
        idx = np.zeros_like(arg)
        for i in reversed(range(nd)):
            idx = idx * sp[i] + coords[i]
    nc = np.arange(x.shape[0] * x.shape[1]).reshape(x.shape[:2] + (1,) * nd)
    return y, (idx + nc * int(np.prod(sp))).astype(np.int64)


@register("AveragePool", attrs={**_POOL_ATTRS, "count_include_pad": 0}, infer=_pool_infer, versions="7-24")
def ref_averagepool(ctx, x):
    v, kernel, strides, dil, pads, ext, out = _pool_windows(x.astype(np.float64), ctx.attrs, 0.0)
    axes = tuple(range(2, 2 + len(kernel)))
    s = v.sum(axis=axes)
    # divisor: number of window elements inside the input (plus explicit pads when count_include_pad)
    ones = np.ones((1, 1) + x.shape[2:])
    if ctx.attrs["count_include_pad"]:
        ones = np.pad(ones, [(0, 0), (0, 0)] + list(pads), constant_values=1.0)
        width = [(0, 0), (0, 0)] + [(0, e) for e in ext]
    else:
        width = [(0, 0), (0, 0)] + [(pb, pe + e) for (pb, pe), e in zip(pads, ext)]
    cnt = windows(np.pad(ones, width), kernel, strides, dil, out).sum(axis=axes)
    return (s / cnt).astype(x.dtype)


@register("LpPool", attrs={**_POOL_ATTRS, "p": 2}, infer=_pool_infer, versions="11-24")
def ref_lppool(ctx, x):
    p = ctx.attrs["p"]
    v, kernel, *_ = _pool_windows(np.abs(x.astype(np.float64)) ** p, ctx.attrs, 0.0)
    return (v.sum(axis=tuple(range(2, 2 + len(kernel)))) ** (1.0 / p)).astype(x.dtype)


def _global_infer(ctx: InferCtx) -> list:
    xs = ctx.shape(0)
    return [TensorType(ctx.dtype(0), None if xs is None else (*xs[:2],) + (1,) * (len(xs) - 2))]


@register("GlobalAveragePool", infer=_global_infer, versions="1-24")
def ref_globalaveragepool(ctx, x):
    return x.mean(axis=tuple(range(2, x.ndim)), keepdims=True, dtype=np.float64).astype(x.dtype)


@register("GlobalMaxPool", infer=_global_infer, versions="1-24")
def ref_globalmaxpool(ctx, x):
    return x.max(axis=tuple(range(2, x.ndim)), keepdims=True)


@register("GlobalLpPool", attrs={"p": 2}, infer=_global_infer, versions="2-24")
def ref_globallppool(ctx, x):
    p = ctx.attrs["p"]
    return (np.sum(np.abs(x.astype(np.float64)) ** p, axis=tuple(range(2, x.ndim)), keepdims=True) ** (1 / p)).astype(x.dtype)


@register("MaxUnpool", attrs={"kernel_shape": None, "pads": None, "strides": None}, value_inputs=(2,), versions="11-24")
def ref_maxunpool(ctx, x, idx, output_shape=None):
    """``max_unpool`` of the Python runtime, shared with the python target."""
    return rt.max_unpool(ctx.attrs, x, idx, output_shape)


maxunpool_default_shape = rt.maxunpool_default_shape


# ---------------------------------------------------------------------------------------------------- matmul
def _gemm_infer(ctx: InferCtx) -> list:
    a, b = ctx.shape(0), ctx.shape(1)
    if a is None or b is None:
        return [TensorType(ctx.dtype(0), None)]
    m = a[1] if ctx.attrs["transA"] else a[0]
    n = b[0] if ctx.attrs["transB"] else b[1]
    return [TensorType(ctx.dtype(0), (m, n))]


@register("Gemm", attrs={"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0}, infer=_gemm_infer, versions="7-24")
def ref_gemm(ctx, a, b, c=None):
    at = a.T if ctx.attrs["transA"] else a
    bt = b.T if ctx.attrs["transB"] else b
    y = np.matmul(at, bt)
    if ctx.attrs["alpha"] != 1.0:
        y = y * ctx.attrs["alpha"]
    if c is not None:
        y = y + (c * ctx.attrs["beta"] if ctx.attrs["beta"] != 1.0 else c)
    return y.astype(a.dtype, copy=False)


def matmul_shape(a, b, node=None):
    """Output shape of numpy-style MatMul (ONNX MatMul spec: 1-D operands promoted then squeezed)."""
    from .registry import broadcast_shapes
    if a is None or b is None:
        return None
    a2 = (1,) + tuple(a) if len(a) == 1 else tuple(a)
    b2 = tuple(b) + (1,) if len(b) == 1 else tuple(b)
    if None not in (a2[-1], b2[-2]) and a2[-1] != b2[-2]:
        raise ShapeError(f"MatMul{' ' + repr(node.name) if node else ''}: inner dimensions differ, {tuple(a)} @ {tuple(b)}")
    batch = broadcast_shapes(a2[:-2], b2[:-2], node=node)
    out = tuple(batch) + (a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return out


@register("MatMul", infer=lambda c: [TensorType(c.dtype(0), matmul_shape(c.shape(0), c.shape(1), c.node))],
          versions="9-24")
def ref_matmul(ctx, a, b):
    return np.matmul(a, b).astype(a.dtype, copy=False)


@register("Einsum", attrs={"equation": ""}, versions="12-24")
def ref_einsum(ctx, *xs):
    ys = [x.astype(np.float32) if x.dtype.kind == "V" else x for x in xs]
    return np.einsum(ctx.attrs["equation"], *ys, optimize=len(xs) > 2).astype(xs[0].dtype, copy=False)


def _einsum_terms(eq: str, ranks: list[int]) -> tuple[list[str], str] | None:
    """The operand and output subscripts of an Einsum equation with ``...`` spelled out as letters that the
    equation does not use (implicit output: the letters used once, sorted, after the ellipsis); None when the
    equation does not fit the ranks."""
    eq = eq.replace(" ", "")
    lhs, _, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ranks):
        return None
    free = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in eq]
    nell = max([r - len(t.replace("...", "")) for t, r in zip(terms, ranks) if "..." in t] or [0])
    ell = "".join(free[:nell])
    out_terms = []
    for t, r in zip(terms, ranks):
        if "..." in t:
            k = r - len(t.replace("...", ""))
            t = t.replace("...", ell[nell - k:] if k else "")
        if len(t) != r:
            return None
        out_terms.append(t)
    if "->" not in eq:
        letters = "".join(out_terms)
        rhs = ell + "".join(sorted(c for c in set(letters) if letters.count(c) == 1 and c not in ell))
    else:
        rhs = rhs.replace("...", ell)
    return out_terms, rhs


def _einsum_nodes(terms: list[str], out: str, shapes: list[tuple]) -> list | None:
    """ONNX nodes computing Einsum from inputs x0, x1... into ``output``: per operand, its diagonals (a Gather
    of the flattened pair of axes) and the sums of letters used nowhere else; operands are then contracted left
    to right by Transpose, Reshape and MatMul ([batch, kept, contracted] @ [batch, contracted, kept]), and the
    result is transposed into the output order. None for broadcasting between operands (a letter of two sizes)."""
    from .body import FunctionBody
    b = FunctionBody()
    size = {}
    for t, sh in zip(terms, shapes):
        for c, d in zip(t, sh):
            if size.setdefault(c, d) != d:
                return None
    ops = []
    for i, (t, sh) in enumerate(zip(terms, shapes)):
        v, t = f"x{i}", list(t)
        while len(set(t)) < len(t):                      # a repeated letter: its diagonal
            c = next(c for c in t if t.count(c) > 1)
            p, q = [j for j, x in enumerate(t) if x == c][:2]
            rest = [j for j in range(len(t)) if j not in (p, q)]
            v = b.transpose(v, rest + [p, q])
            dims = [size[t[j]] for j in rest]
            n = size[c]
            v = b.op("Reshape", [v, b.const(np.array(dims + [n * n], np.int64))])
            v = b.op("Gather", [v, b.const(np.arange(n, dtype=np.int64) * (n + 1))], axis=len(dims))
            t = [t[j] for j in rest] + [c]
        ops.append((v, t))
    for i in range(len(ops)):
        v, t = ops[i]
        later = set(out) | {c for _, tt in ops[:i] + ops[i + 1:] for c in tt}
        axes = [j for j, c in enumerate(t) if c not in later]
        if axes:
            v = b.op("ReduceSum", [v, b.const(np.array(axes, np.int64))], keepdims=0)
            t = [c for c in t if c in later]
        ops[i] = (v, t)
    v, t = ops[0]
    for i in range(1, len(ops)):
        w, u = ops[i]
        later = set(out) | {c for _, tt in ops[i + 1:] for c in tt}
        batch = [c for c in t if c in u and c in later]
        contr = [c for c in t if c in u and c not in later]
        left = [c for c in t if c not in u]
        right = [c for c in u if c not in t]
        prod = lambda cs: int(np.prod([size[c] for c in cs], dtype=np.int64))   # noqa: E731
        x = b.transpose(v, [t.index(c) for c in batch + left + contr])
        x = b.op("Reshape", [x, b.const(np.array([prod(batch), prod(left), prod(contr)], np.int64))])
        y = b.transpose(w, [u.index(c) for c in batch + contr + right])
        y = b.op("Reshape", [y, b.const(np.array([prod(batch), prod(contr), prod(right)], np.int64))])
        m = b.op("MatMul", [x, y])
        t = batch + left + right
        v = b.op("Reshape", [m, b.const(np.array([size[c] for c in t], np.int64))])
    if sorted(t) != sorted(out):
        return None
    perm = [t.index(c) for c in out]
    b.op("Transpose", [v], "output", perm=perm) if perm != sorted(perm) else b.op("Identity", [v], "output")
    return b.nodes


@decomposition("Einsum")
def decompose_einsum(node, opset, in_types):
    """Einsum (ONNX spec, Einsum-12; numpy.einsum's subscripts) planned at compile time into Transpose, Reshape,
    Gather (diagonals), ReduceSum and MatMul of opset 18, for static shapes."""
    from onnx import helper
    if not in_types or any(not isinstance(t, TensorType) or not t.is_static for t in in_types):
        return None
    eq = next((a.s.decode() for a in node.attribute if a.name == "equation"), "")
    shapes = [tuple(t.shape) for t in in_types]
    parsed = _einsum_terms(eq, [len(s) for s in shapes])
    if parsed is None:
        return None
    nodes = _einsum_nodes(parsed[0], parsed[1], shapes)
    if nodes is None:
        return None
    return helper.make_function("", "Einsum", [f"x{i}" for i in range(len(shapes))], ["output"], nodes,
                                [helper.make_opsetid("", 18)])


@register("Det", versions="11-24")
def ref_det(ctx, x):
    return rt.KERNELS["Det"]([x], [None], {}, None)[0]


# ---------------------------------------------------------------------------------------------------- softmax
def _axis_from(ctx, x):
    default = -1 if ctx.opset >= 13 else 1
    a = ctx.attrs["axis"] if ctx.attrs["axis"] is not None else default
    return a + x.ndim if a < 0 else a


def _legacy_2d(ctx, x, fn):
    """Opset < 13 semantics: coerce to 2-D at ``axis`` and apply along the second dimension."""
    ax = _axis_from(ctx, x)
    if ctx.opset >= 13:
        return fn(x, ax)
    shape = x.shape
    flat = x.reshape(int(np.prod(shape[:ax], dtype=np.int64)), -1)
    return fn(flat, 1).reshape(shape)


def softmax(x: np.ndarray, axis: int) -> np.ndarray:
    """Numerically stable softmax along ``axis`` (max subtracted first)."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@register("Softmax", attrs={"axis": None}, infer=same_as_input, versions="1-24 (coerced 2-D before 13)")
def ref_softmax(ctx, x):
    return _legacy_2d(ctx, x, softmax).astype(x.dtype, copy=False)


@register("LogSoftmax", attrs={"axis": None}, infer=same_as_input, versions="1-24 (coerced 2-D before 13)")
def ref_logsoftmax(ctx, x):
    def f(v, ax):
        s = v - v.max(axis=ax, keepdims=True)
        return s - np.log(np.exp(s).sum(axis=ax, keepdims=True))
    return _legacy_2d(ctx, x, f).astype(x.dtype, copy=False)


@register("Hardmax", attrs={"axis": None}, infer=same_as_input, versions="1-24 (coerced 2-D before 13)")
def ref_hardmax(ctx, x):
    def f(v, ax):
        idx = np.expand_dims(v.argmax(axis=ax), ax)
        y = np.zeros_like(v)
        np.put_along_axis(y, idx, 1, axis=ax)
        return y
    return _legacy_2d(ctx, x, f)


# ---------------------------------------------------------------------------------------------------- norms
@register("BatchNormalization", attrs={"epsilon": 1e-5, "momentum": 0.9, "training_mode": 0, "spatial": 1},
          versions="7-24 (inference and training_mode outputs)")
def ref_batchnormalization(ctx, x, scale, bias, mean, var):
    eps = ctx.attrs["epsilon"]
    shp = (1, -1) + (1,) * (x.ndim - 2)
    if ctx.attrs["training_mode"] and ctx.n_outputs > 1:
        axes = (0,) + tuple(range(2, x.ndim))
        cur_mean, cur_var = x.mean(axis=axes), x.var(axis=axes)
        y = (x - cur_mean.reshape(shp)) / np.sqrt(cur_var.reshape(shp) + eps) * scale.reshape(shp) + bias.reshape(shp)
        mom = ctx.attrs["momentum"]
        return (y.astype(x.dtype), (mean * mom + cur_mean * (1 - mom)).astype(mean.dtype),
                (var * mom + cur_var * (1 - mom)).astype(var.dtype))
    y = (x - mean.reshape(shp)) / np.sqrt(var.reshape(shp) + eps) * scale.reshape(shp) + bias.reshape(shp)
    return y.astype(x.dtype, copy=False)


@decomposition("BatchNormalization")
def decompose_batchnormalization_training(node, opset, in_types):
    """training_mode = 1 with the running statistics outputs (ONNX spec, BatchNormalization-15): normalized by the
    batch's mean and (biased) variance over all axes but 1; running_mean = mean * momentum + batch mean * (1 -
    momentum), running_var likewise; in opset-18 ops. None in inference mode (the backends lower that)."""
    from onnx import helper, numpy_helper
    from ..ir.types import np_dtype
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    t = in_types[0]
    if not attrs.get("training_mode") or len(node.output) < 2 or not isinstance(t, TensorType) or t.shape is None:
        return None
    rank, dt = len(t.shape), np_dtype(t.dtype)
    mom, eps = attrs.get("momentum", 0.9), attrs.get("epsilon", 1e-5)

    def const(name, value):
        return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value), name))
    N = helper.make_node
    nodes = [const("axes", np.array([0] + list(range(2, rank)), np.int64)), const("shp", np.array([1, -1] + [1] * (rank - 2), np.int64)),
             const("flat", np.array([-1], np.int64)), const("eps", np.asarray(eps, dt)), const("mom", np.asarray(mom, dt)),
             const("one_m", np.asarray(1 - mom, dt)),
             N("ReduceMean", ["X", "axes"], ["bm"], keepdims=1), N("Sub", ["X", "bm"], ["d"]), N("Mul", ["d", "d"], ["d2"]),
             N("ReduceMean", ["d2", "axes"], ["bv"], keepdims=1), N("Add", ["bv", "eps"], ["ve"]), N("Sqrt", ["ve"], ["sd"]),
             N("Div", ["d", "sd"], ["nrm"]), N("Reshape", ["scale", "shp"], ["s4"]), N("Reshape", ["B", "shp"], ["b4"]),
             N("Mul", ["nrm", "s4"], ["ns"]), N("Add", ["ns", "b4"], ["Y"]),
             N("Reshape", ["bm", "flat"], ["bm1"]), N("Reshape", ["bv", "flat"], ["bv1"]),
             N("Mul", ["input_mean", "mom"], ["rm_a"]), N("Mul", ["bm1", "one_m"], ["rm_b"]), N("Add", ["rm_a", "rm_b"], ["running_mean"]),
             N("Mul", ["input_var", "mom"], ["rv_a"]), N("Mul", ["bv1", "one_m"], ["rv_b"]), N("Add", ["rv_a", "rv_b"], ["running_var"])]
    outs = ["Y", "running_mean", "running_var"][:len(node.output)]
    return helper.make_function("", "BatchNormalization", ["X", "scale", "B", "input_mean", "input_var"], outs, nodes,
                                [helper.make_opsetid("", 18)])


@register("InstanceNormalization", attrs={"epsilon": 1e-5}, infer=same_as_input, versions="6-24")
def ref_instancenormalization(ctx, x, scale, bias):
    axes = tuple(range(2, x.ndim))
    shp = (1, -1) + (1,) * (x.ndim - 2)
    xd = x.astype(np.float64)
    y = (xd - xd.mean(axis=axes, keepdims=True)) / np.sqrt(xd.var(axis=axes, keepdims=True) + ctx.attrs["epsilon"])
    return (y * scale.reshape(shp) + bias.reshape(shp)).astype(x.dtype)


@decomposition("InstanceNormalization")
def decompose_instancenormalization(node, opset, in_types):
    """y = (x - mean) / sqrt(var + epsilon) * scale + B over the spatial axes of each (n, c) (ONNX spec,
    InstanceNormalization-6; the spec gives no function body), in opset-18 ops."""
    from onnx import helper, numpy_helper
    t = in_types[0]
    if not isinstance(t, TensorType) or t.shape is None or len(t.shape) < 3:
        return None
    rank = len(t.shape)
    eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
    from ..ir.types import np_dtype
    dt = np_dtype(t.dtype)

    def const(name, value):
        return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value), name))
    nodes = [const("axes", np.arange(2, rank, dtype=np.int64)), const("caxes", np.arange(1, rank - 1, dtype=np.int64)),
             const("eps", np.asarray(eps, dtype=dt)),
             helper.make_node("ReduceMean", ["X", "axes"], ["mean"]),
             helper.make_node("Sub", ["X", "mean"], ["d"]),
             helper.make_node("Mul", ["d", "d"], ["d2"]),
             helper.make_node("ReduceMean", ["d2", "axes"], ["var"]),
             helper.make_node("Add", ["var", "eps"], ["ve"]),
             helper.make_node("Sqrt", ["ve"], ["std"]),
             helper.make_node("Div", ["d", "std"], ["norm"]),
             helper.make_node("Unsqueeze", ["scale", "caxes"], ["s"]),
             helper.make_node("Unsqueeze", ["B", "caxes"], ["b"]),
             helper.make_node("Mul", ["norm", "s"], ["ns"]),
             helper.make_node("Add", ["ns", "b"], ["Y"])]
    return helper.make_function("", "InstanceNormalization", ["X", "scale", "B"], ["Y"], nodes,
                                [helper.make_opsetid("", 18)])


def _check_norm_params(ctx, x, ax: int, *params) -> None:
    """LayerNormalization / RMSNormalization: scale and bias broadcast (one way) to the normalized shape
    x.shape[axis:] (ONNX spec). Raises SpecViolation."""
    norm = tuple(x.shape[ax:])
    for k, p in enumerate(params):
        if p is None:
            continue
        try:
            fits = broadcast_shapes(norm, p.shape) == norm
        except SpecViolation:
            fits = False
        if not fits:
            raise SpecViolation(f"node {ctx.node.name!r} ({ctx.node.op}): input {k + 1} of shape {list(p.shape)} does not "
                                f"broadcast to the normalized shape {list(norm)}")


@register("LayerNormalization", attrs={"axis": -1, "epsilon": 1e-5, "stash_type": 1}, versions="17-24")
def ref_layernormalization(ctx, x, scale, bias=None):
    ax = ctx.attrs["axis"] % x.ndim
    _check_norm_params(ctx, x, ax, scale, bias)
    axes = tuple(range(ax, x.ndim))
    xd = x.astype(np.float64) if ctx.attrs["stash_type"] == 1 else x
    mean = xd.mean(axis=axes, keepdims=True)
    inv = 1.0 / np.sqrt(((xd - mean) ** 2).mean(axis=axes, keepdims=True) + ctx.attrs["epsilon"])
    y = (xd - mean) * inv * scale
    if bias is not None:
        y = y + bias
    sd = np.float32 if ctx.attrs["stash_type"] == 1 else x.dtype
    return y.astype(x.dtype), mean.astype(sd), inv.astype(sd)


@register("RMSNormalization", attrs={"axis": -1, "epsilon": 1e-5, "stash_type": 1}, infer=same_as_input, versions="23-24")
def ref_rmsnormalization(ctx, x, scale):
    ax = ctx.attrs["axis"] % x.ndim
    _check_norm_params(ctx, x, ax, scale)
    xd = x.astype(np.float64)
    rms = np.sqrt((xd ** 2).mean(axis=tuple(range(ax, x.ndim)), keepdims=True) + ctx.attrs["epsilon"])
    return (xd / rms * scale).astype(x.dtype)


@register("GroupNormalization", attrs={"epsilon": 1e-5, "num_groups": 1, "stash_type": 1}, infer=same_as_input,
          versions="18-24 (per-group scale of 18 and per-channel scale of 21)")
def ref_groupnormalization(ctx, x, scale, bias):
    g = ctx.attrs["num_groups"]
    n, c = x.shape[:2]
    xg = x.astype(np.float64).reshape(n, g, -1)
    y = (xg - xg.mean(axis=2, keepdims=True)) / np.sqrt(xg.var(axis=2, keepdims=True) + ctx.attrs["epsilon"])
    shp = (1, -1) + (1,) * (x.ndim - 2)
    if scale.size == g and g != c:
        y = y.reshape((n, g, -1)) * scale.reshape(1, g, 1) + bias.reshape(1, g, 1)
        return y.reshape(x.shape).astype(x.dtype)
    return (y.reshape(x.shape) * scale.reshape(shp) + bias.reshape(shp)).astype(x.dtype)


@register("LRN", attrs={"alpha": 1e-4, "beta": 0.75, "bias": 1.0, "size": 1}, infer=same_as_input, versions="1-24")
def ref_lrn(ctx, x):
    size = ctx.attrs["size"]
    sq = x.astype(np.float64) ** 2
    c = x.shape[1]
    lo, hi = (size - 1) // 2, -(-(size - 1) // 2)
    pad = np.pad(sq, [(0, 0), (lo, hi)] + [(0, 0)] * (x.ndim - 2))
    s = sum(pad[:, i:i + c] for i in range(size))
    a = ctx.attrs
    return (x / (a["bias"] + a["alpha"] / size * s) ** a["beta"]).astype(x.dtype)


@register("MeanVarianceNormalization", attrs={"axes": [0, 2, 3]}, infer=same_as_input, versions="9-24")
def ref_meanvariancenormalization(ctx, x):
    axes = tuple(ctx.attrs["axes"])
    m = x.mean(axis=axes, keepdims=True)
    return ((x - m) / (np.sqrt(((x - m) ** 2).mean(axis=axes, keepdims=True)) + 1e-9)).astype(x.dtype)


@register("LpNormalization", attrs={"axis": -1, "p": 2}, infer=same_as_input, versions="1-24")
def ref_lpnormalization(ctx, x):
    norm = np.sum(np.abs(x) ** ctx.attrs["p"], axis=ctx.attrs["axis"], keepdims=True) ** (1 / ctx.attrs["p"])
    with np.errstate(all="ignore"):
        return np.where(norm == 0, 0, x / norm).astype(x.dtype)


@decomposition("LpNormalization")
def decompose_lpnormalization(node, opset, in_types):
    """y = x / ||x||_p along ``axis``, 0 where the norm is 0 (ONNX spec, LpNormalization-1; no function body),
    for p = 1 or 2 as ReduceL1/ReduceL2 (keepdims), Div and Where, in opset-18 ops."""
    from onnx import helper, numpy_helper
    from ..ir.types import np_dtype
    t = in_types[0]
    p = next((a.i for a in node.attribute if a.name == "p"), 2)
    axis = next((a.i for a in node.attribute if a.name == "axis"), -1)
    if not isinstance(t, TensorType) or t.shape is None or p not in (1, 2):
        return None

    def const(name, value):
        return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value), name))
    nodes = [const("axes", np.array([axis], np.int64)), const("zero", np.zeros((), np_dtype(t.dtype))),
             helper.make_node("ReduceL1" if p == 1 else "ReduceL2", ["input", "axes"], ["norm"], keepdims=1),
             helper.make_node("Div", ["input", "norm"], ["q"]),
             helper.make_node("Equal", ["norm", "zero"], ["is0"]),
             helper.make_node("Where", ["is0", "zero", "q"], ["output"])]
    return helper.make_function("", "LpNormalization", ["input"], ["output"], nodes, [helper.make_opsetid("", 18)])


def _bilinear_zero(img: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """img [C, H, W] sampled at float positions y, x (any shape): bilinear, neighbours outside the image are 0;
    result [C, *y.shape] in float64."""
    c, h, w = img.shape
    y0, x0 = np.floor(y).astype(np.int64), np.floor(x).astype(np.int64)
    out = np.zeros((c,) + y.shape)
    for dy in (0, 1):
        for dx in (0, 1):
            yy, xx = y0 + dy, x0 + dx
            wgt = (1 - np.abs(y - yy)) * (1 - np.abs(x - xx))
            ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            vals = img[:, np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)]
            out += np.where(ok, wgt, 0.0) * vals
    return out


@register("DeformConv", attrs={"dilations": None, "group": 1, "kernel_shape": None, "offset_group": 1, "pads": None,
                               "strides": None}, versions="19-24")
def ref_deformconv(ctx, x, w, offset, b=None, mask=None):
    """2-D deformable convolution (Dai et al. 2017, https://arxiv.org/abs/1703.06211; with a modulation mask, Zhu et
    al. 2018, https://arxiv.org/abs/1811.11168): tap k of output (i, j) reads x bilinearly at (i * sh - pt + kh * dh
    + offset_y, j * sw - pl + kw * dw + offset_x), zero outside; offsets per offset group as (y, x) pairs per tap."""
    a = ctx.attrs
    if x.ndim != 4:
        raise ValueError("DeformConv on other than 2-D data")
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    sh, sw = a["strides"] or [1, 1]
    dh, dw = a["dilations"] or [1, 1]
    pt, pl = (a["pads"] or [0, 0, 0, 0])[:2]
    oh, ow = offset.shape[2:]
    og, g = a["offset_group"], a["group"]
    taps = kh * kw
    off = offset.astype(np.float64).reshape(n, og, taps, 2, oh, ow)
    msk = np.ones((n, og, taps, oh, ow)) if mask is None else mask.astype(np.float64).reshape(n, og, taps, oh, ow)
    base_y = (np.arange(oh) * sh - pt)[:, None]
    base_x = (np.arange(ow) * sw - pl)[None, :]
    cols = np.zeros((n, c, taps, oh, ow))
    per = c // og
    for b_ in range(n):
        for q in range(og):
            img = x[b_, q * per:(q + 1) * per].astype(np.float64)
            for t in range(taps):
                ti, tj = divmod(t, kw)
                yy = base_y + ti * dh + off[b_, q, t, 0]
                xx = base_x + tj * dw + off[b_, q, t, 1]
                cols[b_, q * per:(q + 1) * per, t] = _bilinear_zero(img, yy, xx) * msk[b_, q, t]
    y = np.zeros((n, m, oh, ow))
    mg = m // g
    for gi in range(g):
        wg = w[gi * mg:(gi + 1) * mg].astype(np.float64).reshape(mg, cg * taps)
        cg_cols = cols[:, gi * cg:(gi + 1) * cg].reshape(n, cg * taps, oh * ow)
        y[:, gi * mg:(gi + 1) * mg] = (wg @ cg_cols).reshape(n, mg, oh, ow)
    if b is not None:
        y = y + b.reshape(1, -1, 1, 1)
    return y.astype(x.dtype)


@decomposition("DeformConv")
def decompose_deformconv(node, opset, in_types):
    """Each tap of each offset group as a GridSample (bilinear, zeros outside, align_corners: the pixel
    coordinates of :func:`ref_deformconv` normalized by 2 / (size - 1)), times its mask, stacked into im2col
    columns [N, C * taps, oH * oW], then one (grouped) MatMul with the weights and the bias."""
    from .body import FunctionBody, attr_of
    if len(in_types) < 3 or not all(t is not None and t.is_static for t in in_types[:3]) or len(in_types[0].shape) != 4:
        return None
    n, c, h, wd = in_types[0].shape
    m, cg, kh, kw = in_types[1].shape
    oh, ow = in_types[2].shape[2:]
    if h < 2 or wd < 2 or in_types[0].dtype != "float32":
        return None
    sh, sw = attr_of(node, "strides", None) or [1, 1]
    dh, dw = attr_of(node, "dilations", None) or [1, 1]
    pt, pl = (attr_of(node, "pads", None) or [0, 0, 0, 0])[:2]
    og, g = attr_of(node, "offset_group", 1), attr_of(node, "group", 1)
    taps, per = kh * kw, c // og
    has_b = len(node.input) > 3 and bool(node.input[3])
    has_mask = len(node.input) > 4 and bool(node.input[4])
    b = FunctionBody()
    i64 = lambda v: b.const(np.array(v, np.int64))  # noqa: E731

    def channel(src, k):                   # [N, oH, oW, 1]: channel k of offset or mask
        return b.op("Unsqueeze", [b.op("Squeeze", [b.op("Slice", [src, i64([k]), i64([k + 1]), i64([1])]), i64([1])]), i64([-1])])
    groups = []
    for q in range(og):
        img = b.op("Slice", ["x", i64([q * per]), i64([(q + 1) * per]), i64([1])]) if og > 1 else "x"
        samples = []
        for t in range(taps):
            ti, tj = divmod(t, kw)
            by = ((np.arange(oh) * sh - pt + ti * dh)[:, None] + np.zeros((1, ow))).astype(np.float32)[None, :, :, None]
            bx = ((np.arange(ow) * sw - pl + tj * dw)[None, :] + np.zeros((oh, 1))).astype(np.float32)[None, :, :, None]
            yy = b.op("Add", [b.const(by), channel("offset", 2 * (q * taps + t))])
            xx = b.op("Add", [b.const(bx), channel("offset", 2 * (q * taps + t) + 1)])
            yn = b.op("Sub", [b.op("Mul", [yy, b.scalar(2 / (h - 1), np.float32)]), b.scalar(1, np.float32)])
            xn = b.op("Sub", [b.op("Mul", [xx, b.scalar(2 / (wd - 1), np.float32)]), b.scalar(1, np.float32)])
            smp = b.op("GridSample", [img, b.op("Concat", [xn, yn], axis=-1)], align_corners=1, mode="linear",
                       padding_mode="zeros")                              # [N, C/og, oH, oW]
            if has_mask:
                smp = b.op("Mul", [smp, b.op("Slice", ["mask", i64([q * taps + t]), i64([q * taps + t + 1]), i64([1])])])
            samples.append(b.op("Unsqueeze", [smp, i64([2])]))
        groups.append(b.op("Concat", samples, axis=2))                   # [N, C/og, taps, oH, oW]
    cols = b.op("Concat", groups, axis=1) if og > 1 else groups[0]
    cols = b.op("Reshape", [cols, i64([n, g, cg * taps, oh * ow])])
    wr = b.op("Reshape", ["w", i64([g, m // g, cg * taps])])
    y = b.op("Reshape", [b.op("MatMul", [wr, cols]), i64([n, m, oh, ow])])
    if has_b:
        y = b.op("Add", [y, b.op("Reshape", ["b", i64([1, m, 1, 1])])])
    b.op("Identity", [y], "y")
    return b.function("DeformConv", ["x", "w", "offset", "b", "mask"][:len(node.input)], ["y"], opset=20)

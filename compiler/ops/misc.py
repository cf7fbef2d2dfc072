"""Operators of newer opsets and special domains: SwiGLU (28), TensorScatter (24), BitCast (26),
CausalConvWithState (27), NonMaxSuppression (10-11), Col2Im (18), GridSample (16-22), AffineGrid (20).

Source: the ONNX spec text of each operator.
"""
from __future__ import annotations

import numpy as np

from ..ir.types import np_dtype, onnx_elem_to_name
from ..pyrt import rt
from .elementwise import sigmoid
from .registry import TensorType, decomposition, register, same_as_input


@register("SwiGLU", attrs={"alpha": 1.0}, infer=same_as_input, versions="28")
def ref_swiglu(ctx, a, b):
    a64 = a.astype(np.float64)
    return (a64 * sigmoid(ctx.attrs["alpha"] * a64) * b).astype(a.dtype)


@register("TensorScatter", attrs={"axis": -2, "mode": "linear"}, infer=same_as_input, versions="24")
def ref_tensorscatter(ctx, past, update, write_indices=None):
    """``tensor_scatter`` of the Python runtime, shared with the python target."""
    return rt.tensor_scatter(ctx.attrs, past, update, write_indices)


@register("BitCast", attrs={"to": 1}, infer=lambda c: [TensorType(onnx_elem_to_name(c.attrs["to"]), c.shape(0))], versions="26", props=("storage",))
def ref_bitcast(ctx, x):
    dt = np_dtype(onnx_elem_to_name(ctx.attrs["to"]))
    if dt.itemsize != x.dtype.itemsize:
        raise ValueError(f"BitCast from {x.dtype} to {dt} changes the bit width")
    return np.ascontiguousarray(x).view(dt).reshape(x.shape)


@register("CausalConvWithState", attrs={"activation": "none"}, versions="27")
def ref_causalconvwithstate(ctx, x, w, b=None, past=None):
    n, c, length = x.shape
    k = w.shape[-1]
    past = np.zeros((n, c, k - 1), dtype=x.dtype) if past is None else past
    full = np.concatenate([past, x], axis=2).astype(np.float64)
    y = np.zeros((n, c, length))
    for t in range(k):
        y += full[:, :, t:t + length] * w[:, 0, t].astype(np.float64)[None, :, None]
    if b is not None:
        y += b.astype(np.float64)[None, :, None]
    if ctx.attrs["activation"] in ("silu", "swish"):
        y = y * sigmoid(y)
    present = full[:, :, full.shape[2] - (k - 1):] if k > 1 else np.zeros((n, c, 0))
    return y.astype(x.dtype), present.astype(x.dtype)


@register("NonMaxSuppression", attrs={"center_point_box": 0}, dynamic=True, versions="10-24")
def ref_nonmaxsuppression(ctx, *args):
    return rt.nonmaxsuppression(ctx.attrs, *args)


@register("Col2Im", attrs={"dilations": None, "pads": None, "strides": None}, value_inputs=(1, 2), versions="18-24")
def ref_col2im(ctx, *args):
    return rt.col2im(ctx.attrs, *args)


@register("GridSample", attrs={"align_corners": 0, "mode": "linear", "padding_mode": "zeros"}, versions="16-22")
def ref_gridsample(ctx, *args):
    return rt.gridsample(ctx.attrs, *args)


@register("AffineGrid", attrs={"align_corners": 0}, value_inputs=(1,), versions="20-24")
def ref_affinegrid(ctx, *args):
    return rt.affinegrid(ctx.attrs, *args)


@decomposition("AffineGrid", values=True)
def decompose_affinegrid(node, opset, in_types, values):
    """AffineGrid with a constant size as one MatMul: the constant base grid [points, nd + 1] of (x, y[, z], 1)
    (ONNX spec, AffineGrid-20; the reference's construction, bornrt.affinegrid) times theta transposed."""
    from onnx import helper
    from .body import FunctionBody
    theta = in_types[0]
    if values[1] is None or theta is None or theta.dtype not in ("float32", "float16"):
        return None
    size = [int(v) for v in np.asarray(values[1]).ravel()]
    nd = len(size) - 2
    align = {a.name: helper.get_attribute_value(a) for a in node.attribute}.get("align_corners", 0)
    eye = np.concatenate([np.eye(nd), np.zeros((nd, 1))], axis=1)[None]       # identity theta: the base points
    base = rt.affinegrid({"align_corners": align}, eye, [1, 1] + size[2:]).reshape(-1, nd)
    base = np.concatenate([base, np.ones((base.shape[0], 1))], axis=1).astype(np.dtype(theta.dtype))
    b = FunctionBody()
    pts = b.op("MatMul", [b.const(base), b.op("Transpose", ["theta"], perm=[0, 2, 1])])     # [N, points, nd]
    b.op("Reshape", [pts, b.const(np.array([size[0]] + size[2:] + [nd], np.int64))], "grid")
    return b.function("AffineGrid", ["theta", "size"], ["grid"], opset=20)

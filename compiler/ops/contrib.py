"""onnxruntime's contrib operators (domain com.microsoft) that real files carry: what its transformers optimizer,
its quantizer and edge LLM exports leave in a model.

Spec: onnxruntime's docs/ContribOperators.md (and, where it is silent, what onnxruntime's CPU kernels compute:
they are the oracle in tests/ops/test_contrib.py). Each entry has a numpy reference kernel (float64 inside) and a
decomposition into standard ONNX ops that the code-generating backends lower (``passes/legalize.py``); both are
checked against onnxruntime on one-node models. SimplifiedLayerNormalization is registered in the ONNX domain,
where onnxruntime registers it.
"""
from __future__ import annotations

import math

import numpy as np
from onnx import helper, numpy_helper

from ..ir.types import TensorType, np_dtype
from .body import FunctionBody, attr_of
from .elementwise import erf
from .nn import conv_nchw, _spatial
from .registry import decomposition, register

MS = "com.microsoft"
_SQRT1_2 = 1 / math.sqrt(2)
_GELU_TANH = math.sqrt(2 / math.pi)


def _gelu(x):
    return 0.5 * x * (1 + erf(x * _SQRT1_2))


_attr = attr_of


class _Body(FunctionBody):
    """A FunctionBody whose function is of com.microsoft and ai.onnx opset 20 by default."""

    def function(self, op: str, inputs: list, outputs: list, opset: int = 20, domain: str = MS):
        return super().function(op, inputs, outputs, opset, domain)


def _attrs_of(node, names) -> dict:
    """The node's attributes among ``names``, as Python values (to pass on to a standard op)."""
    return {a.name: helper.get_attribute_value(a) for a in node.attribute if a.name in names}


def _outputs(node) -> list[str]:
    """Formal output names o0, o1... for the node's outputs (empty where the node leaves one out)."""
    return [f"o{k}" if o else "" for k, o in enumerate(node.output)]


def _inputs(node) -> list[str]:
    return [f"i{k}" for k in range(len(node.input))]


def _typed(in_types, *idx) -> bool:
    return all(k < len(in_types) and isinstance(in_types[k], TensorType) and in_types[k].is_static for k in idx)


# ---------------------------------------------------------------------------------------------------- GELU family
@register("Gelu", domain=MS, versions="com.microsoft 1")
def ref_ms_gelu(ctx, x):
    return _gelu(x.astype(np.float64)).astype(x.dtype)


@register("FastGelu", domain=MS, versions="com.microsoft 1")
def ref_fastgelu(ctx, x, bias=None):
    v = x.astype(np.float64) + (0 if bias is None else bias.astype(np.float64))
    return (0.5 * v * (1 + np.tanh(_GELU_TANH * (v + 0.044715 * v ** 3)))).astype(x.dtype)


@register("BiasGelu", domain=MS, versions="com.microsoft 1")
def ref_biasgelu(ctx, a, b):
    return _gelu(a.astype(np.float64) + b.astype(np.float64)).astype(a.dtype)


@register("QuickGelu", domain=MS, attrs={"alpha": 1.702}, versions="com.microsoft 1")
def ref_quickgelu(ctx, x):
    v = x.astype(np.float64)
    return (v / (1 + np.exp(-ctx.attrs["alpha"] * v))).astype(x.dtype)


@decomposition("Gelu", MS)
def decompose_ms_gelu(node, opset, in_types):
    """x * (1 + erf(x / sqrt 2)) / 2: ONNX Gelu-20."""
    b = _Body()
    b.op("Gelu", ["i0"], "o0")
    return b.function("Gelu", ["i0"], ["o0"])


@decomposition("FastGelu", MS)
def decompose_fastgelu(node, opset, in_types):
    """The tanh approximation of GELU on X (+ bias): ONNX Gelu-20 with approximate = "tanh"."""
    b = _Body()
    x = b.op("Add", ["i0", "i1"]) if len(node.input) > 1 and node.input[1] else "i0"
    b.op("Gelu", [x], "o0", approximate="tanh")
    return b.function("FastGelu", _inputs(node), ["o0"])


@decomposition("BiasGelu", MS)
def decompose_biasgelu(node, opset, in_types):
    b = _Body()
    b.op("Gelu", [b.op("Add", ["i0", "i1"])], "o0")
    return b.function("BiasGelu", ["i0", "i1"], ["o0"])


@decomposition("QuickGelu", MS)
def decompose_quickgelu(node, opset, in_types):
    """x * sigmoid(alpha * x)."""
    if not _typed(in_types, 0):
        return None
    b = _Body()
    alpha = b.const(np.asarray(_attr(node, "alpha", 1.702), np_dtype(in_types[0].dtype)))
    b.op("Mul", ["i0", b.op("Sigmoid", [b.op("Mul", ["i0", alpha])])], "o0")
    return b.function("QuickGelu", ["i0"], ["o0"])


# ---------------------------------------------------------------------------------------------------- normalization
def _layernorm(x, gamma, beta, eps, simplified: bool):
    """Normalization over the last axis in float64: (y, mean, inv_std), keepdims shapes."""
    mean = np.zeros(x.shape[:-1] + (1,)) if simplified else x.mean(axis=-1, keepdims=True)
    d = x - mean
    inv = 1 / np.sqrt((d * d).mean(axis=-1, keepdims=True) + eps)
    y = d * inv * gamma
    return (y if beta is None else y + beta), mean, inv


@register("SkipLayerNormalization", domain=MS, attrs={"epsilon": 1e-12}, outputs=4, versions="com.microsoft 1")
def ref_skiplayernormalization(ctx, x, skip, gamma, beta=None, bias=None):
    s = x.astype(np.float64) + skip.astype(np.float64) + (0 if bias is None else bias.astype(np.float64))
    y, mean, inv = _layernorm(s, gamma.astype(np.float64), None if beta is None else beta.astype(np.float64),
                              ctx.attrs["epsilon"], False)
    return (y.astype(x.dtype), mean.astype(np.float32), inv.astype(np.float32), s.astype(x.dtype))[:ctx.n_outputs]


@register("SkipSimplifiedLayerNormalization", domain=MS, attrs={"epsilon": 1e-12}, outputs=4, versions="com.microsoft 1")
def ref_skipsimplifiedlayernormalization(ctx, x, skip, gamma, bias=None):
    s = x.astype(np.float64) + skip.astype(np.float64) + (0 if bias is None else bias.astype(np.float64))
    y, mean, inv = _layernorm(s, gamma.astype(np.float64), None, ctx.attrs["epsilon"], True)
    return (y.astype(x.dtype), mean.astype(np.float32), inv.astype(np.float32), s.astype(x.dtype))[:ctx.n_outputs]


def _simplified(ctx, x, scale):
    ax = ctx.attrs["axis"] % x.ndim
    xd = x.astype(np.float64)
    inv = 1 / np.sqrt((xd * xd).mean(axis=tuple(range(ax, x.ndim)), keepdims=True) + ctx.attrs["epsilon"])
    return ((xd * inv * scale.astype(np.float64)).astype(x.dtype), inv.astype(np.float32))[:ctx.n_outputs]


register("SimplifiedLayerNormalization", attrs={"axis": -1, "epsilon": 1e-5, "stash_type": 1}, outputs=2,
         versions="onnxruntime contrib, ONNX domain 1")(_simplified)


def _skip_sum(b: _Body, node) -> str:
    """input + skip (+ bias, input 4 of SkipLayerNormalization, 3 of the simplified form)."""
    s = b.op("Add", ["i0", "i1"])
    k = 4 if node.op_type == "SkipLayerNormalization" else 3
    return b.op("Add", [s, f"i{k}"]) if len(node.input) > k and node.input[k] else s


def _rms(b: _Body, x: str, scale: str, eps: float, axes: list[int], dtype, y: str, inv: str | None) -> None:
    """y = x / sqrt(mean(x^2 over axes) + eps) * scale, computed in float32; ``inv`` names 1 / sqrt(...)."""
    xf = b.op("Cast", [x], to=1) if dtype != np.float32 else x
    ms = b.op("ReduceMean", [b.op("Mul", [xf, xf]), b.const(np.array(axes, np.int64))], keepdims=1)
    r = b.op("Reciprocal", [b.op("Sqrt", [b.op("Add", [ms, b.const(np.float32(eps))])])], inv or None)
    n = b.op("Mul", [xf, r])
    if dtype != np.float32:
        n = b.op("Cast", [n], to=helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))
    b.op("Mul", [n, scale], y)


@decomposition("SkipLayerNormalization", MS)
def decompose_skiplayernormalization(node, opset, in_types):
    """LayerNormalization-17 (last axis, float32 statistics) of input + skip (+ bias), times gamma plus beta."""
    b = _Body()
    outs = _outputs(node)
    s = _skip_sum(b, node)
    beta = ["i3"] if len(node.input) > 3 and node.input[3] else []
    ln_outs = [outs[0] or b.fresh()] + [outs[k] if len(outs) > k else "" for k in (1, 2)]
    while ln_outs and not ln_outs[-1]:
        ln_outs.pop()
    b.ops("LayerNormalization", [s, "i2"] + beta, ln_outs, axis=-1, epsilon=_attr(node, "epsilon", 1e-12))
    if len(outs) > 3 and outs[3]:
        b.op("Identity", [s], outs[3])
    return b.function(node.op_type, _inputs(node), outs, opset=18)


def _rms_decomposition(node, in_types, x_of, scale: str, axis: int, outs_at: tuple):
    if not _typed(in_types, 0):
        return None
    t = in_types[0]
    rank = len(t.shape)
    ax = axis % rank
    b = _Body()
    outs = _outputs(node)
    x = x_of(b)
    y_k, inv_k = outs_at
    inv = outs[inv_k] if len(outs) > inv_k and outs[inv_k] else None
    _rms(b, x, scale, _attr(node, "epsilon", 1e-5 if node.op_type == "SimplifiedLayerNormalization" else 1e-12),
         list(range(ax, rank)), np_dtype(t.dtype), outs[y_k], inv)
    if node.op_type == "SkipSimplifiedLayerNormalization" and len(outs) > 1 and outs[1]:
        b.op("ReduceMean", [b.op("Mul", [x, b.const(np.zeros((), np_dtype(t.dtype)))]), b.const(np.array([-1], np.int64))],
             outs[1], keepdims=1)                   # the simplified form's "mean" output is zeros
    if node.op_type == "SkipSimplifiedLayerNormalization" and len(outs) > 3 and outs[3]:
        b.op("Identity", [x], outs[3])
    return b.function(node.op_type, _inputs(node), outs, opset=18, domain=node.domain)


@decomposition("SkipSimplifiedLayerNormalization", MS)
def decompose_skipsimplifiedlayernormalization(node, opset, in_types):
    """RMS normalization (float32 statistics, last axis) of input + skip (+ bias), times gamma."""
    return _rms_decomposition(node, in_types, lambda b: _skip_sum(b, node), "i2", -1, (0, 2))


@decomposition("SimplifiedLayerNormalization")
def decompose_simplifiedlayernormalization(node, opset, in_types):
    """RMS normalization over the axes from ``axis`` on (float32 statistics), times scale."""
    return _rms_decomposition(node, in_types, lambda b: "i0", "i1", _attr(node, "axis", -1), (0, 1))


@register("EmbedLayerNormalization", domain=MS, attrs={"epsilon": 1e-12, "mask_index_type": 1}, outputs=3,
          versions="com.microsoft 1")
def ref_embedlayernormalization(ctx, ids, seg_ids, word, pos, seg, gamma, beta, mask=None, pos_ids=None):
    """word[ids] + position[position_ids or 0..S-1] + segment[segment_ids], layer-normalized; mask_index: the
    number of ones per row of mask (int32, zeros without a mask)."""
    from ..pyrt import rt
    b, s = ids.shape
    pid = np.broadcast_to(np.arange(s), (b, s)) if pos_ids is None else np.broadcast_to(pos_ids, (b, s))
    e = word[rt.in_range(ids, word.shape[0])].astype(np.float64) + pos[rt.in_range(pid, pos.shape[0])].astype(np.float64)
    if seg_ids is not None and seg is not None:
        e = e + seg[rt.in_range(seg_ids, seg.shape[0])].astype(np.float64)
    y, _, _ = _layernorm(e, gamma.astype(np.float64), beta.astype(np.float64), ctx.attrs["epsilon"], False)
    mi = mask.astype(np.int64).sum(axis=1).astype(np.int32) if mask is not None else np.zeros((b,), np.int32)
    return (y.astype(word.dtype), mi, e.astype(word.dtype))[:ctx.n_outputs]


@decomposition("EmbedLayerNormalization", MS)
def decompose_embedlayernormalization(node, opset, in_types):
    if not _typed(in_types, 0) or len(in_types[0].shape) != 2:
        return None
    bsz, s = in_types[0].shape
    b = _Body()
    outs = _outputs(node)
    has = lambda k: len(node.input) > k and bool(node.input[k])   # noqa: E731
    e = b.op("Add", [b.op("Gather", ["i2", "i0"], axis=0),
                     b.op("Gather", ["i3", "i8" if has(8) else b.const(np.arange(s, dtype=np.int64)[None])], axis=0)])
    if has(1) and has(4):
        e = b.op("Add", [e, b.op("Gather", ["i4", "i1"], axis=0)])
    b.op("LayerNormalization", [e, "i5", "i6"], outs[0], axis=-1, epsilon=_attr(node, "epsilon", 1e-12))
    if len(outs) > 1 and outs[1]:
        if has(7):
            b.op("Cast", [b.op("ReduceSum", [b.op("Cast", ["i7"], to=7), b.const(np.array([1], np.int64))], keepdims=0)],
                 outs[1], to=6)
        else:
            b.op("Identity", [b.const(np.zeros((bsz,), np.int32))], outs[1])
    if len(outs) > 2 and outs[2]:
        b.op("Identity", [e], outs[2])
    return b.function("EmbedLayerNormalization", _inputs(node), outs, opset=18)


# ---------------------------------------------------------------------------------------------------- fused ops
def _activation(name: str, x, params: list[float]):
    """onnxruntime's fused activations (FusedConv, FusedGemm) on float64 ``x``."""
    if name == "Relu":
        return np.maximum(x, 0)
    if name == "Tanh":
        return np.tanh(x)
    if name == "Sigmoid":
        return 1 / (1 + np.exp(-x))
    if name == "LeakyRelu":
        return np.where(x >= 0, x, (params[0] if params else 0.01) * x)
    if name == "Clip":
        return np.clip(x, params[0] if params else -np.inf, params[1] if len(params) > 1 else np.inf)
    if name == "HardSigmoid":
        a, b = (params + [0.2, 0.5][len(params):])[:2]
        return np.clip(a * x + b, 0, 1)
    if name in ("", None):
        return x
    raise ValueError(f"unknown fused activation {name!r}")


def _activation_nodes(b: _Body, name: str, x: str, params: list[float], dtype, out: str) -> bool:
    """The activation as ONNX nodes writing ``out``; False for one this cannot spell."""
    if name in ("Relu", "Tanh", "Sigmoid"):
        b.op(name, [x], out)
    elif name == "LeakyRelu":
        b.op("LeakyRelu", [x], out, alpha=float(params[0]) if params else 0.01)
    elif name == "HardSigmoid":
        a, c = (list(params) + [0.2, 0.5][len(params):])[:2]
        b.op("HardSigmoid", [x], out, alpha=float(a), beta=float(c))
    elif name == "Clip":
        lo = b.const(np.asarray(params[0] if params else -np.inf, dtype))
        hi = b.const(np.asarray(params[1] if len(params) > 1 else np.inf, dtype))
        b.op("Clip", [x, lo, hi], out)
    elif not name:
        b.op("Identity", [x], out)
    else:
        return False
    return True


_CONV_ATTRS = {"auto_pad": "NOTSET", "dilations": None, "group": 1, "kernel_shape": None, "pads": None, "strides": None,
               "activation": "", "activation_params": []}


@register("FusedConv", domain=MS, attrs=_CONV_ATTRS, versions="com.microsoft 1")
def ref_ms_fusedconv(ctx, x, w, b=None, z=None):
    """Conv (+ Z) then the activation."""
    kernel = list(ctx.attrs["kernel_shape"] or w.shape[2:])
    strides, dil, pads = _spatial(ctx.attrs, x.shape, kernel)
    y = conv_nchw(x.astype(np.float64), w.astype(np.float64), None if b is None else b.astype(np.float64),
                  ctx.attrs["group"], strides, dil, pads)
    if z is not None:
        y = y + z
    return _activation(ctx.attrs["activation"], y, list(ctx.attrs["activation_params"] or [])).astype(x.dtype)


@decomposition("FusedConv", MS)
def decompose_ms_fusedconv(node, opset, in_types):
    if not _typed(in_types, 0):
        return None
    b = _Body()
    ins = ["i0", "i1"] + (["i2"] if len(node.input) > 2 and node.input[2] else [])
    y = b.op("Conv", ins, **_attrs_of(node, ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")))
    if len(node.input) > 3 and node.input[3]:
        y = b.op("Add", [y, "i3"])
    if not _activation_nodes(b, _attr(node, "activation", ""), y, list(_attr(node, "activation_params", []) or []),
                             np_dtype(in_types[0].dtype), "o0"):
        return None
    return b.function("FusedConv", _inputs(node), ["o0"], opset=18)


@register("FusedGemm", domain=MS, attrs={"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0, "activation": "",
                                         "activation_alpha": 0.01, "activation_beta": 0.0, "activation_gamma": 0.0},
          versions="com.microsoft 1")
def ref_ms_fusedgemm(ctx, a, b, c=None):
    at = a.T if ctx.attrs["transA"] else a
    bt = b.T if ctx.attrs["transB"] else b
    y = ctx.attrs["alpha"] * (at.astype(np.float64) @ bt.astype(np.float64))
    if c is not None:
        y = y + ctx.attrs["beta"] * c
    act = ctx.attrs["activation"]
    params = [ctx.attrs["activation_alpha"], ctx.attrs["activation_beta"]] if act in ("LeakyRelu", "HardSigmoid") else []
    return _activation(act, y, params).astype(a.dtype)


@decomposition("FusedGemm", MS)
def decompose_ms_fusedgemm(node, opset, in_types):
    if not _typed(in_types, 0):
        return None
    b = _Body()
    y = b.op("Gemm", _inputs(node), **_attrs_of(node, ("alpha", "beta", "transA", "transB")))
    act = _attr(node, "activation", "")
    params = [_attr(node, "activation_alpha", 0.01), _attr(node, "activation_beta", 0.0)] if act in ("LeakyRelu", "HardSigmoid") else []
    if act == "HardSigmoid" and _attr(node, "activation_alpha") is None:
        params = []
    if not _activation_nodes(b, act, y, params, np_dtype(in_types[0].dtype), "o0"):
        return None
    return b.function("FusedGemm", _inputs(node), ["o0"], opset=18)


@register("FusedMatMul", domain=MS, attrs={"alpha": 1.0, "transA": 0, "transB": 0, "transBatchA": 0, "transBatchB": 0},
          versions="com.microsoft 1")
def ref_ms_fusedmatmul(ctx, a, b):
    """alpha * op(A) @ op(B), op transposing the last two axes (transBatch* are not supported)."""
    if ctx.attrs["transBatchA"] or ctx.attrs["transBatchB"]:
        raise ValueError("FusedMatMul with transBatchA/transBatchB")
    at = np.swapaxes(a, -1, -2) if ctx.attrs["transA"] and a.ndim > 1 else a
    bt = np.swapaxes(b, -1, -2) if ctx.attrs["transB"] and b.ndim > 1 else b
    return (ctx.attrs["alpha"] * (at.astype(np.float64) @ bt.astype(np.float64))).astype(a.dtype)


@decomposition("FusedMatMul", MS)
def decompose_ms_fusedmatmul(node, opset, in_types):
    if not _typed(in_types, 0, 1) or _attr(node, "transBatchA", 0) or _attr(node, "transBatchB", 0):
        return None
    b = _Body()
    ins = []
    for k, flag in ((0, "transA"), (1, "transB")):
        r = len(in_types[k].shape)
        v = f"i{k}"
        if _attr(node, flag, 0) and r > 1:
            v = b.op("Transpose", [v], perm=list(range(r - 2)) + [r - 1, r - 2])
        ins.append(v)
    alpha = float(_attr(node, "alpha", 1.0))
    if alpha == 1.0:
        b.op("MatMul", ins, "o0")
    else:
        b.op("Mul", [b.op("MatMul", ins), b.const(np.asarray(alpha, np_dtype(in_types[0].dtype)))], "o0")
    return b.function("FusedMatMul", ["i0", "i1"], ["o0"], opset=18)


__all__ = ["MS"]

"""onnxruntime's attention contrib operators (domain com.microsoft): Attention (BERT's fused QKV projection, as
onnxruntime's transformers optimizer writes it), MultiHeadAttention and RotaryEmbedding.

Spec: onnxruntime's docs/ContribOperators.md, masks as its CPU kernels apply them (attention_helper.h
PrepareMask): every masked position, key padding, causal or mask_index, gets ``mask_filter_value`` (-10000 by
default) added to its score, not -inf; attention_bias is added as is. Decompositions build that additive mask from
ONNX ops and hand it to ONNX Attention-23 (float attn_mask), which every backend lowers. Not covered: past key and
value (KV cache) inputs, packed QKV layouts, mask_index of 2 * batch or 4-D, GroupQueryAttention.
"""
from __future__ import annotations

import math

import numpy as np

from .contrib import MS, _Body, _attr, _inputs, _typed
from .registry import decomposition, register


def _softmax(s):
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _mha(q, k, v, heads: int, scale, bias):
    """softmax(q k^T * scale + bias) v over ``heads`` heads of [B, S, D] q and [B, L, D] k, v, in float64."""
    b, s, d = q.shape
    hd, hv = d // heads, v.shape[2] // heads
    qh = q.reshape(b, s, heads, hd).transpose(0, 2, 1, 3)
    kh = k.reshape(b, -1, heads, hd).transpose(0, 2, 1, 3)
    vh = v.reshape(b, -1, heads, hv).transpose(0, 2, 1, 3)
    sc = scale if scale else 1 / math.sqrt(hd)
    p = _softmax(qh @ kh.transpose(0, 1, 3, 2) * sc + bias)
    return (p @ vh).transpose(0, 2, 1, 3).reshape(b, s, heads * hv)


def _mask_bias(mask, b: int, s: int, t: int, filt: float, causal: bool) -> np.ndarray:
    """The additive [B, 1, S, T] mask of onnxruntime's PrepareMask: a 1-D mask_index holds each row's valid key
    count, a 2-D one 1 (attend) or 0 per key, a 3-D one the same per query; causal masks keys past the query's
    position (offset T - S)."""
    bias = np.zeros((b, 1, s, t))
    if mask is not None:
        if mask.ndim == 1:
            valid = np.arange(t)[None, :] < mask.astype(np.int64)[:, None]
            bias = bias + np.where(valid, 0.0, filt)[:, None, None, :]
        elif mask.ndim == 2:
            bias = bias + ((1 - mask.astype(np.float64)) * filt)[:, None, None, :]
        else:
            bias = bias + ((1 - mask.astype(np.float64)) * filt)[:, None]
    if causal:
        bias = bias + np.where(np.arange(t)[None, :] > np.arange(s)[:, None] + (t - s), filt, 0.0)
    return bias


@register("Attention", domain=MS, attrs={"num_heads": 0, "unidirectional": 0, "qkv_hidden_sizes": None,
                                         "mask_filter_value": -10000.0, "scale": 0.0, "do_rotary": 0,
                                         "past_present_share_buffer": 0}, versions="com.microsoft 1")
def ref_ms_attention(ctx, x, w, bias=None, mask=None, past=None, attn_bias=None, past_len=None):
    a = ctx.attrs
    if past is not None or a["do_rotary"] or (mask is not None and (mask.ndim == 4 or (mask.ndim == 1 and mask.shape[0] != x.shape[0]))):
        raise ValueError("Attention with past, do_rotary or a 4-D / 2*batch mask_index")
    hq, hk, hv = a["qkv_hidden_sizes"] or [w.shape[1] // 3] * 3
    qkv = x.astype(np.float64) @ w.astype(np.float64) + (0 if bias is None else bias.astype(np.float64))
    q, k, v = qkv[..., :hq], qkv[..., hq:hq + hk], qkv[..., hq + hk:hq + hk + hv]
    b, s = x.shape[:2]
    mb = _mask_bias(mask, b, s, s, a["mask_filter_value"], bool(a["unidirectional"]))
    if attn_bias is not None:
        mb = mb + attn_bias
    return _mha(q, k, v, a["num_heads"], a["scale"], mb).astype(x.dtype)


@register("MultiHeadAttention", domain=MS, attrs={"num_heads": 0, "mask_filter_value": -10000.0, "scale": 0.0,
                                                  "unidirectional": 0}, outputs=3, versions="com.microsoft 1")
def ref_ms_multiheadattention(ctx, q, k, v, bias=None, kpm=None, attn_bias=None, past_k=None, past_v=None, *rest):
    a = ctx.attrs
    if k is None or k.ndim != 3 or past_k is not None or ctx.n_outputs > 1:
        raise ValueError("MultiHeadAttention with packed or 4-D key/value, past or present")
    d, dv = q.shape[2], v.shape[2]
    qd, kd, vd = q.astype(np.float64), k.astype(np.float64), v.astype(np.float64)
    if bias is not None:
        qd, kd, vd = qd + bias[:d], kd + bias[d:2 * d], vd + bias[2 * d:2 * d + dv]
    b, s, t = q.shape[0], q.shape[1], k.shape[1]
    mb = _mask_bias(kpm, b, s, t, a["mask_filter_value"], bool(a["unidirectional"]))
    if attn_bias is not None:
        mb = mb + attn_bias
    return _mha(qd, kd, vd, a["num_heads"], a["scale"], mb).astype(q.dtype)


def _mask_nodes(b: _Body, mask: str | None, mask_rank: int, bsz: int, s: int, t: int, filt: float, causal: bool,
                attn_bias: str | None) -> str | None:
    """ONNX nodes computing the additive mask of :func:`_mask_bias` (+ attention_bias): [B or 1, 1 or N, S, T]."""
    parts = []
    if mask is not None:
        if mask_rank == 1:
            valid = b.op("Less", [b.const(np.arange(t, dtype=np.int64)[None, :]),
                                  b.op("Unsqueeze", [b.op("Cast", [mask], to=7), b.const(np.array([1], np.int64))])])
            m = b.op("Where", [valid, b.const(np.float32(0)), b.const(np.float32(filt))])
        else:
            m = b.op("Mul", [b.op("Sub", [b.const(np.float32(1)), b.op("Cast", [mask], to=1)]), b.const(np.float32(filt))])
        parts.append(b.op("Reshape", [m, b.const(np.array([bsz, 1, 1 if mask_rank < 3 else s, t], np.int64))]))
    if causal:
        parts.append(b.const(np.where(np.arange(t)[None, :] > np.arange(s)[:, None] + (t - s), filt, 0.0)
                             .astype(np.float32)[None, None]))
    if attn_bias is not None:
        parts.append(attn_bias)
    if not parts:
        return None
    out = parts[0]
    for p in parts[1:]:
        out = b.op("Add", [out, p])
    return out


def _attention_node(b: _Body, q: str, k: str, v: str, mask: str | None, heads: int, scale: float, out: str) -> None:
    attrs = {"q_num_heads": heads, "kv_num_heads": heads}
    if scale:
        attrs["scale"] = float(scale)
    b.op("Attention", [q, k, v] + ([mask] if mask else []), out, **attrs)


@decomposition("Attention", MS)
def decompose_ms_attention(node, opset, in_types):
    """MatMul with the packed QKV weight (+ bias), Split into Q, K, V, the additive mask, ONNX Attention-23."""
    has = lambda i: len(node.input) > i and bool(node.input[i])   # noqa: E731
    if not _typed(in_types, 0, 1) or has(4) or _attr(node, "do_rotary", 0):
        return None
    if has(3) and (len(in_types[3].shape) == 4 or (len(in_types[3].shape) == 1 and in_types[3].shape[0] != in_types[0].shape[0])):
        return None
    bsz, s = in_types[0].shape[:2]
    sizes = list(_attr(node, "qkv_hidden_sizes", None) or [in_types[1].shape[1] // 3] * 3)
    b = _Body()
    qkv = b.op("MatMul", ["i0", "i1"])
    if has(2):
        qkv = b.op("Add", [qkv, "i2"])
    q, k, v = b.ops("Split", [qkv, b.const(np.array(sizes, np.int64))], [b.fresh(), b.fresh(), b.fresh()], axis=-1)
    mask = _mask_nodes(b, "i3" if has(3) else None, len(in_types[3].shape) if has(3) else 0, bsz, s, s,
                       float(_attr(node, "mask_filter_value", -10000.0)), bool(_attr(node, "unidirectional", 0)),
                       "i5" if has(5) else None)
    _attention_node(b, q, k, v, mask, int(_attr(node, "num_heads")), _attr(node, "scale", 0.0), "o0")
    return b.function("Attention", _inputs(node), ["o0"], opset=23)


@decomposition("MultiHeadAttention", MS)
def decompose_ms_multiheadattention(node, opset, in_types):
    """Q, K, V (+ their biases), the additive mask, ONNX Attention-23."""
    has = lambda i: len(node.input) > i and bool(node.input[i])   # noqa: E731
    if not _typed(in_types, 0, 1, 2) or len(in_types[1].shape) != 3 or has(6) or len(node.output) > 1:
        return None
    bsz, s, d = in_types[0].shape
    t, dv = in_types[1].shape[1], in_types[2].shape[2]
    b = _Body()
    q, k, v = "i0", "i1", "i2"
    if has(3):
        bq, bk, bv = b.ops("Split", ["i3", b.const(np.array([d, d, dv], np.int64))], [b.fresh(), b.fresh(), b.fresh()], axis=0)
        q, k, v = b.op("Add", [q, bq]), b.op("Add", [k, bk]), b.op("Add", [v, bv])
    mask = _mask_nodes(b, "i4" if has(4) else None, len(in_types[4].shape) if has(4) else 0, bsz, s, t,
                       float(_attr(node, "mask_filter_value", -10000.0)), bool(_attr(node, "unidirectional", 0)),
                       "i5" if has(5) else None)
    _attention_node(b, q, k, v, mask, int(_attr(node, "num_heads")), _attr(node, "scale", 0.0), "o0")
    return b.function("MultiHeadAttention", _inputs(node), ["o0"], opset=23)


@register("RotaryEmbedding", domain=MS, attrs={"interleaved": 0, "num_heads": 0, "rotary_embedding_dim": 0, "scale": 1.0,
                                               "is_packed_batching": 0}, versions="com.microsoft 1")
def ref_ms_rotaryembedding(ctx, x, pos, cos, sin):
    """RoPE (Su et al. 2021) of a [B, S, hidden] or [B, N, S, H] input at position_ids [B, S] (or a start offset
    [1]); cos/sin caches [max position, rotary dim / 2]."""
    a = ctx.attrs
    b, s = (x.shape[0], x.shape[1]) if x.ndim == 3 else (x.shape[0], x.shape[2])
    if pos.size == 1 and (b, s) != (1, 1):
        pos = np.broadcast_to(int(pos.ravel()[0]) + np.arange(s), (b, s))
    rot = a["rotary_embedding_dim"] or 2 * cos.shape[1]
    heads = a["num_heads"] or (x.shape[1] if x.ndim == 4 else x.shape[2] // rot)
    t = x.reshape(b, s, heads, -1).astype(np.float64) if x.ndim == 3 else x.transpose(0, 2, 1, 3).astype(np.float64)
    c, sn = cos[pos][:, :, None, :rot // 2].astype(np.float64), sin[pos][:, :, None, :rot // 2].astype(np.float64)
    r = t[..., :rot]
    x1, x2 = (r[..., 0::2], r[..., 1::2]) if a["interleaved"] else (r[..., :rot // 2], r[..., rot // 2:])
    o1, o2 = x1 * c - x2 * sn, x1 * sn + x2 * c
    out = np.stack([o1, o2], axis=-1).reshape(r.shape) if a["interleaved"] else np.concatenate([o1, o2], axis=-1)
    y = np.concatenate([out, t[..., rot:]], axis=-1)
    return (y.reshape(x.shape) if x.ndim == 3 else y.transpose(0, 2, 1, 3)).astype(x.dtype)


@decomposition("RotaryEmbedding", MS)
def decompose_ms_rotaryembedding(node, opset, in_types):
    """ONNX RotaryEmbedding-23 (inputs reordered to X, cos, sin, position_ids; a start offset spelled out as
    offset + 0..S-1)."""
    if not _typed(in_types, 0, 1, 2) or _attr(node, "is_packed_batching", 0) or float(_attr(node, "scale", 1.0)) != 1.0:
        return None
    xs = in_types[0].shape
    bsz, s = (xs[0], xs[1]) if len(xs) == 3 else (xs[0], xs[2])
    rot = int(_attr(node, "rotary_embedding_dim", 0)) or 2 * in_types[2].shape[1]
    heads = int(_attr(node, "num_heads", 0)) or (xs[1] if len(xs) == 4 else xs[2] // rot)
    b = _Body()
    pos = "i1"
    if int(np.prod(in_types[1].shape)) == 1 and (bsz, s) != (1, 1):
        pos = b.op("Expand", [b.op("Add", [b.op("Reshape", ["i1", b.const(np.array([1, 1], np.int64))]),
                                            b.const(np.arange(s, dtype=np.int64)[None])]),
                              b.const(np.array([bsz, s], np.int64))])
    attrs = {"interleaved": int(_attr(node, "interleaved", 0)), "rotary_embedding_dim": rot}
    if len(xs) == 3:
        attrs["num_heads"] = heads
    b.op("RotaryEmbedding", ["i0", "i2", "i3", pos], "o0", **attrs)
    return b.function("RotaryEmbedding", _inputs(node), ["o0"], opset=23)


__all__: list[str] = []

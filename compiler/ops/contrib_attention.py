"""onnxruntime's attention contrib operators (domain com.microsoft): Attention (BERT's fused QKV projection, as
onnxruntime's transformers optimizer writes it), MultiHeadAttention and RotaryEmbedding.

Spec: onnxruntime's docs/ContribOperators.md, masks as its CPU kernels apply them (attention_helper.h
PrepareMask): every masked position, key padding, causal or mask_index, gets ``mask_filter_value`` (-10000 by
default) added to its score, not -inf; attention_bias is added as is. Decompositions build that additive mask from
ONNX ops and hand it to ONNX Attention-23 (float attn_mask), which every backend lowers. Not covered: past key and
value (KV cache) inputs of Attention/MultiHeadAttention, packed QKV layouts, mask_index of 2 * batch or 4-D.

GroupQueryAttention (the op onnxruntime's LLM exports carry): separate Q [B, S, Hq*D], K and V [B, S, Hkv*D],
optional past key/value [B, Hkv, P, D] (BNSH) appended to, always causal (query i at absolute position P + i sees
keys j <= P + i), keys j > seqlens_k[b] masked (right padding), softcap; outputs the attention and the present key
and value [B, Hkv, P + S, D]. Covered: total_sequence_length = P + S for every batch row (a prompt, or decoding
with one past length); not covered: do_rotary, packed QKV, local_window_size, smooth_softmax, a past buffer
shared with present (past rows of different lengths).
"""
from __future__ import annotations

import math

import numpy as np

from .contrib import MS, _Body, _attr, _inputs, _typed
from ..errors import ShapeError
from ..ir.types import TensorType
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


# ---------------------------------------------------------------------------------------------------- GroupQueryAttention
_GQA_ATTRS = {"num_heads": 0, "kv_num_heads": 0, "scale": 0.0, "softcap": 0.0, "local_window_size": -1,
              "do_rotary": 0, "rotary_interleaved": 0, "smooth_softmax": 0}


def _gqa_mask(seqlens, p: int, s: int) -> np.ndarray:
    """bool [B, 1, S, P + S]: query i sees key j when j <= P + i (causal) and j <= seqlens_k[b] (valid keys)."""
    t = p + s
    j = np.arange(t)[None, None, None, :]
    causal = j <= (p + np.arange(s))[None, None, :, None]
    return causal & (j <= np.asarray(seqlens, np.int64).reshape(-1, 1, 1, 1))


def _gqa_infer(ctx) -> list:
    """y [B, S, Hq * Dv] in Q's type; present key/value [B, Hkv, P + S, D] in K's and V's."""
    q, k, v = ctx.shape(0), ctx.shape(1), ctx.shape(2)
    if q is None or k is None or v is None or len(k) != 3:
        raise ShapeError(f"node {ctx.node.name!r} (GroupQueryAttention): Q, K and V of known rank-3 shapes needed")
    hq, hkv = ctx.attrs["num_heads"], ctx.attrs["kv_num_heads"]
    past = ctx.shape(3) if len(ctx.types) > 3 and ctx.types[3] is not None else None
    t = q[1] + (past[2] if past is not None else 0)
    d, dv = k[2] // hkv, v[2] // hkv
    return [TensorType(ctx.dtype(0), (q[0], q[1], hq * dv)), TensorType(ctx.dtype(1), (q[0], hkv, t, d)),
            TensorType(ctx.dtype(2), (q[0], hkv, t, dv))]


@register("GroupQueryAttention", domain=MS, attrs=_GQA_ATTRS, outputs=3, infer=_gqa_infer, versions="com.microsoft 1")
def ref_ms_groupqueryattention(ctx, q, k, v, past_k=None, past_v=None, seqlens_k=None, total_len=None, *rest):
    """See the module docstring; float64, head h of Q reads K/V head h // (Hq / Hkv)."""
    a = ctx.attrs
    if k is None or a["do_rotary"] or a["local_window_size"] != -1 or a["smooth_softmax"]:
        raise ValueError("GroupQueryAttention with packed QKV, do_rotary, local_window_size or smooth_softmax")
    b, s, _ = q.shape
    hq, hkv = a["num_heads"], a["kv_num_heads"]
    d = q.shape[2] // hq
    kh = k.reshape(b, s, hkv, d).transpose(0, 2, 1, 3)
    vh = v.reshape(b, s, hkv, -1).transpose(0, 2, 1, 3)
    if past_k is not None:
        kh, vh = np.concatenate([past_k, kh], axis=2), np.concatenate([past_v, vh], axis=2)
    p = kh.shape[2] - s
    if total_len is not None and int(np.asarray(total_len).ravel()[0]) != p + s:
        raise ValueError("GroupQueryAttention: total_sequence_length differs from past + new length")
    qh = q.reshape(b, s, hq, d).transpose(0, 2, 1, 3).astype(np.float64)
    rep = hq // hkv
    kk, vv = np.repeat(kh.astype(np.float64), rep, axis=1), np.repeat(vh.astype(np.float64), rep, axis=1)
    sc = qh @ kk.transpose(0, 1, 3, 2) * (a["scale"] or 1 / math.sqrt(d))
    if a["softcap"]:
        sc = a["softcap"] * np.tanh(sc / a["softcap"])
    sc = np.where(_gqa_mask(seqlens_k, p, s), sc, -np.inf)
    y = (_softmax(sc) @ vv).transpose(0, 2, 1, 3).reshape(b, s, -1)
    return y.astype(q.dtype), kh.astype(k.dtype), vh.astype(v.dtype)


@decomposition("GroupQueryAttention", MS)
def decompose_ms_groupqueryattention(node, opset, in_types):
    """ONNX Attention-23 with q/kv_num_heads, the past key/value, softcap and a bool mask computed from
    seqlens_k (causal at offset P and the valid keys), as in :func:`_gqa_mask`."""
    has = lambda i: len(node.input) > i and bool(node.input[i])   # noqa: E731
    if not _typed(in_types, 0, 1, 2) or not has(5) or any(has(i) for i in (7, 8, 9, 10)) \
            or _attr(node, "do_rotary", 0) or _attr(node, "local_window_size", -1) != -1 or _attr(node, "smooth_softmax", 0):
        return None
    bsz, s = in_types[0].shape[:2]
    p = in_types[3].shape[2] if has(3) and _typed(in_types, 3) else 0
    b = _Body()
    t = p + s
    causal = b.const((np.arange(t)[None, :] <= (p + np.arange(s))[:, None])[None, None])
    lens = b.op("Reshape", [b.op("Cast", ["i5"], to=7), b.const(np.array([-1, 1, 1, 1], np.int64))])
    valid = b.op("LessOrEqual", [b.const(np.arange(t, dtype=np.int64)[None, None, None, :]), lens])
    mask = b.op("And", [causal, valid])
    attrs = {"q_num_heads": int(_attr(node, "num_heads")), "kv_num_heads": int(_attr(node, "kv_num_heads"))}
    if _attr(node, "scale", 0.0):
        attrs["scale"] = float(_attr(node, "scale"))
    if _attr(node, "softcap", 0.0):
        attrs["softcap"] = float(_attr(node, "softcap"))
    ins = ["i0", "i1", "i2", mask] + (["i3", "i4"] if has(3) else [])
    outs = [o if o else "" for o in ["o0", "o1" if len(node.output) > 1 and node.output[1] else "",
                                     "o2" if len(node.output) > 2 and node.output[2] else ""]]
    while outs[-1] == "":
        outs.pop()
    b.ops("Attention", ins, outs, **attrs)
    return b.function("GroupQueryAttention", _inputs(node), [o for o in outs if o], opset=23)

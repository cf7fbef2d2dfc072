"""Attention (opset 23-25: MHA/GQA/MQA, KV cache, causal and sliding-window masks, softcap) and RotaryEmbedding (23).

Source: ONNX spec text for Attention (the pattern Q*sqrt(scale) @ (K*sqrt(scale))^T -> softcap -> + bias ->
Softmax -> @ V, masks composed additively, fully masked rows giving zeros) and RotaryEmbedding (RoPE,
Su et al. 2021, https://arxiv.org/abs/2104.09864).
"""
from __future__ import annotations

import math

import numpy as np

from ..ir.types import np_dtype, onnx_elem_to_name
from .registry import register


def _heads(x: np.ndarray, n: int) -> np.ndarray:
    """(B, S, n*H) -> (B, n, S, H); 4-D inputs pass through."""
    if x.ndim == 4:
        return x
    b, s, hid = x.shape
    return x.reshape(b, s, n, hid // n).transpose(0, 2, 1, 3)


def _softmax_rows(s: np.ndarray) -> np.ndarray:
    m = np.max(s, axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    e = np.exp(s - m)
    tot = e.sum(axis=-1, keepdims=True)
    return np.where(tot > 0, e / np.where(tot > 0, tot, 1), 0)


@register("Attention", attrs={"is_causal": 0, "kv_num_heads": None, "q_num_heads": None, "qk_matmul_output_mode": 0,
                              "scale": None, "softcap": 0.0, "softmax_precision": None, "left_window_size": -1,
                              "right_window_size": -1}, versions="23-25")
def ref_attention(ctx, q, k, v, mask=None, past_k=None, past_v=None, nonpad=None):
    a = ctx.attrs
    out_dt = q.dtype
    three_d = q.ndim == 3
    qh = _heads(q, a["q_num_heads"] or 1).astype(np.float64)
    kh = _heads(k, a["kv_num_heads"] or 1).astype(np.float64)
    vh = _heads(v, a["kv_num_heads"] or 1).astype(np.float64)
    present_k, present_v = kh, vh
    past_len = 0
    if past_k is not None:
        past_len = past_k.shape[2]
        kh = np.concatenate([past_k.astype(np.float64), kh], axis=2)
        vh = np.concatenate([past_v.astype(np.float64), vh], axis=2)
        present_k, present_v = kh, vh
    b, nq, sq, hd = qh.shape
    nkv, skv = kh.shape[1], kh.shape[2]
    scale = a["scale"] if a["scale"] is not None else 1.0 / math.sqrt(hd)
    rep = nq // nkv
    kr, vr = np.repeat(kh, rep, axis=1), np.repeat(vh, rep, axis=1)
    qk = (qh * math.sqrt(scale)) @ np.swapaxes(kr * math.sqrt(scale), -1, -2)
    mode0 = qk
    if a["softcap"]:
        qk = a["softcap"] * np.tanh(qk / a["softcap"])
    mode1 = qk
    bias = np.zeros((b, 1, sq, skv))
    if mask is not None:
        if mask.dtype == np.bool_:
            mb = np.where(mask, 0.0, -np.inf)
        else:
            mb = mask.astype(np.float64)
        if mb.shape[-1] < skv:
            pad = [(0, 0)] * (mb.ndim - 1) + [(0, skv - mb.shape[-1])]
            mb = np.pad(mb, pad, constant_values=-np.inf)
        bias = bias + mb
    offset = np.full((b,), past_len, dtype=np.int64)
    if nonpad is not None and past_k is None:
        offset = nonpad.astype(np.int64) - sq
    i = np.arange(sq).reshape(1, sq, 1)
    j = np.arange(skv).reshape(1, 1, skv)
    p = offset.reshape(b, 1, 1) + i
    allowed = np.ones((b, sq, skv), dtype=bool)
    if a["is_causal"]:
        allowed &= j <= p
    if a["left_window_size"] >= 0:
        allowed &= j >= p - a["left_window_size"]
    if a["right_window_size"] >= 0:
        allowed &= j <= p + a["right_window_size"]
    if nonpad is not None:
        allowed &= j < nonpad.reshape(b, 1, 1)
    bias = bias + np.where(allowed, 0.0, -np.inf)[:, None]
    qk = qk + bias
    mode2 = qk
    if a["softmax_precision"] is not None:
        qk = qk.astype(np_dtype(onnx_elem_to_name(a["softmax_precision"]))).astype(np.float64)
    probs = _softmax_rows(qk)
    y = probs @ vr
    if three_d:
        y = y.transpose(0, 2, 1, 3).reshape(b, sq, -1)
    outs = [y.astype(out_dt), present_k.astype(k.dtype), present_v.astype(v.dtype),
            [mode0, mode1, mode2, probs][a["qk_matmul_output_mode"]].astype(out_dt)]
    return tuple(outs[:ctx.n_outputs])


@register("RotaryEmbedding", attrs={"interleaved": 0, "num_heads": 0, "rotary_embedding_dim": 0}, versions="23-24")
def ref_rotaryembedding(ctx, x, cos, sin, pos=None):
    a = ctx.attrs
    shape = x.shape
    t = np.transpose(x, (0, 2, 1, 3)) if x.ndim == 4 else x.reshape(shape[0], shape[1], a["num_heads"], -1)
    t = t.astype(np.float64)
    d = a["rotary_embedding_dim"] or t.shape[3]
    rot, keep = t[..., :d], t[..., d:]
    if pos is not None:
        cos, sin = cos[pos], sin[pos]
    cos = cos[..., :d // 2][:, :, None, :].astype(np.float64)
    sin = sin[..., :d // 2][:, :, None, :].astype(np.float64)
    if a["interleaved"]:
        x1, x2 = rot[..., 0::2], rot[..., 1::2]
    else:
        x1, x2 = rot[..., :d // 2], rot[..., d // 2:]
    r1 = x1 * cos - x2 * sin
    r2 = x1 * sin + x2 * cos
    if a["interleaved"]:
        out = np.stack([r1, r2], axis=-1).reshape(rot.shape)
    else:
        out = np.concatenate([r1, r2], axis=-1)
    y = np.concatenate([out, keep], axis=-1)
    y = np.transpose(y, (0, 2, 1, 3)) if x.ndim == 4 else y.reshape(shape)
    return y.astype(x.dtype)


@register("LinearAttention", attrs={"chunk_size": 64, "kv_num_heads": None, "q_num_heads": None, "scale": 0.0,
                                    "update_rule": "gated_delta"}, outputs=2, versions="27")
def ref_linearattention(ctx, q, k, v, past=None, decay=None, beta=None):
    """LinearAttention-27: ``linear_attention`` of the Python runtime (runtime/python/bornrt.py), shared with the
    python target."""
    from ..pyrt import rt
    return rt.linear_attention(ctx.attrs, q, k, v, past, decay, beta)

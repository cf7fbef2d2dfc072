"""C lowering of ONNX Attention (opset 23-24): one kernel over (batch, query head), with the KV cache copied
into the present outputs by a second template. The semantics are the reference's (``ops/attention.py``)."""
from __future__ import annotations

import math

from ...ops.registry import lowering
from ..common.lowering import broadcast_strides
from .ctypes_ import literal
from .lower_nn import PARALLEL_MIN_MACS
from .lowering import CCtx, Lowered, Stage


def _heads(shape: tuple, n: int | None) -> tuple[int, int, int, int]:
    """(batch, heads, sequence, head size) of a 3-D [B, S, heads*D] or 4-D [B, heads, S, D] Q/K/V."""
    if len(shape) == 4:
        return tuple(shape)
    b, s, hidden = shape
    return b, n, s, hidden // n


@lowering("c", "Attention")
def _attention(ctx: CCtx) -> Lowered:
    """Inputs Q, K, V, attn_mask, past_key, past_value, nonpad_kv_seqlen; outputs Y, present_key,
    present_value, qk_matmul_output. Tasks: one per (batch, query head) above PARALLEL_MIN_MACS. Workspace:
    one score row (float) per worker."""
    a = ctx.attrs
    q3, k3, v3 = len(ctx.shape(0)) == 3, len(ctx.shape(1)) == 3, len(ctx.shape(2)) == 3
    if q3 and not (a["q_num_heads"] and a["kv_num_heads"]):
        raise ctx.unsupported("3-D inputs without q_num_heads and kv_num_heads")
    if a["softmax_precision"] not in (None, 1, 11):
        raise ctx.unsupported("softmax_precision other than float or double")
    b, nq, sq, hd = _heads(ctx.shape(0), a["q_num_heads"])
    _, nkv, sn, _ = _heads(ctx.shape(1), a["kv_num_heads"])
    hv = _heads(ctx.shape(2), a["kv_num_heads"])[3]
    if nq % nkv:
        raise ctx.unsupported(f"{nq} query heads over {nkv} kv heads")
    has_past = ctx.has(4) and ctx.has(5)
    sp = ctx.shape(4)[2] if has_past else 0
    skv = sp + sn
    t = ctx.ins[0].dtype
    if t != "float32":
        raise ctx.unsupported(f"Attention on {t}")
    scale = a["scale"] if a["scale"] is not None else 1.0 / math.sqrt(hd)
    outs = [bool(o) for o in ctx.node.outputs] + [False] * (4 - len(ctx.node.outputs))
    params = {"B": b, "NQ": nq, "NKV": nkv, "SQ": sq, "SN": sn, "SP": sp, "SKV": skv, "HD": hd, "HV": hv,
              "q3": q3, "k3": k3, "v3": v3, "T": "float", "scale": literal(scale, "float32"),
              "softcap": literal(a["softcap"], "float32") if a["softcap"] else None,
              "causal": bool(a["is_causal"]), "lw": a["left_window_size"], "rw": a["right_window_size"],
              "has_nonpad": ctx.has(6), "has_qk": outs[3], "mode": a["qk_matmul_output_mode"],
              "has_mask": ctx.has(3), "mask_bool": False, "ML": skv, "mstr": [0, 0, 0, 0]}
    if ctx.has(3):
        ms = ctx.shape(3)
        params.update(mask_bool=ctx.ins[3].dtype == "bool", ML=ms[-1],
                      mstr=broadcast_strides(ms, (b, nq, sq, ms[-1])))
    macs = b * nq * sq * skv * (hd + hv)
    tasks = b * nq if ctx.threads > 1 and b * nq > 1 and macs >= PARALLEL_MIN_MACS else 0
    stages = [Stage("attention_kv", {"B": b, "NKV": nkv, "SP": sp, "SN": sn, "D": d, "l3": l3, "T": "float",
                                     "X": f"X{k}", "PAST": f"X{k + 3}", "Y": f"Y{o}"})
              for o, k, d, l3 in ((1, 1, hd, k3), (2, 2, hv, v3)) if outs[o]]
    stages.append(Stage("attention", {**params, "tasks": tasks}, tasks))
    return Lowered(stages, [k for k in range(7) if ctx.has(k)], workspace=skv * 4, tasks=tasks)


@lowering("c", "LinearAttention")
def _linear_attention(ctx: CCtx) -> Lowered:
    """LinearAttention-27 (every update rule, GQA, past state, per-key or per-head decay, per-head or shared
    beta): the recurrence token by token, the state in float in the workspace."""
    a = ctx.attrs
    rule = a["update_rule"]
    if rule not in ("linear", "gated", "delta", "gated_delta") or ctx.ins[0].dtype not in ("float32", "float64"):
        raise ctx.unsupported(f"update_rule {rule!r} on {ctx.ins[0].dtype}")
    nq, nkv = a["q_num_heads"], a["kv_num_heads"]
    b, t, _ = ctx.shape(0)
    dk, dv = ctx.shape(0)[2] // nq, ctx.shape(2)[2] // nkv
    gated, delta = rule in ("gated", "gated_delta"), rule in ("delta", "gated_delta")
    if (gated and not ctx.has(4)) or (delta and not ctx.has(5)) or nq % nkv:
        raise ctx.unsupported(f"{rule} without its decay/beta input, or {nq} query heads over {nkv} kv heads")
    decay_row = ctx.shape(4)[2] if gated else 1
    params = {"rule": rule, "B": b, "T": t, "NQ": nq, "NKV": nkv, "REP": nq // nkv, "DK": dk, "DV": dv,
              "T_": ctx.oct(), "gated": gated, "delta": delta, "decay_row": decay_row,
              "decay_per_k": gated and decay_row == nkv * dk, "beta_row": ctx.shape(5)[2] if delta else 1,
              "has_past": ctx.has(3), "has_present": len(ctx.node.outputs) > 1 and bool(ctx.node.outputs[1]),
              "scale": literal(a["scale"] or 1.0 / math.sqrt(dk), "float32")}
    return Lowered([Stage("linear_attention", params)], [k for k in range(6) if ctx.has(k)], workspace=(dk * dv + dv) * 4)

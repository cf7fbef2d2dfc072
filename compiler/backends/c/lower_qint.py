"""C lowerings of bornc's integer layers QConv and QMatMul (see ``ops/qint.py``).

Both run on the int16-pair GEMM micro-kernel of ``runtime/c/bornrt_gemm.h`` (bornc_qgemm_6x16: AVX2 vpmaddwd,
AVX-VNNI / AVX512-VNNI vpdpwssd when the target's flags enable them, portable C elsewhere): uint8 activations
minus their zero point and int8 weights are exact in int16, and each pair product sums in int32. Depthwise and
other convolutions with fewer than 4 input channels per group run as direct loops. Requantization is the
fixed-point ``bornc_requant``, bit-exact with the reference interpreter.
"""
from __future__ import annotations

import numpy as np

from ...ops.registry import lowering
from .lower_nn import conv_window
from .lowering import Lowered, CCtx, Stage

#: Bytes of packed activations per block (int16 pairs): about half of a 512 KiB L2.
PACK_BYTES = 256 * 1024


def _requant_params(ctx: CCtx, m: int) -> dict:
    a = ctx.attrs
    mult, shift = list(a["multiplier"]), list(a["shift"])
    if len(mult) == 1:
        mult, shift = mult * m, shift * m
    return {"multiplier": [int(v) for v in mult], "shift": [int(v) for v in shift],
            "x_zero_point": int(a["x_zero_point"]), "y_zero_point": int(a["y_zero_point"]),
            "qmin": int(a["qmin"]), "qmax": int(a["qmax"]), "has_bias": ctx.has(2),
            "table": [int(v) for v in a["table"]] if a.get("table") is not None else None}


@lowering("c", "QConv", domain="bornc")
def _qconv(ctx: CCtx) -> Lowered:
    geo = conv_window(ctx)
    geo.update(_requant_params(ctx, geo["M"]))
    h, w, mg, cg, kh, kw, oh, ow = (geo[k] for k in ("H", "W", "MG", "CG", "KH", "KW", "OH", "OW"))
    sh, sw, dh, dw, pt, pl = (geo[k] for k in ("SH", "SW", "DH", "DW", "PT", "PL"))
    args = [k for k in range(3) if ctx.has(k)]
    k = cg * kh * kw
    if cg == 1 and mg == 1:
        wp_ = w + pl + geo["PR"]
        hp = max(h + pt + geo["PB"], (oh - 1) * sh + (kh - 1) * dh + 1)
        owp = -(-ow // 16) * 16
        pw = max(-(-wp_ // sw), owp + (kw - 1) * dw // sw + 1)     # taps of the padded last columns read zeros
        jlo = [max(0, -(-(pl - ph) // sw)) for ph in range(sw)]
        jhi = [max(lo, min(pw, -(-(w + pl - ph) // sw))) for lo, ph in zip(jlo, range(sw))]
        tap = [((q * dw) % sw) * pw + (q * dw) // sw for q in range(kw)]
        return Lowered([Stage("qconv_dw", {**geo, "HP": hp, "PW": pw, "OWP": owp, "jlo": jlo, "jhi": jhi, "tap": tap})], args,
                       workspace=hp * sw * pw * 2)
    if k < 8 or mg < 4:
        return Lowered([Stage("qconv_direct", geo)], args)
    adj = _bias_adjusted(ctx, k)
    if adj is not None:
        kq = (k + 3) // 4
        rows = max(1, min(oh, (PACK_BYTES // 2 // (kq * 4)) // max(ow, 1)))
        cols = 4 * kq * (-(-rows * ow // 16) * 16)       # bytes of the im2col block (and of its packed copy)
        pointwise = kh * kw == 1 and sh == sw == 1 and pt == pl == 0 and oh == h and ow == w
        return Lowered([Stage("qconv_gemm8", {**geo, "K": k, "KQ": kq, "ROWS": rows, "COLS": cols, "bias_adj": adj[0],
                                              "bias_adj_s": adj[1], "pointwise": pointwise})],
                       [0, 1], workspace=2 * cols + 6 * kq * 4)
    kp2 = (k + 1) // 2
    rows = max(1, min(oh, (PACK_BYTES // (kp2 * 4)) // max(ow, 1)))
    cols = 2 * kp2 * (-(-rows * ow // 16) * 16)          # int16 elements of the im2col block
    return Lowered([Stage("qconv_gemm", {**geo, "K": k, "KP2": kp2, "KE": 2 * kp2, "ROWS": rows, "COLS": cols})],
                   args, workspace=cols * 2 + 6 * kp2 * 4)


def _bias_adjusted(ctx: CCtx, k: int) -> tuple[list[int], list[int]] | None:
    """bias - x_zero_point * (row sums of W) per output channel, for the uint8 x int8 quad kernel: None when the
    weights (or bias) are not constant or a weight lies outside [-63, 63] (vpmaddubsw's pair sums could saturate)."""
    w = ctx.consts[1]
    if w is None or (ctx.has(2) and ctx.consts[2] is None):
        return None
    w = np.asarray(w, np.int64).reshape(w.shape[0], -1)
    if w.size and np.abs(w).max() > 63:
        return None
    b = np.asarray(ctx.consts[2], np.int64) if ctx.has(2) else np.zeros(w.shape[0], np.int64)
    adj = b - int(ctx.attrs["x_zero_point"]) * w.sum(axis=1)
    adj_s = adj + 128 * w.sum(axis=1)              # for kernels that read x - 128 (AArch64 SDOT)
    if max(np.abs(adj).max(initial=0), np.abs(adj_s).max(initial=0)) >= 1 << 31:
        return None
    return [int(v) for v in adj], [int(v) for v in adj_s]


@lowering("c", "QMatMul", domain="bornc")
def _qmatmul(ctx: CCtx) -> Lowered:
    xs, ws = ctx.shape(0), ctx.shape(1)
    m, k = ws
    r = 1
    for d in xs[:-1]:
        r *= d
    adj = _bias_adjusted(ctx, k)
    if adj is not None:
        kq = (k + 3) // 4
        pb = max(16, min(-(-r // 16) * 16, (PACK_BYTES // (kq * 4)) // 16 * 16))
        cols = pb * kq * 4
        return Lowered([Stage("qmatmul8", {"R": r, "K": k, "M": m, "KQ": kq, "PB": pb, "COLS": cols, "bias_adj": adj[0],
                                           "bias_adj_s": adj[1],
                                           **_requant_params(ctx, m)})], [0, 1], workspace=cols + 6 * kq * 4)
    kp2 = (k + 1) // 2
    pb = max(16, min(-(-r // 16) * 16, (PACK_BYTES // (kp2 * 4)) // 16 * 16))
    cols = pb * kp2 * 2
    return Lowered([Stage("qmatmul", {"R": r, "K": k, "M": m, "KP2": kp2, "PB": pb, "COLS": cols,
                                      **_requant_params(ctx, m)})],
                   [i for i in range(3) if ctx.has(i)], workspace=cols * 2 + 6 * kp2 * 4)


@lowering("c", "LookupTable", domain="bornc")
def _lookup(ctx: CCtx) -> Lowered:
    count = 1
    for d in ctx.shape(0):
        count *= d
    return Lowered([Stage("lookup", {"count": count, "table": [int(v) for v in ctx.attrs["table"]]})], [0])

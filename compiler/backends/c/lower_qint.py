"""C lowerings of bornc's integer layers QConv and QMatMul (see ``ops/qint.py``).

With constant weights both run on the uint8 x int8 quad micro-kernel of ``runtime/c/bornrt_gemm.h``
(bornc_qgemm8_6x16: VNNI vpdpbusd, AArch64 SDOT, Arm SMLAD, Helium VMLADAVA, portable C; on AVX2 without VNNI
only for weights in [-63, 63], see ``exact_quads``), QConv's weights packed at compile time and its tasks split
over the workers. Otherwise they run on the int16-pair kernel (bornc_qgemm_6x16: AVX2 vpmaddwd, VNNI vpdpwssd):
uint8 activations minus their zero point and int8 weights are exact in int16, and each pair product sums in
int32. Depthwise convolutions run on rows of an int16 plane (bornc_qdw8) or, of stride 1 on Helium (and 3 taps
wide on the DSP instructions), as one flat correlation over a uint8 plane (bornc_qdw_flat); other convolutions with fewer than 4 input channels per group
run as direct loops. Requantization is the
fixed-point ``bornc_requant``, bit-exact with the reference interpreter.
"""
from __future__ import annotations

import numpy as np

from ...ops.registry import lowering
from .lower_nn import conv_window, split
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
        flat = _qconv_dw_flat(ctx, geo, args)
        if flat is not None:
            return flat
        wp_ = w + pl + geo["PR"]
        hp = max(h + pt + geo["PB"], (oh - 1) * sh + (kh - 1) * dh + 1)
        step = 8 if "small-ram" in ctx.features else 16        # columns the kernel computes per row: a multiple
        owp = -(-ow // step) * step                             # of bornc_qdw8's 8, of 16 where stores are vectors
        pw = max(-(-wp_ // sw), owp + (kw - 1) * dw // sw + 1)     # taps of the padded last columns read zeros
        jlo = [max(0, -(-(pl - ph) // sw)) for ph in range(sw)]
        jhi = [max(lo, min(pw, -(-(w + pl - ph) // sw))) for lo, ph in zip(jlo, range(sw))]
        tap = [((q * dw) % sw) * pw + (q * dw) // sw for q in range(kw)]
        return Lowered([Stage("qconv_dw", {**geo, "HP": hp, "PW": pw, "OWP": owp, "jlo": jlo, "jhi": jhi, "tap": tap})], args,
                       workspace=hp * sw * pw * 2)
    if k < 8 or mg < 4:
        return Lowered([Stage("qconv_direct", geo)], args)
    adj = _bias_adjusted(ctx, k, exact_quads(ctx.features))
    if adj is not None:
        return _qconv_gemm8(ctx, geo, k, adj)
    kp2 = (k + 1) // 2
    rows = max(1, min(oh, (ctx.pack_bytes(PACK_BYTES) // (kp2 * 4)) // max(ow, 1)))
    cols = 2 * kp2 * (-(-rows * ow // 16) * 16)          # int16 elements of the im2col block
    return Lowered([Stage("qconv_gemm", {**geo, "K": k, "KP2": kp2, "KE": 2 * kp2, "ROWS": rows, "COLS": cols})],
                   args, workspace=cols * 2 + 6 * kp2 * 4)


def _qconv_dw_flat(ctx: CCtx, geo: dict, args: list) -> Lowered | None:
    """Depthwise QConv of stride 1 as a 1-D correlation per channel (templates/c/qconv_dw_flat.c.j2; Helium, and
    3-wide kernels on the DSP instructions): a uint8 plane of HP x PW padded with the zero point, the taps at flat
    offsets, the sums of RB output rows at a time (RB * PW rounded up to 8; RB chosen so that the sums take no more
    bytes than the plane or 4 KiB, which keeps the workspace near the row kernel's int16 plane). None when the
    weights or bias are not constant (the zero point's share of the sums is folded at compile time), and where the
    target has no kernel for it: a stride other than 1, or without Helium a kernel not three adjacent taps wide
    (the rows bornc_qdw_flat's SMLAD form takes, up to 8 of them)."""
    g = geo
    f = ctx.features
    if g["SH"] != 1 or g["SW"] != 1 or not ("mve" in f or ("dsp" in f and g["KW"] == 3 and g["DW"] == 1 and g["KH"] <= 8)):
        return None
    adj = _bias_adjusted(ctx, g["KH"] * g["KW"], True)
    if adj is None:
        return None
    pw = max(g["W"] + g["PL"] + g["PR"], g["OW"] + (g["KW"] - 1) * g["DW"])
    hp = max(g["H"] + g["PT"] + g["PB"], g["OH"] + (g["KH"] - 1) * g["DH"])
    rb = max(1, min(g["OH"], max(hp * pw, 4096) // (4 * pw)))
    flat = -(-rb * pw // 8) * 8                                 # sums per block
    off = [kh * g["DH"] * pw + kw * g["DW"] for kh in range(g["KH"]) for kw in range(g["KW"])]
    last = (g["OH"] - 1) // rb * rb * pw                        # where the last block starts
    plane = -(-max(hp * pw, last + flat + max(off)) // 8) * 8   # the last pass reads up to last + flat - 1 + max(off)
    return Lowered([Stage("qconv_dw_flat", {**g, "HP": hp, "PW": pw, "RB": rb, "FLAT": flat, "off": off,
                                            "PLANE": plane, "bias_adj": adj[0]})], args, workspace=plane + 4 * flat)


def exact_quads(features) -> bool:
    """True when the target's uint8 x int8 quad kernel takes any int8 weights: VNNI (vpdpbusd), AArch64 SDOT, Arm
    SMLAD, Helium and portable C do; AVX2's vpmaddubsw saturates its pair sums, so there weights must lie in [-63, 63]."""
    f = set(features)
    return "avx2" not in f or bool(f & {"avx512vnni", "avxvnni"})


def _wide(w) -> bool:
    """True when some int8 weight lies outside [-63, 63] (the kernel then needs exact_quads; its template checks)."""
    return bool(np.abs(np.asarray(w, np.int64)).max(initial=0) > 63)


def _qconv_gemm8(ctx: CCtx, geo: dict, k: int, adj) -> Lowered:
    """QConv on the quad kernel (templates/c/qconv_gemm8.c.j2): weights packed at compile time in 6-row panels
    of quads (int32 each, four int8 weights, low byte first: little-endian targets), tasks split as the float
    packed convolution's (lower_nn.split)."""
    oh, ow, mg = geo["OH"], geo["OW"], geo["MG"]
    kq, panels = (k + 3) // 4, -(-mg // 6)
    rows = max(1, min(oh, (ctx.pack_bytes(PACK_BYTES) // 2 // (kq * 4)) // max(ow, 1)))
    blocks = -(-oh // rows)
    cols = 4 * kq * (-(-rows * ow // 16) * 16)       # bytes of the im2col block (and of its packed copy)
    pointwise = geo["KH"] * geo["KW"] == 1 and geo["SH"] == geo["SW"] == 1 and geo["PT"] == geo["PL"] == 0 and \
        oh == geo["H"] and ow == geo["W"]
    base = geo["N"] * geo["G"] * blocks
    chunks, parallel = split(base, panels, ctx.threads, geo["N"] * geo["M"] * k * oh * ow)
    tasks = base * chunks
    w = np.asarray(ctx.consts[1], np.int8).reshape(geo["G"], mg, k)
    quads = np.zeros((geo["G"], panels * 6, 4 * kq), np.int8)
    quads[:, :mg, :k] = w
    packed = {1: np.ascontiguousarray(quads).view("<i4").ravel()}
    params = {**geo, "K": k, "KQ": kq, "ROWS": rows, "COLS": cols, "NB": blocks, "MPAN": panels, "MCH": chunks,
              "bias_adj": adj[0], "bias_adj_s": adj[1], "pointwise": pointwise, "serial_tasks": 0 if parallel else tasks,
              "wide": _wide(w)}
    par = tasks if parallel else 0
    return Lowered([Stage("qconv_gemm8", params, par)], [0, 1], workspace=2 * cols, tasks=par, packed=packed)


def _bias_adjusted(ctx: CCtx, k: int, any_weights: bool = False) -> tuple[list[int], list[int]] | None:
    """bias - x_zero_point * (row sums of W) per output channel, for the uint8 x int8 quad kernel: None when the
    weights (or bias) are not constant or, unless ``any_weights`` (see exact_quads), a weight lies outside
    [-63, 63] (vpmaddubsw's pair sums could saturate)."""
    w = ctx.consts[1]
    if w is None or (ctx.has(2) and ctx.consts[2] is None):
        return None
    if _wide(w) and not any_weights:
        return None
    w = np.asarray(w, np.int64).reshape(w.shape[0], -1)
    b = np.asarray(ctx.consts[2], np.int64) if ctx.has(2) else np.zeros(w.shape[0], np.int64)
    adj = b - int(ctx.attrs["x_zero_point"]) * w.sum(axis=1)
    adj_s = adj + 128 * w.sum(axis=1)              # for kernels that read x - 128 (AArch64 SDOT, Helium)
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
    adj = _bias_adjusted(ctx, k, exact_quads(ctx.features))
    if adj is not None:
        kq = (k + 3) // 4
        pb = max(16, min(-(-r // 16) * 16, (ctx.pack_bytes(PACK_BYTES) // (kq * 4)) // 16 * 16))
        cols = pb * kq * 4
        gemv = r <= 2 and "small-ram" in ctx.features        # a dot product per output beats a 16-column tile
        return Lowered([Stage("qmatmul8", {"R": r, "K": k, "M": m, "KQ": kq, "PB": pb, "COLS": cols, "bias_adj": adj[0],
                                           "bias_adj_s": adj[1], "wide": _wide(ctx.consts[1]), "gemv": gemv,
                                           **_requant_params(ctx, m)})], [0, 1], workspace=0 if gemv else cols + 6 * kq * 4)
    kp2 = (k + 1) // 2
    pb = max(16, min(-(-r // 16) * 16, (ctx.pack_bytes(PACK_BYTES) // (kp2 * 4)) // 16 * 16))
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

"""C lowerings of Conv, ConvTranspose, Gemm, MatMul (and their Fused* forms with an epilogue),
BatchNormalization, pooling, LRN, Softmax/LogSoftmax and LSTM. Geometry comes from the same helpers the
reference kernels use (``ops/nn.py``), so both agree on padding rules."""
from __future__ import annotations

import numpy as np

from ...ops.nn import _convtranspose_geometry, _pool_geometry, _spatial
from ...ops.registry import lowering
from .ctypes_ import literal
from .lower_elementwise import elementwise_stage
from .lowering import Lowered, LowerCtx, Stage, broadcast_strides, contiguous_strides


def _as2d(shape):
    """(N, C, W) -> (N, C, 1, W) for 1-D convolutions."""
    return shape if len(shape) == 4 else (shape[0], shape[1], 1, shape[2])


def _epilogue(ctx: LowerCtx, first_extra: int) -> list[Stage]:
    prog = ctx.attrs.get("epilogue") or []
    if not prog:
        return []
    n_extra = len(ctx.node.inputs) - first_extra
    ops = [("Y0", ctx.oshape(), ctx.oct())] + [(f"X{first_extra + k}", ctx.shape(first_extra + k), ctx.ct(first_extra + k))
                                             for k in range(n_extra)]
    return [elementwise_stage(ctx, prog, ops, ("Y0", ctx.oshape(), ctx.oct()), ctx.oct())]


def _pair(v, nd, default):
    v = list(v) if v is not None else [default] * nd
    return v if nd == 2 else [default] + v


def tap_ranges(taps: int, dil: int, pad: int, stride: int, count: int, limit: int) -> tuple[list[int], list[int]]:
    """For each kernel tap k, the range [lo, hi) of positions i < count with 0 <= i*stride + k*dil - pad < limit
    (output columns of a Conv that read inside the input, or input columns of a ConvTranspose that land inside
    the output)."""
    los, his = [], []
    for k in range(taps):
        off = k * dil - pad
        lo = -(off // stride) if off < 0 else 0
        hi = min(count, (limit - 1 - off) // stride + 1) if limit - 1 - off >= 0 else 0
        los.append(lo)
        his.append(max(hi, lo))
    return los, his


def geometry2d(kernel, strides, dil, pads) -> tuple:
    """(KH, KW, SH, SW, DH, DW, (pad top, bottom), (pad left, right)) of a 1-D or 2-D window, 1-D as H = 1."""
    nd = len(kernel)
    kh, kw = kernel if nd == 2 else [1] + list(kernel)
    sh, sw = _pair(strides, nd, 1)
    dh, dw = _pair(dil, nd, 1)
    ph, pw = pads if nd == 2 else [(0, 0)] + list(pads)
    return kh, kw, sh, sw, dh, dw, ph, pw


def conv_window(ctx: LowerCtx, w_index: int = 1) -> tuple[dict, list]:
    """The 1-D/2-D convolution geometry the C conv templates share (1-D as H = 1): N, C, H, W, M, G, MG, CG, KH,
    KW, OH, OW, SH, SW, DH, DW, PT, PL, P and the valid output columns [owlo[kw], owhi[kw]) of each kernel column;
    plus the (begin, end) pads per spatial axis. The weight is input ``w_index`` (3 for QLinearConv)."""
    xs, ws = ctx.shape(0), ctx.shape(w_index)
    if len(xs) not in (3, 4):
        raise ctx.unsupported(f"{len(xs) - 2}-D convolution in C")
    kernel = list(ctx.attrs["kernel_shape"] or ws[2:])
    strides, dil, pads = _spatial(ctx.attrs, xs, kernel)
    n, c, h, w = _as2d(xs)
    _, m, oh, ow = _as2d(ctx.oshape())
    kh, kw, sh, sw, dh, dw, (pt, _), (pl, _) = geometry2d(kernel, strides, dil, pads)
    g = ctx.attrs["group"]
    owlo, owhi = tap_ranges(kw, dw, pl, sw, ow, w)
    return {"N": n, "C": c, "H": h, "W": w, "M": m, "G": g, "MG": m // g, "CG": c // g, "KH": kh, "KW": kw, "OH": oh,
            "OW": ow, "SH": sh, "SW": sw, "DH": dh, "DW": dw, "PT": pt, "PL": pl, "P": oh * ow, "owlo": owlo,
            "owhi": owhi}, pads


def conv_stage(ctx: LowerCtx) -> Stage:
    geo, _ = conv_window(ctx)
    mg, cg, kh, kw, oh, ow = geo["MG"], geo["CG"], geo["KH"], geo["KW"], geo["OH"], geo["OW"]
    ops = {"T": ctx.oct(), "X": "X0", "Wt": "X1", "B": "X2", "has_bias": ctx.has(2), "Y": "Y0"}
    ocb = 4 if mg % 4 == 0 else (2 if mg % 2 == 0 else 1)
    if (kh * kw == 1 and geo["SH"] == geo["SW"] == 1 and geo["PT"] == geo["PL"] == 0 and oh == geo["H"]
            and ow == geo["W"] and ctx.oct() == "float" and cg >= 4 and mg >= 6):
        return Stage("conv1x1_gemm", {**geo, **ops, "workspace": cg * 16 * 4 if (oh * ow) % 16 else 0})
    if not (cg == 1 and mg == 1) and kh * kw > 1 and ctx.oct() == "float":   # GEMM form; 1x1 and depthwise stay direct
        k = cg * kh * kw
        rows = max(1, min(oh, 256 // max(ow, 1)))   # keep the im2col block (K x rows*OW) within L2
        return Stage("conv_gemm", {**geo, **ops, "K": k, "ROWS": rows, "pack": mg >= 24,
                                   "workspace": k * (-(-rows * ow // 16) * 16 + (16 if mg >= 24 else 0) + (6 if mg % 6 else 0)) * 4})
    return Stage("conv2d", {**geo, **ops, "OCB": ocb})


@lowering("c", "Conv")
def _conv(ctx: LowerCtx) -> Lowered:
    st = conv_stage(ctx)
    return Lowered([st], [k for k in range(3) if ctx.has(k)], workspace=st.params.get("workspace", 0))


@lowering("c", "FusedConv", domain="bornc")
def _fused_conv(ctx: LowerCtx) -> Lowered:
    st = conv_stage(ctx)
    return Lowered([st] + _epilogue(ctx, 3), [k for k in range(len(ctx.node.inputs)) if ctx.has(k)],
                   workspace=st.params.get("workspace", 0))


@lowering("c", "ConvTranspose")
def _convtranspose(ctx: LowerCtx) -> Lowered:
    xs, ws = ctx.shape(0), ctx.shape(1)
    if len(xs) not in (3, 4):
        raise ctx.unsupported(f"{len(xs) - 2}-D transposed convolution in C")
    kernel, strides, dil, pads, _, out = _convtranspose_geometry(ctx.attrs, xs, ws)
    n, c, h, w = _as2d(xs)
    _, m, oh, ow = _as2d(ctx.oshape())
    kh, kw, sh, sw, dh, dw, (pt, _), (pl, _) = geometry2d(kernel, strides, dil, pads)
    g = ctx.attrs["group"]
    iwlo, iwhi = tap_ranges(kw, dw, pl, sw, w, ow)
    if ctx.oct() == "float" and (c // g) >= 4 and (m // g) * kh * kw >= 6:
        q = (m // g) * kh * kw
        rows = max(1, min(h, (256 * 1024) // max(q * w, 1)))
        return Lowered([Stage("convtranspose_gemm", {
            "N": n, "C": c, "H": h, "W": w, "M": m, "G": g, "MG": m // g, "CG": c // g, "KH": kh, "KW": kw, "OH": oh,
            "OW": ow, "SH": sh, "SW": sw, "DH": dh, "DW": dw, "PT": pt, "PL": pl, "iwlo": iwlo, "iwhi": iwhi, "Q": q,
            "R": rows, "X": "X0", "Wt": "X1", "B": "X2", "has_bias": ctx.has(2), "Y": "Y0"})],
            [k for k in range(3) if ctx.has(k)], workspace=(q * rows * w + (c // g) * 16) * 4)
    return Lowered([Stage("convtranspose2d", {"N": n, "C": c, "H": h, "W": w, "M": m, "G": g, "MG": m // g, "CG": c // g,
                                              "KH": kh, "KW": kw, "OH": oh, "OW": ow, "SH": sh, "SW": sw, "DH": dh, "DW": dw,
                                              "PT": pt, "PL": pl, "iwlo": iwlo, "iwhi": iwhi, "T": ctx.oct(), "X": "X0",
                                              "Wt": "X1", "B": "X2", "has_bias": ctx.has(2), "Y": "Y0"})],
                   [k for k in range(3) if ctx.has(k)])


def gemm_stage(ctx: LowerCtx, trans_a: bool, trans_b: bool, alpha: float, beta: float, c_input: int | None,
               batch_a=None, batch_b=None) -> Stage:
    a, b = ctx.shape(0), ctx.shape(1)
    a = (1,) + tuple(a) if len(a) == 1 else tuple(a)
    b = tuple(b) + (1,) if len(b) == 1 else tuple(b)
    m, k = (a[-1], a[-2]) if trans_a else (a[-2], a[-1])
    n = b[-2] if trans_b else b[-1]
    a_index = "(size_t)k * %d + m" % m if trans_a else "(size_t)m * %d + k" % k
    params = {"M": m, "N": n, "K": k, "T": ctx.oct(), "A": "X0", "Bm": "X1", "Y": "Y0", "transB": trans_b,
              "alpha": literal(alpha, ctx.outs[0].dtype), "beta": literal(beta, ctx.outs[0].dtype), "a_index": a_index,
              "has_c": c_input is not None, "Cm": f"X{c_input}" if c_input is not None else "", "c_index": "0",
              "batch": 1, "aoff": [0], "boff": [0]}
    if c_input is not None:
        cs = broadcast_strides(ctx.shape(c_input), (m, n))
        params["c_index"] = f"(size_t)m * {cs[0]} + (size_t)n * {cs[1]}"
    if batch_a is not None:
        params.update(batch=len(batch_a), aoff=batch_a, boff=batch_b)
    return Stage("gemm", params)


@lowering("c", "Gemm")
def _gemm(ctx: LowerCtx) -> Lowered:
    a = ctx.attrs
    st = gemm_stage(ctx, bool(a["transA"]), bool(a["transB"]), a["alpha"], a["beta"], 2 if ctx.has(2) else None)
    return Lowered([st], [k for k in range(3) if ctx.has(k)])


@lowering("c", "FusedGemm", domain="bornc")
def _fused_gemm(ctx: LowerCtx) -> Lowered:
    low = _gemm(ctx)
    return Lowered(low.stages + _epilogue(ctx, 3), [k for k in range(len(ctx.node.inputs)) if ctx.has(k)])


def _matmul_stage(ctx: LowerCtx) -> Stage:
    """Batched MatMul as one gemm per batch entry; a 1-D A is a (1, K) row and a 1-D B a (K, 1) column (the
    output's bytes are the same once the spec drops those axes)."""
    a, b = ctx.shape(0), ctx.shape(1)
    a2 = (1,) + tuple(a) if len(a) == 1 else tuple(a)
    b2 = tuple(b) + (1,) if len(b) == 1 else tuple(b)
    batch = tuple(np.broadcast_shapes(a2[:-2], b2[:-2]))
    nb = int(np.prod(batch, dtype=np.int64)) if batch else 1
    sa = broadcast_strides(a2[:-2], batch) if batch else []
    sb = broadcast_strides(b2[:-2], batch) if batch else []
    msz, ksz, nsz = a2[-2], a2[-1], b2[-1]
    aoff, boff = [], []
    for idx in np.ndindex(*batch) if batch else [()]:
        aoff.append(int(sum(i * s for i, s in zip(idx, sa))) * msz * ksz)
        boff.append(int(sum(i * s for i, s in zip(idx, sb))) * ksz * nsz)
    st = gemm_stage(ctx, False, False, 1.0, 0.0, None, aoff if nb > 1 else None, boff if nb > 1 else None)
    st.params.update(M=msz, N=nsz, K=ksz, a_index="(size_t)m * %d + k" % ksz)
    return st


@lowering("c", "MatMul")
def _matmul(ctx: LowerCtx) -> Lowered:
    return Lowered([_matmul_stage(ctx)], [0, 1])


@lowering("c", "FusedMatMul", domain="bornc")
def _fused_matmul(ctx: LowerCtx) -> Lowered:
    return Lowered([_matmul_stage(ctx)] + _epilogue(ctx, 2), list(range(len(ctx.node.inputs))))


@lowering("c", "BatchNormalization")
def _batchnorm(ctx: LowerCtx) -> Lowered:
    if ctx.attrs.get("training_mode"):
        raise ctx.unsupported("training mode")
    xs = ctx.shape(0)
    inner = int(np.prod(xs[2:], dtype=np.int64)) if len(xs) > 2 else 1
    return Lowered([Stage("batchnorm", {"N": xs[0], "C": xs[1], "S": inner, "T": ctx.oct(),
                                        "eps": literal(ctx.attrs["epsilon"], ctx.outs[0].dtype)})], [0, 1, 2, 3, 4])


def _pool(ctx: LowerCtx, kind: str) -> Lowered:
    xs = ctx.shape(0)
    if len(xs) not in (3, 4):
        raise ctx.unsupported(f"{len(xs) - 2}-D pooling in C")
    if len(ctx.node.outputs) > 1 and ctx.node.outputs[1]:
        raise ctx.unsupported("MaxPool indices output in C")
    kernel, strides, dil, pads, ext, out = _pool_geometry(ctx.attrs, xs)
    n, c, h, w = _as2d(xs)
    _, _, oh, ow = _as2d(ctx.oshape())
    kh, kw, sh, sw, dh, dw, (pt, pb), (pl, pr) = geometry2d(kernel, strides, dil, pads)
    return Lowered([Stage("pool2d", {"kind": kind, "N": n, "C": c, "H": h, "W": w, "OH": oh, "OW": ow, "KH": kh, "KW": kw,
                                     "SH": sh, "SW": sw, "DH": dh, "DW": dw, "PT": pt, "PL": pl, "PB": pb, "PR": pr,
                                     "count_pad": int(ctx.attrs.get("count_include_pad", 0)), "T": ctx.oct(),
                                     "lowest": "-HUGE_VALF" if ctx.oct() == "float" else ("-HUGE_VAL" if ctx.oct() == "double"
                                                                                        else ("0" if ctx.oct().startswith("u") else f"{ctx.oct()[:-2].upper()}_MIN")),
                                     "p": ctx.attrs.get("p", 2)})], [0])


lowering("c", "MaxPool")(lambda ctx: _pool(ctx, "max"))
lowering("c", "AveragePool")(lambda ctx: _pool(ctx, "avg"))
lowering("c", "LpPool")(lambda ctx: _pool(ctx, "lp"))


def _global(ctx: LowerCtx, kind: str) -> Lowered:
    xs = ctx.shape(0)
    inner = int(np.prod(xs[2:], dtype=np.int64))
    return Lowered([Stage("global_pool", {"kind": kind, "NC": xs[0] * xs[1], "S": inner, "T": ctx.oct()})], [0])


lowering("c", "GlobalAveragePool")(lambda ctx: _global(ctx, "avg"))
lowering("c", "GlobalMaxPool")(lambda ctx: _global(ctx, "max"))


@lowering("c", "LRN")
def _lrn(ctx: LowerCtx) -> Lowered:
    xs = ctx.shape(0)
    size = ctx.attrs["size"]
    a = ctx.attrs
    return Lowered([Stage("lrn", {"N": xs[0], "C": xs[1], "S": int(np.prod(xs[2:], dtype=np.int64)), "lo": (size - 1) // 2,
                                  "hi": -(-(size - 1) // 2), "T": ctx.oct(),
                                  "scale": literal(a["alpha"] / size, "float32"), "bias": literal(a["bias"], "float32"),
                                  "beta": literal(a["beta"], "float32")})], [0])


def _softmax(ctx: LowerCtx, log: bool) -> Lowered:
    """Softmax along one axis (opset >= 13) or over the 2-D coercion at ``axis`` (opset < 13, default axis 1)."""
    xs = ctx.shape(0)
    ax = ctx.attrs["axis"]
    ax = (ax if ax is not None else (-1 if ctx.opset >= 13 else 1)) % len(xs)
    outer = int(np.prod(xs[:ax], dtype=np.int64))
    if ctx.opset >= 13:
        dim, inner = xs[ax], int(np.prod(xs[ax + 1:], dtype=np.int64))
    else:
        dim, inner = int(np.prod(xs[ax:], dtype=np.int64)), 1
    return Lowered([Stage("softmax", {"outer": outer, "D": dim, "inner": inner, "T": ctx.oct(), "log": log})], [0])


lowering("c", "Softmax")(lambda ctx: _softmax(ctx, False))
lowering("c", "LogSoftmax")(lambda ctx: _softmax(ctx, True))


@lowering("c", "LSTM")
def _lstm(ctx: LowerCtx) -> Lowered:
    a = ctx.attrs
    if a["activations"] not in (None, ["Sigmoid", "Tanh", "Tanh"] * 1, ["Sigmoid", "Tanh", "Tanh"] * 2) or a["clip"] is not None \
            or a["input_forget"] or a["layout"] or ctx.has(4):
        raise ctx.unsupported("LSTM with custom activations, clip, input_forget, layout or sequence_lens in C")
    xs, ws = ctx.shape(0), ctx.shape(1)
    seq, batch, inp = xs
    dirs, hidden = ws[0], (ctx.shape(2)[1] if ctx.attrs.get("_w_scale") is not None else ws[1] // 4)   # R k-major: [D, H, 4H]
    outs = [bool(o) for o in ctx.node.outputs] + [False] * (3 - len(ctx.node.outputs))
    w8 = ctx.attrs.get("_w_scale") is not None
    return Lowered([Stage("lstm", {"S": seq, "B": batch, "I": inp, "H": hidden, "D": dirs, "T": ctx.ct(0),
                                   "w8": w8, "w_scale": [repr(v) + "f" for v in ctx.attrs.get("_w_scale") or []],
                                   "r_scale": [repr(v) + "f" for v in ctx.attrs.get("_r_scale") or []],
                                   "reverse": [a["direction"] == "reverse" or (a["direction"] == "bidirectional" and d == 1) for d in range(dirs)],
                                   "has_b": ctx.has(3), "has_h0": ctx.has(5), "has_c0": ctx.has(6), "has_p": ctx.has(7),
                                   "has_y": outs[0], "has_yh": outs[1], "has_yc": outs[2]})],
                   [k for k in range(8) if ctx.has(k)])


__all__ = ["contiguous_strides"]

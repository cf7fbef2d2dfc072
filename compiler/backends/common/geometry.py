"""The window geometry of Conv, ConvTranspose and the pools as the GEMM-style kernels of every backend see it:
1-D and 2-D NCHW windows, a 1-D one as H = 1. Kernel sizes, strides, dilations and pads come from the same
formulas the reference kernels use (``bornrt.conv_geometry`` / ``convtranspose_geometry`` / ``pool_geometry``,
ONNX Conv, ConvTranspose and pooling specs: auto_pad, output_padding, ceil_mode), so every backend agrees with
the reference on padding.
"""
from __future__ import annotations

from ...pyrt import rt


def as2d(shape) -> tuple:
    """(N, C, W) -> (N, C, 1, W); an (N, C, H, W) shape unchanged."""
    return tuple(shape) if len(shape) == 4 else (shape[0], shape[1], 1, shape[2])


def _pair(v, nd: int, default) -> list:
    v = list(v) if v is not None else [default] * nd
    return v if nd == 2 else [default] + v


def window2d(kernel, strides, dil, pads) -> dict:
    """KH, KW, SH, SW, DH, DW, PT, PB, PL, PR of a 1-D or 2-D window (1-D as H = 1); ``pads`` as
    [(begin, end)] per spatial axis."""
    nd = len(kernel)
    kh, kw = kernel if nd == 2 else [1] + list(kernel)
    sh, sw = _pair(strides, nd, 1)
    dh, dw = _pair(dil, nd, 1)
    (pt, pb), (pl, pr) = pads if nd == 2 else [(0, 0)] + list(pads)
    return {"KH": kh, "KW": kw, "SH": sh, "SW": sw, "DH": dh, "DW": dw, "PT": pt, "PB": pb, "PL": pl, "PR": pr}


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


def _sizes(xs, oshape, g: int) -> dict:
    n, c, h, w = as2d(xs)
    _, m, oh, ow = as2d(oshape)
    return {"N": n, "C": c, "H": h, "W": w, "M": m, "OH": oh, "OW": ow, "G": g, "MG": m // g, "CG": c // g, "P": oh * ow}


def conv_window(attrs: dict, xs, ws, oshape) -> dict:
    """Geometry of a 1-D/2-D Conv of input ``xs`` (N, C, [H,] W), weight ``ws`` (M, C/G, [KH,] KW) and output
    ``oshape``: N, C, H, W, M, OH, OW, G, MG (= M/G), CG (= C/G), P (= OH*OW), the window's KH...PR, and
    ``owlo[kw]``/``owhi[kw]``, the output columns whose tap kw reads inside the input."""
    kernel, strides, dil, pads, _ = rt.conv_geometry(attrs, xs, ws)
    geo = {**_sizes(xs, oshape, attrs["group"]), **window2d(kernel, strides, dil, pads)}
    geo["owlo"], geo["owhi"] = tap_ranges(geo["KW"], geo["DW"], geo["PL"], geo["SW"], geo["OW"], geo["W"])
    return geo


def convtranspose_window(attrs: dict, xs, ws, oshape) -> dict:
    """Geometry of a 1-D/2-D ConvTranspose (weight (C, M/G, [KH,] KW)): the keys of :func:`conv_window` with
    ``iwlo[kw]``/``iwhi[kw]``, the input columns whose tap kw lands inside the output."""
    kernel, strides, dil, pads, _, _ = rt.convtranspose_geometry(attrs, xs, ws)
    geo = {**_sizes(xs, oshape, attrs["group"]), **window2d(kernel, strides, dil, pads)}
    geo["iwlo"], geo["iwhi"] = tap_ranges(geo["KW"], geo["DW"], geo["PL"], geo["SW"], geo["W"], geo["OW"])
    return geo


def pool_window(attrs: dict, xs, oshape) -> dict:
    """Geometry of a 1-D/2-D MaxPool/AveragePool/LpPool: N, C, H, W, OH, OW and the window's KH...PR."""
    kernel, strides, dil, pads, _, _ = rt.pool_geometry(attrs, xs)
    n, c, h, w = as2d(xs)
    _, _, oh, ow = as2d(oshape)
    return {"N": n, "C": c, "H": h, "W": w, "OH": oh, "OW": ow, **window2d(kernel, strides, dil, pads)}


__all__ = ["as2d", "window2d", "tap_ranges", "conv_window", "convtranspose_window", "pool_window"]

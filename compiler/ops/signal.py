"""Signal processing: DFT (opsets 17-20), STFT (17), Hann/Hamming/Blackman windows (17).

Source: ONNX spec. Complex values are carried as a trailing dimension of 2 (real, imaginary); a trailing 1
means a real signal. Windows: N = size when ``periodic`` else size - 1, w[n] = a0 - a1 cos(2 pi n / N) +
a2 cos(4 pi n / N) with (a0, a1, a2) = (0.5, 0.5, 0) Hann, (25/46, 21/46, 0) Hamming, (0.42, 0.5, 0.08) Blackman.
"""
from __future__ import annotations

import numpy as np

from ..ir.types import np_dtype, onnx_elem_to_name
from ..pyrt import rt
from .body import FunctionBody, attr_of
from .registry import decomposition, register


@register("DFT", attrs={"axis": 1, "inverse": 0, "onesided": 0}, value_inputs=(1, 2), versions="17-20 (axis input since 20)")
def ref_dft(ctx, x, dft_length=None, axis=None):
    """``dft`` of the Python runtime (runtime/python/bornrt.py), shared with the python target."""
    return rt.dft(ctx.attrs, ctx.opset, x, dft_length, axis)


@register("STFT", attrs={"onesided": 1}, value_inputs=(1, 3), versions="17-24")
def ref_stft(ctx, signal, frame_step, window=None, frame_length=None):
    """``stft`` of the Python runtime, shared with the python target."""
    return rt.stft(ctx.attrs, signal, frame_step, window, frame_length)


def _const_int(v, default):
    return int(np.asarray(v).ravel()[0]) if v is not None else default


def _dft_matrices(n_in: int, n: int, inverse: bool, onesided: bool, irfft: bool):
    """(C, S) float64 matrices [n_in, K] with y = a @ C - b @ S (real) and a @ S + b @ C (imaginary) for the
    input rows a (real) and b (imaginary part) (DFT-20: y[k] = sum_t x[t] exp(-+2 pi i k t / n), / n when
    inverse). irfft: K = n real outputs from n_in = n / 2 + 1 onesided bins, each bin but 0 and n / 2 counted
    twice (its conjugate), y = a @ C - b @ S."""
    t = np.arange(n_in)[:, None]
    if irfft:
        k = np.arange(n)[None, :]
        w = np.where((t == 0) | ((n % 2 == 0) & (t == n // 2)), 1.0, 2.0) / n
        ang = 2 * np.pi * t * k / n
        return w * np.cos(ang), w * np.sin(ang)
    k = np.arange(n // 2 + 1 if onesided else n)[None, :]
    ang = 2 * np.pi * t * k / n
    scale = 1.0 / n if inverse else 1.0
    return scale * np.cos(ang), (scale if inverse else -scale) * np.sin(ang)


@decomposition("DFT", values=True)
def decompose_dft(node, opset, in_types, values):
    """DFT with a constant length and axis as matrix products with cosine and sine tables: the axis moved
    last, zero padded or cut to the length, real and imaginary rows multiplied by [n, K] tables and stacked.
    O(n K) per row, as the C kernel; float32 tables for float32 signals."""
    x = in_types[0]
    if x is None or not x.is_static or x.dtype not in ("float32", "float16") or x.shape[-1] not in (1, 2):
        return None
    if len(values) > 1 and node.input[1] and values[1] is None or len(values) > 2 and node.input[2] and values[2] is None:
        return None
    rank = len(x.shape)
    ax = _const_int(values[2] if len(values) > 2 else None, attr_of(node, "axis", 1) if opset < 20 else -2) % rank
    inverse, onesided = bool(attr_of(node, "inverse", 0)), bool(attr_of(node, "onesided", 0))
    if ax == rank - 1:
        return None
    irfft = inverse and onesided
    n_in = x.shape[ax]
    n = _const_int(values[1] if len(values) > 1 else None, 2 * (n_in - 1) if irfft else n_in)
    rows = n // 2 + 1 if irfft else n                     # the input length the tables take
    b = FunctionBody()
    perm = [i for i in range(rank) if i != ax] + [ax]
    xt = b.op("Cast", [b.transpose("x", perm)], to=1)     # [..., C, n_in]
    if n_in < rows:
        pads = np.zeros(2 * rank, np.int64)
        pads[2 * rank - 1] = rows - n_in
        xt = b.op("Pad", [xt, b.const(pads)])
    elif n_in > rows:
        xt = b.op("Slice", [xt, b.const(np.array([0], np.int64)), b.const(np.array([rows], np.int64)),
                            b.const(np.array([-1], np.int64))])
    cm, sm = (b.const(m.astype(np.float32)) for m in _dft_matrices(rows, n, inverse, onesided, irfft))
    part = lambda k: b.op("Slice", [xt, b.const(np.array([k], np.int64)), b.const(np.array([k + 1], np.int64)),  # noqa: E731
                                    b.const(np.array([-2], np.int64))])
    re_a, im_a = b.op("MatMul", [part(0), cm]), b.op("MatMul", [part(0), sm])
    if x.shape[-1] == 2:
        re = b.op("Sub", [re_a, b.op("MatMul", [part(1), sm])])
        im = b.op("Add", [im_a, b.op("MatMul", [part(1), cm])])
    else:
        re, im = re_a, im_a
    y = re if irfft else b.op("Concat", [re, im], axis=-2)     # [..., 1 or 2, K]
    inv = [int(i) for i in np.argsort(perm)]
    b.op("Cast", [b.transpose(y, inv)], "y", to=10 if x.dtype == "float16" else 1)
    return b.function("DFT", ["x", "dft_length", "axis"][:len(node.input)], ["y"], opset=20)


@decomposition("STFT", values=True)
def decompose_stft(node, opset, in_types, values):
    """STFT with constant frame step and length: the frames gathered by a constant index table [frames, n],
    times the window, then a DFT along the frame axis (onesided as the attribute says)."""
    sig = in_types[0]
    if sig is None or not sig.is_static or values[1] is None:
        return None
    win = in_types[2] if len(in_types) > 2 and node.input[2] else None
    if len(in_types) > 3 and node.input[3] and values[3] is None or (win is None and not (len(in_types) > 3 and node.input[3])):
        return None
    step = _const_int(values[1], 1)
    n = _const_int(values[3] if len(values) > 3 else None, win.shape[0] if win is not None and win.shape else 0)
    frames = (sig.shape[1] - n) // step + 1
    if n <= 0 or frames <= 0:
        return None
    b = FunctionBody()
    idx = b.const((np.arange(frames)[:, None] * step + np.arange(n)[None, :]).astype(np.int64))
    fr = b.op("Gather", ["signal", idx], axis=1)                               # [batch, frames, n, C]
    if win is not None:
        w = b.op("Reshape", ["window", b.const(np.array([1, 1, n, 1], np.int64))])
        fr = b.op("Mul", [fr, w])
    b.op("DFT", [fr, "", b.const(np.array(2, np.int64))], "y", onesided=int(attr_of(node, "onesided", 1)))
    return b.function("STFT", ["signal", "frame_step", "window", "frame_length"][:len(node.input)], ["y"], opset=20)


def _window(name: str, coeffs: tuple):
    def kernel(ctx, size):
        n = int(np.asarray(size).ravel()[0])
        denom = n if ctx.attrs["periodic"] else n - 1
        k = np.arange(n, dtype=np.float64)
        a0, a1, a2 = coeffs
        w = a0 - a1 * np.cos(2 * np.pi * k / denom) + a2 * np.cos(4 * np.pi * k / denom)
        return w.astype(np_dtype(onnx_elem_to_name(ctx.attrs["output_datatype"])))
    kernel.__name__ = f"ref_{name.lower()}"
    register(name, attrs={"output_datatype": 1, "periodic": 1}, value_inputs=(0,), versions="17-24")(kernel)


_window("HannWindow", (0.5, 0.5, 0.0))
_window("HammingWindow", (25 / 46, 21 / 46, 0.0))
_window("BlackmanWindow", (0.42, 0.5, 0.08))


@register("MelWeightMatrix", attrs={"output_datatype": 1}, value_inputs=(0, 1, 2, 3, 4), versions="17-24")
def ref_melweightmatrix(ctx, num_mel_bins, dft_length, sample_rate, lower_edge, upper_edge):
    """[dft_length // 2 + 1, num_mel_bins] triangular filters on the mel scale (mel = 2595 log10(1 + f / 700)):
    num_mel_bins + 2 points evenly spaced in mel between the edges, mapped to spectrogram bins
    floor((dft_length + 1) * f / sample_rate); filter i rises from point i to point i + 1 and falls to point i + 2
    (ONNX spec, MelWeightMatrix-17)."""
    bins, n_fft, rate = int(num_mel_bins), int(dft_length), float(sample_rate)
    lo_mel = 2595 * np.log10(1 + float(lower_edge) / 700)
    hi_mel = 2595 * np.log10(1 + float(upper_edge) / 700)
    mel = lo_mel + (hi_mel - lo_mel) / (bins + 1) * np.arange(bins + 2)
    hz = 700 * (10 ** (mel / 2595) - 1)
    pts = np.floor((n_fft + 1) * hz / rate).astype(np.int64)
    w = np.zeros((n_fft // 2 + 1, bins))
    for i in range(bins):
        lo, mid, hi = pts[i], pts[i + 1], pts[i + 2]
        if mid == lo:
            w[mid, i] = 1
        else:
            for j in range(lo, mid + 1):
                w[j, i] = (j - lo) / (mid - lo)
        for j in range(mid, hi):
            w[j, i] = (hi - j) / (hi - mid)
    return w.astype(np_dtype(onnx_elem_to_name(ctx.attrs["output_datatype"])))

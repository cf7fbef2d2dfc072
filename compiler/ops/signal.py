"""Signal processing: DFT (opsets 17-20), STFT (17), Hann/Hamming/Blackman windows (17).

Source: ONNX spec. Complex values are carried as a trailing dimension of 2 (real, imaginary); a trailing 1
means a real signal. Windows: N = size when ``periodic`` else size - 1, w[n] = a0 - a1 cos(2 pi n / N) +
a2 cos(4 pi n / N) with (a0, a1, a2) = (0.5, 0.5, 0) Hann, (25/46, 21/46, 0) Hamming, (0.42, 0.5, 0.08) Blackman.
"""
from __future__ import annotations

import numpy as np

from ..ir.types import np_dtype, onnx_elem_to_name
from ..pyrt import rt
from .registry import register


@register("DFT", attrs={"axis": 1, "inverse": 0, "onesided": 0}, value_inputs=(1, 2), versions="17-20 (axis input since 20)")
def ref_dft(ctx, x, dft_length=None, axis=None):
    """``dft`` of the Python runtime (runtime/python/bornrt.py), shared with the python target."""
    return rt.dft(ctx.attrs, ctx.opset, x, dft_length, axis)


@register("STFT", attrs={"onesided": 1}, value_inputs=(1, 3), versions="17-24")
def ref_stft(ctx, signal, frame_step, window=None, frame_length=None):
    """``stft`` of the Python runtime, shared with the python target."""
    return rt.stft(ctx.attrs, signal, frame_step, window, frame_length)


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

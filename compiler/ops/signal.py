"""Signal processing: DFT (opsets 17-20), STFT (17), Hann/Hamming/Blackman windows (17).

Source: ONNX spec. Complex values are carried as a trailing dimension of 2 (real, imaginary); a trailing 1
means a real signal. Windows: N = size when ``periodic`` else size - 1, w[n] = a0 - a1 cos(2 pi n / N) +
a2 cos(4 pi n / N) with (a0, a1, a2) = (0.5, 0.5, 0) Hann, (25/46, 21/46, 0) Hamming, (0.42, 0.5, 0.08) Blackman.
"""
from __future__ import annotations

import numpy as np

from ..ir.types import np_dtype, onnx_elem_to_name
from .registry import register


def _to_complex(x: np.ndarray) -> np.ndarray:
    return x[..., 0].astype(np.float64) + (1j * x[..., 1].astype(np.float64) if x.shape[-1] == 2 else 0)


def _from_complex(c: np.ndarray, dtype) -> np.ndarray:
    return np.stack([c.real, c.imag], axis=-1).astype(dtype)


@register("DFT", attrs={"axis": 1, "inverse": 0, "onesided": 0}, value_inputs=(1, 2), versions="17-20 (axis input since 20)")
def ref_dft(ctx, x, dft_length=None, axis=None):
    ax = int(np.asarray(axis).ravel()[0]) if axis is not None else (ctx.attrs["axis"] if ctx.opset < 20 else -2)
    rank = x.ndim
    ax = ax % rank
    if ax == rank - 1:
        raise ValueError("DFT axis cannot be the trailing complex dimension")
    c = _to_complex(x)
    if ctx.attrs["inverse"] and ctx.attrs["onesided"]:    # irfft: a onesided spectrum in, a real signal out
        n = int(np.asarray(dft_length).ravel()[0]) if dft_length is not None else 2 * (c.shape[ax] - 1)
        return np.fft.irfft(c, n=n, axis=ax)[..., None].astype(x.dtype)
    n = int(np.asarray(dft_length).ravel()[0]) if dft_length is not None else c.shape[ax]
    y = np.fft.ifft(c, n=n, axis=ax) if ctx.attrs["inverse"] else np.fft.fft(c, n=n, axis=ax)
    if ctx.attrs["onesided"]:
        y = np.take(y, np.arange(n // 2 + 1), axis=ax)
    return _from_complex(y, x.dtype)


@register("STFT", attrs={"onesided": 1}, value_inputs=(1, 3), versions="17-24")
def ref_stft(ctx, signal, frame_step, window=None, frame_length=None):
    step = int(np.asarray(frame_step).ravel()[0])
    c = _to_complex(signal)                                           # (batch, length)
    n = int(np.asarray(frame_length).ravel()[0]) if frame_length is not None else window.shape[0]
    w = window.astype(np.float64) if window is not None else np.ones(n)
    frames = (c.shape[1] - n) // step + 1
    idx = np.arange(frames)[:, None] * step + np.arange(n)[None, :]
    y = np.fft.fft(c[:, idx] * w, axis=-1)                            # (batch, frames, n)
    if ctx.attrs["onesided"]:
        y = y[..., : n // 2 + 1]
    return _from_complex(y, signal.dtype)


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

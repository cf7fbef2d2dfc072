"""Resize (opsets 10-24) and Upsample (7-9), computed separably: one interpolation per resized axis.

For each axis the output coordinate is mapped back to an input coordinate with the spec's
``coordinate_transformation_mode`` formula, then sampled with nearest (four rounding modes), linear or cubic
(Keys kernel with coefficient ``cubic_coeff_a``) weights; ``antialias`` widens the kernel by 1/scale when
downscaling, ``exclude_outside`` drops taps outside the input and renormalises, ``tf_crop_and_resize`` uses
``roi`` and writes ``extrapolation_value`` outside it. Source: ONNX spec, Resize.
"""
from __future__ import annotations

import math

import numpy as np

from .registry import register

_RESIZE_ATTRS = {"antialias": 0, "axes": None, "coordinate_transformation_mode": "half_pixel", "cubic_coeff_a": -0.75,
                 "exclude_outside": 0, "extrapolation_value": 0.0, "keep_aspect_ratio_policy": "stretch",
                 "mode": "nearest", "nearest_mode": "round_prefer_floor"}


def source_coords(mode: str, out_len: int, in_len: int, scale: float, roi=(0.0, 1.0)) -> np.ndarray:
    """Input coordinate of each output index (spec: coordinate_transformation_mode)."""
    x = np.arange(out_len, dtype=np.float64)
    if mode == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        adj = out_len / (scale * in_len)
        return in_len / 2 * (1 - adj) + (x + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if out_len > 1 else np.zeros_like(x)
    if mode == "align_corners":   # the spec's length_resized is scale * length_original (a float)
        return x * (in_len - 1) / (scale * in_len - 1) if out_len > 1 else np.zeros_like(x)
    if mode == "asymmetric":
        return x / scale
    if mode == "tf_crop_and_resize":
        s, e = roi
        if out_len > 1:
            return s * (in_len - 1) + x * (e - s) * (in_len - 1) / (out_len - 1)
        return np.full_like(x, 0.5 * (s + e) * (in_len - 1))
    raise ValueError(f"unknown coordinate_transformation_mode {mode!r}")


def _nearest(xs: np.ndarray, mode: str) -> np.ndarray:
    if mode == "round_prefer_floor":
        return np.ceil(xs - 0.5)
    if mode == "round_prefer_ceil":
        return np.floor(xs + 0.5)
    if mode == "floor":
        return np.floor(xs)
    if mode == "ceil":
        return np.ceil(xs)
    raise ValueError(f"unknown nearest_mode {mode!r}")


def _cubic(t: np.ndarray, a: float) -> np.ndarray:
    t = np.abs(t)
    return np.where(t <= 1, ((a + 2) * t - (a + 3)) * t * t + 1,
                    np.where(t < 2, ((a * t - 5 * a) * t + 8 * a) * t - 4 * a, 0.0))


def interp_matrix(xs: np.ndarray, in_len: int, attrs: dict, scale: float) -> np.ndarray:
    """Dense (out, in) weights for linear/cubic sampling at input coordinates ``xs``."""
    cubic = attrs["mode"] == "cubic"
    support = 2.0 if cubic else 1.0
    sf = min(scale, 1.0) if attrs["antialias"] else 1.0
    radius = support / sf
    lo = np.floor(xs - radius).astype(np.int64) + 1
    taps = lo[:, None] + np.arange(int(math.ceil(2 * radius)) + 1)[None, :]
    t = (xs[:, None] - taps) * sf
    w = _cubic(t, attrs["cubic_coeff_a"]) if cubic else np.maximum(0.0, 1 - np.abs(t))
    inside = (taps >= 0) & (taps < in_len)
    if attrs["exclude_outside"]:
        w = np.where(inside, w, 0.0)
    if attrs["exclude_outside"] or attrs["antialias"]:
        s = w.sum(axis=1, keepdims=True)
        w = w / np.where(s == 0, 1, s)
    m = np.zeros((len(xs), in_len))
    rows = np.repeat(np.arange(len(xs)), taps.shape[1])
    np.add.at(m, (rows, np.clip(taps, 0, in_len - 1).ravel()), w.ravel())
    return m


def resize_nd(x: np.ndarray, out_shape, scales, attrs: dict, roi=None) -> np.ndarray:
    """Resize ``x`` to ``out_shape`` with per-axis ``scales`` (floats) and ``roi`` (starts+ends or None)."""
    y = x.astype(np.float64) if attrs["mode"] != "nearest" else x
    rank = x.ndim
    extrap = np.zeros(out_shape, dtype=bool) if attrs["coordinate_transformation_mode"] == "tf_crop_and_resize" else None
    for ax in range(rank):
        in_len, out_len, sc = x.shape[ax], int(out_shape[ax]), float(scales[ax])
        r = (float(roi[ax]), float(roi[ax + rank])) if roi is not None and len(roi) == 2 * rank else (0.0, 1.0)
        if in_len == out_len and sc == 1.0 and attrs["coordinate_transformation_mode"] != "tf_crop_and_resize":
            continue
        xs = source_coords(attrs["coordinate_transformation_mode"], out_len, in_len, sc, r)
        if extrap is not None:
            bad = (xs < 0) | (xs > in_len - 1)
            shape = [1] * rank
            shape[ax] = out_len
            extrap |= bad.reshape(shape)
        if attrs["mode"] == "nearest":
            idx = np.clip(_nearest(xs, attrs["nearest_mode"]), 0, in_len - 1).astype(np.int64)
            y = np.take(y, idx, axis=ax)
        else:
            m = interp_matrix(xs, in_len, attrs, sc)
            y = np.moveaxis(np.tensordot(m, y, axes=([1], [ax])), 0, ax)
    if extrap is not None:
        y = np.where(extrap, attrs["extrapolation_value"], y)
    return np.asarray(y).astype(x.dtype, copy=False)


@register("Resize", attrs=_RESIZE_ATTRS, value_inputs=(1, 2, 3), versions="10-24 (v10 rewritten to the v11 inputs)")
def ref_resize(ctx, x, roi=None, scales=None, sizes=None):
    a = ctx.attrs
    rank = x.ndim
    axes = [ax % rank for ax in a["axes"]] if a["axes"] is not None else list(range(rank))
    full_scales = [1.0] * rank
    out = list(x.shape)
    if roi is not None and roi.size and a["axes"] is not None:
        full_roi = [0.0] * rank + [1.0] * rank
        for k, ax in enumerate(axes):
            full_roi[ax], full_roi[ax + rank] = roi[k], roi[k + len(axes)]
        roi = np.array(full_roi)
    if sizes is not None and sizes.size:
        sizes = [int(s) for s in sizes]
        if a["keep_aspect_ratio_policy"] != "stretch":
            ratios = [sizes[k] / x.shape[ax] for k, ax in enumerate(axes)]
            s = min(ratios) if a["keep_aspect_ratio_policy"] == "not_larger" else max(ratios)
            sizes = [int(math.floor(s * x.shape[ax] + 0.5)) for ax in axes]
            for ax in axes:
                full_scales[ax] = s
        for k, ax in enumerate(axes):
            out[ax] = sizes[k]
            if a["keep_aspect_ratio_policy"] == "stretch":
                full_scales[ax] = sizes[k] / x.shape[ax]
    elif scales is not None and scales.size:
        for k, ax in enumerate(axes):
            full_scales[ax] = float(scales[k])
            out[ax] = int(math.floor(x.shape[ax] * float(scales[k])))
    return resize_nd(x, out, full_scales, a, roi if roi is not None and roi.size else None)


@register("Upsample", attrs={"mode": "nearest"}, value_inputs=(1,), versions="7-9 (as Resize, asymmetric)")
def ref_upsample(ctx, x, scales):
    a = dict(_RESIZE_ATTRS, mode=ctx.attrs["mode"], coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    a["mode"] = "linear" if a["mode"] in ("linear", "bilinear") else a["mode"]
    out = [int(math.floor(d * float(s))) for d, s in zip(x.shape, scales)]
    return resize_nd(x, out, [float(s) for s in scales], a)

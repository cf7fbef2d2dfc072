"""Resize (and Upsample) as every backend lowers it: at compile time, from the reference's formulas.

- Nearest Resize without ``tf_crop_and_resize``: one source index per output position and axis
  (:func:`nearest_indices`), a gather the backends spell as a remap.
- Everything else (linear, cubic, antialiased, ``tf_crop_and_resize``): separable, one pass per axis that
  changes (:func:`axis_passes`). Each pass is a sparse interpolation matrix [out, in] stored as ``taps`` (index,
  weight) pairs per output row; intermediate results of a multi-pass Resize live in the node's workspace.

Coordinates and weights are ``bornrt.source_coords`` / ``interp_matrix`` / ``nearest_index`` (ONNX Resize,
opset 19: coordinate_transformation_mode, nearest_mode, cubic_coeff_a, exclude_outside, antialias), so the
kernels agree with the reference interpreter.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...pyrt import rt
from .lowering import LowerCtx, contiguous_strides


@dataclass
class AxisPass:
    """One separable pass along ``axis`` of a tensor whose shape is ``outer`` x ``din`` x ``inner`` before and
    ``outer`` x ``dout`` x ``inner`` after it: output row j is ``sum_t w[j, t] * x[idx[j, t]]`` (``idx``: int64
    [dout, taps], ``w``: float64 [dout, taps], zero-padded); ``extrap`` (uint8 [dout]) marks the rows that take
    the extrapolation value (``tf_crop_and_resize``), or is None."""

    axis: int
    din: int
    dout: int
    outer: int
    inner: int
    taps: int
    idx: np.ndarray
    w: np.ndarray
    extrap: np.ndarray | None


def resize_constants(ctx: LowerCtx) -> tuple[list, list, object]:
    """(output shape, full per-axis scales, full roi or None) of a Resize whose roi, scales and sizes are
    constants (``bornrt.resize_plan``). Raises UnsupportedOpError for run-time ones, or when the plan's output
    shape is not the node's."""
    a = ctx.attrs
    if any(ctx.has(k) and ctx.consts[k] is None for k in (1, 2, 3)):
        raise ctx.unsupported("run-time roi, scales or sizes")
    xs, out = list(ctx.shape(0)), list(ctx.oshape())
    consts = [ctx.consts[k] if ctx.has(k) else None for k in (1, 2, 3)]
    plan_out, scales, roi = rt.resize_plan(a, xs, *consts)
    if list(plan_out) != out:
        raise ctx.unsupported("output shape differs from the plan")
    return out, list(scales), roi


def nearest_indices(attrs: dict, xs: list, out: list, scales) -> list[np.ndarray]:
    """Per axis, the source position (int64 [out[a]], clipped to [0, xs[a])) of each output position."""
    tables = []
    for a, (d, o) in enumerate(zip(xs, out)):
        if d == o and scales[a] == 1.0:
            tables.append(np.arange(d, dtype=np.int64))
            continue
        coords = rt.source_coords(attrs["coordinate_transformation_mode"], o, d, float(scales[a]))
        tables.append(np.clip(rt.nearest_index(coords, attrs["nearest_mode"]), 0, d - 1).astype(np.int64))
    return tables


def nearest_offsets(attrs: dict, xs: list, out: list, scales) -> list[list[int]]:
    """:func:`nearest_indices` as element offsets into a C-order input (index x the axis's stride)."""
    st = contiguous_strides(xs)
    return [[int(i) * st[a] for i in idx] for a, idx in enumerate(nearest_indices(attrs, xs, out, scales))]


def _matrices(attrs: dict, xs: list, out: list, scales, roi) -> list[tuple]:
    rank = len(xs)
    mode = attrs["coordinate_transformation_mode"]
    found = []
    for a in range(rank):
        if xs[a] == out[a] and scales[a] == 1.0 and mode != "tf_crop_and_resize":
            continue
        d, o = xs[a], out[a]
        r = (float(roi[a]), float(roi[a + rank])) if roi is not None and len(roi) == 2 * rank else (0.0, 1.0)
        coords = rt.source_coords(mode, o, d, float(scales[a]), r)
        if attrs["mode"] == "nearest":
            m = np.zeros((o, d))
            m[np.arange(o), np.clip(rt.nearest_index(coords, attrs["nearest_mode"]), 0, d - 1).astype(np.int64)] = 1.0
        else:
            m = rt.interp_matrix(coords, d, attrs, float(scales[a]))
        extrap = ((coords < 0) | (coords > d - 1)).astype(np.uint8) if mode == "tf_crop_and_resize" else None
        found.append((a, m, extrap))
    return found


def axis_passes(attrs: dict, xs: list, out: list, scales, roi) -> tuple[list[AxisPass], int]:
    """The separable passes of a Resize from ``xs`` to ``out`` (axes that do not change are skipped, so an
    empty list is a copy), and the elements of the largest intermediate result (one of the two halves of the
    ping-pong workspace; 0 for a single pass)."""
    passes, cur = [], list(xs)
    for a, m, extrap in _matrices(attrs, xs, out, scales, roi):
        o, d = m.shape
        taps = max(int((m != 0).sum(axis=1).max()) if m.size else 1, 1)
        idx = np.zeros((o, taps), np.int64)
        w = np.zeros((o, taps), np.float64)
        for j, row in enumerate(m):
            nz = np.flatnonzero(row)[:taps]
            idx[j, :len(nz)] = nz
            w[j, :len(nz)] = row[nz]
        passes.append(AxisPass(a, d, o, int(np.prod(cur[:a], dtype=np.int64)), int(np.prod(cur[a + 1:], dtype=np.int64)),
                               taps, idx, w, extrap))
        cur[a] = o
    sizes = [p.outer * p.dout * p.inner for p in passes]
    return passes, max(sizes[:-1], default=0)


__all__ = ["AxisPass", "resize_constants", "nearest_indices", "nearest_offsets", "axis_passes"]

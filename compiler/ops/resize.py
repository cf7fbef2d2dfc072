"""Resize (opsets 10-24) and Upsample (7-9).

The numpy computation (coordinate mapping, nearest/linear/cubic weights, antialias, roi) lives in the Python
runtime, runtime/python/bornrt.py (``resize``, ``upsample``), so the reference interpreter and the python
target compute it one way; see that file for the algorithm and its source (ONNX spec, Resize).
"""
from __future__ import annotations

from ..pyrt import rt
from .registry import register


@register("Resize", attrs=dict(rt.RESIZE_ATTRS), value_inputs=(1, 2, 3), versions="10-24 (v10 rewritten to the v11 inputs)")
def ref_resize(ctx, x, roi=None, scales=None, sizes=None):
    return rt.resize(ctx.attrs, x, roi, scales, sizes)


@register("Upsample", attrs={"mode": "nearest"}, value_inputs=(1,), versions="7-9 (as Resize, asymmetric)")
def ref_upsample(ctx, x, scales):
    return rt.upsample(ctx.attrs["mode"], x, scales)

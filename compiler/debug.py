"""Mismatch bisector (``bornc debug``): find the first node whose output diverges between two runs.

The model runs at ``--opt-level 0`` (the reference) and at the chosen level, recording every intermediate
value. Values that exist in both (passes keep the names of the values they preserve; a fused node's output is
the last fused op's output) are compared in the optimized model's schedule order; the first whose error exceeds
``atol + rtol * |reference|`` is reported with its node, its inputs' statistics and the error.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .interpreter import run
from .ir.graph import Model
from .passes.pipeline import optimize


@dataclass
class Divergence:
    """The first diverging value: node name and op, value name, max abs error, and input statistics."""

    node: str
    op: str
    value: str
    max_abs_err: float
    inputs: list
    compared: int


def _stats(v) -> dict:
    a = np.asarray(v)
    if a.dtype.kind not in "biuf" or a.size == 0:
        return {"dtype": str(a.dtype), "shape": list(a.shape)}
    f = a.astype(np.float64)
    return {"dtype": str(a.dtype), "shape": list(a.shape), "min": float(f.min()), "max": float(f.max()),
            "mean": float(f.mean()), "std": float(f.std()), "nan": int(np.isnan(f).sum())}


def _record(model: Model, feeds) -> tuple[dict, list]:
    values: dict = dict(feeds)
    values.update(model.graph.constants)
    order = []

    def observe(node, outs):
        for name, v in zip(node.outputs, outs):
            if name:
                values[name] = v
        order.append(node)
    run(model, feeds, observer=observe)
    return values, order


def bisect(model: Model, feeds, opt_level: int = 2, rtol: float = 1e-4, atol: float = 1e-5,
           candidate: Model | None = None) -> Divergence | None:
    """Compare ``model`` (as imported) with its optimized form (or ``candidate``) value by value; returns the
    first divergence beyond tolerance, or None when every shared value agrees."""
    ref, _ = _record(model, feeds)
    cand_model = candidate if candidate is not None else optimize(model, opt_level)
    got, order = _record(cand_model, feeds)
    compared = 0
    for node in order:
        for name in node.outputs:
            if not name or name not in ref or not isinstance(ref[name], np.ndarray):
                continue
            a, b = np.asarray(ref[name]), np.asarray(got[name])
            compared += 1
            if a.shape != b.shape:
                return Divergence(node.name, node.op, name, float("inf"), [], compared)
            if a.dtype.kind not in "biuf":
                continue
            err = np.abs(a.astype(np.float64) - b.astype(np.float64))
            bad = ~(err <= atol + rtol * np.abs(a.astype(np.float64))) & ~(np.isnan(a) & np.isnan(b))
            if np.any(bad):
                ins = [{"name": i, **_stats(got[i])} for i in node.inputs if i and i in got]
                return Divergence(node.name, node.op, name, float(np.nanmax(err)), ins, compared)
    return None

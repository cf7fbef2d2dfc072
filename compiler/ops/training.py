"""Optimizer updates of ai.onnx.preview.training (reference only): Adagrad, Momentum, Adam (version 1).

Source: ONNX spec text (docs/Operators.md, ai.onnx.preview.training). Inputs: learning rate R and update count T
(scalars), then the tensors X, their gradients G and the optimizer's accumulators; outputs: the new tensors, then
the new accumulators. Computed in float64, written in the inputs' types.
"""
from __future__ import annotations

import numpy as np

from .registry import register

TRAINING = "ai.onnx.preview.training"


def _groups(args, k: int) -> list[list]:
    """The variadic tail split into ``k`` equal groups (X..., G..., V..., ...)."""
    n = len(args) // k
    return [list(args[i * n:(i + 1) * n]) for i in range(k)]


@register("Adagrad", domain=TRAINING, attrs={"decay_factor": 0.0, "epsilon": 1e-6, "norm_coefficient": 0.0},
          outputs=None, versions="preview.training 1")
def ref_adagrad(ctx, r, t, *args):
    a = ctx.attrs
    xs, gs, hs = _groups(args, 3)
    lr = float(r) / (1 + float(t) * a["decay_factor"])
    new_x, new_h = [], []
    for x, g, h in zip(xs, gs, hs):
        gr = a["norm_coefficient"] * x.astype(np.float64) + g
        hn = h + gr * gr
        new_x.append((x - lr * gr / (np.sqrt(hn) + a["epsilon"])).astype(x.dtype))
        new_h.append(hn.astype(h.dtype))
    return tuple(new_x + new_h)


@register("Momentum", domain=TRAINING, attrs={"alpha": 0.0, "beta": 0.0, "mode": "standard", "norm_coefficient": 0.0},
          outputs=None, versions="preview.training 1")
def ref_momentum(ctx, r, t, *args):
    a = ctx.attrs
    xs, gs, vs = _groups(args, 3)
    beta = a["beta"] if int(t) > 0 else 1.0
    new_x, new_v = [], []
    for x, g, v in zip(xs, gs, vs):
        gr = a["norm_coefficient"] * x.astype(np.float64) + g
        vn = a["alpha"] * v + beta * gr
        step = gr + a["alpha"] * vn if a["mode"] == "nesterov" else vn
        new_x.append((x - float(r) * step).astype(x.dtype))
        new_v.append(vn.astype(v.dtype))
    return tuple(new_x + new_v)


@register("Adam", domain=TRAINING, attrs={"alpha": 0.9, "beta": 0.999, "epsilon": 1e-6, "norm_coefficient": 0.0,
                                          "norm_coefficient_post": 0.0}, outputs=None, versions="preview.training 1")
def ref_adam(ctx, r, t, *args):
    a = ctx.attrs
    xs, gs, vs, hs = _groups(args, 4)
    tt = int(t)
    lr = float(r) * np.sqrt(1 - a["beta"] ** tt) / (1 - a["alpha"] ** tt) if tt > 0 else float(r)
    new_x, new_v, new_h = [], [], []
    for x, g, v, h in zip(xs, gs, vs, hs):
        gr = a["norm_coefficient"] * x.astype(np.float64) + g
        vn = a["alpha"] * v + (1 - a["alpha"]) * gr
        hn = a["beta"] * h + (1 - a["beta"]) * gr * gr
        xn = (x - lr * vn / (np.sqrt(hn) + a["epsilon"])) * (1 - a["norm_coefficient_post"])
        new_x.append(xn.astype(x.dtype))
        new_v.append(vn.astype(v.dtype))
        new_h.append(hn.astype(h.dtype))
    return tuple(new_x + new_v + new_h)

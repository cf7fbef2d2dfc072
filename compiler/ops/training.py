"""Optimizer updates of ai.onnx.preview.training: Adagrad, Momentum, Adam (version 1).

Source: ONNX spec text (docs/Operators.md, ai.onnx.preview.training). Inputs: learning rate R and update count T
(scalars), then the tensors X, their gradients G and the optimizer's accumulators; outputs: the new tensors, then
the new accumulators. The reference computes in float64 and writes the inputs' types; the decompositions (for
the compiled targets) compute in the tensors' own float type.
"""
from __future__ import annotations

import numpy as np

from ..ir.types import TensorType, np_dtype
from .body import FunctionBody, attr_of
from .registry import decomposition, register

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


# ---------------------------------------------------------------------------------------------------- decompositions
def _training_body(node, in_types, k: int):
    """(body, dtype, groups): a FunctionBody over inputs i0 (R), i1 (T), then ``k`` groups of tensors, with R
    and T as 0-d values of the tensors' float type; None when the tensors are not one float type."""
    tail = in_types[2:]
    if not tail or len(tail) % k or not all(isinstance(t, TensorType) and t.dtype in ("float32", "float64")
                                            for t in tail):
        return None
    dt = tail[0].dtype
    n = len(tail) // k
    b = FunctionBody()
    to = 1 if dt == "float32" else 11
    shape = b.const(np.zeros(0, np.int64))
    r = b.op("Reshape", [b.op("Cast", ["i0"], to=to), shape])
    t = b.op("Reshape", [b.op("Cast", ["i1"], to=to), shape])
    groups = [[f"i{2 + g * n + j}" for j in range(n)] for g in range(k)]
    return b, np_dtype(dt), r, t, groups


def _gradient(b, x, g, norm, dt) -> str:
    """g + norm_coefficient * x (the gradient with the L2 term)."""
    return g if norm == 0 else b.op("Add", [g, b.op("Mul", [x, b.scalar(norm, dt)])])


@decomposition("Adagrad", TRAINING)
def decompose_adagrad(node, opset, in_types):
    """r' = R / (1 + T * decay); g' = G + norm * X; H' = H + g'^2; X' = X - r' g' / (sqrt(H') + eps)."""
    got = _training_body(node, in_types, 3)
    if got is None:
        return None
    b, dt, r, t, (xs, gs, hs) = got
    decay, eps, norm = (attr_of(node, "decay_factor", 0.0), attr_of(node, "epsilon", 1e-6),
                        attr_of(node, "norm_coefficient", 0.0))
    lr = b.op("Div", [r, b.op("Add", [b.scalar(1, dt), b.op("Mul", [t, b.scalar(decay, dt)])])])
    n = len(xs)
    for j, (x, g, h) in enumerate(zip(xs, gs, hs)):
        gr = _gradient(b, x, g, norm, dt)
        hn = b.op("Add", [h, b.op("Mul", [gr, gr])], f"o{n + j}")
        step = b.op("Div", [b.op("Mul", [lr, gr]), b.op("Add", [b.op("Sqrt", [hn]), b.scalar(eps, dt)])])
        b.op("Sub", [x, step], f"o{j}")
    return b.function("Adagrad", [f"i{k}" for k in range(len(in_types))], [f"o{k}" for k in range(2 * n)],
                      domain=TRAINING)


@decomposition("Momentum", TRAINING)
def decompose_momentum(node, opset, in_types):
    """g' = G + norm * X; V' = alpha V + beta' g' (beta' = beta, 1 on the first update T = 0);
    X' = X - R V' (standard) or X - R (g' + alpha V') (nesterov)."""
    got = _training_body(node, in_types, 3)
    if got is None:
        return None
    b, dt, r, t, (xs, gs, vs) = got
    alpha, beta, norm = attr_of(node, "alpha", 0.0), attr_of(node, "beta", 0.0), attr_of(node, "norm_coefficient", 0.0)
    nesterov = attr_of(node, "mode", "standard") == "nesterov"
    bt = b.op("Where", [b.op("Greater", [t, b.scalar(0, dt)]), b.scalar(beta, dt), b.scalar(1, dt)])
    n = len(xs)
    for j, (x, g, v) in enumerate(zip(xs, gs, vs)):
        gr = _gradient(b, x, g, norm, dt)
        vn = b.op("Add", [b.op("Mul", [v, b.scalar(alpha, dt)]), b.op("Mul", [gr, bt])], f"o{n + j}")
        step = b.op("Add", [gr, b.op("Mul", [vn, b.scalar(alpha, dt)])]) if nesterov else vn
        b.op("Sub", [x, b.op("Mul", [r, step])], f"o{j}")
    return b.function("Momentum", [f"i{k}" for k in range(len(in_types))], [f"o{k}" for k in range(2 * n)],
                      domain=TRAINING)


@decomposition("Adam", TRAINING)
def decompose_adam(node, opset, in_types):
    """g' = G + norm * X; V' = alpha V + (1 - alpha) g'; H' = beta H + (1 - beta) g'^2; r' = R sqrt(1 - beta^T) /
    (1 - alpha^T) when T > 0, else R; X' = (X - r' V' / (sqrt(H') + eps)) (1 - norm_post)."""
    got = _training_body(node, in_types, 4)
    if got is None:
        return None
    b, dt, r, t, (xs, gs, vs, hs) = got
    alpha, beta, eps = attr_of(node, "alpha", 0.9), attr_of(node, "beta", 0.999), attr_of(node, "epsilon", 1e-6)
    norm, post = attr_of(node, "norm_coefficient", 0.0), attr_of(node, "norm_coefficient_post", 0.0)
    one = b.scalar(1, dt)
    bias = b.op("Div", [b.op("Sqrt", [b.op("Sub", [one, b.op("Pow", [b.scalar(beta, dt), t])])]),
                        b.op("Sub", [one, b.op("Pow", [b.scalar(alpha, dt), t])])])
    lr = b.op("Where", [b.op("Greater", [t, b.scalar(0, dt)]), b.op("Mul", [r, bias]), r])
    n = len(xs)
    for j, (x, g, v, h) in enumerate(zip(xs, gs, vs, hs)):
        gr = _gradient(b, x, g, norm, dt)
        vn = b.op("Add", [b.op("Mul", [v, b.scalar(alpha, dt)]), b.op("Mul", [gr, b.scalar(1 - alpha, dt)])],
                  f"o{n + j}")
        hn = b.op("Add", [b.op("Mul", [h, b.scalar(beta, dt)]), b.op("Mul", [b.op("Mul", [gr, gr]),
                                                                            b.scalar(1 - beta, dt)])], f"o{2 * n + j}")
        step = b.op("Div", [b.op("Mul", [lr, vn]), b.op("Add", [b.op("Sqrt", [hn]), b.scalar(eps, dt)])])
        b.op("Mul", [b.op("Sub", [x, step]), b.scalar(1 - post, dt)], f"o{j}")
    return b.function("Adam", [f"i{k}" for k in range(len(in_types))], [f"o{k}" for k in range(3 * n)],
                      domain=TRAINING)

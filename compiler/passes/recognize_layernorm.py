"""recognize_layernorm: the decomposed layer normalization

    mean = ReduceMean(x, axes); d = x - mean; var = ReduceMean(d*d or d^2, axes);
    y = d / Sqrt(var + eps) [* gamma] [+ beta]

over the trailing axes becomes LayerNormalization(x, gamma, beta, axis, epsilon) (ONNX spec,
LayerNormalization-17, whose function body is this same computation). gamma/beta must be constants.
"""
from __future__ import annotations

import numpy as np

from ..ir.graph import Model
from ..ir.types import TensorType
from .eliminate_dead_code import eliminate_dead_code
from .util import clone, fresh_name, target_lowers, use_counts


def _axes(g, node):
    a = g.constants.get(node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] else None
    return None if a is None else sorted(int(v) for v in np.asarray(a).ravel())


def _const_scalar(g, name):
    v = g.constants.get(name)
    return float(v.ravel()[0]) if v is not None and v.size == 1 else None


def _affine_tail(g, chain: list, uses) -> tuple:
    """Extend ``chain`` with a following Mul by a constant (gamma) and Add of a constant (beta), if present."""
    found = []
    for op in ("Mul", "Add"):
        out = chain[-1].outputs[0]
        nxt = [n for n in g.nodes if out in n.inputs]
        if uses[out] != 1 or len(nxt) != 1 or nxt[0].op != op:
            break
        other = [i for i in nxt[0].inputs if i != out]
        if len(other) != 1 or other[0] not in g.constants:
            break
        chain.append(nxt[0])
        found.append(other[0])
    found += [None] * (2 - len(found))
    return found[0], found[1]


def _param(g, name, shape: tuple, fill: float, dtype: str, hint: str):
    """A constant of exactly ``shape`` holding gamma/beta (broadcast) or ``fill``; None if it cannot broadcast."""
    arr = np.full(shape, fill, dtype=np.dtype(dtype))
    if name:
        src = np.asarray(g.constants[name])
        while src.ndim > len(shape) and src.shape[0] == 1:
            src = src[0]
        try:
            arr = np.broadcast_to(src, shape)
        except ValueError:
            return None
    new = fresh_name(g, f"{hint or 'layernorm'}_{'gamma' if fill == 1.0 else 'beta'}")
    g.constants[new] = np.ascontiguousarray(arr).astype(np.dtype(dtype))
    g.types[new] = TensorType.of(g.constants[new])
    return new


def recognize_layernorm(model: Model, target=None) -> Model:
    """See the module docstring; nothing changes when ``target`` cannot lower LayerNormalization."""
    if not target_lowers(target, "LayerNormalization"):
        return model
    m = clone(model)
    g = m.graph
    prod = g.producers()
    uses = use_counts(g)
    dead = set()
    for div in list(g.nodes):
        if div.op != "Div":
            continue
        d, sq = prod.get(div.inputs[0]), prod.get(div.inputs[1])
        if not d or not sq or d.op != "Sub" or sq.op != "Sqrt":
            continue
        add_eps = prod.get(sq.inputs[0])
        if not add_eps or add_eps.op != "Add":
            continue
        var_i = 0 if add_eps.inputs[1] in g.constants else 1
        eps = _const_scalar(g, add_eps.inputs[1 - var_i])
        var = prod.get(add_eps.inputs[var_i])
        mean = prod.get(d.inputs[1])
        if eps is None or not var or var.op != "ReduceMean" or not mean or mean.op != "ReduceMean" or mean.inputs[0] != d.inputs[0]:
            continue
        sqr = prod.get(var.inputs[0])
        ok_sq = sqr is not None and ((sqr.op == "Pow" and sqr.inputs[0] == d.outputs[0] and _const_scalar(g, sqr.inputs[1]) == 2.0)
                                     or (sqr.op == "Mul" and sqr.inputs == [d.outputs[0], d.outputs[0]]))
        x = d.inputs[0]
        tx = g.types.get(x)
        if not ok_sq or not isinstance(tx, TensorType) or not tx.is_static:
            continue
        rank = len(tx.shape)
        ax_m, ax_v = _axes(g, mean), _axes(g, var)
        if ax_m is None or ax_v is None or [a % rank for a in ax_m] != [a % rank for a in ax_v]:
            continue
        axes = [a % rank for a in ax_m]
        if axes != list(range(axes[0], rank)):
            continue
        if uses[d.outputs[0]] != (3 if sqr.op == "Mul" else 2) or uses[sqr.outputs[0]] != 1 or uses[var.outputs[0]] != 1 or uses[mean.outputs[0]] != 1 \
                or uses[add_eps.outputs[0]] != 1 or uses[sq.outputs[0]] != 1:
            continue
        chain = [mean, d, sqr, var, add_eps, sq, div]
        gamma, beta = _affine_tail(g, chain, uses)
        norm_shape = tuple(tx.shape[axes[0]:])
        inputs = [_param(g, gamma, norm_shape, 1.0, tx.dtype, div.name), _param(g, beta, norm_shape, 0.0, tx.dtype, div.name)]
        if None in inputs:
            continue
        tail = chain[-1]
        dead.update(id(n) for n in chain[:-1])
        tail.op, tail.domain, tail.inputs, tail.outputs = "LayerNormalization", "", [x] + inputs, tail.outputs[:1]
        tail.attrs = {"axis": axes[0], "epsilon": eps}
    g.nodes = [n for n in g.nodes if id(n) not in dead]
    return eliminate_dead_code(m) if dead else m

"""remove_noops: drop nodes that return their input unchanged.

Identity; Dropout at inference (no mask used, no training_mode input); Reshape, Expand, Flatten, Squeeze or
Unsqueeze to the same shape; Cast to the same dtype; Transpose with the identity permutation; Pad whose pads
are all zero; Slice that keeps everything; and a Transpose pair whose permutations cancel (the second is
replaced by the first's input).
"""
from __future__ import annotations

import numpy as np

from ..ir.graph import Model, Node
from ..ir.types import TensorType
from .util import clone, remove_node_aliasing, use_counts


def _same_type(g, a: str, b: str) -> bool:
    ta, tb = g.types.get(a), g.types.get(b)
    return isinstance(ta, TensorType) and ta == tb and ta.is_static


def _is_noop(g, n: Node) -> bool:
    if not n.inputs or not n.inputs[0] or len([o for o in n.outputs if o]) != 1:
        return False
    x, y = n.inputs[0], n.outputs[0]
    if n.op == "Identity" and isinstance(g.types.get(x), TensorType):
        return True
    if n.op == "Dropout":
        return len(n.outputs) == 1 and (len(n.inputs) < 3 or not n.inputs[2]) and _same_type(g, x, y)
    if n.op in ("Reshape", "Expand", "Flatten", "Squeeze", "Unsqueeze", "Cast", "CastLike"):
        return _same_type(g, x, y)
    if n.op == "Transpose":
        perm = n.attrs.get("perm")
        return perm is not None and list(perm) == sorted(perm) and _same_type(g, x, y)
    if n.op == "Pad":
        pads = g.constants.get(n.inputs[1]) if len(n.inputs) > 1 else None
        return pads is not None and not np.any(pads) and _same_type(g, x, y)
    if n.op == "Slice":
        return _same_type(g, x, y) and all(i in g.constants for i in n.inputs[1:] if i) and _full_slice(g, n)
    return False


def _full_slice(g, n: Node) -> bool:
    steps = g.constants.get(n.inputs[4]) if len(n.inputs) > 4 and n.inputs[4] else None
    return steps is None or bool(np.all(steps == 1))


def _cancel_transposes(g) -> None:
    producers = {o: n for n in g.nodes for o in n.outputs}
    uses = use_counts(g)
    for n in g.nodes:
        if n.op != "Transpose" or n.attrs.get("perm") is None:
            continue
        p = producers.get(n.inputs[0])
        if p is None or p.op != "Transpose" or p.attrs.get("perm") is None or uses[p.outputs[0]] != 1:
            continue
        composed = [p.attrs["perm"][i] for i in n.attrs["perm"]]
        if composed == sorted(composed):
            n.op, n.attrs, n.inputs = "Identity", {}, [p.inputs[0]]


def remove_noops(model: Model) -> Model:
    m = clone(model)
    g = m.graph
    _cancel_transposes(g)
    for n in list(g.nodes):
        if _is_noop(g, n):
            remove_node_aliasing(g, n, n.inputs[0])
    return m

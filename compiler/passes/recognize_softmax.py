"""recognize_softmax: Exp(x - ReduceMax(x)) / ReduceSum(Exp(...)) over one axis (the max subtraction optional)
becomes Softmax(x, axis). Softmax is defined as exactly that quotient (ONNX spec, Softmax-13)."""
from __future__ import annotations

import numpy as np

from ..ir.graph import Model
from .eliminate_dead_code import eliminate_dead_code
from .util import clone, target_lowers, use_counts


def _single_axis(g, node) -> int | None:
    axes = g.constants.get(node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] else None
    if axes is None or np.asarray(axes).size != 1 or not node.attrs.get("keepdims", 1):
        return None
    return int(np.asarray(axes).ravel()[0])


def recognize_softmax(model: Model, target=None) -> Model:
    """See the module docstring; nothing changes when ``target`` cannot lower Softmax."""
    if not target_lowers(target, "Softmax"):
        return model
    m = clone(model)
    g = m.graph
    prod = g.producers()
    uses = use_counts(g)
    dead = set()
    for div in g.nodes:
        if div.op != "Div":
            continue
        exp, red = prod.get(div.inputs[0]), prod.get(div.inputs[1])
        if not exp or not red or exp.op != "Exp" or red.op != "ReduceSum" or red.inputs[0] != exp.outputs[0]:
            continue
        ax = _single_axis(g, red)
        if ax is None or uses[exp.outputs[0]] != 2 or uses[red.outputs[0]] != 1:
            continue
        rank = len(g.types[exp.outputs[0]].shape)
        x = exp.inputs[0]
        group = [exp, red]
        sub = prod.get(x)
        if sub is not None and sub.op == "Sub" and uses[x] == 1:
            mx = prod.get(sub.inputs[1])
            if mx is not None and mx.op == "ReduceMax" and mx.inputs[0] == sub.inputs[0] and _single_axis(g, mx) is not None \
                    and _single_axis(g, mx) % rank == ax % rank and uses[mx.outputs[0]] == 1:
                group += [sub, mx]
                x = sub.inputs[0]
        div.op, div.inputs, div.attrs = "Softmax", [x], {"axis": ax % rank}
        dead.update(id(n) for n in group)
    g.nodes = [n for n in g.nodes if id(n) not in dead]
    return eliminate_dead_code(m) if dead else m

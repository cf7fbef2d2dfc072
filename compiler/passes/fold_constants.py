"""fold_constants: evaluate every node whose inputs are all constants and store its outputs as constants.

A result larger than both 65,536 elements and the sum of its inputs is left unfolded (ConstantOfShape or
Expand would otherwise bloat the weights); the size is read from the output's static type before the kernel runs
(a node whose output type is not static is not folded). Random and control-flow ops are never folded.
"""
from __future__ import annotations

import numpy as np

from ..interpreter import run_node
from ..ir.graph import Model
from ..ir.types import type_of_value
from ..ops import registry
from .util import clone

MAX_GROWTH_ELEMENTS = 1 << 16


def fold_node(node, consts: dict, types: dict, opsets: dict) -> list | None:
    """The outputs of ``node`` (arrays) when every input is in ``consts`` and folding it is allowed (not random or
    control flow; no result larger than both MAX_GROWTH_ELEMENTS and its inputs, decided from the static output
    types before the kernel runs); None otherwise."""
    opdef = registry.get(node.op, node.domain)
    ins = [i for i in node.inputs if i]
    if opdef is None or opdef.stateful or node.subgraphs() or not ins or not all(i in consts for i in ins):
        return None
    args = [consts[i] if i else None for i in node.inputs]
    in_size = sum(int(np.asarray(a).size) for a in args if a is not None)
    out_types = [types.get(o) for o in node.outputs if o]
    if not all(getattr(t, "is_static", False) and t.size <= max(MAX_GROWTH_ELEMENTS, in_size) for t in out_types):
        return None
    outs = run_node(node, args, opsets)
    return outs if all(isinstance(o, np.ndarray) for o in outs) else None


def fold_constants(model: Model) -> Model:
    m = clone(model)
    g = m.graph
    kept = []
    for node in g.nodes:
        outs = fold_node(node, g.constants, g.types, m.opsets)
        if outs is None:
            kept.append(node)
            continue
        for name, val in zip(node.outputs, outs):
            if name:
                g.constants[name] = val
                g.types[name] = type_of_value(val)
    g.nodes = kept
    return m

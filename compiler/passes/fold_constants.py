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


def fold_constants(model: Model) -> Model:
    m = clone(model)
    g = m.graph
    kept = []
    for node in g.nodes:
        opdef = registry.get(node.op, node.domain)
        ins = [i for i in node.inputs if i]
        if (opdef is None or opdef.stateful or node.subgraphs() or not ins
                or not all(i in g.constants for i in ins)):
            kept.append(node)
            continue
        args = [g.constants[i] if i else None for i in node.inputs]
        in_size = sum(int(np.asarray(a).size) for a in args if a is not None)
        out_types = [g.types.get(o) for o in node.outputs if o]
        if not all(getattr(t, "is_static", False) and t.size <= max(MAX_GROWTH_ELEMENTS, in_size) for t in out_types):
            kept.append(node)          # decided from the types, before the kernel allocates anything
            continue
        outs = run_node(node, args, m.opsets)
        if not all(isinstance(o, np.ndarray) for o in outs):
            kept.append(node)
            continue
        for name, val in zip(node.outputs, outs):
            if name:
                g.constants[name] = val
                g.types[name] = type_of_value(val)
    g.nodes = kept
    return m

"""eliminate_dead_code: drop nodes none of whose outputs is used, then constants nobody reads.

Walks the schedule backwards from the graph outputs; a node stays when any output is read by a live node, a
subgraph or the graph outputs. Stateful (random) nodes are dropped like the others: unused randomness is dead.
"""
from __future__ import annotations

from ..ir.graph import Model
from .util import _outer_reads, clone


def eliminate_dead_code(model: Model) -> Model:
    m = clone(model)
    g = m.graph
    live = set(g.outputs) | _outer_reads(g, set())
    kept = []
    for node in reversed(g.nodes):
        if any(o and o in live for o in node.outputs):
            kept.append(node)
            live.update(i for i in node.inputs if i)
    g.nodes = kept[::-1]
    for name in [c for c in g.constants if c not in live]:
        del g.constants[name]
    defined = set(g.inputs) | set(g.constants) | {o for n in g.nodes for o in n.outputs if o}
    g.types = {k: v for k, v in g.types.items() if k in defined}
    return m

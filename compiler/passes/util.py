"""Helpers shared by passes: copying a model, counting uses, redirecting uses of a value.

Passes work on the main graph; subgraph bodies (If/Loop/Scan) are carried over unchanged, and a value that a
subgraph reads from the enclosing scope counts as used (and is never renamed).
"""
from __future__ import annotations

from collections import Counter

from ..ir.graph import Graph, Model, Node


def clone(model: Model) -> Model:
    """A copy whose node list, nodes, attribute dicts, constants dict and types dict may be edited freely.
    Constant arrays and subgraphs are shared (passes treat them as immutable)."""
    g = model.graph
    nodes = [Node(n.op, list(n.inputs), list(n.outputs), dict(n.attrs), n.name, n.domain) for n in g.nodes]
    graph = Graph(g.name, list(g.inputs), list(g.outputs), nodes, dict(g.constants), dict(g.types))
    return Model(graph, dict(model.opsets), model.producer, model.source_sha256, dict(model.metadata),
                 dict(model.containers))


def _outer_reads(g: Graph, acc: set) -> set:
    for n in g.nodes:
        for sub in n.subgraphs():
            for _, inner in sub.walk():
                acc.update(i for i in inner.inputs if i)
            acc.update(sub.outputs)
    return acc


def use_counts(g: Graph) -> Counter:
    """How often each value is read: node inputs, graph outputs, and (as one use each) subgraph references."""
    c: Counter = Counter()
    for n in g.nodes:
        c.update(i for i in n.inputs if i)
    c.update(g.outputs)
    for name in _outer_reads(g, set()):
        c[name] += 1
    return c


def consumers(g: Graph) -> dict[str, list[Node]]:
    out: dict[str, list[Node]] = {}
    for n in g.nodes:
        for i in set(n.inputs):
            if i:
                out.setdefault(i, []).append(n)
    return out


def replace_uses(g: Graph, old: str, new: str) -> bool:
    """Make every node that reads ``old`` read ``new``. Returns False (and changes nothing) when ``old`` is a
    graph output or is read inside a subgraph, where the name itself matters."""
    if old in g.outputs or old in _outer_reads(g, set()):
        return False
    for n in g.nodes:
        n.inputs = [new if i == old else i for i in n.inputs]
    return True


def remove_node_aliasing(g: Graph, node: Node, src: str) -> bool:
    """Drop a node whose single output equals its input ``src`` (a no-op): redirect readers to ``src``, or,
    when the output is a graph output, rename ``src``'s producer output instead. False when neither works."""
    out = node.outputs[0]
    if replace_uses(g, out, src):
        g.nodes.remove(node)
        return True
    producer = next((n for n in g.nodes if src in n.outputs), None)
    if producer is None or src in g.outputs or src in _outer_reads(g, set()):
        return False
    if any(src in n.inputs for n in g.nodes if n is not node):
        return False
    producer.outputs = [out if o == src else o for o in producer.outputs]
    g.types[out] = g.types.get(src, g.types.get(out))
    g.nodes.remove(node)
    return True


def target_lowers(target, op: str, domain: str = "") -> bool:
    """True when ``target`` (a Target, a backend name, or None for the reference interpreter) can lower op type
    ``op``: composite-creating passes ask before they create one."""
    from ..backends import has_lowering
    backend = getattr(target, "backend", target)
    return backend in (None, "reference") or has_lowering(backend, op, domain)


def fresh_name(g: Graph, hint: str) -> str:
    k = 0
    while f"{hint}_{k}" in g.types:
        k += 1
    return f"{hint}_{k}"


class FreshNames:
    """Fresh value and node names that no graph of the model uses: ``names(hint)`` is ``hint__<tag><k>``."""

    def __init__(self, model: Model, tag: str):
        self.used = set()
        for g in [model.graph] + [s for _, n in model.graph.walk() for s in n.subgraphs()]:
            self.used.update(g.types)
            self.used.update(n.name for n in g.nodes)
        self.tag, self.k = tag, 0

    def __call__(self, hint: str) -> str:
        while True:
            self.k += 1
            name = f"{hint}__{self.tag}{self.k}"
            if name not in self.used:
                self.used.add(name)
                return name

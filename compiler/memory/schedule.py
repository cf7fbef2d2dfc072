"""Schedules: the order in which nodes run.

``topological``: the model's own node order (already topological). ``memory``: a greedy list schedule that,
among the nodes whose inputs are ready, runs the one that adds the fewest live bytes (bytes of its outputs minus
bytes of inputs it is the last reader of), ties broken by the original order. It is kept only when its peak live
bytes are lower than the topological order's.
"""
from __future__ import annotations

import heapq

from ..ir.graph import Model, Node
from ..ir.types import TensorType


def _nbytes(model: Model, name: str) -> int:
    t = model.graph.types.get(name)
    return max(t.nbytes, 0) if isinstance(t, TensorType) else 0


def _reads(node: Node) -> set[str]:
    names = {i for i in node.inputs if i}
    for sub in node.subgraphs():
        for _, inner in sub.walk():
            names.update(i for i in inner.inputs if i)
        names.update(sub.outputs)
    return names


def topological(model: Model) -> list[Node]:
    return list(model.graph.nodes)


def memory_aware(model: Model) -> list[Node]:
    g = model.graph
    producer = {o: k for k, n in enumerate(g.nodes) for o in n.outputs if o}
    reads = [_reads(n) & set(producer) for n in g.nodes]
    readers: dict[str, set[int]] = {}
    for k, r in enumerate(reads):
        for v in r:
            readers.setdefault(v, set()).add(k)
    deps = [{producer[v] for v in r} for r in reads]
    waiting = [len(d) for d in deps]
    dependents: dict[int, list[int]] = {}
    for k, d in enumerate(deps):
        for p in d:
            dependents.setdefault(p, []).append(k)
    remaining = {v: len(rs) for v, rs in readers.items()}

    def cost(k: int) -> int:
        n = g.nodes[k]
        alloc = sum(_nbytes(model, o) for o in n.outputs if o)
        freed = sum(_nbytes(model, v) for v in reads[k] if remaining.get(v) == 1 and v not in g.outputs)
        return alloc - freed

    ready = [(cost(k), k) for k in range(len(g.nodes)) if waiting[k] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, k = heapq.heappop(ready)
        order.append(g.nodes[k])
        for v in reads[k]:
            remaining[v] -= 1
        for j in dependents.get(k, []):
            waiting[j] -= 1
            if waiting[j] == 0:
                heapq.heappush(ready, (cost(j), j))
        # costs of ready nodes may have changed (an input's last reader): recompute lazily
        ready = [(cost(j), j) for _, j in ready]
        heapq.heapify(ready)
    return order


SCHEDULES = {"topological": topological, "memory": memory_aware}

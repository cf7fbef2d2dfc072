"""fuse_elementwise: chains of elementwise ops become one FusedElementwise node holding a small program.

A producer joins its consumer's group when both are elementwise ops with the registry property ``program`` on floats, the
producer's output is read only by that consumer (and is not a graph output), and both outputs have the same
shape (inputs from outside the group may broadcast). Each group has one sink; the fused node takes its place in
the schedule. Scalar constants are inlined into the program as literals. Groups of one node stay as they are.
"""
from __future__ import annotations

import numpy as np

from ..ir.graph import Model, Node
from ..ir.types import TensorType
from ..ops import registry
from .util import clone, target_lowers, use_counts


def _eligible(g, n: Node) -> bool:
    if not registry.has(n.op, "program", n.domain) or n.subgraphs() or len(n.outputs) != 1:
        return False
    t = g.types.get(n.outputs[0])
    if not (isinstance(t, TensorType) and t.is_static and t.dtype in ("float32", "float16", "float64")):
        return False
    if n.op == "Clip":   # min/max must be constants (inlined as literals)
        return all(not i or i in g.constants for i in n.inputs[1:])
    return True


def build_program(g, members: list[Node], sink: Node) -> tuple[list, list[str]]:
    """Program steps for ``members`` (in schedule order) and the list of external input names."""
    index = {m.outputs[0]: k for k, m in enumerate(members)}
    ext: list[str] = []
    prog = []
    for m in members:
        args = []
        for i in m.inputs:
            if not i:
                args.append(["c", None])
            elif i in index:
                args.append(["t", index[i]])
            elif i in g.constants and g.constants[i].size == 1 and g.constants[i].dtype.kind == "f":
                args.append(["c", float(g.constants[i].ravel()[0])])
            else:
                if i not in ext:
                    ext.append(i)
                args.append(["in", ext.index(i)])
        prog.append({"op": m.op, "args": args, "attrs": dict(m.attrs)})
    return prog, ext


def fuse_elementwise(model: Model, target=None) -> Model:
    """See the module docstring; nothing changes when ``target`` cannot lower FusedElementwise."""
    if not target_lowers(target, "FusedElementwise", "bornc"):
        return model
    m = clone(model)
    g = m.graph
    uses = use_counts(g)
    prod = g.producers()
    group: dict[int, int] = {}
    members: dict[int, list[Node]] = {}
    for n in g.nodes:
        if not _eligible(g, n):
            continue
        gid = id(n)
        members[gid] = [n]
        group[id(n)] = gid
        shape = g.types[n.outputs[0]].shape
        for i in dict.fromkeys(x for x in n.inputs if x):
            p = prod.get(i)
            if p is None or id(p) not in group or i in g.outputs:
                continue
            if uses[i] != n.inputs.count(i) or g.types[i].shape != shape:
                continue
            pg = group[id(p)]
            if pg == gid:
                continue
            for q in members.pop(pg):
                group[id(q)] = gid
                members[gid].append(q)
    order = {id(n): k for k, n in enumerate(g.nodes)}
    fused: dict[int, Node] = {}
    dead = set()
    for gid, ms in members.items():
        if len(ms) < 2:
            continue
        ms.sort(key=lambda q: order[id(q)])
        sink = ms[-1]
        prog, ext = build_program(g, ms, sink)
        fused[id(sink)] = Node("FusedElementwise", ext, [sink.outputs[0]],
                               {"program": prog, "dtype": g.types[sink.outputs[0]].dtype}, sink.name, "bornc")
        dead.update(id(q) for q in ms[:-1])
    g.nodes = [fused.get(id(n), n) for n in g.nodes if id(n) not in dead]
    kept = {o for n in g.nodes for o in n.outputs} | set(g.inputs) | set(g.constants)
    g.types = {k: v for k, v in g.types.items() if k in kept}
    used = use_counts(g)
    for name in [c for c in g.constants if not used[c]]:
        del g.constants[name]
        g.types.pop(name, None)
    return m


__all__ = ["fuse_elementwise", "build_program", "np"]

"""legalize: rewrite every node the target's backend cannot lower into nodes it can.

A node the backend cannot lower (``backends.lowering_gaps``: no lowering, or none for these attributes, shapes
or dtypes) is replaced by its ONNX function body (the spec's, context-dependent bodies included, at the model's
opset) or, where the spec gives none, by the decomposition registered on its registry entry. The body's nodes
are imported with the importer's own machinery (opset canonicalization, type inference, folding of constant
parts), and any of them the backend still cannot lower is expanded the same way, to a fixed point. An expansion
is taken only when everything it ends in can be lowered; otherwise the node is left as it was and reported.

What is left without a lowering is one UnsupportedOpError listing every such op with its node names. If
branches are legalized like the main graph (the C backend runs If itself); other subgraph bodies are left as they
are and reported by their op.
"""
from __future__ import annotations

import onnx

from ..backends import has_lowering, lowering_gaps
from ..errors import BorncError, UnsupportedOpError
from ..ir.graph import Graph, Model, Node
from .util import clone

#: Expansion depth: bodies of bodies of ... (LayerNormalization -> ... needs 2 or 3).
MAX_DEPTH = 8


class _Names:
    """Fresh value and node names that no graph of the model uses."""

    def __init__(self, model: Model):
        self.used = set()
        for g in [model.graph] + [s for _, n in model.graph.walk() for s in n.subgraphs()]:
            self.used.update(g.types)
            self.used.update(n.name for n in g.nodes)
        self.k = 0

    def __call__(self, hint: str) -> str:
        while True:
            self.k += 1
            name = f"{hint}__legal{self.k}"
            if name not in self.used:
                self.used.add(name)
                return name


def _expand(model: Model, node: Node, types: dict, consts: dict, backend: str, names: _Names):
    """(nodes, new constants, new types) that compute ``node`` from nodes ``backend`` lowers, or None."""
    from ..export import node_proto
    from ..frontend.onnx_import import _Importer, function_body
    if node.subgraphs():
        return None
    opset = model.opsets.get(node.domain or "", 1)
    try:
        proto = node_proto(node, opset)
    except BorncError:
        return None
    in_types = [types.get(i) if i else None for i in node.inputs]
    body = function_body(proto, opset, in_types)
    if body is None or not len(body.node) or any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
                                                 for fn in body.node for a in fn.attribute):
        return None
    mp = onnx.ModelProto()
    for dom, ver in model.opsets.items():
        mp.opset_import.add(domain=dom, version=ver)
    imp = _Importer(mp, expand=lambda op, dom: not has_lowering(backend, op, dom))
    imp.fresh = names
    sub = Graph("legalize", [], [], [], {}, {})
    for i in node.inputs:
        if i:
            sub.types[i] = types[i]
            if consts.get(i) is not None:
                sub.constants[i] = consts[i]
    declared = {o: types[o] for o in node.outputs if o and o in types}
    try:
        imp.inline_function(sub, proto, 0, {}, declared, body)
    except BorncError:
        return None
    outer = set(node.inputs)
    new_consts = {k: v for k, v in sub.constants.items() if k not in outer}
    new_types = {k: v for k, v in sub.types.items() if k not in outer}
    return sub.nodes, new_consts, new_types


def _legal_nodes(model, node, types, consts, backend, names, depth) -> list | None:
    """``node`` itself when ``backend`` lowers it, else the lowerable nodes it expands to (constants and types
    of the expansion added to ``consts``/``types``), else None."""
    opset = model.opsets.get(node.domain or "", 1)
    if not lowering_gaps(backend, node, types, consts, opset):
        return [node]
    if depth >= MAX_DEPTH:
        return None
    got = _expand(model, node, types, consts, backend, names)
    if got is None:
        return None
    nodes, new_consts, new_types = got
    trial_types, trial_consts = {**types, **new_types}, {**consts, **new_consts}
    out = []
    for n in nodes:
        legal = _legal_nodes(model, n, trial_types, trial_consts, backend, names, depth + 1)
        if legal is None:
            return None
        out += legal
    types.update(trial_types)
    consts.update(trial_consts)
    return out


def _legalize_graph(model: Model, g: Graph, outer_types: dict, outer_consts: dict, backend: str, names: _Names,
                    missing: dict) -> None:
    types = {**outer_types, **g.types}
    consts = {**outer_consts, **g.constants}
    nodes = []
    for node in g.nodes:
        legal = _legal_nodes(model, node, types, consts, backend, names, 0)
        if legal is None:
            opset = model.opsets.get(node.domain or "", 1)
            for why, who in lowering_gaps(backend, node, types, consts, opset).items():
                missing.setdefault(why, []).extend(w for w in who if w not in missing.get(why, []))
            legal = [node]
        nodes += legal
        if node.op == "If" and not node.domain:
            for sub in node.subgraphs():
                _legalize_graph(model, sub, types, consts, backend, names, missing)
    added = [k for k in types if k not in outer_types and k not in g.types]
    for k in added:
        g.types[k] = types[k]
        if k in consts and k not in g.constants:
            g.constants[k] = consts[k]
    for k, v in consts.items():                 # an output of an expanded node that folded to a constant
        if k in g.types and k not in g.constants and k not in outer_consts and not any(k in n.outputs for n in nodes):
            g.constants[k] = v
    g.nodes = nodes


def legalize(model: Model, target=None) -> Model:
    """``model`` with every node rewritten into nodes the backend of ``target`` (a Target or backend name) can
    lower; unchanged for the reference backend or no target.

    Raises UnsupportedOpError listing every op, with its node names, that neither the backend nor any expansion
    of it can lower."""
    backend = getattr(target, "backend", target)
    if backend in (None, "reference"):
        return model
    m = clone(model)
    for n in m.graph.nodes:                     # If branches are edited in place: give each node its own copy
        for k, v in n.attrs.items():
            if isinstance(v, Graph):
                n.attrs[k] = _copy_graph(v)
    missing: dict = {}
    _legalize_graph(m, m.graph, {}, {}, backend, _Names(m), missing)
    if missing:
        raise UnsupportedOpError(missing)
    return m


def _copy_graph(g: Graph) -> Graph:
    nodes = [Node(n.op, list(n.inputs), list(n.outputs),
                  {k: (_copy_graph(v) if isinstance(v, Graph) else v) for k, v in n.attrs.items()}, n.name, n.domain)
             for n in g.nodes]
    return Graph(g.name, list(g.inputs), list(g.outputs), nodes, dict(g.constants), dict(g.types))


__all__ = ["legalize"]

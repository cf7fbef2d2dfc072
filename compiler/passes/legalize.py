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

import numpy as np
import onnx

from ..backends import has_lowering, lowering_gaps
from ..errors import BorncError, UnsupportedOpError
from ..ir.graph import Graph, Model, Node
from ..ops import registry
from .fold_constants import fold_node
from .util import FreshNames, clone

#: Expansion depth: bodies of bodies of ... (LayerNormalization -> ... needs 2 or 3).
MAX_DEPTH = 8


#: most body nodes an unrolled Scan may have (trip count x body size)
MAX_UNROLLED_NODES = 4096


def _scan_free_values(body: Graph) -> list[str]:
    """Names a Scan body reads from the enclosing scopes (not its inputs, constants or own outputs)."""
    local = set(body.inputs) | set(body.constants) | {o for n in body.nodes for o in n.outputs}
    free = []
    for n in body.nodes:
        for i in n.inputs:
            if i and i not in local and i not in free:
                free.append(i)
    return free + [o for o in body.outputs if o not in local and o not in free]


def unrolled_scan(node: Node, types: dict, opset: int) -> tuple[onnx.FunctionProto, list[str]] | None:
    """Scan (ONNX spec, Scan-9..24) with a static trip count as a function body: one renamed copy of the body per
    iteration, scan inputs read by Gather at the iteration's index along their axis (reversed for direction 1),
    states chained, scan outputs stacked by Unsqueeze and Concat along their axis. Returns (body, the outer values
    the body reads: extra inputs after the node's own), or None (nested subgraphs, an unknown trip count, more
    than MAX_UNROLLED_NODES nodes)."""
    from onnx import helper, numpy_helper

    from ..export import CANONICAL_OPSET, node_proto
    a = {"num_scan_inputs": 1, "scan_input_axes": None, "scan_input_directions": None, "scan_output_axes": None,
         "scan_output_directions": None, **node.attrs}
    body: Graph = a["body"]
    if opset < 9:                                # Scan-8: a batch axis and sequence_lens, another semantics
        return None
    m = int(a["num_scan_inputs"])
    n_state = len(node.inputs) - m
    xs = [types.get(i) for i in node.inputs[n_state:]]
    if any(b.subgraphs() for b in body.nodes) or m < 1 or any(not getattr(t, "is_static", False) for t in xs):
        return None
    in_axes = [ax % len(t.shape) for ax, t in zip(a["scan_input_axes"] or [0] * m, xs)]
    in_dirs = a["scan_input_directions"] or [0] * m
    steps = xs[0].shape[in_axes[0]]
    k_out = len(body.outputs) - n_state
    out_dirs = a["scan_output_directions"] or [0] * k_out
    if steps * max(len(body.nodes), 1) > MAX_UNROLLED_NODES:
        return None
    free = _scan_free_values(body)
    formal = [f"s{i}" for i in range(n_state)] + [f"x{j}" for j in range(m)] + [f"f{k}" for k in range(len(free))]
    nodes = [helper.make_node("Constant", [], [f"c/{c}"], value=numpy_helper.from_array(np.asarray(v), c))
             for c, v in body.constants.items()]
    outer = {**{c: f"c/{c}" for c in body.constants}, **{v: f"f{k}" for k, v in enumerate(free)}}
    states = [f"s{i}" for i in range(n_state)]
    collected: list[list[str]] = [[] for _ in range(k_out)]
    for it in range(steps):
        ren = dict(outer)
        ren.update(zip(body.inputs[:n_state], states))
        for j in range(m):
            idx = f"it{it}/idx{j}"
            nodes.append(helper.make_node("Constant", [], [idx], value=numpy_helper.from_array(
                np.array(steps - 1 - it if in_dirs[j] else it, np.int64), idx)))
            nodes.append(helper.make_node("Gather", [f"x{j}", idx], [f"it{it}/in{j}"], axis=in_axes[j]))
            ren[body.inputs[n_state + j]] = f"it{it}/in{j}"
        for bn in body.nodes:
            proto = node_proto(bn)
            outs = [f"it{it}/{o}" if o else "" for o in proto.output]
            ins = [ren.get(i, i) if i else "" for i in proto.input]
            ren.update({o: r for o, r in zip(proto.output, outs) if o})
            del proto.input[:], proto.output[:]
            proto.input.extend(ins)
            proto.output.extend(outs)
            proto.name = f"it{it}/{bn.name}"
            nodes.append(proto)
        states = [ren.get(o, o) for o in body.outputs[:n_state]]
        for k in range(k_out):
            collected[k].append(ren.get(body.outputs[n_state + k], body.outputs[n_state + k]))
    outs = [f"o{i}" for i in range(len(node.outputs))]
    for i in range(n_state):
        nodes.append(helper.make_node("Identity", [states[i]], [outs[i]]))
    out_axes = a["scan_output_axes"] or [0] * k_out
    for k in range(k_out):
        ax = out_axes[k]
        if ax < 0:
            t = body.types.get(body.outputs[n_state + k])
            if getattr(t, "shape", None) is None:
                return None
            ax %= len(t.shape) + 1
        items = collected[k][::-1] if out_dirs[k] else collected[k]
        axes = f"axes/{k}"
        nodes.append(helper.make_node("Constant", [], [axes], value=numpy_helper.from_array(np.array([ax], np.int64), axes)))
        parts = []
        for it, v in enumerate(items):
            parts.append(f"stack{k}/{it}")
            nodes.append(helper.make_node("Unsqueeze", [v, axes], [parts[-1]]))
        nodes.append(helper.make_node("Concat", parts, [outs[n_state + k]], axis=ax))
    fn = helper.make_function("", "Scan", formal, outs, nodes, [helper.make_opsetid("", max(opset, CANONICAL_OPSET))])
    return fn, free


def _expand(model: Model, node: Node, types: dict, consts: dict, backend: str, names: FreshNames, spec: bool = True):
    """(nodes, new constants, new types) that compute ``node`` from nodes ``backend`` lowers, or None; without
    ``spec``, from the registry's decomposition only (not the spec's function body)."""
    from ..export import node_proto
    from ..frontend.onnx_import import _Importer, function_body
    opset = model.opsets.get(node.domain or "", 1)
    free: list[str] = []
    if node.op == "Scan" and not node.domain:
        got = unrolled_scan(node, types, opset)
        if got is None:
            return None
        body, free = got
        proto = onnx.NodeProto(op_type="Scan", name=node.name)
        proto.input.extend(list(node.inputs) + free)
        proto.output.extend(node.outputs)
    elif node.subgraphs():
        return None
    else:
        try:
            proto = node_proto(node, opset)
        except BorncError:
            return None
        in_types = [types.get(i) if i else None for i in node.inputs]
        body = function_body(proto, opset, in_types, [consts.get(i) if i else None for i in node.inputs], spec)
    if body is None or not len(body.node) or any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
                                                 and fn.op_type != "Scan" for fn in body.node for a in fn.attribute):
        return None                    # a Scan in the body is unrolled in turn (LinearAttention's body)
    mp = onnx.ModelProto()
    for dom, ver in model.opsets.items():
        mp.opset_import.add(domain=dom, version=ver)
    imp = _Importer(mp, expand=lambda op, dom: not has_lowering(backend, op, dom))
    imp.fresh = names
    sub = Graph("legalize", [], [], [], {}, {})
    for i in list(node.inputs) + free:
        if i:
            sub.types[i] = types[i]
            if consts.get(i) is not None:
                sub.constants[i] = consts[i]
    declared = {o: types[o] for o in node.outputs if o and o in types}
    try:
        imp.inline_function(sub, proto, 0, {}, declared, body)
    except BorncError:
        return None
    outer = set(node.inputs) | set(free)
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
    out = _expansion(model, node, types, consts, backend, names, depth, True)
    if out is None and getattr(registry.get(node.op, node.domain), "decompose", None) is not None:
        out = _expansion(model, node, types, consts, backend, names, depth, False)   # the spec's body did not lower
    return out


def _expansion(model, node, types, consts, backend, names, depth, spec: bool) -> list | None:
    """The lowerable nodes of one expansion of ``node`` (the spec's body first, see :func:`_expand`), or None."""
    got = _expand(model, node, types, consts, backend, names, spec)
    if got is None:
        return None
    nodes, new_consts, new_types = got
    trial_types, trial_consts = {**types, **new_types}, {**consts, **new_consts}
    out = []
    refined = False                     # as in _legalize_graph: a nested expansion made a type static
    for n in nodes:
        if refined and _refine(model, n, trial_types, trial_consts):
            continue
        before = {o: trial_types.get(o) for o in n.outputs if o}
        legal = _legal_nodes(model, n, trial_types, trial_consts, backend, names, depth + 1)
        if legal is None:
            return None
        refined = refined or any(not getattr(t, "is_static", False) and getattr(trial_types.get(o), "is_static", False)
                                 for o, t in before.items())
        out += legal
    types.update(trial_types)
    consts.update(trial_consts)
    return out


def _refine(model: Model, node: Node, types: dict, consts: dict) -> bool:
    """A node after an expansion that made its inputs' types static (an unrolled Scan's outputs): its output
    types inferred again, and the node folded into constants when every input now is one (Shape and Size of a
    static tensor included). True when it was folded (the node is dropped)."""
    opdef = registry.get(node.op, node.domain)
    if opdef is None or node.subgraphs() or opdef.stateful or opdef.dynamic:
        return False
    if all(getattr(types.get(o), "is_static", False) for o in node.outputs if o):
        return False
    try:
        return infer_and_fold(model, node, types, consts, static_only=True)
    except BorncError:                  # left to the backend, which reports what it cannot do
        return False


def infer_node(model: Model, node: Node, types: dict, consts: dict) -> list:
    """``node``'s output types inferred from ``types``/``consts`` at the model's opset (one per output, None where
    unknown); nothing is updated. Raises what inference raises (BorncError)."""
    opdef = registry.get(node.op, node.domain)
    ctx = registry.InferCtx(node, registry.attrs_with_defaults(opdef, node), model.opsets.get(node.domain or "", 1),
                            [types.get(i) if i else None for i in node.inputs],
                            [consts.get(i) if i else None for i in node.inputs])
    return registry.infer_types(opdef, ctx)


def infer_and_fold(model: Model, node: Node, types: dict, consts: dict, static_only: bool = False) -> bool:
    """Infer ``node``'s output types again from ``types``/``consts`` (only static results kept with
    ``static_only``) and fold it into ``consts`` when all its inputs are constants (Shape and Size of a static
    tensor too). True when folded. Raises what inference or the kernel raise (BorncError)."""
    from ..ir.types import type_of_value
    t0 = types.get(node.inputs[0]) if node.inputs and node.inputs[0] else None
    if node.op in ("Shape", "Size") and not node.domain and getattr(t0, "is_static", False):
        shape = np.array(t0.shape, np.int64)
        val = np.array(int(np.prod(shape)), np.int64) if node.op == "Size" else \
            shape[slice(node.attrs.get("start", 0), node.attrs.get("end"))]
        consts[node.outputs[0]], types[node.outputs[0]] = val, type_of_value(val)
        return True
    for o, t in zip(node.outputs, infer_node(model, node, types, consts)):
        if o and t is not None and (getattr(t, "is_static", False) or not static_only):
            types[o] = t
    vals = fold_node(node, consts, types, model.opsets)
    if vals is None:
        return False
    for o, v in zip(node.outputs, vals):
        if o:
            consts[o], types[o] = v, type_of_value(v)
    return True


def _legalize_graph(model: Model, g: Graph, outer_types: dict, outer_consts: dict, backend: str, names: FreshNames,
                    missing: dict) -> None:
    types = {**outer_types, **g.types}
    consts = {**outer_consts, **g.constants}
    nodes = []
    refined = False                             # an expansion made some value's type static: refine what follows
    for node in g.nodes:
        if refined and _refine(model, node, types, consts):
            continue
        before = {o: types.get(o) for o in node.outputs if o}
        legal = _legal_nodes(model, node, types, consts, backend, names, 0)
        refined = refined or any(not getattr(t, "is_static", False) and getattr(types.get(o), "is_static", False)
                                 for o, t in before.items())
        if legal is None:
            opset = model.opsets.get(node.domain or "", 1)
            for why, who in lowering_gaps(backend, node, types, consts, opset).items():
                missing.setdefault(why, []).extend(w for w in who if w not in missing.get(why, []))
            legal = [node]
        nodes += legal
        if node.op == "If" and not node.domain:
            for sub in node.subgraphs():
                _legalize_graph(model, sub, types, consts, backend, names, missing)
    for k in g.types:                           # types refined after an expansion (see _refine)
        if getattr(types.get(k), "is_static", False) and not getattr(g.types[k], "is_static", False):
            g.types[k] = types[k]
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
    if backend in ("c", "webgpu"):              # static-shape backends: sequences and optionals as tensors
        from .unroll_sequences import unroll_sequences
        model = unroll_sequences(model, select_if=backend == "webgpu")
    m = clone(model)
    for n in m.graph.nodes:                     # If branches are edited in place: give each node its own copy
        for k, v in n.attrs.items():
            if isinstance(v, Graph):
                n.attrs[k] = _copy_graph(v)
    missing: dict = {}
    _legalize_graph(m, m.graph, {}, {}, backend, FreshNames(m, "legal"), missing)
    if missing:
        raise UnsupportedOpError(missing)
    return m


def _copy_graph(g: Graph) -> Graph:
    nodes = [Node(n.op, list(n.inputs), list(n.outputs),
                  {k: (_copy_graph(v) if isinstance(v, Graph) else v) for k, v in n.attrs.items()}, n.name, n.domain)
             for n in g.nodes]
    return Graph(g.name, list(g.inputs), list(g.outputs), nodes, dict(g.constants), dict(g.types))


__all__ = ["legalize"]

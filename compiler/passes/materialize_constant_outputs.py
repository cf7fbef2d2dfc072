"""materialize_constant_outputs: WebGPU hosts read outputs from the arena, so constant outputs get a node."""
from __future__ import annotations

from ..ir.graph import Graph, Model, Node


def materialize_constant_outputs(model: Model, target=None) -> Model:
    """For WebGPU targets (nothing changes for others): a copy of ``model`` where every graph output that is a
    constant is produced by an Identity node, placed first, from a renamed constant (so it gets an arena slot the
    host reads back, and nodes that read it read that slot)."""
    if getattr(target, "backend", target) != "webgpu":
        return model
    g = model.graph
    const_outs = [o for o in g.outputs if o in g.constants]
    if not const_outs:
        return model
    consts, copies = dict(g.constants), []
    types = dict(g.types)
    for o in const_outs:
        src = f"{o}/constant"
        consts[src] = consts.pop(o)
        types[src] = types[o]
        copies.append(Node("Identity", [src], [o], {}, f"{o}/output"))
    # the copies come first: other nodes may read the output value too
    return Model(Graph(g.name, g.inputs, g.outputs, copies + list(g.nodes), consts, types), model.opsets, model.producer,
                 model.source_sha256, model.metadata, model.containers)

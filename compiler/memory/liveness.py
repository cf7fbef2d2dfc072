"""Liveness: which tensors need arena space, from which step to which step, and which share a buffer.

A *buffer* is one block of the arena. Values share a buffer when

- an op is a view (Reshape, Flatten, Squeeze, Unsqueeze, Identity): its output is its input's bytes;
- an elementwise op writes over an input whose last reader it is and whose byte size equals the output's
  (in-place reuse: Relu, Add, FusedElementwise...).

A buffer lives from the step that defines its first value to the last step that reads any of its values.
Graph inputs and outputs are caller-owned and outside the arena unless ``io_in_arena``; constants never are.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ShapeError
from ..ir.graph import Model, Node
from ..ir.types import TensorType
from ..ops import registry
from .schedule import _reads


def is_view(n: Node) -> bool:
    """The node's output is its input's bytes under another shape (registry property ``view``)."""
    return registry.has(n.op, "view", n.domain)


def _inplace(n: Node) -> bool:
    return registry.has(n.op, "program", n.domain) or registry.has(n.op, "inplace", n.domain)


@dataclass
class Buffer:
    """One arena block: its values, byte size (aligned), and first/last step (inclusive)."""

    name: str
    size: int
    first: int
    last: int
    values: list = field(default_factory=list)


def align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def buffers(model: Model, schedule: list[Node], alignment: int, io_in_arena: bool = False,
            workspace: dict | None = None, dynamic: bool = False) -> tuple[list[Buffer], dict]:
    """Buffers of ``model`` under ``schedule``; returns (buffers, value name -> buffer name). ``workspace`` maps
    a node's name to scratch bytes it needs during its step (buffer ``<name>/workspace``). With ``dynamic``
    (a runtime that can allocate, such as the python target), values whose shape is not static and values
    inside subgraphs get no buffer instead of raising ShapeError."""
    g = model.graph
    io = set(g.inputs) | set(g.outputs)
    last_use: dict[str, int] = {}
    for step, n in enumerate(schedule):
        for v in _reads(n):
            last_use[v] = step
    for o in g.outputs:
        last_use[o] = len(schedule)
    owner: dict[str, str] = {}
    bufs: dict[str, Buffer] = {}

    def new_buffer(v: str, step: int) -> None:
        t = g.types.get(v)
        if not isinstance(t, TensorType):
            return
        if not t.is_static:
            if dynamic:
                return
            raise ShapeError(f"memory planning needs static shapes: value {v!r} has type {t}")
        bufs[v] = Buffer(v, align(max(t.nbytes, 1), alignment), step, max(step, last_use.get(v, step)), [v])
        owner[v] = v

    if io_in_arena:
        for v in g.inputs:
            new_buffer(v, 0)
    def subgraph_buffers(node: Node, step: int) -> None:
        """Values computed inside If branches (and their nested branches) live only during the If's step."""
        for sub in node.subgraphs():
            for inner_g, inner in sub.walk():
                for o in inner.outputs:
                    t = inner_g.types.get(o)
                    if o and o not in owner and isinstance(t, TensorType) and t.is_static:
                        bufs[o] = Buffer(o, align(max(t.nbytes, 1), alignment), step, step, [o])
                        owner[o] = o

    for step, n in enumerate(schedule):
        if workspace and workspace.get(n.name):
            ws = f"{n.name}/workspace"
            bufs[ws] = Buffer(ws, align(workspace[n.name], alignment), step, step, [ws])
            owner[ws] = ws
        if n.op == "If" and not dynamic:
            subgraph_buffers(n, step)
        for k, o in enumerate(n.outputs):
            if not o or (o in io and not io_in_arena):
                continue
            src = _share_with(g, n, k, owner, bufs, last_use, step, io, io_in_arena)
            if src is not None:
                b = bufs[owner[src]]
                b.values.append(o)
                b.last = max(b.last, last_use.get(o, step))
                owner[o] = b.name
            else:
                new_buffer(o, step)
    return list(bufs.values()), owner


def _share_with(g, n: Node, k: int, owner, bufs, last_use, step, io, io_in_arena) -> str | None:
    """The input whose buffer output ``k`` of node ``n`` may reuse, or None."""
    if k != 0 or n.subgraphs():
        return None
    out_t = g.types.get(n.outputs[0])
    if not isinstance(out_t, TensorType) or not out_t.is_static:
        return None
    if is_view(n):
        x = n.inputs[0]
        return x if x in owner else None
    if _inplace(n):
        for x in n.inputs:
            if x in owner and bufs[owner[x]].last == step and isinstance(g.types.get(x), TensorType) \
                    and g.types[x].nbytes == out_t.nbytes and g.types[x].dtype == out_t.dtype:
                return x
    return None

"""The walk over a planned schedule that every backend takes: the values of a graph and of its If branches,
lowering every node (If branches included, for backends that run If themselves) with all the failures gathered
into one UnsupportedOpError, and the nodes of a schedule with the nodes of their subgraphs.
"""
from __future__ import annotations

from typing import Callable

from ...errors import UnsupportedOpError
from ...ir.graph import Graph, Node


def is_if(node: Node) -> bool:
    """True for an ONNX If node."""
    return node.op == "If" and not node.domain


def values_with_subgraphs(graph: Graph) -> tuple[dict, dict]:
    """(types, constants) of ``graph`` and of every subgraph inside it (nested ones too): one namespace, as
    value names are unique across a model's graphs."""
    types, consts = dict(graph.types), dict(graph.constants)
    for _, n in graph.walk():
        for sub in n.subgraphs():
            types.update(sub.types)
            consts.update(sub.constants)
    return types, consts


def scheduled_nodes(order: list) -> list[Node]:
    """The nodes of ``order``, then every node inside their subgraphs (nested ones included)."""
    return list(order) + [x for n in order for sub in n.subgraphs() for _, x in sub.walk()]


def lower_schedule(nodes: list, lower_one: Callable, runs_if: bool = False) -> dict:
    """``{id(node): lowered}`` for every node of ``nodes`` for which ``lower_one(node)`` returns something (None:
    nothing to emit, a view for example). With ``runs_if`` the backend runs If itself: ``lower_one`` is called
    on the If (to check it) and its branches are lowered too; any other node with a subgraph cannot be lowered.

    Raises UnsupportedOpError listing every node that could not be lowered, with the reasons ``lower_one``
    gave (``{reason: [node names]}``), after trying them all."""
    lowered: dict[int, object] = {}
    missing: dict[str, list] = {}

    def visit(nodes):
        for node in nodes:
            if node.subgraphs() and not (runs_if and is_if(node)):
                missing.setdefault(node.op, []).append(node.name)
                continue
            try:
                low = lower_one(node)
            except UnsupportedOpError as ex:
                for reason, names in ex.missing.items():
                    missing.setdefault(reason, []).extend(names)
            else:
                if low is not None:
                    lowered[id(node)] = low
            for sub in node.subgraphs():
                visit(sub.nodes)
    visit(nodes)
    if missing:
        raise UnsupportedOpError(missing)
    return lowered


__all__ = ["is_if", "values_with_subgraphs", "scheduled_nodes", "lower_schedule"]

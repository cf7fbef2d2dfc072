"""The IR verifier: single assignment, topological order, defined uses, and a type for every value.

Runs after import and after every pass in tests (and with ``--verify``). Raises VerifyError naming the graph,
the node and the value at fault.
"""
from __future__ import annotations

from ..errors import VerifyError
from .graph import Graph, Model
from .types import OptionalType, SequenceType, TensorType

_TYPES = (TensorType, SequenceType, OptionalType)


def verify_graph(g: Graph, outer: frozenset = frozenset()) -> None:
    defined: set[str] = set()

    def define(name: str, what: str) -> None:
        if name in defined:
            raise VerifyError(f"graph {g.name!r}: value {name!r} assigned twice ({what})")
        if name not in g.types or not isinstance(g.types[name], _TYPES):
            raise VerifyError(f"graph {g.name!r}: value {name!r} ({what}) has no type")
        defined.add(name)

    for n in g.inputs:
        define(n, "graph input")
    for n in g.constants:
        define(n, "constant")
    for node in g.nodes:
        for i in node.inputs:
            if i and i not in defined and i not in outer:
                raise VerifyError(f"graph {g.name!r}: node {node.name!r} ({node.op}) reads {i!r} before it is defined")
        for sub in node.subgraphs():
            verify_graph(sub, outer | frozenset(defined))
        for o in node.outputs:
            if o:
                define(o, f"output of node {node.name!r} ({node.op})")
    for o in g.outputs:
        if o not in defined and o not in outer:
            raise VerifyError(f"graph {g.name!r}: output {o!r} is never defined")


def verify(model: Model) -> Model:
    """Check the model's invariants; returns the model unchanged or raises VerifyError."""
    verify_graph(model.graph)
    return model

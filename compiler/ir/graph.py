"""The IR: a Model holds a Graph of Nodes over named values.

Invariants (checked by :func:`bornc.ir.verify.verify`): every value is assigned once (a graph input, a
constant, or one node output); nodes are in topological order; every used value is defined in this graph or
an enclosing one (subgraphs of If/Loop/Scan may read outer values); every value has a type in
``Graph.types``. An empty input name ``""`` marks an omitted optional input, as in ONNX.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .types import TensorType


@dataclass
class Node:
    """One operator application. ``op`` is the ONNX op type (or a bornc composite name), ``domain`` its
    ONNX domain ('' = ai.onnx). ``attrs`` holds Python values (int, float, str, list, ndarray, Graph)."""

    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict = field(default_factory=dict)
    name: str = ""
    domain: str = ""

    def subgraphs(self) -> list["Graph"]:
        """Graphs held in attributes (If branches, Loop/Scan bodies), in attribute order."""
        out = []
        for v in self.attrs.values():
            if isinstance(v, Graph):
                out.append(v)
            elif isinstance(v, list) and v and all(isinstance(g, Graph) for g in v):
                out.extend(v)
        return out


@dataclass
class Graph:
    """Inputs and outputs are value names in order; ``constants`` maps names to numpy arrays (initializers,
    folded values); ``types`` maps every value name to its type."""

    name: str
    inputs: list[str]
    outputs: list[str]
    nodes: list[Node]
    constants: dict[str, np.ndarray] = field(default_factory=dict)
    types: dict[str, object] = field(default_factory=dict)

    def producers(self) -> dict[str, Node]:
        """Map value name -> the node that writes it."""
        return {o: n for n in self.nodes for o in n.outputs if o}

    def consumers(self) -> dict[str, list[Node]]:
        """Map value name -> nodes that read it (in this graph only, not subgraphs)."""
        out: dict[str, list[Node]] = {}
        for n in self.nodes:
            for i in n.inputs:
                if i:
                    out.setdefault(i, []).append(n)
        return out

    def walk(self):
        """Yield (graph, node) for every node here and in nested subgraphs, depth first."""
        for n in self.nodes:
            yield self, n
            for g in n.subgraphs():
                yield from g.walk()


@dataclass
class Model:
    """A model: the main graph, the opset versions it was written against (domain -> version), and
    provenance (producer, the source file's SHA-256)."""

    graph: Graph
    opsets: dict[str, int] = field(default_factory=lambda: {"": 21})
    producer: str = ""
    source_sha256: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    #: model inputs and outputs that were sequences or optionals before a static-shape backend unrolled them
    #: (``passes/unroll_sequences.py``): name -> (kind "sequence" or "optional", [element names] ([] for an empty
    #: optional), role "input" or "output"); the manifest carries it as "containers" and runners regroup by it.
    containers: dict = field(default_factory=dict)

    @property
    def opset(self) -> int:
        return self.opsets.get("", self.opsets.get("ai.onnx", 1))

    def input_types(self) -> dict[str, object]:
        return {n: self.graph.types[n] for n in self.graph.inputs}

    def output_types(self) -> dict[str, object]:
        return {n: self.graph.types[n] for n in self.graph.outputs}

    def is_static(self) -> bool:
        """True when every value in the main graph has a fully known tensor shape."""
        return all(getattr(t, "is_static", False) for t in self.graph.types.values())

    def run(self, feeds: dict) -> dict:
        """Run the model on the numpy reference interpreter: {input name: array} -> {output name: array}."""
        from ..interpreter import run
        return run(self, feeds)

    def to_onnx(self, path=None):
        """The model as an onnx.ModelProto (written to ``path`` when given); see bornc.export.to_onnx."""
        from ..export import to_onnx
        return to_onnx(self, path)

    def param_count(self) -> tuple[int, int]:
        """(number of parameters, bytes) over the main graph's constants."""
        arrays = [a for a in self.graph.constants.values() if isinstance(a, np.ndarray)]
        return sum(int(a.size) for a in arrays), sum(int(a.nbytes) for a in arrays)


def tensor_type(graph: Graph, name: str) -> TensorType | None:
    t = graph.types.get(name)
    return t if isinstance(t, TensorType) else None

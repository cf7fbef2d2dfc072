"""FunctionBody: a function body (onnx.FunctionProto) under construction, for the decompositions registered on
registry entries (``registry.decomposition``): fresh value names, constants as Constant nodes, nodes in order."""
from __future__ import annotations

import numpy as np
from onnx import helper, numpy_helper


def attr_of(node, name, default=None):
    """Attribute ``name`` of a NodeProto (its Python value, strings decoded), or ``default``."""
    for a in node.attribute:
        if a.name == name:
            v = helper.get_attribute_value(a)
            return v.decode() if isinstance(v, bytes) else v
    return default


class FunctionBody:
    """Nodes of a body being written; ``op`` returns the output's name (fresh unless given)."""

    def __init__(self):
        self.nodes, self.k = [], 0

    def fresh(self) -> str:
        self.k += 1
        return f"v{self.k}"

    def const(self, value) -> str:
        name = self.fresh()
        self.nodes.append(helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value), name)))
        return name

    def op(self, kind: str, ins: list, out: str | None = None, **attrs) -> str:
        out = out or self.fresh()
        self.nodes.append(helper.make_node(kind, ins, [out], **attrs))
        return out

    def ops(self, kind: str, ins: list, outs: list, **attrs) -> list:
        self.nodes.append(helper.make_node(kind, ins, outs, **attrs))
        return outs

    def scalar(self, v, dtype) -> str:
        """A 0-d constant of ``dtype`` (a numpy dtype or its name)."""
        return self.const(np.asarray(v, dtype))

    def transpose(self, v: str, perm: list[int]) -> str:
        """``v`` transposed by ``perm``; ``v`` itself for the identity permutation."""
        return v if perm == sorted(perm) else self.op("Transpose", [v], perm=perm)

    def function(self, op: str, inputs: list, outputs: list, opset: int = 18, domain: str = ""):
        """The FunctionProto of op ``domain.op`` with these formal inputs and outputs, nodes at ai.onnx ``opset``."""
        return helper.make_function(domain, op, inputs, outputs, self.nodes, [helper.make_opsetid("", opset)])

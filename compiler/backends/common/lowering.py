"""What every backend's lowerings share: the lowering context of a node and the stride arithmetic of NCHW
row-major tensors.

A lowering is a function registered on an op's registry entry (``@lowering(BACKEND, OP)``) that takes a context
(a subclass of :class:`LowerCtx` with the backend's type names) and returns the backend's kernel description.
"""
from __future__ import annotations

import numpy as np

from ...errors import UnsupportedOpError
from ...ir.graph import Node
from ...ops import registry


class LowerCtx:
    """Node, attributes with their defaults, input/output types and constant input values, for a lowering.

    ``ins``/``outs``: the TensorType of each input/output (None for an omitted one); ``consts``: each input's
    constant value (numpy array) or None when it is computed at run time; ``opset``: the node's domain opset."""

    def __init__(self, node: Node, types: dict, consts: dict, opset: int = 21):
        self.node, self.opset = node, opset
        opdef = registry.get(node.op, node.domain)
        self.attrs = registry.attrs_with_defaults(opdef, node)
        self.ins = [types.get(i) if i else None for i in node.inputs]
        self.outs = [types.get(o) if o else None for o in node.outputs]
        self.consts = [consts.get(i) if i else None for i in node.inputs]

    def shape(self, i: int) -> tuple:
        return tuple(self.ins[i].shape)

    def oshape(self, k: int = 0) -> tuple:
        return tuple(self.outs[k].shape)

    def has(self, i: int) -> bool:
        return i < len(self.node.inputs) and bool(self.node.inputs[i])

    def const(self, i: int, what: str) -> np.ndarray:
        """The constant value of input i; UnsupportedOpError when it is computed at run time."""
        if not self.has(i) or self.consts[i] is None:
            raise UnsupportedOpError({f"{self.node.op} with a run-time {what}": [self.node.name]})
        return self.consts[i]

    def unsupported(self, why: str) -> UnsupportedOpError:
        """The error for a node this lowering cannot handle (to raise): ``"OP (why)": [node name]``."""
        return unsupported(self.node, why)


def unsupported(node: Node, why: str) -> UnsupportedOpError:
    """UnsupportedOpError ``{"OP (why)": [node name]}``."""
    return UnsupportedOpError({f"{node.op} ({why})": [node.name]})


def contiguous_strides(shape) -> list[int]:
    """Element strides of a row-major (C-order) tensor of ``shape``."""
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= d
    return out[::-1]


def broadcast_strides(in_shape, out_shape) -> list[int]:
    """Element strides of an input of ``in_shape`` broadcast to ``out_shape`` (numpy rules, ONNX
    "Broadcasting in ONNX"): 0 along the broadcast axes, one stride per output axis."""
    pad = (1,) * (len(out_shape) - len(in_shape)) + tuple(in_shape)
    strides = contiguous_strides(pad)
    return [0 if p == 1 and o != 1 else s for p, o, s in zip(pad, out_shape, strides)]


def collapse(out_shape, operand_strides: list[list[int]]) -> tuple[list[int], list[list[int]]]:
    """Drop size-1 axes and merge adjacent axes that every operand walks contiguously: (dims, strides per
    operand) of the same iteration with fewer loops; ``[1]`` and zero strides for a single element."""
    dims = list(out_shape)
    strides = [list(s) for s in operand_strides]
    keep = [k for k, d in enumerate(dims) if d != 1]
    dims = [dims[k] for k in keep]
    strides = [[s[k] for k in keep] for s in strides]
    k = len(dims) - 1
    while k > 0:
        if all(s[k - 1] == s[k] * dims[k] for s in strides):
            dims[k - 1] *= dims[k]
            for s in strides:
                s[k - 1] = s[k]
                del s[k]
            del dims[k]
        k -= 1
    if not dims:
        return [1], [[0] for _ in strides]
    return dims, strides


__all__ = ["LowerCtx", "unsupported", "contiguous_strides", "broadcast_strides", "collapse"]

"""Rewrites of older ONNX operator versions into the newest form the registry implements.

One small converter per op, chosen by the model's opset (the approach of TVM's ONNX frontend). Each converter
takes the node, the opset version of its domain and ``const(array) -> name`` (which adds a constant to the
graph) and returns the rewritten node. Sources: the ONNX spec's "Changelog" for each operator.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..ir.graph import Node

CONVERTERS: dict[str, Callable] = {}


def converter(*ops: str):
    def deco(fn):
        for op in ops:
            CONVERTERS[op] = fn
        return fn
    return deco


def _attr_to_input(node: Node, attr: str, pos: int, const, dtype=np.int64) -> None:
    """Move attribute ``attr`` to input position ``pos`` (padding omitted inputs with '')."""
    if attr not in node.attrs:
        return
    value = node.attrs.pop(attr)
    while len(node.inputs) < pos:
        node.inputs.append("")
    name = const(np.asarray(value, dtype=dtype))
    if len(node.inputs) == pos:
        node.inputs.append(name)
    else:
        node.inputs[pos] = name


@converter("Squeeze", "Unsqueeze")
def squeeze_v1(node, opset, const):
    if opset < 13:
        _attr_to_input(node, "axes", 1, const)
    return node


@converter("Split")
def split_v2(node, opset, const):
    if opset < 13:
        _attr_to_input(node, "split", 1, const)
    return node


@converter("ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
           "ReduceLogSumExp", "ReduceSumSquare", "ReduceSum")
def reduce_v1(node, opset, const):
    if opset < (13 if node.op == "ReduceSum" else 18):
        _attr_to_input(node, "axes", 1, const)
    return node


@converter("Clip")
def clip_v6(node, opset, const):
    if opset < 11:
        lo, hi = node.attrs.pop("min", None), node.attrs.pop("max", None)
        node.inputs = node.inputs[:1] + [const(np.float32(lo)) if lo is not None else "",
                                         const(np.float32(hi)) if hi is not None else ""]
    return node


@converter("Pad")
def pad_v2(node, opset, const):
    if opset < 11:
        pads = node.attrs.pop("pads", node.attrs.pop("paddings", None))
        value = node.attrs.pop("value", 0.0)
        node.inputs = node.inputs[:1] + [const(np.asarray(pads, np.int64)), const(np.float32(value))]
    return node


@converter("Slice")
def slice_v1(node, opset, const):
    if opset < 10:
        starts, ends = node.attrs.pop("starts"), node.attrs.pop("ends")
        axes = node.attrs.pop("axes", None)
        node.inputs = node.inputs[:1] + [const(np.asarray(starts, np.int64)), const(np.asarray(ends, np.int64))]
        if axes is not None:
            node.inputs.append(const(np.asarray(axes, np.int64)))
    return node


@converter("TopK")
def topk_v1(node, opset, const):
    if opset < 10:
        _attr_to_input(node, "k", 1, const)
        node.inputs[1] = node.inputs[1]
    return node


@converter("Dropout")
def dropout_v7(node, opset, const):
    if opset < 12:
        node.attrs.pop("ratio", None)
        node.attrs.pop("is_test", None)
    return node


@converter("Upsample")
def upsample_v7(node, opset, const):
    if "scales" in node.attrs:
        _attr_to_input(node, "scales", 1, const, dtype=np.float32)
    return node


@converter("Resize")
def resize_v10(node, opset, const):
    if opset < 11:   # (X, scales) -> (X, roi, scales); opset 10 sampled with asymmetric coordinates
        node.inputs = [node.inputs[0], "", node.inputs[1]]
        node.attrs.setdefault("coordinate_transformation_mode", "asymmetric")
        node.attrs.setdefault("nearest_mode", "floor")
    return node


@converter("BatchNormalization")
def batchnorm_v6(node, opset, const):
    node.attrs.pop("is_test", None)
    node.attrs.pop("consumed_inputs", None)
    return node


@converter("RoiAlign")
def roialign_v10(node, opset, const):
    if opset < 16:   # RoiAlign-10 sampled without the half-pixel shift that opset 16 made the default
        node.attrs.setdefault("coordinate_transformation_mode", "output_half_pixel")
    return node


def canonicalize(node: Node, opset: int, const) -> Node:
    """Apply the converter registered for ``node.op`` (if any) for a node of the default domain."""
    fn = CONVERTERS.get(node.op) if node.domain in ("", "ai.onnx") else None
    return fn(node, opset, const) if fn else node

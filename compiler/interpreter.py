"""The reference interpreter: executes the IR op by op with each registry entry's numpy kernel.

It is the oracle every target is compared with. Values are numpy arrays, Python lists (ONNX sequences) or
None (an empty optional). Subgraphs (If/Loop/Scan bodies) run through ``KernelCtx.run_graph`` with the
enclosing scope visible, as the ONNX IR spec's scoping rules require.
"""
from __future__ import annotations

import logging
import warnings
from collections import ChainMap
from typing import Callable, Mapping

import numpy as np

from .errors import BorncError, InputError, KernelError, UnsupportedOpError
from .ir.graph import Graph, Model, Node
from .ir.types import TensorType, np_dtype
from .ops import registry

log = logging.getLogger(__name__)

Observer = Callable[[Node, list], None]


def _describe(v) -> str:
    if isinstance(v, np.ndarray):
        return f"{v.dtype}{list(v.shape)}"
    if isinstance(v, list):
        return f"seq[{len(v)}]"
    return "none" if v is None else type(v).__name__


def run_node(node: Node, args: list, opsets: Mapping[str, int], run_graph=None) -> list:
    """Run one node's reference kernel on ``args`` (None for omitted inputs); returns its outputs in order.

    Raises UnsupportedOpError for an op without registry entry and KernelError (naming the node, op and input
    shapes) when the kernel fails."""
    opdef = registry.get(node.op, node.domain)
    if opdef is None:
        raise UnsupportedOpError({node.op: [node.name]})
    ctx = registry.KernelCtx(node, registry.attrs_with_defaults(opdef, node),
                             opsets.get(node.domain or "", opsets.get("ai.onnx", 21)), run_graph)
    while args and args[-1] is None and len(args) > 0 and not node.inputs[len(args) - 1]:
        args = args[:-1]
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = opdef.reference(ctx, *args)
    except BorncError:
        raise
    except Exception as ex:  # noqa: BLE001 - any numpy failure becomes one clear error
        shapes = ", ".join(_describe(a) for a in args)
        raise KernelError(f"node {node.name!r} ({node.op}) failed on inputs ({shapes}): {type(ex).__name__}: {ex}") from ex
    res = list(res) if isinstance(res, tuple) else [res]
    return [np.asarray(r) if isinstance(r, np.generic) else r for r in res]


def run_graph(graph: Graph, scope: Mapping, opsets: Mapping[str, int], observer: Observer | None = None) -> list:
    """Execute ``graph`` with ``scope`` holding its inputs and any outer values; returns its outputs."""
    env = ChainMap({}, dict(graph.constants), scope)

    def sub(g: Graph, feeds: Mapping) -> list:
        return run_graph(g, ChainMap(dict(feeds), env), opsets)

    for node in graph.nodes:
        args = [env[i] if i else None for i in node.inputs]
        outs = run_node(node, args, opsets, sub)
        for name, val in zip(node.outputs, outs):
            if name:
                env[name] = val
        if observer is not None:
            observer(node, outs)
    return [env[o] for o in graph.outputs]


def check_inputs(model: Model, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Validate run-time inputs against the model's input types.

    Raises InputError naming the input, what was expected and what was given (unknown or missing name,
    wrong shape, wrong dtype). Returns the feeds as numpy arrays."""
    names = list(model.graph.inputs)
    unknown = [k for k in feeds if k not in names]
    if unknown:
        raise InputError(f"unknown input(s) {', '.join(map(repr, unknown))}; the model's inputs are {', '.join(map(repr, names))}")
    missing = [n for n in names if n not in feeds]
    if missing:
        raise InputError("missing input(s): " + ", ".join(f"{n!r} ({model.graph.types[n]})" for n in missing))
    out = {}
    for n in names:
        v = feeds[n]
        t = model.graph.types[n]
        if isinstance(t, TensorType):
            v = np.asarray(v)
            if v.dtype.kind == "V" and t.dtype != "string" and v.dtype.itemsize == np_dtype(t.dtype).itemsize:
                v = v.view(np_dtype(t.dtype))    # .npy/.npz files hold ml_dtypes values (bfloat16, int4...) as bytes
            if t.dtype != "string" and v.dtype != np_dtype(t.dtype):
                raise InputError(f"input {n!r}: expected dtype {t.dtype}, got {v.dtype}")
            if t.shape is not None and (len(t.shape) != v.ndim or any(d is not None and d != s for d, s in zip(t.shape, v.shape))):
                raise InputError(f"input {n!r}: expected shape {list(t.shape)}, got {list(v.shape)}")
        out[n] = v
    return out


def run(model: Model, feeds: Mapping[str, np.ndarray], observer: Observer | None = None, check: bool = True) -> dict:
    """Run ``model`` on ``feeds`` (input name -> array) with the reference kernels.

    Returns output name -> value (ndarray; list for sequences). Raises InputError for bad feeds and KernelError
    when a kernel fails, LimitError (before anything runs) when a value's static type exceeds the limit of
    :mod:`bornc.limits`."""
    from . import limits
    limits.check_graph(model.graph)
    feeds = check_inputs(model, feeds) if check else dict(feeds)
    outs = run_graph(model.graph, feeds, model.opsets, observer)
    return dict(zip(model.graph.outputs, outs))

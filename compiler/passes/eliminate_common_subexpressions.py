"""eliminate_common_subexpressions: merge nodes that compute the same op on the same inputs with the same
attributes, and merge identical small constants (up to 4,096 elements, same dtype, shape and bytes).

Nodes with subgraphs and stateful nodes are never merged. Value names of the survivors are kept.
"""
from __future__ import annotations

import hashlib

import numpy as np

from ..ir.graph import Model
from ..ops import registry
from .util import clone, replace_uses

SMALL_CONSTANT = 4096


def _attr_key(v) -> str:
    if isinstance(v, np.ndarray):
        return f"nd:{v.dtype}:{v.shape}:{hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_attr_key(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(f"{k}:{_attr_key(x)}" for k, x in sorted(v.items())) + "}"
    return repr(v)


def eliminate_common_subexpressions(model: Model) -> Model:
    m = clone(model)
    g = m.graph
    seen_const: dict[str, str] = {}
    for name, arr in list(g.constants.items()):
        if arr.dtype == object or arr.size > SMALL_CONSTANT:
            continue
        key = _attr_key(arr)
        if key in seen_const:
            if replace_uses(g, name, seen_const[key]):
                del g.constants[name]
                del g.types[name]
        else:
            seen_const[key] = name
    seen: dict[str, list[str]] = {}
    kept = []
    for node in g.nodes:
        opdef = registry.get(node.op, node.domain)
        if node.subgraphs() or (opdef is not None and opdef.stateful):
            kept.append(node)
            continue
        key = f"{node.domain}.{node.op}({','.join(node.inputs)})" + _attr_key(node.attrs) + f"#{len(node.outputs)}"
        prev = seen.get(key)
        if prev is not None and all(not o or replace_uses(g, o, p) for o, p in zip(node.outputs, prev)):
            continue
        if prev is None:
            seen[key] = node.outputs
        kept.append(node)
    g.nodes = kept
    return m

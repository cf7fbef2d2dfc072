"""Code-generating backends: each takes a planned Model and a Target and writes an artifact directory.

Each backend also answers, for legalization (``passes/legalize.py``), whether it can lower a node:
:func:`lowering_gaps` gives ``{reason: [node names]}`` (empty when it can), :func:`has_lowering` whether the op
has a lowering at all.
"""
from __future__ import annotations

from typing import Callable

from ..errors import UnsupportedOpError
from ..ir.graph import Node

Gaps = dict


def _runtime_value_inputs(node: Node, consts: dict) -> Gaps:
    """Static-shape backends: every input that decides output shapes or acts as a parameter (the registry entry's
    ``value_inputs``: Reshape's shape, Unsqueeze's axes...) must be a constant. A static type declared by the model
    for such an output is a claim, not a fact; the kernel would be built for it and write another shape."""
    from ..ops import registry
    d = registry.get(node.op, node.domain)
    bad = [node.inputs[i] for i in (d.value_inputs if d else ()) if i < len(node.inputs) and node.inputs[i]
           and node.inputs[i] not in consts]
    return {f"{node.op} with run-time value input(s) (bind them with --bind, or fold them to constants)": [node.name]} if bad else {}


def _if_copies(node: Node, types: dict) -> Gaps:
    """C copies each branch's outputs into the If's outputs: every branch output must have the If output's type
    (dtype and static shape), or the copy would read past the branch's buffer."""
    for branch in (node.attrs["then_branch"], node.attrs["else_branch"]):
        for o, bo in zip(node.outputs, branch.outputs):
            if o and (branch.types.get(bo) or types.get(bo)) != types.get(o):
                return {"If whose branch outputs differ from its outputs in dtype or shape": [node.name]}
    return {}


def _c_gaps(node: Node, types: dict, consts: dict, opset: int) -> Gaps:
    from .c.lowering import lower_node
    if node.op == "If" and not node.domain:        # the C backend runs If itself; its branches are lowered apart
        return _if_copies(node, types)
    gaps = _runtime_value_inputs(node, consts)
    if gaps:
        return gaps
    if node.subgraphs():
        return {node.op: [node.name]}
    try:
        lower_node(node, types, consts, opset)
    except UnsupportedOpError as ex:
        return ex.missing
    except Exception as ex:  # noqa: BLE001 - a lowering that cannot handle these inputs: reported, not a traceback
        return {f"{node.op} (the C lowering failed on these inputs: {type(ex).__name__}: {str(ex)[:80]})": [node.name]}
    return {}


def _by_op(has: Callable) -> Callable:
    """Gaps of a backend whose lowerings depend on the op type only."""
    return lambda node, types, consts, opset: {} if has(node.op, node.domain) else {node.op: [node.name]}


def _webgpu_gaps(node: Node, types: dict, consts: dict, opset: int) -> Gaps:
    if node.subgraphs():
        return {f"{node.op} (control flow runs on the host, not in a WebGPU bundle)": [node.name]}
    gaps = _runtime_value_inputs(node, consts) or _by_op(_webgpu_has)(node, types, consts, opset)
    if gaps:
        return gaps
    from .webgpu.emit import _lower
    try:                          # a lowering that refuses these attributes (training mode...): a gap to expand
        _lower(node, types, consts, opset, False)
    except UnsupportedOpError as ex:
        return ex.missing
    except Exception:  # noqa: BLE001 - other failures are the emitter's to report, with its own message
        return {}
    return {}


def _c_has(op: str, domain: str) -> bool:
    from ..ops import registry
    d = registry.get(op, domain)
    return d is not None and ("c" in d.lowerings or (op == "If" and not domain))


def _python_has(op: str, domain: str) -> bool:
    from .python.emit import lacks_python_kernel
    return not lacks_python_kernel(op, domain)


def _webgpu_has(op: str, domain: str) -> bool:
    from .webgpu.emit import lacks_webgpu_kernel
    return not lacks_webgpu_kernel(op, domain)


_GAPS: dict[str, Callable] = {"c": _c_gaps, "python": _by_op(_python_has), "webgpu": _webgpu_gaps}
_HAS: dict[str, Callable] = {"c": _c_has, "python": _python_has, "webgpu": _webgpu_has}


def lowering_gaps(backend: str, node: Node, types: dict, consts: dict, opset: int) -> Gaps:
    """What keeps ``backend`` from lowering ``node`` with these value types and constants: ``{reason: [node
    names]}``, empty when nothing does. The reference backend lowers every registered op."""
    fn = _GAPS.get(backend)
    return fn(node, types, consts, opset) if fn else {}


def has_lowering(backend: str, op: str, domain: str = "") -> bool:
    """True when ``backend`` has a lowering for op type ``op`` of ``domain`` (for some attributes and shapes)."""
    fn = _HAS.get(backend)
    return fn(op, domain) if fn else True


__all__ = ["lowering_gaps", "has_lowering"]

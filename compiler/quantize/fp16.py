"""quantize_fp16: float32 weights stored as float16 (half the bytes), expanded by a Cast node at run time.

Every float32 constant of at least ``MIN_ELEMS`` elements that is not a value input (shapes, axes, Resize
scales) becomes a float16 constant and a ``Cast(to=float)`` writing the original name, so arithmetic stays
float32 on every target; float16 rounding of the weights (IEEE 754 binary16, round to nearest even) is the
only change. Targets that compute in f16 (``webgpu-f16``) take a float16 model instead (see README).
"""
from __future__ import annotations

import numpy as np

from ..ir.graph import Model, Node
from ..ir.types import TensorType, name_to_onnx_elem
from ..ops import registry
from ..passes.util import clone, fresh_name

MIN_ELEMS = 16


def quantize_fp16(model: Model, keep_float=frozenset(), min_elems: int = MIN_ELEMS) -> Model:
    """The model with large float32 weights stored as float16 (main graph); nodes named in ``keep_float``
    keep float32 weights."""
    m = clone(model)
    g = m.graph
    done: set[str] = set()
    nodes: list[Node] = []
    for n in g.nodes:
        opdef = registry.get(n.op, n.domain)
        value_inputs = opdef.value_inputs if opdef is not None else ()
        for k, name in enumerate(n.inputs):
            c = g.constants.get(name) if name else None
            if (not isinstance(c, np.ndarray) or c.dtype != np.float32 or c.size < min_elems or k in value_inputs
                    or name in done or n.name in keep_float or name in g.outputs):
                continue
            half = fresh_name(g, name + "_fp16")
            g.constants[half] = c.astype(np.float16)
            g.types[half] = TensorType.of(g.constants[half])
            del g.constants[name]
            nodes.append(Node("Cast", [half], [name], {"to": name_to_onnx_elem("float32")}, fresh_name(g, name + "_cast")))
            done.add(name)
        nodes.append(n)
    g.nodes = nodes
    return m

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


#: Ops whose attributes name a float32 dtype that must follow the model into float16.
_DTYPE_ATTRS = {"Cast": "to", "EyeLike": "dtype", "RandomNormal": "dtype", "RandomUniform": "dtype",
                "RandomNormalLike": "dtype", "RandomUniformLike": "dtype", "Multinomial": "dtype"}


def to_float16_compute(model: Model, keep_float=frozenset()) -> Model:
    """The model computing in float16 (for targets with f16 arithmetic: WebGPU with shader-f16): every float32
    value and constant becomes float16, except constants that act as parameters (value inputs: Resize scales,
    shapes); float32 graph inputs and outputs keep their type through a Cast at the boundary. Subgraphs are left
    as they are (a model with If/Loop keeps float32 there). Nodes named in ``keep_float`` are not treated
    specially here: the model is converted whole."""
    m = clone(model)
    g = m.graph
    f16 = name_to_onnx_elem("float16")
    f32 = name_to_onnx_elem("float32")
    value_params = set()
    for n in g.nodes:
        opdef = registry.get(n.op, n.domain)
        for k in (opdef.value_inputs if opdef is not None else ()):
            if k < len(n.inputs) and n.inputs[k]:
                value_params.add(n.inputs[k])
    for name, c in list(g.constants.items()):
        if isinstance(c, np.ndarray) and c.dtype == np.float32 and name not in value_params:
            g.constants[name] = c.astype(np.float16)
            g.types[name] = TensorType.of(g.constants[name])
    boundary_in, boundary_out = {}, {}
    for v in g.inputs:
        t = g.types.get(v)
        if isinstance(t, TensorType) and t.dtype == "float32":
            boundary_in[v] = fresh_name(g, v + "_fp16")
            g.types[boundary_in[v]] = TensorType("float16", t.shape)
    for v in g.outputs:
        t = g.types.get(v)
        if isinstance(t, TensorType) and t.dtype == "float32" and v not in g.inputs and v not in g.constants:
            boundary_out[v] = fresh_name(g, v + "_fp16")
            g.types[boundary_out[v]] = TensorType("float16", t.shape)
    produced = {o for n in g.nodes for o in n.outputs if o}
    for v in produced:
        t = g.types.get(v)
        if isinstance(t, TensorType) and t.dtype == "float32" and v not in boundary_out:
            g.types[v] = TensorType("float16", t.shape)
    nodes = [Node("Cast", [v], [h], {"to": f16}, fresh_name(g, v + "_to_fp16")) for v, h in boundary_in.items()]
    for n in g.nodes:
        n.inputs = [boundary_in.get(i, i) for i in n.inputs]
        n.outputs = [boundary_out.get(o, o) for o in n.outputs]
        attr = _DTYPE_ATTRS.get(n.op)
        if attr and n.attrs.get(attr) == f32:
            n.attrs[attr] = f16
        if n.op == "ConstantOfShape" and isinstance(n.attrs.get("value"), np.ndarray) and n.attrs["value"].dtype == np.float32:
            n.attrs["value"] = n.attrs["value"].astype(np.float16)
        nodes.append(n)
    nodes += [Node("Cast", [h], [v], {"to": f32}, fresh_name(g, v + "_to_fp32")) for v, h in boundary_out.items()]
    g.nodes = nodes
    return m

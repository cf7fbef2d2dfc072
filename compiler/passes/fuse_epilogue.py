"""fuse_epilogue: Conv, Gemm or MatMul followed by an elementwise op or FusedElementwise that reads the
product becomes FusedConv / FusedGemm / FusedMatMul with that elementwise program as its epilogue
(activation, bias, residual add...), computed in the same kernel.

Conditions: the product is read only by that one node, is not a graph output, and the epilogue's output has
the product's shape. A MatMul's constant bias add becomes part of the epilogue the same way. The ``activation``
attribute names the epilogue when it is a known activation (for reports): single ops by name, Clip(0, 6) as
Relu6, and SiLU, HardSwish and the two GELU forms recognized by evaluating the program on probe points.
"""
from __future__ import annotations

import math

import numpy as np

from ..ir.graph import Model, Node
from ..ir.types import TensorType
from ..ops import registry
from ..ops.composite import run_program
from .fuse_elementwise import build_program
from .util import clone, target_lowers, use_counts

_CORE = {"Conv": "FusedConv", "Gemm": "FusedGemm", "MatMul": "FusedMatMul"}
_PROBE = np.linspace(-6, 6, 97)


def _erf(x):
    return np.array([math.erf(v) for v in x])


_KNOWN = {
    "SiLU": lambda x: x / (1 + np.exp(-x)),
    "HardSwish": lambda x: x * np.clip(x / 6 + 0.5, 0, 1),
    "GELU": lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))),
    "GELU(tanh)": lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))),
}


def describe(program: list, n_inputs: int) -> str:
    """A readable name of an epilogue: an activation name, or 'expression'."""
    if len(program) == 1:
        s = program[0]
        if s["op"] == "Clip" and [a[1] for a in s["args"][1:]] == [0.0, 6.0]:
            return "Relu6"
        return s["op"]
    if n_inputs == 1:
        try:
            y = run_program(program, [_PROBE], np.float64)
        except Exception:  # noqa: BLE001 - a program that cannot run on probes is just an expression
            return "expression"
        for name, f in _KNOWN.items():
            if np.allclose(y, f(_PROBE), rtol=1e-6, atol=1e-6):
                return name
    return "expression"


def fuse_epilogue(model: Model, target=None) -> Model:
    """See the module docstring; a core op is fused only into a composite ``target`` can lower."""
    m = clone(model)
    g = m.graph
    uses = use_counts(g)
    consumers: dict[str, list[Node]] = {}
    for n in g.nodes:
        for i in set(n.inputs):
            consumers.setdefault(i, []).append(n)
    moved: dict[int, Node] = {}     # epilogue node id -> fused node that takes its place in the schedule
    dead = set()
    for core in g.nodes:
        if core.op not in _CORE or core.domain or id(core) in dead or not target_lowers(target, _CORE[core.op], "bornc"):
            continue
        y = core.outputs[0]
        readers = consumers.get(y, [])
        if len(readers) != 1 or y in g.outputs:
            continue
        epi = readers[0]
        if uses[y] != epi.inputs.count(y) or id(epi) in moved:     # an epilogue is fused into one core only
            continue
        if epi.op == "FusedElementwise" and epi.domain == "bornc":
            prog, ext = epi.attrs["program"], list(epi.inputs)
        elif registry.has(epi.op, "program", epi.domain) and len(epi.outputs) == 1 and \
                (epi.op != "Clip" or all(not i or i in g.constants for i in epi.inputs[1:])):
            prog, ext = build_program(g, [epi], epi)
        else:
            continue
        ty, te = g.types.get(y), g.types.get(epi.outputs[0])
        if not (isinstance(ty, TensorType) and isinstance(te, TensorType) and ty.shape == te.shape and ty.dtype == te.dtype):
            continue
        # renumber: program input 0 = the product, then the other external inputs in order
        others = [i for i in ext if i != y]
        remap = {k: (0 if name == y else 1 + others.index(name)) for k, name in enumerate(ext)}
        prog = [{**s, "args": [["in", remap[a[1]]] if a[0] == "in" else a for a in s["args"]]} for s in prog]
        n_core = 3 if core.op in ("Conv", "Gemm") else 2
        core_inputs = (core.inputs + [""] * n_core)[:n_core]
        core.inputs = core_inputs + others
        core.attrs = {**core.attrs, "epilogue": prog, "activation": describe(prog, 1 + len(others))}
        core.op, core.domain = _CORE[core.op], "bornc"
        core.outputs = [epi.outputs[0]]
        g.types.pop(y, None)
        dead.add(id(core))
        moved[id(epi)] = core
    g.nodes = [moved.get(id(n), n) for n in g.nodes if id(n) not in dead]
    return m

"""What the WebGPU backend makes of a node: one or more ``Kernel`` dispatches, each one WGSL compute shader.

A lowering (``@lowering("webgpu", OP)``) returns a list of kernels. A kernel names its operands (node inputs and
outputs, tables baked into the weights, or scratch in the node's planned workspace), its template and
parameters, and how many invocations it needs; the emitter binds each operand to a 256-byte aligned range of the
arena or the weights buffer and writes the ``ld<k>`` / ``st<k>`` accessors the template calls.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..common.lowering import LowerCtx
from .wgsl import gpu_type

WG = 256            #: invocations per workgroup of 1-D kernels (WebGPU's default limit)
#: bytes one binding may cover under WebGPU's default limits (maxStorageBufferBindingSize): larger tensors are
#: bound in windows by several dispatches
BINDING_LIMIT = 128 << 20


@dataclass
class Operand:
    """One buffer range a kernel reads or writes. ``kind``: 'in' (node input ``index``), 'out' (output
    ``index``), 'table' (``data`` baked into the weights), 'ws' (``index`` = element offset into the node's
    workspace, ``elems`` long) or 'status' (the bundle's one status word: ``fail<k>()`` marks the inference
    failed, for a run-time index out of range; the host raises after reading it back). ``t``: WGSL scalar type; ``dtype``: the ONNX dtype stores round to."""

    kind: str
    index: int = 0
    t: str = "f32"
    dtype: str = "float32"
    data: np.ndarray | None = None
    elems: int = 0
    vec4: bool = False
    start: int = 0            # first element of the value this operand binds (a window of a large tensor)


@dataclass
class Kernel:
    """One dispatch: template name, parameters, operands (``ld<k>``/``st<k>`` in the template), and either
    ``threads`` (1-D: workgroups of ``WG`` invocations, spread over x and y when more than 65535) or explicit
    ``groups`` (x, y, z)."""

    template: str
    params: dict
    operands: list[Operand]
    threads: int = 0
    groups: tuple | None = None
    label: str = ""


@dataclass
class Lowered:
    kernels: list[Kernel]
    workspace: int = 0          # bytes of scratch in the arena during this node
    notes: list = field(default_factory=list)


class Ctx(LowerCtx):
    """LowerCtx plus operand constructors for the WebGPU backend."""

    def t(self, i: int) -> str:
        return gpu_type(self.ins[i].dtype)

    def ot(self, k: int = 0) -> str:
        return gpu_type(self.outs[k].dtype)

    def x(self, i: int, vec4: bool = False) -> Operand:
        return Operand("in", i, self.t(i), self.ins[i].dtype, elems=self.ins[i].size, vec4=vec4)

    def y(self, k: int = 0, vec4: bool = False) -> Operand:
        return Operand("out", k, self.ot(k), self.outs[k].dtype, elems=self.outs[k].size, vec4=vec4)

    def window(self, opnd: Operand, start: int, elems: int) -> Operand:
        """``opnd`` restricted to ``elems`` elements from ``start`` (its accessors index from there)."""
        opnd.start, opnd.elems = start, elems
        return opnd

    def table(self, arr, t: str = "i32") -> Operand:
        arr = np.ascontiguousarray(np.asarray(arr).astype({"i32": np.int32, "u32": np.uint32, "f32": np.float32}[t]).ravel())
        if arr.size == 0:
            arr = np.zeros(1, arr.dtype)
        return Operand("table", 0, t, {"i32": "int32", "u32": "uint32", "f32": "float32"}[t], data=arr, elems=arr.size)

    def status(self) -> Operand:
        """The status word: a kernel calls ``fail<k>()`` on an index out of range (the host then raises)."""
        return Operand("status", 0, "u32", "uint32", elems=1)

    def ws(self, offset: int, elems: int, t: str = "f32") -> Operand:
        return Operand("ws", offset, t, {"i32": "int32", "u32": "uint32", "f32": "float32"}[t], elems=elems)


def decompose(dims: list[int], var: str = "i", prefix: str = "c") -> list[str]:
    """WGSL lines splitting the linear index ``var`` into coordinates ``c0..c{n-1}`` of row-major ``dims``."""
    if not dims:
        return []
    lines = [f"var r_{prefix} = {var};"]
    for k in range(len(dims) - 1, 0, -1):
        lines.append(f"let {prefix}{k} = r_{prefix} % {dims[k]}u; r_{prefix} = r_{prefix} / {dims[k]}u;")
    lines.append(f"let {prefix}0 = r_{prefix};")
    return lines


def offset(strides: list[int], prefix: str = "c", base: int = 0) -> str:
    """WGSL u32 expression sum(c_k * stride_k) + base (negative strides allowed through i32 arithmetic)."""
    if any(s < 0 for s in strides) or base < 0:
        terms = [f"i32({prefix}{k}) * {s}i" for k, s in enumerate(strides) if s] + ([f"{base}i"] if base else [])
        return f"u32({' + '.join(terms) if terms else '0i'})"
    terms = [f"{prefix}{k}" if s == 1 else f"{prefix}{k} * {s}u" for k, s in enumerate(strides) if s]
    if base:
        terms.append(f"{base}u")
    return " + ".join(terms) if terms else "0u"


"""What the C backend needs from each op: a ``Lowered`` (one or more template stages and which inputs are
passed to the kernel as pointers), computed in Python from the node's types, attributes and constant inputs.

Lowerings attach to registry entries with ``@lowering("c", OP)``; templates in ``templates/c/`` only spell the
loops. Kernel arguments are named ``X<i>`` (node input i) and ``Y<k>`` (output k), as the spec names them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...errors import UnsupportedOpError
from ...ir.graph import Node
from ...ir.types import TensorType
from ...ops import registry
from ..common.lowering import LowerCtx
from .ctypes_ import ctype


@dataclass
class Stage:
    """One template rendering inside a kernel function. ``tasks`` > 0: the rendering is the body of one task
    (it reads ``task``) and the kernel runs the tasks through bornc_parallel; its only free names are the kernel's
    parameters (X<i>, Y<k>, WS)."""

    template: str
    params: dict
    tasks: int = 0


@dataclass
class Lowered:
    """A node's kernel: stages in order, and the node inputs passed as pointers (the rest are baked in).

    ``tasks`` > 0: some stage runs as tasks (Stage.tasks) and ``WS`` is the running worker's own ``workspace``
    bytes (one slice per worker in the arena). ``packed``: arrays that replace constant inputs (by input index) in the artifact, as the
    kernel wants them laid out (weights pre-packed in micro-kernel panel order, padded biases); their names in
    the artifact are set by the emitter in ``values``."""

    stages: list[Stage]
    args: list[int] | None = None
    tables: list = field(default_factory=list)
    workspace: int = 0          # scratch bytes in the arena during this node (passed as WS), per worker with tasks
    tasks: int = 0
    packed: dict = field(default_factory=dict)
    values: dict = field(default_factory=dict)


class CCtx(LowerCtx):
    """The shared lowering context plus the C types of inputs and outputs (``ct``/``oct``: ``float``,
    ``int64_t``, ``uint16_t`` for halves...) and the workers the artifact is compiled for (``threads``)."""

    threads: int = 1
    features: tuple = ()        # the target's ISA features (targets/*.toml): kernels pick micro-kernels by them

    def ct(self, i: int) -> str:
        return ctype(self.ins[i].dtype, self.node)

    def acc(self, T: str = "float") -> str:
        """C type of the accumulator of a sum of ``T`` values: double, or float for float (and half) values on a
        target whose doubles are emulated in software (feature "soft-fp64": the Cortex-M4F's FPU is single
        precision), where a double sum would call libgcc for every add."""
        return "float" if "soft-fp64" in self.features and T != "double" else "double"

    def pack_bytes(self, cache_bytes: int) -> int:
        """Bytes a kernel may pack its operands into per block: ``cache_bytes`` (sized for a cache), or 2 KiB
        on a target of kilobytes of RAM (feature "small-ram": microcontrollers, whose arena would otherwise
        hold the block)."""
        return 2048 if "small-ram" in self.features else cache_bytes

    def oct(self, k: int = 0) -> str:
        return ctype(self.outs[k].dtype, self.node)


def lower_node(node: Node, types: dict, consts: dict, opset: int = 21, threads: int = 1,
               features: tuple = ()) -> Lowered:
    """The C lowering of a node for an artifact of ``threads`` workers on a target with ISA ``features``;
    UnsupportedOpError when the C backend has none for it."""
    opdef = registry.get(node.op, node.domain)
    fn = opdef.lowerings.get("c") if opdef is not None else None
    if fn is None:
        raise UnsupportedOpError({node.op: [node.name]})
    for t in [types.get(o) for o in node.outputs if o]:
        if not isinstance(t, TensorType) or not t.is_static:
            raise UnsupportedOpError({f"{node.op} with a non-static output": [node.name]})
    for t in [types.get(i) for i in node.inputs if i]:
        if not isinstance(t, TensorType) or not t.is_static:
            raise UnsupportedOpError({f"{node.op} with a non-static input": [node.name]})
    halves = {t.dtype for t in (types.get(v) for v in list(node.inputs) + list(node.outputs) if v)
              if isinstance(t, TensorType) and t.dtype in ("float16", "bfloat16")}
    if halves and not half_aware(node):
        return _promoted(fn, node, types, consts, opset, threads)
    return fn(_ctx(node, types, consts, opset, threads, features))


def _ctx(node: Node, types: dict, consts: dict, opset: int, threads: int, features: tuple = ()) -> CCtx:
    ctx = CCtx(node, types, consts, opset)
    ctx.threads, ctx.features = threads, tuple(features)
    return ctx


def _promoted(fn, node: Node, types: dict, consts: dict, opset: int, threads: int = 1) -> Lowered:
    """A float16/bfloat16 node through its float32 lowering: half inputs passed as pointers are converted into
    float buffers of the workspace, the float kernel runs on them (the block shadows X<k>, Y<k> and WS), and the
    float results are converted back (round to nearest even). Constants the kernel bakes in are converted at
    compile time, and so are the float32 arrays the inner lowering packs (they are passed as they are). A kernel
    split into tasks runs them in order on the caller (its task stage gets ``serial_tasks``)."""
    from .ctypes_ import HALF
    f32 = dict(types)
    f32_consts = dict(consts)
    for v in list(node.inputs) + list(node.outputs):
        t = types.get(v) if v else None
        if isinstance(t, TensorType) and t.dtype in HALF:
            f32[v] = TensorType("float32", t.shape)
            if consts.get(v) is not None:
                f32_consts[v] = np.asarray(consts[v]).astype(np.float32)
    inner = fn(_ctx(node, f32, f32_consts, opset, 1))   # one thread: its task stage runs inside the promotion block
    args = inner.args if inner.args is not None else [k for k, i in enumerate(node.inputs) if i]
    if inner.tasks:
        inner.stages[0].params["serial_tasks"] = inner.tasks
    pos, ins, outs = 0, [], []
    for k in args:
        t = types[node.inputs[k]]
        if t.dtype in HALF and k not in inner.packed:
            ins.append({"k": k, "off": pos, "n": t.size, "load": HALF[t.dtype][0]})
            pos += max(t.size, 1)
    for k, o in enumerate(node.outputs):
        t = types.get(o) if o else None
        if isinstance(t, TensorType) and t.dtype in HALF:
            outs.append({"k": k, "off": pos, "n": t.size, "store": HALF[t.dtype][1]})
            pos += max(t.size, 1)
    inner_ws = (inner.workspace + 3) // 4
    before = Stage("promote_in", {"ins": ins, "outs": outs, "inner_ws": pos if inner.workspace else None})
    after = Stage("promote_out", {"outs": outs})
    return Lowered([before, *inner.stages, after], inner.args, inner.tables, (pos + inner_ws) * 4, packed=inner.packed)


def half_aware(node: Node) -> bool:
    """True when the C lowering of ``node`` handles float16/bfloat16 itself (as uint16_t bits): ops that only
    move bytes (registry properties ``storage``, ``view``) and lowerings registered with property ``half``
    (elementwise ones convert through float). Every other lowering gets float32 copies (:func:`_promoted`)."""
    return (registry.has(node.op, "storage", node.domain) or registry.has(node.op, "view", node.domain)
            or registry.lowering_has("c", node.op, "half", node.domain))


def index_expr(strides: list[int]) -> str:
    """The C index expression ``i0 * s0 + i1 * s1 ...`` of loop variables i<k> over element ``strides``."""
    terms = [f"i{k}" if s == 1 else f"i{k} * {s}" for k, s in enumerate(strides) if s]
    return " + ".join(terms) if terms else "0"

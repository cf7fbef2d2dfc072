"""bornc composite operators produced by the optimizer's fusion passes (domain ``bornc``).

- ``FusedElementwise``: a chain of elementwise ops as one node holding a small program.
- ``FusedConv`` / ``FusedGemm`` / ``FusedMatMul``: Conv, Gemm or MatMul followed by an elementwise epilogue
  (bias, activation, residual add...) that a backend renders inside the same kernel.

A program is a list of steps ``{"op": ONNX op, "args": [...], "attrs": {...}}``; an argument is
``["in", i]`` (node input i; for the Fused* ops with a core, input 0 of the program is the core result and
``["in", i]`` for i >= 1 is node input ``first_extra + i - 1``), ``["t", k]`` (the result of step k) or
``["c", value]`` (a scalar literal). The program's result is its last step, cast to ``dtype``.
"""
from __future__ import annotations

import numpy as np

from ..ir.types import np_dtype
from . import registry
from .nn import _conv_infer, _gemm_infer, matmul_shape, ref_conv, ref_gemm
from .registry import InferCtx, KernelCtx, TensorType, broadcast_shapes, register



def step_attrs(step: dict) -> dict:
    """A program step's attributes with the registry entry's defaults filled in."""
    return registry.attrs_with_defaults(registry.get(step["op"]), registry_node(step))


def fold_program(program: list, operands: list, literal, apply) -> list:
    """The one decoder of the program format, shared by the reference kernel and the C and WGSL renderers.

    Walks ``program`` in order; for step k it resolves the arguments (``["in", i]`` -> ``operands[i]``,
    ``["t", j]`` -> the value step j returned, ``["c", v]`` -> ``literal(v)``, None for an omitted optional
    input) and calls ``apply(k, op, args, attrs)`` with the step's attributes and their defaults. Returns the
    values ``apply`` returned, one per step (the program's result is the last)."""
    temps: list = []
    for k, step in enumerate(program):
        args = [operands[v] if kind == "in" else temps[v] if kind == "t" else (None if v is None else literal(v))
                for kind, v in step["args"]]
        temps.append(apply(k, step["op"], args, step_attrs(step)))
    return temps


def run_program(program: list, inputs: list, dtype) -> np.ndarray:
    """Evaluate a fused elementwise program on numpy arrays with the registry's reference kernels; the result
    (the last step) is cast to ``dtype``."""
    def apply(k, op, args, attrs):
        step = program[k]
        return registry.get(op).reference(KernelCtx(registry_node(step), attrs, 21), *args)
    temps = fold_program(program, inputs, lambda v: np.asarray(v, dtype=dtype), apply)
    return np.asarray(temps[-1]).astype(dtype, copy=False)


def registry_node(step: dict):
    """A Node standing for one program step (for contexts that expect a node: attribute defaults, kernels)."""
    from ..ir.graph import Node
    return Node(step["op"], [f"a{i}" for i in range(len(step["args"]))], ["y"], dict(step.get("attrs", {})), step["op"])


def _fused_ew_infer(ctx: InferCtx) -> list:
    shapes = [ctx.shape(i) for i in range(len(ctx.types)) if ctx.types[i] is not None]
    return [TensorType(ctx.attrs["dtype"], broadcast_shapes(*shapes, node=ctx.node))]


@register("FusedElementwise", domain="bornc", attrs={"program": [], "dtype": "float32"}, infer=_fused_ew_infer, props=("inplace",),
          versions="bornc composite")
def ref_fusedelementwise(ctx, *xs):
    return run_program(ctx.attrs["program"], list(xs), np_dtype(ctx.attrs["dtype"]))


def _epilogue(ctx, core: np.ndarray, extras: tuple) -> np.ndarray:
    prog = ctx.attrs["epilogue"]
    return run_program(prog, [core, *extras], core.dtype) if prog else core


_EPI = {"epilogue": [], "activation": ""}


@register("FusedConv", domain="bornc", attrs={"auto_pad": "NOTSET", "dilations": None, "group": 1, "kernel_shape": None,
                                              "pads": None, "strides": None, **_EPI},
          infer=_conv_infer, versions="bornc composite: Conv + epilogue")
def ref_fusedconv(ctx, x, w, b=None, *extras):
    return _epilogue(ctx, ref_conv(ctx, x, w, b), extras)


@register("FusedGemm", domain="bornc", attrs={"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0, **_EPI},
          infer=_gemm_infer, versions="bornc composite: Gemm + epilogue")
def ref_fusedgemm(ctx, a, b, c=None, *extras):
    return _epilogue(ctx, ref_gemm(ctx, a, b, c), extras)


@register("FusedMatMul", domain="bornc", attrs=dict(_EPI),
          infer=lambda c: [TensorType(c.dtype(0), matmul_shape(c.shape(0), c.shape(1), c.node))],
          versions="bornc composite: MatMul + epilogue")
def ref_fusedmatmul(ctx, a, b, *extras):
    return _epilogue(ctx, np.matmul(a, b).astype(a.dtype, copy=False), extras)

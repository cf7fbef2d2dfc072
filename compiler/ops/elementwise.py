"""Elementwise operators: unary math, activations, binary arithmetic, comparison, logic, bitwise, variadic.

Source: ONNX operator spec (https://onnx.ai/onnx/operators/), opsets 7 to 24. Broadcasting is the ONNX
multidirectional broadcast (docs/Broadcasting.md), which is numpy's. Results are cast back to the input dtype.
"""
from __future__ import annotations

import math

import numpy as np

from .registry import (InferCtx, TensorType, broadcast_bool_infer, broadcast_infer, broadcast_shapes, register,
                       same_as_input)


def _keep(x: np.ndarray, y) -> np.ndarray:
    """Cast a result back to the dtype of ``x`` (numpy may have promoted it)."""
    return np.asarray(y).astype(x.dtype, copy=False)


def _unary(name: str, fn, versions="7-24", attrs=None, props: tuple[str, ...] = ()):
    """Register a unary op whose kernel is ``fn(x, attrs) -> y`` with the dtype of ``x`` (``props``: see
    registry.PROPS)."""
    def kernel(ctx, x):
        return _keep(x, fn(x, ctx.attrs))
    kernel.__name__ = f"ref_{name.lower()}"
    register(name, attrs=attrs, infer=same_as_input, versions=versions, props=props)(kernel)


def _math(name: str, ufunc, props: tuple[str, ...]):
    def fn(x, a):
        if x.dtype.kind == "f" and x.dtype.itemsize < 4:   # float16/bfloat16/float8: compute in float32
            return ufunc(x.astype(np.float32))
        return ufunc(x)
    _unary(name, fn, props=props)


_F, _P, _L = "float_only", "program", "lut"
for _name, _uf, _props in (("Abs", np.abs, (_P, _L)), ("Neg", np.negative, (_P, _L)), ("Floor", np.floor, (_F, _P)),
                           ("Ceil", np.ceil, (_F, _P)), ("Sqrt", np.sqrt, (_F, _P, _L)), ("Exp", np.exp, (_F, _P, _L)),
                           ("Log", np.log, (_F, _P)), ("Sin", np.sin, (_F, _P)), ("Cos", np.cos, (_F, _P)),
                           ("Tan", np.tan, (_F, _P)), ("Asin", np.arcsin, (_F,)), ("Acos", np.arccos, (_F,)),
                           ("Atan", np.arctan, (_F,)), ("Sinh", np.sinh, (_F,)), ("Cosh", np.cosh, (_F,)),
                           ("Tanh", np.tanh, (_F, _P, _L)), ("Asinh", np.arcsinh, (_F,)), ("Acosh", np.arccosh, (_F,)),
                           ("Atanh", np.arctanh, (_F,)), ("Sign", np.sign, (_P,)), ("Round", np.round, (_F, _P)),
                           ("Reciprocal", np.reciprocal, (_F, _P))):
    _math(_name, _uf, _props)

_erf_scalar = np.frompyfunc(math.erf, 1, 1)


def erf(x: np.ndarray) -> np.ndarray:
    """Error function, elementwise, exact to double precision (math.erf), result in float64."""
    return _erf_scalar(np.asarray(x, dtype=np.float64)).astype(np.float64)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function computed without overflow for large |x|."""
    x64 = x.astype(np.float64)
    e = np.exp(-np.abs(x64))
    return np.where(x64 >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


_unary("Erf", lambda x, a: erf(x), versions="9-24", props=("float_only", "program", "lut"))
_unary("Sigmoid", lambda x, a: sigmoid(x), props=("float_only", "program", "lut"))
_unary("Relu", lambda x, a: np.maximum(x, np.zeros((), x.dtype)), props=("program", "lut"))
_unary("LeakyRelu", lambda x, a: np.where(x >= 0, x, x * np.asarray(a["alpha"], x.dtype)), attrs={"alpha": 0.01}, props=("float_only", "program", "lut"))
_unary("Elu", lambda x, a: np.where(x >= 0, x, a["alpha"] * np.expm1(x.astype(np.float64))), attrs={"alpha": 1.0}, props=("float_only", "program", "lut"))
_unary("Celu", lambda x, a: np.maximum(0, x) + np.minimum(0, a["alpha"] * np.expm1(x.astype(np.float64) / a["alpha"])),
       attrs={"alpha": 1.0}, versions="12-24", props=("float_only", "program", "lut"))
_unary("Selu", lambda x, a: a["gamma"] * np.where(x > 0, x, a["alpha"] * np.expm1(x.astype(np.float64))),
       attrs={"alpha": 1.6732632423543772848170429916717, "gamma": 1.0507009873554804934193349852946}, props=("float_only", "program", "lut"))
_unary("HardSigmoid", lambda x, a: np.clip(a["alpha"] * x.astype(np.float64) + a["beta"], 0, 1),
       attrs={"alpha": 0.2, "beta": 0.5}, props=("float_only", "program", "lut"))
_unary("HardSwish", lambda x, a: x * np.clip(x.astype(np.float64) / 6 + 0.5, 0, 1), versions="14-24", props=("float_only", "program", "lut"))
_unary("Softplus", lambda x, a: np.logaddexp(0, x.astype(np.float64)), props=("float_only", "program", "lut"))
_unary("Softsign", lambda x, a: x / (1 + np.abs(x)), props=("float_only", "program", "lut"))
_unary("ThresholdedRelu", lambda x, a: np.where(x > a["alpha"], x, 0), attrs={"alpha": 1.0}, versions="10-24", props=("float_only", "lut"))
_unary("Mish", lambda x, a: x * np.tanh(np.logaddexp(0, x.astype(np.float64))), versions="18-24", props=("float_only", "program", "lut"))
_unary("Swish", lambda x, a: x * sigmoid(a["alpha"] * x.astype(np.float64)), attrs={"alpha": 1.0}, versions="24")
_unary("Shrink", lambda x, a: np.where(x < -a["lambd"], x + a["bias"], np.where(x > a["lambd"], x - a["bias"], 0)),
       attrs={"bias": 0.0, "lambd": 0.5}, versions="9-24", props=("lut",))


def _gelu(x, a):
    x64 = x.astype(np.float64)
    if a["approximate"] == "tanh":
        return 0.5 * x64 * (1 + np.tanh(math.sqrt(2 / math.pi) * (x64 + 0.044715 * x64 ** 3)))
    return 0.5 * x64 * (1 + erf(x64 / math.sqrt(2)))


_unary("Gelu", _gelu, attrs={"approximate": "none"}, versions="20-24", props=("float_only", "program", "lut"))
_unary("Not", lambda x, a: np.logical_not(x), props=("bool_output", "inplace"))
_unary("BitwiseNot", lambda x, a: np.invert(x), versions="18-24", props=("int_only",))


@register("IsNaN", infer=lambda c: [TensorType("bool", c.shape(0))], versions="9-24", props=("float_only", "bool_output"))
def ref_isnan(ctx, x):
    return np.isnan(x.astype(np.float32) if x.dtype.itemsize < 2 else x)


@register("IsInf", attrs={"detect_negative": 1, "detect_positive": 1},
          infer=lambda c: [TensorType("bool", c.shape(0))], versions="10-24", props=("float_only", "bool_output"))
def ref_isinf(ctx, x):
    x = x.astype(np.float32) if x.dtype.itemsize < 2 else x
    a = ctx.attrs
    return (np.isposinf(x) & bool(a["detect_positive"])) | (np.isneginf(x) & bool(a["detect_negative"]))


# ---------------------------------------------------------------------------------------------------------
# binary ops
# ---------------------------------------------------------------------------------------------------------

def _binary(name: str, fn, versions="7-24", attrs=None, boolean=False, props: tuple[str, ...] = ()):
    def kernel(ctx, a, b):
        y = fn(a, b, ctx.attrs)
        return np.asarray(y) if boolean else _keep(a, y)
    kernel.__name__ = f"ref_{name.lower()}"
    register(name, attrs=attrs, infer=broadcast_bool_infer if boolean else broadcast_infer, versions=versions,
             props=props)(kernel)


def _int_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer division truncating toward zero (C semantics, as ONNX Div on integers)."""
    q = np.floor_divide(a, b)
    fix = (np.mod(a, b) != 0) & ((a < 0) != (b < 0))
    return q + fix.astype(q.dtype)


def _div(a, b, attrs):
    if a.dtype.kind in "iu":
        with np.errstate(divide="ignore"):
            return _int_div(a, b)
    return a / b


def _pow(a, b, attrs):
    if a.dtype.kind in "iu":
        return np.power(a.astype(np.int64), b.astype(np.int64)) if b.dtype.kind in "iu" else np.power(a.astype(np.float64), b)
    return np.power(a, b.astype(a.dtype) if b.dtype.kind in "iu" else b.astype(np.float64))


def _mod(a, b, attrs):
    if attrs["fmod"]:
        return np.fmod(a, b)
    return np.mod(a, b)


def _bitshift(a, b, attrs):
    return np.left_shift(a, b) if attrs["direction"] == "LEFT" else np.right_shift(a, b)


_binary("Add", lambda a, b, at: a + b, props=("program", "lut"))
_binary("Sub", lambda a, b, at: a - b, props=("program", "lut"))
_binary("Mul", lambda a, b, at: a * b, props=("program", "lut"))
_binary("Div", _div, props=("program", "lut"))
_binary("Pow", _pow, props=("program", "lut"))
_binary("Mod", _mod, attrs={"fmod": 0}, versions="10-24")
_binary("BitShift", _bitshift, attrs={"direction": "LEFT"}, versions="11-24", props=("int_only",))
_binary("PRelu", lambda a, b, at: np.where(a < 0, a * b, a), props=("program", "lut"))
_binary("BitwiseAnd", lambda a, b, at: np.bitwise_and(a, b), versions="18-24", props=("int_only",))
_binary("BitwiseOr", lambda a, b, at: np.bitwise_or(a, b), versions="18-24", props=("int_only",))
_binary("BitwiseXor", lambda a, b, at: np.bitwise_xor(a, b), versions="18-24", props=("int_only",))
_binary("And", lambda a, b, at: np.logical_and(a, b), boolean=True, props=("bool_output", "inplace"))
_binary("Or", lambda a, b, at: np.logical_or(a, b), boolean=True, props=("bool_output", "inplace"))
_binary("Xor", lambda a, b, at: np.logical_xor(a, b), boolean=True, props=("bool_output", "inplace"))
_binary("Equal", lambda a, b, at: np.equal(a, b), boolean=True, props=("bool_output",))
_binary("Less", lambda a, b, at: np.less(a, b), boolean=True, props=("bool_output",))
_binary("LessOrEqual", lambda a, b, at: np.less_equal(a, b), boolean=True, versions="12-24", props=("bool_output",))
_binary("Greater", lambda a, b, at: np.greater(a, b), boolean=True, props=("bool_output",))
_binary("GreaterOrEqual", lambda a, b, at: np.greater_equal(a, b), boolean=True, versions="12-24", props=("bool_output",))


def _variadic(name: str, fold, finish=None, props: tuple[str, ...] = ()):
    def kernel(ctx, *xs):
        y = xs[0]
        for x in xs[1:]:
            y = fold(y, x)
        if finish is not None:
            y = finish(y, len(xs))
        return _keep(xs[0], y)
    kernel.__name__ = f"ref_{name.lower()}"
    register(name, infer=broadcast_infer, versions="8-24", props=props)(kernel)


_variadic("Max", np.maximum, props=("program", "lut"))
_variadic("Min", np.minimum, props=("program", "lut"))
_variadic("Sum", np.add)
_variadic("Mean", np.add, finish=lambda y, n: y / n)


def _where_infer(ctx: InferCtx) -> list:
    return [TensorType(ctx.dtype(1), broadcast_shapes(ctx.shape(0), ctx.shape(1), ctx.shape(2), node=ctx.node))]


@register("Where", infer=_where_infer, versions="9-24", props=("inplace",))
def ref_where(ctx, cond, x, y):
    return np.where(cond, x, y).astype(x.dtype, copy=False)


@register("Clip", infer=same_as_input, versions="11-24 (min/max as inputs; opset 6 attributes are rewritten at import)", props=("program", "lut"))
def ref_clip(ctx, x, lo=None, hi=None):
    y = x
    if lo is not None:
        y = np.maximum(y, lo.astype(x.dtype))
    if hi is not None:
        y = np.minimum(y, hi.astype(x.dtype))
    return _keep(x, y)

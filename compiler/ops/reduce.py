"""Reductions (Reduce*) and ArgMax/ArgMin.

Source: ONNX operator spec. ``axes`` is an input since opset 13 (ReduceSum) and 18 (the others); older
attribute forms are rewritten into inputs at import. ``noop_with_empty_axes`` (opset 13/18): empty axes and the
flag set means identity; otherwise empty axes reduce everything. Reductions over an empty set give the
identity of the operation (0 for sums, 1 for products, -inf/+inf for max/min), as the spec's tests expect.
"""
from __future__ import annotations

import numpy as np

from .registry import InferCtx, TensorType, register


def _axes(ctx, x, axes):
    if axes is None or len(axes) == 0:
        return None if not ctx.attrs["noop_with_empty_axes"] else ()
    return tuple(int(a) % max(x.ndim, 1) for a in np.asarray(axes).ravel())


def _reduce_infer(ctx: InferCtx) -> list:
    xs = ctx.shape(0)
    if xs is None:
        return [TensorType(ctx.dtype(0), None)]
    if ctx.has(1) and ctx.const(1) is None:
        return [TensorType(ctx.dtype(0), None if not ctx.attrs["keepdims"] else (None,) * len(xs))]
    axes = ctx.const(1) if ctx.has(1) else None
    if axes is None or len(axes) == 0:
        ax = () if ctx.attrs["noop_with_empty_axes"] else tuple(range(len(xs)))
    else:
        ax = tuple(int(a) % max(len(xs), 1) for a in np.asarray(axes).ravel())
    keep = ctx.attrs["keepdims"]
    shape = tuple((1 if keep else None) if i in ax else d for i, d in enumerate(xs))
    shape = tuple(d for i, d in enumerate(shape) if keep or i not in ax)
    return [TensorType(ctx.dtype(0), shape)]


def _reducer(name: str, fn, versions):
    def kernel(ctx, x, axes=None):
        ax = _axes(ctx, x, axes)
        if ax == ():
            return x.copy()
        xc = x.astype(np.float32) if x.dtype.kind == "V" or (x.dtype.kind == "f" and x.dtype.itemsize == 1) else x
        with np.errstate(all="ignore"):
            y = fn(xc, ax, bool(ctx.attrs["keepdims"]))
        return np.asarray(y).astype(x.dtype, copy=False)
    kernel.__name__ = f"ref_{name.lower()}"
    register(name, attrs={"keepdims": 1, "noop_with_empty_axes": 0}, infer=_reduce_infer, value_inputs=(1,),
             versions=versions)(kernel)


def _ext(x, ax, keep, f, init):
    if x.dtype.kind == "f":
        return f(x, axis=ax, keepdims=keep, initial=init)
    if x.dtype == np.bool_:
        return f(x, axis=ax, keepdims=keep, initial=init > 0)
    info = np.iinfo(x.dtype)
    return f(x, axis=ax, keepdims=keep, initial=info.min if init < 0 else info.max)


_V = "1-24 (axes input since 18; since 13 for ReduceSum)"
_reducer("ReduceSum", lambda x, ax, k: np.sum(x, axis=ax, keepdims=k, dtype=x.dtype), _V)
_reducer("ReduceMean", lambda x, ax, k: np.mean(x, axis=ax, keepdims=k, dtype=np.float64 if x.dtype.kind == "f" else None), _V)
_reducer("ReduceMax", lambda x, ax, k: _ext(x, ax, k, np.max, -np.inf), _V)
_reducer("ReduceMin", lambda x, ax, k: _ext(x, ax, k, np.min, np.inf), _V)
_reducer("ReduceProd", lambda x, ax, k: np.prod(x, axis=ax, keepdims=k), _V)
_reducer("ReduceL1", lambda x, ax, k: np.sum(np.abs(x), axis=ax, keepdims=k), _V)
_reducer("ReduceL2", lambda x, ax, k: np.sqrt(np.sum(np.square(x.astype(np.float64)), axis=ax, keepdims=k)), _V)
_reducer("ReduceSumSquare", lambda x, ax, k: np.sum(np.square(x), axis=ax, keepdims=k), _V)
_reducer("ReduceLogSum", lambda x, ax, k: np.log(np.sum(x, axis=ax, keepdims=k)), _V)


def _logsumexp(x, ax, keep):
    if x.size == 0:
        return np.log(np.sum(np.exp(x), axis=ax, keepdims=keep))
    m = np.max(x, axis=ax, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    y = np.log(np.sum(np.exp(x - m), axis=ax, keepdims=True)) + m
    return y if keep else np.squeeze(y, axis=ax)


_reducer("ReduceLogSumExp", _logsumexp, _V)


def _arg(name: str, fn):
    def kernel(ctx, x):
        ax = ctx.attrs["axis"] % x.ndim
        if ctx.attrs["select_last_index"]:
            y = x.shape[ax] - 1 - fn(np.flip(x, ax), axis=ax)
        else:
            y = fn(x, axis=ax)
        if ctx.attrs["keepdims"]:
            y = np.expand_dims(y, ax)
        return y.astype(np.int64)
    kernel.__name__ = f"ref_{name.lower()}"
    register(name, attrs={"axis": 0, "keepdims": 1, "select_last_index": 0}, versions="1-24")(kernel)


_arg("ArgMax", np.argmax)
_arg("ArgMin", np.argmin)

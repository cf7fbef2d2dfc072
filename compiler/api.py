"""Define models in Python and trace them into bornc IR (``import bornc as bc``).

    def net(x):
        h = bc.relu(conv(x))                       # layers hold numpy weights
        return bc.softmax(h.reshape(1, -1) @ w + b, axis=-1)

    model = bc.trace(net, bc.Input("x", (1, 3, 32, 32), "float32"))
    model.run({"x": x}); model.to_onnx("net.onnx"); bc.compile(model, target="rpi", out="out/")

Symbolic ``Tensor`` values support + - * / ** @, unary -, comparisons (< <= > >=; ``bc.equal`` for ==), indexing
and slicing (ints, slices with steps, ``None``, ``...``), ``reshape``, ``transpose``, ``flatten``, ``astype`` and
reductions. Every ONNX operator is a function named in snake case (``bc.conv``, ``bc.max_pool``,
``bc.global_average_pool``; ``bc.matmul`` for MatMul) taking its inputs positionally (tensors, numpy arrays or
Python numbers: constants) and its attributes as keywords, in the newest opset's form (ONNX operator spec, opset
21). Types are inferred at each call with the operator registry, so a shape or dtype error is raised by the call
that caused it, as a TraceError naming its file and line.
"""
from __future__ import annotations

import os
import re
import sys

import numpy as np

from .errors import ShapeError
from .ir.graph import Graph, Model, Node
from .ir.types import TensorType, type_of_value
from .ops import registry

OPSET = 21
_PKG = os.path.dirname(os.path.abspath(__file__))


class TraceError(ShapeError):
    """A shape or dtype error while tracing, located at the user's call (file:line)."""


def _call_site() -> str:
    """'file:line' of the innermost frame outside the bornc package (the user's code)."""
    f = sys._getframe(1)
    while f is not None and os.path.abspath(f.f_code.co_filename).startswith(_PKG + os.sep):
        f = f.f_back
    return f"{f.f_code.co_filename}:{f.f_lineno}" if f is not None else "<unknown>"


class Input:
    """A model input for :func:`trace`: name, static shape (tuple of ints) and dtype name (default float32)."""

    def __init__(self, name: str, shape, dtype: str = "float32"):
        from .ir.types import dtype_name
        self.name, self.shape, self.dtype = name, tuple(int(d) for d in shape), dtype_name(dtype)


class _Tracer:
    def __init__(self, name: str):
        self.graph = Graph(name, [], [], [], {}, {})
        self.count = 0

    def fresh(self, base: str) -> str:
        self.count += 1
        return f"{base}_{self.count}"

    def constant(self, value, like: "Tensor | None" = None) -> "Tensor":
        arr = np.asarray(value)
        if like is not None and arr.dtype.kind in "fiub" and not isinstance(value, np.ndarray):
            arr = arr.astype(like.dtype)          # Python numbers take the other operand's dtype
        elif arr.dtype == np.float64 and not isinstance(value, np.ndarray):
            arr = arr.astype(np.float32)
        name = self.fresh("const")
        self.graph.constants[name] = arr
        self.graph.types[name] = type_of_value(arr)
        return Tensor(self, name)


_STACK: list[_Tracer] = []


def _tracer() -> _Tracer:
    if not _STACK:
        raise TraceError("bornc ops on symbolic tensors run only inside bornc.trace(fn, ...)")
    return _STACK[-1]


class Tensor:
    """A symbolic value inside :func:`trace`: ``shape`` (tuple of ints), ``dtype`` (name), ``name`` (in the IR)."""

    __slots__ = ("_tr", "name")
    __array_priority__ = 1000          # numpy defers to our reflected operators

    def __init__(self, tracer: _Tracer, name: str):
        self._tr, self.name = tracer, name

    @property
    def type(self) -> TensorType:
        return self._tr.graph.types[self.name]

    @property
    def shape(self) -> tuple:
        return tuple(self.type.shape)

    @property
    def dtype(self) -> str:
        return self.type.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"Tensor({self.name!r}, shape={self.shape}, dtype={self.dtype})"

    def _bin(self, op, other, reverse=False):
        o = other if isinstance(other, Tensor) else self._tr.constant(other, like=self)
        return apply(op, o, self) if reverse else apply(op, self, o)

    __add__ = lambda s, o: s._bin("Add", o)  # noqa: E731
    __radd__ = lambda s, o: s._bin("Add", o, True)  # noqa: E731
    __sub__ = lambda s, o: s._bin("Sub", o)  # noqa: E731
    __rsub__ = lambda s, o: s._bin("Sub", o, True)  # noqa: E731
    __mul__ = lambda s, o: s._bin("Mul", o)  # noqa: E731
    __rmul__ = lambda s, o: s._bin("Mul", o, True)  # noqa: E731
    __truediv__ = lambda s, o: s._bin("Div", o)  # noqa: E731
    __rtruediv__ = lambda s, o: s._bin("Div", o, True)  # noqa: E731
    __pow__ = lambda s, o: s._bin("Pow", o)  # noqa: E731
    __matmul__ = lambda s, o: s._bin("MatMul", o)  # noqa: E731
    __rmatmul__ = lambda s, o: s._bin("MatMul", o, True)  # noqa: E731
    __lt__ = lambda s, o: s._bin("Less", o)  # noqa: E731
    __le__ = lambda s, o: s._bin("LessOrEqual", o)  # noqa: E731
    __gt__ = lambda s, o: s._bin("Greater", o)  # noqa: E731
    __ge__ = lambda s, o: s._bin("GreaterOrEqual", o)  # noqa: E731
    __hash__ = object.__hash__

    def __neg__(self):
        return apply("Neg", self)

    def reshape(self, *shape) -> "Tensor":
        """Reshape (ONNX Reshape; one dimension may be -1)."""
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return apply("Reshape", self, np.asarray(shape, np.int64))

    def transpose(self, *perm) -> "Tensor":
        """Permute axes (default: reverse them), ONNX Transpose."""
        perm = perm[0] if len(perm) == 1 and isinstance(perm[0], (tuple, list)) else perm
        return apply("Transpose", self, perm=list(perm) if perm else list(range(self.ndim))[::-1])

    @property
    def T(self) -> "Tensor":
        return self.transpose()

    def flatten(self, axis: int = 1) -> "Tensor":
        return apply("Flatten", self, axis=axis)

    def astype(self, dtype) -> "Tensor":
        from .ir.types import name_to_onnx_elem
        return apply("Cast", self, to=name_to_onnx_elem(str(np.dtype(dtype))))

    def _reduce(self, op, axis, keepdims):
        if axis is None:
            return apply(op, self, keepdims=int(keepdims))
        axes = np.asarray([axis] if isinstance(axis, int) else list(axis), np.int64)
        return apply(op, self, axes, keepdims=int(keepdims))

    def sum(self, axis=None, keepdims=False):
        return self._reduce("ReduceSum", axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        return self._reduce("ReduceMean", axis, keepdims)

    def max(self, axis=None, keepdims=False):
        return self._reduce("ReduceMax", axis, keepdims)

    def min(self, axis=None, keepdims=False):
        return self._reduce("ReduceMin", axis, keepdims)

    def __getitem__(self, key) -> "Tensor":
        """numpy-style basic indexing: ints, slices (any step), None (new axis) and one Ellipsis."""
        key = key if isinstance(key, tuple) else (key,)
        if sum(k is Ellipsis for k in key) > 1:
            raise TraceError(f"{_call_site()}: only one Ellipsis may appear in an index")
        n_real = sum(1 for k in key if k is not None and k is not Ellipsis)
        if n_real > self.ndim:
            raise TraceError(f"{_call_site()}: too many indices ({n_real}) for a tensor of rank {self.ndim}")
        if Ellipsis in key:
            i = key.index(Ellipsis)
            key = key[:i] + (slice(None),) * (self.ndim - n_real) + key[i + 1:]
        starts, ends, axes, steps, squeeze, newaxes = [], [], [], [], [], []
        dim = 0
        out_pos = 0
        for k in key:
            if k is None:
                newaxes.append(out_pos)
                out_pos += 1
                continue
            size = self.shape[dim]
            if isinstance(k, (int, np.integer)):
                k = int(k)
                if not -size <= k < size:
                    raise TraceError(f"{_call_site()}: index {k} is out of bounds for axis {dim} of size {size}")
                k %= size
                starts.append(k); ends.append(k + 1); axes.append(dim); steps.append(1)
                squeeze.append(dim)
            elif isinstance(k, slice):
                st, en, sp = k.indices(size)
                if (st, en, sp) != (0, size, 1):
                    starts.append(st)
                    ends.append(en if en >= 0 else -size - 1)
                    axes.append(dim); steps.append(sp)
                out_pos += 1
            else:
                raise TraceError(f"{_call_site()}: unsupported index {k!r} (ints, slices, None and ... are)")
            dim += 1
        y = self
        if axes:
            y = apply("Slice", y, np.asarray(starts, np.int64), np.asarray(ends, np.int64), np.asarray(axes, np.int64),
                      np.asarray(steps, np.int64))
        if squeeze:
            y = apply("Squeeze", y, np.asarray(squeeze, np.int64))
        if newaxes:
            y = apply("Unsqueeze", y, np.asarray(newaxes, np.int64))
        return y


def apply(op: str, *inputs, domain: str = "", outputs: int | None = None, **attrs):
    """Apply ONNX operator ``op`` to ``inputs`` (Tensors, numpy arrays, numbers; None for an omitted optional
    input) with attributes ``attrs``; returns a Tensor, or a tuple when the op has several outputs. Raises
    TraceError (with the caller's file:line) when the op is unknown or types do not fit."""
    tr = _tracer()
    site = _call_site()
    opdef = registry.get(op, domain)
    if opdef is None:
        raise TraceError(f"{site}: unknown operator {op!r}")
    names = []
    for x in inputs:
        if x is None:
            names.append("")
        elif isinstance(x, Tensor):
            if x._tr is not tr:
                raise TraceError(f"{site}: {op}: a tensor from another trace")
            names.append(x.name)
        else:
            names.append(tr.constant(x).name)
    n_out = outputs or _default_outputs(op)
    outs = [tr.fresh(op.lower()) for _ in range(n_out)]
    node = Node(op, names, outs, {k: v for k, v in attrs.items()}, tr.fresh(op), domain)
    g = tr.graph
    types = [g.types.get(i) if i else None for i in names]
    consts = [g.constants.get(i) if i else None for i in names]
    ctx = registry.InferCtx(node, registry.attrs_with_defaults(opdef, node), OPSET, types, consts)
    try:
        out_types = registry.infer_types(opdef, ctx)
    except ShapeError as ex:
        raise TraceError(f"{site}: {op}: {ex}") from None
    except Exception as ex:  # noqa: BLE001 - any inference failure is the caller's shapes or attributes
        shapes = ", ".join(f"{t.shape}/{t.dtype}" if isinstance(t, TensorType) else "None" for t in types)
        raise TraceError(f"{site}: {op} cannot take inputs ({shapes}) with attributes {attrs}: {ex}") from None
    for o, t in zip(outs, out_types):
        if not isinstance(t, TensorType) or t.shape is None:
            raise TraceError(f"{site}: {op}: the output shape depends on data; tracing needs static shapes")
        g.types[o] = t
    g.nodes.append(node)
    res = tuple(Tensor(tr, o) for o in outs)
    return res[0] if n_out == 1 else res


def _default_outputs(op: str) -> int:
    """Outputs a call makes unless it says (the registry entry's ``outputs``; 1 where that is None: Split)."""
    from .ops import registry
    d = registry.get(op)
    return (d.outputs if d is not None else 1) or 1


def trace(fn, *inputs: Input, name: str = "traced") -> Model:
    """Run ``fn`` on symbolic tensors for ``inputs`` and return the recorded IR Model (opset 21). ``fn`` returns
    a Tensor, a tuple/list of them, or a dict name -> Tensor (the output names). Raises TraceError."""
    tr = _Tracer(name)
    args = []
    for spec in inputs:
        if not isinstance(spec, Input):
            raise TraceError(f"{_call_site()}: trace takes bornc.Input(name, shape, dtype) for each input, got {spec!r}")
        tr.graph.inputs.append(spec.name)
        tr.graph.types[spec.name] = TensorType(spec.dtype, spec.shape)
        args.append(Tensor(tr, spec.name))
    _STACK.append(tr)
    try:
        res = fn(*args)
    finally:
        _STACK.pop()
    if isinstance(res, Tensor):
        res = {"output": res}
    elif isinstance(res, (tuple, list)):
        res = {f"output_{k}": r for k, r in enumerate(res)}
    if not isinstance(res, dict) or not all(isinstance(v, Tensor) for v in res.values()):
        raise TraceError(f"{name}: the traced function must return Tensors (one, a tuple, or a dict)")
    g = tr.graph
    for out_name, t in res.items():
        if t.name in g.inputs or t.name in g.constants or t.name in g.outputs:
            t = apply_in(tr, "Identity", t)
        _rename(g, t.name, out_name)
        g.outputs.append(out_name)
    model = Model(g, {"": OPSET}, producer="bornc.trace")
    from .ir.verify import verify
    verify(model)
    return model


def apply_in(tr: _Tracer, op: str, *xs):
    _STACK.append(tr)
    try:
        return apply(op, *xs)
    finally:
        _STACK.pop()


def _rename(g: Graph, old: str, new: str) -> None:
    if old == new:
        return
    if new in g.types:
        raise TraceError(f"output name {new!r} is already a value of the graph")
    g.types[new] = g.types.pop(old)
    for n in g.nodes:
        n.inputs = [new if i == old else i for i in n.inputs]
        n.outputs = [new if o == old else o for o in n.outputs]


def _snake(name: str) -> str:
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    return s.lower()


def op_functions() -> dict:
    """snake_case name -> function for every registered ONNX operator (``bc.conv``, ``bc.max_pool``...)."""
    out = {}
    for (domain, op), _ in sorted(registry.REGISTRY.items()):
        if domain:
            continue

        def f(*inputs, _op=op, **attrs):
            return apply(_op, *inputs, **attrs)
        f.__name__ = _snake(op)
        f.__doc__ = f"ONNX {op} (inputs positionally, attributes as keywords; see the ONNX operator spec)."
        out[_snake(op)] = f
    out["matmul"] = out["mat_mul"]
    return out

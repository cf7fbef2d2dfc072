"""Value types of the IR: tensors (dtype + shape), sequences and optionals.

Dtypes are named as numpy names them (``float32``, ``int64``, ``bool``...), with the ONNX ``TensorProto``
element types mapped one to one (ONNX IR spec, "Tensor Element Types"). The narrow float and integer types
(bfloat16, float8*, float4, int4/uint4) use the ``ml_dtypes`` numpy extension that onnx itself depends on.
A shape is a tuple of ints; ``None`` in a position means a dimension known only at run time (data-dependent
ops such as NonZero), and a shape of ``None`` means unknown rank. A static model has neither.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import TensorProto

try:  # ml_dtypes ships with onnx >= 1.15
    import ml_dtypes as _mld
except ImportError:  # pragma: no cover
    _mld = None

# ONNX element type -> dtype name.
_ONNX_TO_NAME = {
    TensorProto.FLOAT: "float32", TensorProto.DOUBLE: "float64", TensorProto.FLOAT16: "float16",
    TensorProto.BFLOAT16: "bfloat16", TensorProto.INT8: "int8", TensorProto.UINT8: "uint8",
    TensorProto.INT16: "int16", TensorProto.UINT16: "uint16", TensorProto.INT32: "int32",
    TensorProto.UINT32: "uint32", TensorProto.INT64: "int64", TensorProto.UINT64: "uint64",
    TensorProto.BOOL: "bool", TensorProto.STRING: "string", TensorProto.COMPLEX64: "complex64",
    TensorProto.COMPLEX128: "complex128",
    TensorProto.FLOAT8E4M3FN: "float8_e4m3fn", TensorProto.FLOAT8E4M3FNUZ: "float8_e4m3fnuz",
    TensorProto.FLOAT8E5M2: "float8_e5m2", TensorProto.FLOAT8E5M2FNUZ: "float8_e5m2fnuz",
    TensorProto.UINT4: "uint4", TensorProto.INT4: "int4",
}
for _attr, _name in (("FLOAT4E2M1", "float4_e2m1fn"), ("FLOAT8E8M0", "float8_e8m0fnu"), ("UINT2", "uint2"), ("INT2", "int2")):
    if hasattr(TensorProto, _attr):
        _ONNX_TO_NAME[getattr(TensorProto, _attr)] = _name
_NAME_TO_ONNX = {v: k for k, v in _ONNX_TO_NAME.items()}

#: The dtypes every backend is expected to handle; the rest run on the reference interpreter only.
CORE_DTYPES = ("float32", "float16", "bfloat16", "int8", "uint8", "int16", "int32", "int64", "bool")


def np_dtype(name: str) -> np.dtype:
    """numpy dtype for a dtype name; ``string`` maps to ``object`` (numpy arrays of Python str)."""
    if name == "string":
        return np.dtype(object)
    if hasattr(np, name) and name not in ("bool",):
        return np.dtype(getattr(np, name))
    if name == "bool":
        return np.dtype(np.bool_)
    if _mld is not None and hasattr(_mld, name):
        return np.dtype(getattr(_mld, name))
    raise KeyError(f"unknown dtype {name!r}")


def dtype_name(dt) -> str:
    """Inverse of :func:`np_dtype`: a dtype name for a numpy dtype (object -> ``string``)."""
    dt = np.dtype(dt)
    if dt == np.dtype(object) or dt.kind in "US":
        return "string"
    return "bool" if dt == np.bool_ else dt.name


def onnx_elem_to_name(elem: int) -> str:
    """dtype name for an ONNX ``TensorProto.DataType`` value; KeyError if bornc has no such dtype."""
    return _ONNX_TO_NAME[elem]


def name_to_onnx_elem(name: str) -> int:
    """ONNX ``TensorProto.DataType`` value for a dtype name."""
    return _NAME_TO_ONNX[name]


@dataclass(frozen=True)
class TensorType:
    """A tensor's dtype name and shape (tuple of ints; ``None`` entries or a ``None`` shape = not static)."""

    dtype: str
    shape: tuple | None

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)

    @property
    def is_static(self) -> bool:
        return self.shape is not None and all(isinstance(d, int) for d in self.shape)

    @property
    def size(self) -> int:
        """Number of elements; ShapeError-free only for static shapes."""
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape is not None else -1

    @property
    def nbytes(self) -> int:
        """Bytes of a dense buffer of this tensor (sub-byte types rounded up to whole bytes)."""
        if not self.is_static or self.dtype == "string":
            return -1
        return int(self.size * np_dtype(self.dtype).itemsize)

    def __str__(self) -> str:
        dims = "?" if self.shape is None else "x".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.dtype}[{dims}]"

    @staticmethod
    def of(array: np.ndarray) -> "TensorType":
        return TensorType(dtype_name(array.dtype), tuple(int(d) for d in array.shape))


@dataclass(frozen=True)
class SequenceType:
    """An ONNX sequence of tensors (``seq(tensor(T))``); ``elem`` may be None when unknown. ``elems``: the
    element types one by one when the length and every element's type are fixed at compile time (a sequence
    input given shapes with ``--input-shape NAME[k]=...``), else None."""

    elem: object
    elems: tuple | None = None

    @property
    def is_static(self) -> bool:
        return False

    def __str__(self) -> str:
        if self.elems is not None:
            return "seq(" + ", ".join(map(str, self.elems)) + ")"
        return f"seq({self.elem})"


@dataclass(frozen=True)
class OptionalType:
    """An ONNX optional value (``optional(T)``)."""

    elem: object

    @property
    def is_static(self) -> bool:
        return False

    def __str__(self) -> str:
        return f"optional({self.elem})"


def type_of_value(v) -> object:
    """The IR type of a runtime value: ndarray, list (sequence) or None (empty optional)."""
    if isinstance(v, np.ndarray):
        return TensorType.of(v)
    if isinstance(v, list):
        return SequenceType(TensorType.of(v[0]) if v else None)
    return OptionalType(None)


def npy_safe(a):
    """``a`` as numpy can write to .npy/.npz and read back: values of ml_dtypes types (float8, int4, bfloat16...),
    which numpy's file format cannot name, as raw bytes of their width (void dtype). bornc's runtimes read such
    bytes as the input's declared dtype."""
    import numpy as np
    a = np.asarray(a)
    return a.view(f"V{a.dtype.itemsize}") if a.dtype.type.__module__.startswith("ml_dtypes") else a

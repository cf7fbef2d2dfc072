"""Resource limits on what the compiler computes from an untrusted model, checked before anything is allocated.

A model file of a few hundred bytes can ask for a tensor of gigabytes (ConstantOfShape to [750, 1000, 1000]).
Wherever bornc evaluates a kernel at compile time (type probes, constant folding, calibration, the reference
interpreter) or densifies a sparse initializer, the sizes are known first, from the inferred type or from the ONNX
spec's own shape inference (frontend/spec_check.py), and checked here against
``max_constant_bytes`` (default 1 GiB; ``--max-constant-bytes`` on the CLI, :func:`max_bytes` in Python).

Errors: :class:`bornc.errors.LimitError` (one line, exit 2 from the CLI), naming the node or tensor, the shape and
the bytes asked for.
"""
from __future__ import annotations

import contextlib
import logging

import numpy as np

from .errors import LimitError

log = logging.getLogger(__name__)

#: the largest tensor (bytes) bornc evaluates or allocates at compile time
DEFAULT_MAX_CONSTANT_BYTES = 1 << 30
_limit = DEFAULT_MAX_CONSTANT_BYTES


def max_constant_bytes() -> int:
    """The limit now in force (bytes)."""
    return _limit


#: the most elements a sequence input given shapes (``--input-shape NAME[k]=...``) may have: each becomes an
#: input of the artifact and each node reading the sequence one node per element
MAX_SEQUENCE_LENGTH = 1024

#: the largest limit accepted (256 TiB): sizes in bytes stay far inside int64, which shapes are multiplied in
MAX_LIMIT = 1 << 48


def set_max_constant_bytes(n: int) -> None:
    """Set the limit (bytes, 0 < n <= MAX_LIMIT) for this process. Raises ValueError otherwise."""
    global _limit
    if not 0 < int(n) <= MAX_LIMIT:
        raise ValueError(f"max constant bytes must be between 1 and {MAX_LIMIT}, not {n}")
    _limit = int(n)


@contextlib.contextmanager
def max_bytes(n: int):
    """``with max_bytes(n):`` the limit is n bytes inside the block."""
    old = _limit
    set_max_constant_bytes(n)
    try:
        yield
    finally:
        set_max_constant_bytes(old)


def _itemsize(dtype) -> int:
    from .ir.types import np_dtype
    if dtype in ("string", object) or dtype is None:
        return 8
    try:
        return np.dtype(dtype).itemsize if not isinstance(dtype, str) else np_dtype(dtype).itemsize
    except Exception:  # noqa: BLE001 - an unknown dtype name: counted as 8 bytes per element
        return 8


def check_shape(shape, dtype, what: str) -> None:
    """Raise LimitError when a dense tensor of ``shape`` (ints; None and symbolic dims are skipped) and ``dtype`` (a bornc dtype
    name or numpy dtype) exceeds the limit, or has a negative dim. ``what`` names the tensor or node."""
    dims = [d for d in shape if isinstance(d, (int, np.integer))]         # symbolic dims (names) are skipped
    if any(int(d) < 0 for d in dims):
        raise LimitError(f"{what}: negative dimension in shape {list(shape)}")
    nbytes = _itemsize(dtype)
    for d in dims:                      # Python ints: no overflow
        nbytes *= int(d)
    if nbytes > _limit:
        raise LimitError(f"{what}: a tensor of shape {list(shape)} needs {nbytes:,} bytes, above the limit of "
                         f"{_limit:,} bytes (raise it with --max-constant-bytes)")


def check_type(t, what: str) -> None:
    """check_shape for a TensorType (other types and unknown shapes pass)."""
    shape = getattr(t, "shape", None)
    if shape is not None and hasattr(t, "dtype"):
        check_shape(shape, t.dtype, what)


def check_graph(graph) -> None:
    """Every value of ``graph`` (a bornc Graph) whose type is known, subgraphs included, is within the limit."""
    for name, t in graph.types.items():
        check_type(t, f"value {name!r}")
    for n in graph.nodes:
        for sub in n.subgraphs():
            check_graph(sub)

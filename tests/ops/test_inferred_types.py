"""Types inferred at import equal the types of the reference outputs, for every ONNX node test case.

Each case is imported as `bornc compile` imports it (no binds); for every tensor output, the dtype inferred at
import must be the dtype of the expected output, and every dimension it claims to know must be the expected one.
A case whose import fails is left to the conformance tests; nothing here falls back to float32 quietly.
"""
import numpy as np
import pytest
from onnx import numpy_helper

from bornc.conformance import _feeds, _only_unbound, collect_cases
from bornc.errors import BorncError
from bornc.frontend.onnx_import import from_proto
from bornc.ir.types import TensorType

pytestmark = pytest.mark.slow


def _mismatches() -> dict:
    bad = {}
    for case in collect_cases():
        inputs, expected = case.data_sets[0]
        feeds = _feeds(case, inputs)
        try:
            model = from_proto(case.model, input_shapes=_only_unbound(case.model, {
                k: v.shape for k, v in feeds.items() if isinstance(v, np.ndarray)}))
        except BorncError:
            continue
        declared = {o.name: o.type for o in case.model.graph.output}
        for name, e in zip(model.graph.outputs, expected):
            e = numpy_helper.to_array(e) if hasattr(e, "SerializeToString") else e
            t = model.graph.types.get(name)
            if isinstance(t, TensorType) and t.shape is not None and _declares(declared.get(name), t.shape):
                t = TensorType(t.dtype, None)     # the shape is the model's own declaration, not ours
            if not isinstance(e, np.ndarray) or not isinstance(t, TensorType) or e.dtype == object:
                continue
            if t.dtype != e.dtype.name:
                bad[case.name] = f"{name}: dtype {t.dtype} inferred, {e.dtype.name} expected"
            elif t.shape is not None and (len(t.shape) != e.ndim or
                                          any(d is not None and d != s for d, s in zip(t.shape, e.shape))):
                bad[case.name] = f"{name}: shape {list(t.shape)} inferred, {list(e.shape)} expected"
    return bad


def _declares(tp, shape) -> bool:
    """True when the model declares exactly ``shape`` for an output (a few onnx test models declare a shape
    their expected outputs do not have)."""
    if tp is None or not tp.HasField("tensor_type") or not tp.tensor_type.HasField("shape"):
        return False
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tp.tensor_type.shape.dim]
    return dims == list(shape)


#: Known mismatches, each to fix where named (listed, not hidden: a case that starts to match must leave this list).
KNOWN: dict[str, str] = {}


def test_inferred_types_match_reference_outputs():
    bad = _mismatches()
    assert set(KNOWN) <= set(bad), f"now matching, remove from KNOWN: {set(KNOWN) - set(bad)}"
    bad = {k: v for k, v in bad.items() if k not in KNOWN}
    assert not bad, f"{len(bad)} cases: " + "; ".join(f"{k}: {v}" for k, v in list(bad.items())[:30])

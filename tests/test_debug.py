"""The mismatch bisector finds the first diverging node, and says so when nothing diverges."""
import numpy as np
from onnx import helper

from bornc.debug import bisect
from bornc.passes.util import clone

from .passes.helpers import feeds_for, make, rand

N = helper.make_node


def _model():
    return make([N("Conv", ["x", "w"], ["a"]), N("Relu", ["a"], ["b"]), N("Mul", ["b", "k"], ["c"]), N("Sigmoid", ["c"], ["y"])],
                [("x", [1, 2, 4, 4])], [("y", [1, 2, 4, 4])], {"w": rand(2, 2, 1, 1), "k": rand(1, 2, 1, 1, seed=3)})


def test_no_divergence_for_a_correct_pipeline():
    m = _model()
    assert bisect(m, feeds_for(m), opt_level=2) is None


def test_reports_first_diverging_node_with_input_stats():
    m = _model()
    broken = clone(m)
    broken.graph.constants["k"] = broken.graph.constants["k"] * np.float32(1.01)
    d = bisect(m, feeds_for(m), candidate=broken)
    assert d is not None and d.value == "c" and d.op == "Mul" and d.max_abs_err > 0
    assert [i["name"] for i in d.inputs] == ["b", "k"] and "mean" in d.inputs[0]

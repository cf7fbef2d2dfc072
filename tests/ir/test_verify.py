"""The verifier rejects each broken invariant with a message naming the value."""
import pytest

from bornc.errors import VerifyError
from bornc.ir import Graph, Model, Node, TensorType, verify

T = TensorType("float32", (2,))


def _model(nodes, inputs=("x",), outputs=("y",), types=None):
    types = types or {"x": T, "y": T, "t": T}
    return Model(Graph("g", list(inputs), list(outputs), nodes, {}, types))


def test_valid_model_passes():
    verify(_model([Node("Relu", ["x"], ["t"], name="a"), Node("Relu", ["t"], ["y"], name="b")]))


def test_double_assignment():
    with pytest.raises(VerifyError, match="assigned twice"):
        verify(_model([Node("Relu", ["x"], ["y"], name="a"), Node("Relu", ["x"], ["y"], name="b")]))


def test_use_before_definition():
    with pytest.raises(VerifyError, match="reads 't' before it is defined"):
        verify(_model([Node("Relu", ["t"], ["y"], name="a"), Node("Relu", ["x"], ["t"], name="b")]))


def test_missing_type():
    with pytest.raises(VerifyError, match="has no type"):
        verify(_model([Node("Relu", ["x"], ["y"], name="a")], types={"x": T}))


def test_undefined_output():
    with pytest.raises(VerifyError, match="never defined"):
        verify(_model([Node("Relu", ["x"], ["t"], name="a")]))


def test_subgraph_may_read_outer_values():
    body = Graph("then", [], ["z"], [Node("Neg", ["x"], ["z"], name="n")], {}, {"z": T})
    other = Graph("else", [], ["w"], [Node("Abs", ["x"], ["w"], name="m")], {}, {"w": T})
    g = Graph("g", ["x", "c"], ["y"], [Node("If", ["c"], ["y"], {"then_branch": body, "else_branch": other}, "if")],
              {}, {"x": T, "c": TensorType("bool", ()), "y": T})
    verify(Model(g))

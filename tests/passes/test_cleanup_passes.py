"""fold_constants, eliminate_dead_code, eliminate_common_subexpressions, remove_noops: structure and numbers."""
import numpy as np
from onnx import helper

from bornc.passes.eliminate_common_subexpressions import eliminate_common_subexpressions
from bornc.passes.eliminate_dead_code import eliminate_dead_code
from bornc.passes.fold_constants import fold_constants
from bornc.passes.remove_noops import remove_noops

from .helpers import assert_same_outputs, make, ops, rand

N = helper.make_node


def test_fold_constants_folds_weight_transforms_but_not_huge_splats():
    m = make([N("Transpose", ["w"], ["wt"], perm=[1, 0]), N("MatMul", ["x", "wt"], ["y"]),
              N("ConstantOfShape", ["big_shape"], ["z"], value=helper.make_tensor("v", 1, [1], [1.0])),
              N("ReduceSum", ["z"], ["s"], keepdims=0), N("Add", ["y", "s"], ["out"])],
             [("x", [2, 3])], [("out", [2, 4])], {"w": rand(4, 3), "big_shape": np.array([512, 512], np.int64)})
    after = fold_constants(m)
    assert ops(after) == ["MatMul", "ConstantOfShape", "ReduceSum", "Add"]
    assert after.graph.constants["wt"].shape == (3, 4)
    assert_same_outputs(m, after)


def test_dead_code_and_unused_constants_removed():
    m = make([N("Relu", ["x"], ["y"]), N("Sigmoid", ["x"], ["unused"]), N("Add", ["unused", "c"], ["unused2"])],
             [("x", [4])], [("y", [4])], {"c": rand(4)})
    after = eliminate_dead_code(m)
    assert ops(after) == ["Relu"] and "c" not in after.graph.constants and "unused" not in after.graph.types
    assert_same_outputs(m, after)


def test_common_subexpressions_merged():
    m = make([N("Relu", ["x"], ["a"]), N("Relu", ["x"], ["b"]), N("Add", ["a", "c1"], ["p"]), N("Add", ["b", "c2"], ["q"]),
              N("Mul", ["p", "q"], ["y"])], [("x", [4])], [("y", [4])], {"c1": np.ones(4, np.float32), "c2": np.ones(4, np.float32)})
    after = eliminate_common_subexpressions(m)
    assert ops(after) == ["Relu", "Add", "Mul"]
    mul = after.graph.nodes[-1]
    assert mul.inputs[0] == mul.inputs[1]
    assert_same_outputs(m, after)


def test_noops_removed_and_output_names_kept():
    m = make([N("Identity", ["x"], ["a"]), N("Dropout", ["a"], ["b"]), N("Reshape", ["b", "shape"], ["c"]),
              N("Cast", ["c"], ["d"], to=1), N("Transpose", ["d"], ["e"], perm=[1, 0]), N("Transpose", ["e"], ["f"], perm=[1, 0]),
              N("Pad", ["f", "zeros"], ["g"]), N("Relu", ["g"], ["h"]), N("Identity", ["h"], ["y"])],
             [("x", [2, 3])], [("y", [2, 3])], {"shape": np.array([2, 3], np.int64), "zeros": np.zeros(4, np.int64)})
    after = eliminate_dead_code(remove_noops(m))
    assert ops(after) == ["Relu"]
    assert after.graph.outputs == ["y"] and after.graph.nodes[0].outputs == ["y"]
    assert_same_outputs(m, after)


def test_noop_between_input_and_output_is_kept():
    m = make([N("Identity", ["x"], ["y"])], [("x", [2])], [("y", [2])])
    after = remove_noops(m)
    assert ops(after) == ["Identity"]

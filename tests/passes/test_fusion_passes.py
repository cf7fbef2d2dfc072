"""Fusion and recognition passes: elementwise chains, epilogues (activations named), MatMul+Add -> Gemm,
Softmax and LayerNormalization from their decomposed forms."""
import numpy as np
import pytest
from onnx import helper

from bornc.passes.fuse_elementwise import fuse_elementwise
from bornc.passes.fuse_epilogue import fuse_epilogue
from bornc.passes.fuse_matmul_add import fuse_matmul_add
from bornc.passes.recognize_layernorm import recognize_layernorm
from bornc.passes.recognize_softmax import recognize_softmax

from .helpers import assert_same_outputs, make, ops, rand

N = helper.make_node


def test_elementwise_chain_becomes_one_node():
    m = make([N("Mul", ["x", "two"], ["a"]), N("Add", ["a", "bias"], ["b"]), N("Tanh", ["b"], ["c"]), N("Neg", ["c"], ["y"])],
             [("x", [2, 3])], [("y", [2, 3])], {"two": np.float32(2), "bias": rand(3)})
    after = fuse_elementwise(m)
    assert ops(after) == ["FusedElementwise"]
    node = after.graph.nodes[0]
    assert node.outputs == ["y"] and node.inputs == ["x", "bias"]
    assert [s["op"] for s in node.attrs["program"]] == ["Mul", "Add", "Tanh", "Neg"]
    assert node.attrs["program"][0]["args"][1] == ["c", 2.0]
    assert_same_outputs(m, after)


def test_chain_stops_where_an_intermediate_has_two_readers():
    m = make([N("Exp", ["x"], ["a"]), N("Neg", ["a"], ["b"]), N("Add", ["a", "b"], ["c"]), N("Relu", ["c"], ["y"]),
              N("Sigmoid", ["a"], ["z"])], [("x", [4])], [("y", [4]), ("z", [4])])
    after = fuse_elementwise(m)
    assert ops(after).count("Exp") == 1
    assert_same_outputs(m, after)


def _silu(x):
    return [N("Sigmoid", [x], ["s"]), N("Mul", [x, "s"], ["y"])]


def _gelu_erf(x):
    return [N("Div", [x, "sqrt2"], ["a"]), N("Erf", ["a"], ["b"]), N("Add", ["b", "one"], ["c"]), N("Mul", [x, "c"], ["d"]),
            N("Mul", ["d", "half"], ["y"])]


def _gelu_tanh(x):
    return [N("Pow", [x, "three"], ["p"]), N("Mul", ["p", "k"], ["q"]), N("Add", [x, "q"], ["r"]), N("Mul", ["r", "s2pi"], ["t"]),
            N("Tanh", ["t"], ["u"]), N("Add", ["u", "one"], ["v"]), N("Mul", ["half", x], ["w"]), N("Mul", ["w", "v"], ["y"])]


def _hardswish(x):
    return [N("HardSigmoid", [x], ["h"], alpha=1 / 6, beta=0.5), N("Mul", [x, "h"], ["y"])]


CONSTS = {"sqrt2": np.float32(np.sqrt(2)), "one": np.float32(1), "half": np.float32(0.5), "three": np.float32(3),
          "k": np.float32(0.044715), "s2pi": np.float32(np.sqrt(2 / np.pi))}


@pytest.mark.parametrize("pattern, name", [(_silu, "SiLU"), (_gelu_erf, "GELU"), (_gelu_tanh, "GELU(tanh)"),
                                           (_hardswish, "HardSwish")])
def test_conv_activation_epilogue_is_recognized(pattern, name):
    nodes = [N("Conv", ["x", "cw", "cb"], ["conv_out"], pads=[1, 1, 1, 1])] + pattern("conv_out")
    m = make(nodes, [("x", [1, 2, 5, 5])], [("y", [1, 3, 5, 5])], {"cw": rand(3, 2, 3, 3), "cb": rand(3), **CONSTS})
    after = fuse_epilogue(fuse_elementwise(m))
    assert ops(after) == ["FusedConv"] and after.graph.nodes[0].attrs["activation"] == name
    assert_same_outputs(m, after, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("act, attrs, name", [("Relu", {}, "Relu"), ("LeakyRelu", {"alpha": 0.1}, "LeakyRelu"),
                                              ("Sigmoid", {}, "Sigmoid"), ("HardSigmoid", {}, "HardSigmoid")])
def test_gemm_single_activation(act, attrs, name):
    m = make([N("Gemm", ["x", "w", "b"], ["c"]), N(act, ["c"], ["y"], **attrs)], [("x", [2, 3])], [("y", [2, 4])],
             {"w": rand(3, 4), "b": rand(4)})
    after = fuse_epilogue(fuse_elementwise(m))
    assert ops(after) == ["FusedGemm"] and after.graph.nodes[0].attrs["activation"] == name
    assert_same_outputs(m, after)


def test_relu6_clip_and_residual_add():
    m = make([N("Conv", ["x", "w"], ["c"]), N("Add", ["c", "x"], ["r"]), N("Clip", ["r", "zero", "six"], ["y"])],
             [("x", [1, 2, 4, 4])], [("y", [1, 2, 4, 4])], {"w": rand(2, 2, 1, 1), "zero": np.float32(0), "six": np.float32(6)})
    after = fuse_epilogue(fuse_elementwise(m))
    assert ops(after) == ["FusedConv"]
    assert after.graph.nodes[0].inputs == ["x", after.graph.nodes[0].inputs[1], "", "x"]
    assert_same_outputs(m, after)
    single = make([N("Conv", ["x", "w"], ["c"]), N("Clip", ["c", "zero", "six"], ["y"])], [("x", [1, 2, 4, 4])],
                  [("y", [1, 2, 4, 4])], {"w": rand(2, 2, 1, 1), "zero": np.float32(0), "six": np.float32(6)})
    assert fuse_epilogue(single).graph.nodes[0].attrs["activation"] == "Relu6"


def test_two_products_into_one_add_fuse_once():
    """Sub(MatMul, MatMul): only one product takes the Sub as its epilogue (fusing both read a value that
    the first fusion removed)."""
    m = make([N("MatMul", ["x", "w1"], ["a"]), N("MatMul", ["x", "w2"], ["b"]), N("Sub", ["a", "b"], ["y"])],
             [("x", [2, 3, 4])], [("y", [2, 3, 5])], {"w1": rand(4, 5), "w2": rand(4, 5)})
    after = fuse_epilogue(m)
    assert sorted(ops(after)) == ["FusedMatMul", "MatMul"]
    assert_same_outputs(m, after)


def test_matmul_add_becomes_gemm_only_for_2d():
    m = make([N("MatMul", ["x", "w"], ["a"]), N("Add", ["a", "b"], ["y"])], [("x", [2, 3])], [("y", [2, 4])], {"w": rand(3, 4), "b": rand(4)})
    after = fuse_matmul_add(m)
    assert ops(after) == ["Gemm"]
    assert_same_outputs(m, after)
    batched = make([N("MatMul", ["x", "w"], ["a"]), N("Add", ["a", "b"], ["y"])], [("x", [5, 2, 3])], [("y", [5, 2, 4])],
                   {"w": rand(3, 4), "b": rand(4)})
    assert ops(fuse_matmul_add(batched)) == ["MatMul", "Add"]


@pytest.mark.parametrize("with_max", [True, False])
def test_softmax_recognized(with_max):
    ax = {"axes": np.array([1], np.int64)}
    nodes = [N("ReduceMax", ["x", "axes"], ["m"], keepdims=1), N("Sub", ["x", "m"], ["z"])] if with_max else [N("Identity", ["x"], ["z"])]
    nodes += [N("Exp", ["z"], ["e"]), N("ReduceSum", ["e", "axes"], ["s"], keepdims=1), N("Div", ["e", "s"], ["y"])]
    m = make(nodes, [("x", [3, 5])], [("y", [3, 5])], ax, opset=18)
    after = recognize_softmax(m)
    assert "Softmax" in ops(after) and "Exp" not in ops(after) and "ReduceSum" not in ops(after)
    assert_same_outputs(m, after)


@pytest.mark.parametrize("square", ["Pow", "Mul"])
def test_layernorm_recognized(square):
    sq = N("Pow", ["d", "two"], ["p"]) if square == "Pow" else N("Mul", ["d", "d"], ["p"])
    nodes = [N("ReduceMean", ["x", "axes"], ["mean"]), N("Sub", ["x", "mean"], ["d"]), sq, N("ReduceMean", ["p", "axes"], ["var"]),
             N("Add", ["var", "eps"], ["ve"]), N("Sqrt", ["ve"], ["sd"]), N("Div", ["d", "sd"], ["n"]), N("Mul", ["n", "gamma"], ["g"]),
             N("Add", ["g", "beta"], ["y"])]
    m = make(nodes, [("x", [2, 4, 6])], [("y", [2, 4, 6])], {"axes": np.array([-1], np.int64), "two": np.float32(2),
                                                             "eps": np.float32(1e-5), "gamma": rand(6), "beta": rand(6, seed=3)}, opset=18)
    after = recognize_layernorm(m)
    assert ops(after) == ["LayerNormalization"] and after.graph.nodes[0].outputs == ["y"]
    assert_same_outputs(m, after, rtol=1e-4, atol=1e-5)

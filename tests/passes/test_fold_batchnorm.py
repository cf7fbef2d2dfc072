"""fold_batchnorm: BatchNormalization and per-channel Mul/Add folded into Conv, ConvTranspose and Gemm."""
import numpy as np
import pytest
from onnx import helper

from bornc.passes.fold_batchnorm import fold_batchnorm

from .helpers import assert_same_outputs, make, ops, rand

N = helper.make_node


def _bn_inits(c, seed=2):
    r = np.random.default_rng(seed)
    return {"s": r.uniform(0.5, 2, c).astype(np.float32), "b": rand(c, seed=3), "mu": rand(c, seed=4),
            "var": r.uniform(0.1, 2, c).astype(np.float32)}


@pytest.mark.parametrize("with_bias", [True, False])
def test_conv_batchnorm(with_bias):
    inits = {"w": rand(4, 3, 3, 3), **_bn_inits(4)}
    conv_in = ["x", "w"]
    if with_bias:
        inits["cb"] = rand(4, seed=5)
        conv_in.append("cb")
    m = make([N("Conv", conv_in, ["c"], pads=[1, 1, 1, 1]), N("BatchNormalization", ["c", "s", "b", "mu", "var"], ["y"], epsilon=1e-3)],
             [("x", [1, 3, 8, 8])], [("y", [1, 4, 8, 8])], inits)
    after = fold_batchnorm(m)
    assert ops(after) == ["Conv"] and after.graph.nodes[0].outputs == ["y"]
    assert_same_outputs(m, after, rtol=1e-4, atol=1e-4)


def test_grouped_convtranspose_batchnorm():
    inits = {"w": rand(4, 3, 2, 2), **_bn_inits(6)}
    m = make([N("ConvTranspose", ["x", "w"], ["c"], strides=[2, 2], group=2),
              N("BatchNormalization", ["c", "s", "b", "mu", "var"], ["y"])],
             [("x", [1, 4, 5, 5])], [("y", [1, 6, 10, 10])], inits)
    after = fold_batchnorm(m)
    assert ops(after) == ["ConvTranspose"]
    assert_same_outputs(m, after, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("trans_b", [0, 1])
def test_gemm_batchnorm(trans_b):
    w = rand(5, 3) if trans_b else rand(3, 5)
    m = make([N("Gemm", ["x", "w", "bias"], ["c"], transB=trans_b, beta=0.5),
              N("BatchNormalization", ["c", "s", "b", "mu", "var"], ["y"])],
             [("x", [2, 3])], [("y", [2, 5])], {"w": w, "bias": rand(5, seed=9), **_bn_inits(5)})
    after = fold_batchnorm(m)
    assert ops(after) == ["Gemm"]
    assert_same_outputs(m, after, rtol=1e-4, atol=1e-4)


def test_per_channel_mul_and_add_fold_but_spatial_mul_does_not():
    m = make([N("Conv", ["x", "w"], ["c"]), N("Mul", ["c", "k"], ["d"]), N("Add", ["kb", "d"], ["e"]),
              N("Mul", ["e", "spatial"], ["y"])],
             [("x", [1, 3, 4, 4])], [("y", [1, 2, 4, 4])],
             {"w": rand(2, 3, 1, 1), "k": rand(1, 2, 1, 1, seed=6), "kb": rand(2, 1, 1, seed=7), "spatial": rand(1, 1, 4, 4, seed=8)})
    after = fold_batchnorm(fold_batchnorm(m))
    assert ops(after) == ["Conv", "Mul"]
    assert_same_outputs(m, after, rtol=1e-4, atol=1e-4)


def test_not_folded_when_conv_output_has_another_reader():
    m = make([N("Conv", ["x", "w"], ["c"]), N("BatchNormalization", ["c", "s", "b", "mu", "var"], ["y"]), N("Relu", ["c"], ["z"])],
             [("x", [1, 3, 4, 4])], [("y", [1, 4, 4, 4]), ("z", [1, 4, 4, 4])], {"w": rand(4, 3, 1, 1), **_bn_inits(4)})
    assert ops(fold_batchnorm(m)) == ["Conv", "BatchNormalization", "Relu"]

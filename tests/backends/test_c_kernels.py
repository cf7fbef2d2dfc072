"""The C backend one kernel at a time: small graphs compiled for the host (with -Werror) and compared with the
reference interpreter on random inputs."""
import subprocess

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import bornc
from bornc.executors import CExecutor

from bornc.frontend.onnx_import import from_proto

from ..passes.helpers import feeds_for, make, rand

N = helper.make_node


def _check(model, rtol=1e-4, atol=1e-5, seed=0):
    feeds = feeds_for(model, seed)
    ref = bornc.run(model, feeds)
    got = CExecutor("x86_64").prepare(model)(feeds)
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], rtol=rtol, atol=atol, err_msg=k)


CONV_CASES = {
    "plain": ({}, (1, 3, 7, 9), (4, 3, 3, 3)),
    "padded_strided": ({"pads": [1, 2, 1, 0], "strides": [2, 2]}, (1, 3, 8, 8), (6, 3, 3, 3)),
    "dilated": ({"dilations": [2, 2], "pads": [2, 2, 2, 2]}, (2, 2, 6, 6), (4, 2, 3, 3)),
    "grouped": ({"group": 2, "pads": [1, 1, 1, 1]}, (1, 4, 5, 5), (6, 2, 3, 3)),
    "depthwise": ({"group": 4, "pads": [1, 1, 1, 1], "strides": [2, 1]}, (1, 4, 6, 6), (4, 1, 3, 3)),
    "same_upper": ({"auto_pad": "SAME_UPPER", "strides": [2, 2]}, (1, 2, 7, 7), (3, 2, 3, 3)),
    "conv1d": ({"pads": [1, 1], "strides": [2]}, (1, 3, 11), (5, 3, 3)),
    # the packed-weight GEMM paths (lower_nn._packed_conv): 1x1 read in place with a ragged last panel and a
    # partial 6-row panel; stride 1 over a padded copy, K above one KC block, dilated; strided im2col over two
    # KC blocks; a 7x7 stem
    "pointwise": ({}, (2, 8, 5, 7), (10, 8, 1, 1)),
    "padded_big_k": ({"pads": [1, 1, 1, 1]}, (1, 40, 9, 9), (13, 40, 3, 3)),
    "padded_dilated_asym": ({"pads": [2, 1, 0, 3], "dilations": [2, 1]}, (1, 6, 8, 9), (7, 6, 3, 2)),
    "im2col_big_k": ({"pads": [1, 1, 1, 1], "strides": [2, 2]}, (1, 60, 9, 9), (8, 60, 3, 3)),
    "stem7x7": ({"pads": [3, 3, 3, 3], "strides": [2, 2]}, (1, 3, 20, 22), (12, 3, 7, 7)),
    "grouped_packed": ({"group": 3, "pads": [1, 1, 1, 1]}, (1, 12, 6, 6), (9, 4, 3, 3)),
    # no column padding (the block's rows copied as one run): a (5, 1) kernel on width 1 as in magika, and a (3, 1)
    # one with row padding over two blocks of rows
    "column_kernel": ({}, (1, 16, 40, 1), (6, 16, 5, 1)),
    "column_kernel_two_blocks": ({"pads": [1, 0, 1, 0]}, (1, 64, 1600, 2), (8, 64, 3, 1)),
}


@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_conv(case):
    attrs, xs, ws = CONV_CASES[case]
    ref = make([N("Conv", ["x", "w", "b"], ["y"], **attrs)], [("x", list(xs))], [("y", None)], {"w": rand(*ws), "b": rand(ws[0])})
    _check(ref)


def _conv64(x, w, b, pads):
    """float64 direct 3x3 stride-1 convolution, NCHW, pads (top, left, bottom, right): the error reference."""
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    oh, ow = xp.shape[2] - 2, xp.shape[3] - 2
    y = np.zeros((x.shape[0], w.shape[0], oh, ow))
    for i in range(3):
        for j in range(3):
            y += np.einsum("nchw,mc->nmhw", xp[:, :, i:i + oh, j:j + ow], w[:, :, i, j].astype(np.float64))
    return y + b.astype(np.float64)[None, :, None, None]


@pytest.mark.parametrize("c, m, hw, pads, act", [(64, 70, 50, [1, 1, 1, 1], "Relu"), (96, 64, 61, [1, 0, 2, 1], None),
                                                 (256, 64, 48, [1, 1, 1, 1], None), (128, 132, 27, [1, 1, 1, 1], None)])
def test_winograd_conv_error(c, m, hw, pads, act, tmp_path):
    """3x3 stride-1 convolutions on the Winograd F(4x4, 3x3) path (partial weight panels, output sides that are no
    multiple of 4, asymmetric padding, 7 tiles a row under 16-tile transforms, a fused Relu in the output
    transform): the largest error against a float64
    direct convolution, as a fraction of the output's largest magnitude, stays under 2e-5; on these normal inputs
    and weights (scaled to unit output variance) it was 3e-6 to 9e-6 (growing with C), against 1e-6 to 2e-6 for
    the direct GEMM path."""
    from bornc.backends.c import lower_winograd
    from bornc.compile import compile_model
    from bornc.executors import load_artifact
    rng = np.random.default_rng(3)
    w = (rng.standard_normal((m, c, 3, 3)) / np.sqrt(9 * c)).astype(np.float32)
    b = rng.standard_normal(m).astype(np.float32)
    nodes = [N("Conv", ["x", "w", "b"], ["c" if act else "y"], pads=[pads[0], pads[1], pads[2], pads[3]])]
    nodes += [N(act, ["c"], ["y"])] if act else []
    model = make(nodes, [("x", [1, c, hw, hw])], [("y", None)], {"w": w, "b": b})
    x = rng.standard_normal((1, c, hw, hw)).astype(np.float32)
    ref = _conv64(x, w, b, pads)
    ref = np.maximum(ref, 0) if act else ref
    errs = {}
    for wino in (True, False):
        saved = lower_winograd.MIN_CHANNELS
        lower_winograd.MIN_CHANNELS = saved if wino else 1 << 30
        try:
            compile_model(model, "x86_64", tmp_path / str(wino), name="m")
        finally:
            lower_winograd.MIN_CHANNELS = saved
        assert ("bornc_wino_in16(" in (tmp_path / str(wino) / "m.c").read_text()) == wino
        errs[wino] = float(np.abs(load_artifact(tmp_path / str(wino))({"x": x})["y"] - ref).max() / np.abs(ref).max())
    print(f"relative error: Winograd {errs[True]:.2e}, direct {errs[False]:.2e}")
    assert errs[True] < 2e-5 and errs[False] < 5e-6, errs


@pytest.mark.parametrize("act", [("Relu", {}), ("Clip", {"min": -0.25, "max": 0.5})])
def test_fused_conv_clamp_in_the_store(act):
    """Relu and Clip with constant bounds after a Conv are applied by the GEMM micro-kernel's store."""
    op, bounds = act
    inits = {"w": rand(7, 5, 3, 3), "b": rand(7)}
    extra = []
    if op == "Clip":
        inits.update(lo=np.array(bounds["min"], np.float32), hi=np.array(bounds["max"], np.float32))
        extra = ["lo", "hi"]
    m = make([N("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), N(op, ["c"] + extra, ["y"])],
             [("x", [1, 5, 6, 6])], [("y", None)], inits)
    _check(m)


def test_fused_conv_with_residual_and_activation():
    m = make([N("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), N("Add", ["c", "x"], ["r"]), N("HardSwish", ["r"], ["y"])],
             [("x", [1, 4, 5, 5])], [("y", [1, 4, 5, 5])], {"w": rand(4, 4, 3, 3)})
    _check(m)


@pytest.mark.parametrize("attrs", [{"strides": [2, 2]}, {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]},
                                   {"group": 2, "strides": [1, 2]}])
def test_convtranspose(attrs):
    m = make([N("ConvTranspose", ["x", "w", "b"], ["y"], **attrs)], [("x", [1, 4, 4, 5])], [("y", None)],
             {"w": rand(4, 3 if "group" not in attrs else 2, 3, 3), "b": rand(3 if "group" not in attrs else 4)})
    _check(m)


@pytest.mark.parametrize("ta, tb", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_gemm(ta, tb):
    a = [4, 3] if ta else [3, 4]
    b = [5, 4] if tb else [4, 5]
    m = make([N("Gemm", ["a", "b", "c"], ["y"], transA=ta, transB=tb, alpha=0.5, beta=2.0)], [("a", a)], [("y", [3, 5])],
             {"b": rand(*b), "c": rand(1, 5)})
    _check(m)


@pytest.mark.parametrize("rows, n", [(37, 13), (1, 130), (5, 130)])
@pytest.mark.parametrize("tb, c_shape", [(0, "n"), (1, "1n"), (1, None)])
def test_gemm_packed(tb, c_shape, rows, n):
    """A constant B, K = 41: with 37 rows of A (a ragged 16-row panel) and 13 outputs (a partial 6-row panel) the
    packed path, alpha folded into the weights and beta into the bias; with 1 or 5 rows (a classifier head) the
    small-M path on the weight transposed at compile time."""
    inits = {"b": rand(n, 41) if tb else rand(41, n)}
    ins = ["a", "b"]
    if c_shape:
        inits["c"] = rand(n) if c_shape == "n" else rand(1, n)
        ins.append("c")
    m = make([N("Gemm", ins, ["y"], transB=tb, alpha=0.75, beta=1.5)], [("a", [rows, 41])], [("y", [rows, n])], inits)
    _check(m)


@pytest.mark.parametrize("act", ["Relu", "Sigmoid"])
def test_matmul_packed_with_epilogue(act):
    """MatMul of a batched A by a constant 2-D B (leading dims fold into rows), a bias add and an activation
    fused after it: Relu in the micro-kernel's store, Sigmoid as a parallel epilogue."""
    m = make([N("MatMul", ["a", "w"], ["p"]), N("Add", ["p", "bias"], ["q"]), N(act, ["q"], ["y"])],
             [("a", [2, 3, 20, 24])], [("y", None)], {"w": rand(24, 30), "bias": rand(30)})
    _check(m)


@pytest.mark.parametrize("a, b", [([2, 3, 4], [4, 5]), ([3, 4], [2, 4, 5]), ([2, 1, 3, 4], [3, 4, 2]), ([4], [2, 4, 3])])
def test_matmul_batched_and_broadcast(a, b):
    m = make([N("MatMul", ["a", "b"], ["y"])], [("a", a), ("b", b)], [("y", None)])
    _check(m)


@pytest.mark.parametrize("op, attrs", [
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}),
    ("AveragePool", {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1}),
    ("AveragePool", {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "strides": [2, 2]}),
    ("GlobalAveragePool", {}), ("GlobalMaxPool", {}),
])
def test_pooling(op, attrs):
    _check(make([N(op, ["x"], ["y"], **attrs)], [("x", [1, 3, 7, 7])], [("y", None)]))


@pytest.mark.parametrize("nodes, inits, xs", [
    ([N("Transpose", ["x"], ["y"], perm=[0, 2, 3, 1])], {}, [2, 3, 4, 5]),
    ([N("Slice", ["x", "s", "e", "a", "st"], ["y"])], {"s": np.array([1, -1], np.int64), "e": np.array([4, 0], np.int64),
                                                       "a": np.array([1, 3], np.int64), "st": np.array([2, -2], np.int64)}, [2, 5, 4, 6]),
    ([N("Pad", ["x", "p"], ["y"], mode="reflect")], {"p": np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64)}, [1, 2, 5, 5]),
    ([N("Pad", ["x", "p", "v"], ["y"], mode="constant")], {"p": np.array([0, 1, 1, 0, 0, 0, 2, 3], np.int64), "v": np.float32(1.5)}, [1, 2, 3, 3]),
    ([N("Pad", ["x", "p"], ["y"], mode="edge")], {"p": np.array([0, 0, 2, 2, 0, 0, 1, 1], np.int64)}, [1, 2, 3, 3]),
    ([N("Gather", ["x", "i"], ["y"], axis=1)], {"i": np.array([2, 0, -1], np.int64)}, [2, 4, 3]),
    ([N("Gather", ["x", "i"], ["y"], axis=0)], {"i": np.array(1, np.int64)}, [3, 4]),
    # 2-D constant indices (an embedding lookup of token ids), and GatherND with batch dims and negative indices
    ([N("Gather", ["x", "i"], ["y"], axis=0)], {"i": np.array([[1, 0, 2], [2, 2, -3]], np.int64)}, [3, 4]),
    ([N("GatherND", ["x", "i"], ["y"], batch_dims=1)], {"i": np.array([[[1, -1]], [[0, 2]]], np.int64)}, [2, 3, 4, 2]),
    ([N("GatherND", ["x", "i"], ["y"])], {"i": np.array([[0], [1], [-1]], np.int32)}, [2, 3]),
    ([N("Concat", ["x", "x"], ["y"], axis=1)], {}, [2, 3, 4]),
    ([N("Split", ["x", "sp"], ["y", "z"], axis=2)], {"sp": np.array([1, 3], np.int64)}, [2, 3, 4]),
    ([N("Resize", ["x", "", "sc"], ["y"], mode="nearest")], {"sc": np.array([1, 1, 2, 2], np.float32)}, [1, 2, 3, 4]),
    ([N("Resize", ["x", "", "sc"], ["y"], mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")],
     {"sc": np.array([1, 1, 0.5, 1.5], np.float32)}, [1, 2, 6, 4]),
    ([N("Expand", ["x", "sh"], ["y"])], {"sh": np.array([2, 3, 4], np.int64)}, [3, 1]),
    ([N("Reshape", ["x", "sh"], ["r"]), N("Relu", ["r"], ["y"])], {"sh": np.array([6, 4], np.int64)}, [2, 3, 4]),
])
def test_data_movement(nodes, inits, xs):
    outs = [(o, None) for o in nodes[-1].output]
    _check(make(nodes, [("x", xs)], outs, inits))


@pytest.mark.parametrize("op, axes, keep", [("ReduceSum", [1], 1), ("ReduceMean", [2, 3], 0), ("ReduceMax", [0], 1),
                                            ("ReduceMin", None, 0), ("ReduceL2", [-1], 1), ("ReduceLogSumExp", [1], 0),
                                            ("ReduceMean", [0, 2, 3], 1), ("ReduceL2", [3, 1], 0), ("ReduceMax", [0, 2], 0)])
def test_reductions(op, axes, keep):
    inputs = ["x", "ax"] if axes is not None else ["x"]
    inits = {"ax": np.array(axes, np.int64)} if axes is not None else {}
    _check(make([N(op, inputs, ["y"], keepdims=keep)], [("x", [2, 3, 4, 5])], [("y", None)], inits, opset=18))


@pytest.mark.parametrize("op, attrs", [("Softmax", {"axis": 1}), ("Softmax", {}), ("LogSoftmax", {"axis": -1})])
def test_softmax(op, attrs):
    _check(make([N(op, ["x"], ["y"], **attrs)], [("x", [2, 5, 3])], [("y", [2, 5, 3])]))


@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_lstm(direction):
    d = 2 if direction == "bidirectional" else 1
    m = make([N("LSTM", ["x", "w", "r", "b", "", "h0", "c0"], ["y", "yh", "yc"], hidden_size=4, direction=direction)],
             [("x", [3, 2, 5]), ("h0", [d, 2, 4]), ("c0", [d, 2, 4])], [("y", None), ("yh", None), ("yc", None)],
             {"w": rand(d, 16, 5) * 0.5, "r": rand(d, 16, 4) * 0.5, "b": rand(d, 32) * 0.1})
    _check(m)


RECURRENT_CASES = {
    # op, attributes, batch-major layout, sequence_lens: what the spec allows beyond the defaults (alphas and betas
    # are consumed by the activations that take them: Relu takes none, ScaledTanh gets 1.5 and 0.5)
    "gru_bidirectional_clip_lens": ("GRU", {"direction": "bidirectional", "clip": 0.7}, 0, [3, 1]),
    "gru_linear_before_reset_acts": ("GRU", {"linear_before_reset": 1, "activations": ["HardSigmoid", "LeakyRelu"],
                                             "activation_alpha": [0.3, 0.2], "activation_beta": [0.4]}, 0, None),
    "gru_reverse_batchwise": ("GRU", {"direction": "reverse"}, 1, None),
    "rnn_bidirectional_acts": ("RNN", {"direction": "bidirectional", "activations": ["Relu", "ScaledTanh"],
                                       "activation_alpha": [1.5], "activation_beta": [0.5]}, 0, [2, 3]),
    "rnn_clip_softsign_batchwise": ("RNN", {"clip": 0.5, "activations": ["Softsign"]}, 1, None),
    "lstm_peepholes_clip_forget_lens": ("LSTM", {"clip": 1.5, "input_forget": 1, "activations": ["Sigmoid", "Elu", "Softplus"]},
                                        0, [1, 3]),
    "lstm_bidirectional_batchwise": ("LSTM", {"direction": "bidirectional"}, 1, None),
}


@pytest.mark.parametrize("case", sorted(RECURRENT_CASES))
def test_recurrent(case):
    """Every option the spec gives LSTM, GRU and RNN, in C against the reference and (for layout 0, which is all
    onnxruntime's CPU kernels take) against onnxruntime."""
    import onnxruntime as ort
    op, attrs, layout, lens = RECURRENT_CASES[case]
    g = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    d, hid, seq, batch, inp = (2 if attrs.get("direction") == "bidirectional" else 1), 4, 3, 2, 5
    state = [batch, d, hid] if layout else [d, batch, hid]
    inits = {"w": rand(d, g * hid, inp) * 0.5, "r": rand(d, g * hid, hid, seed=2) * 0.5, "b": rand(d, 2 * g * hid, seed=3) * 0.1}
    if lens is not None:
        inits["lens"] = np.array(lens, np.int32)
    names = ["x", "w", "r", "b", "lens" if lens is not None else "", "h0"]
    inputs = [("x", [batch, seq, inp] if layout else [seq, batch, inp]), ("h0", state)]
    outs = ["y", "yh"]
    if op == "LSTM":
        names += ["c0", "p"]
        inputs.append(("c0", state))
        inits["p"] = rand(d, 3 * hid, seed=4) * 0.3
        outs.append("yc")
    nodes = [N(op, names, outs, hidden_size=hid, layout=layout, **attrs)]
    m = make(nodes, inputs, [(o, None) for o in outs], inits)
    _check(m)
    if not layout:
        feeds = feeds_for(m)
        proto = helper.make_model(helper.make_graph(
            nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
            [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs],
            initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()]), opset_imports=[helper.make_opsetid("", 17)])
        sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        want = dict(zip(outs, sess.run(None, feeds)))
        got = CExecutor("x86_64").prepare(m)(feeds)
        for k in outs:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=1e-5, err_msg=k)


def test_elementwise_broadcast_chain_and_comparisons():
    m = make([N("Mul", ["x", "s"], ["a"]), N("Add", ["a", "b"], ["c"]), N("Sigmoid", ["c"], ["d"]), N("Max", ["d", "x"], ["e"]),
              N("Div", ["e", "b2"], ["y"])], [("x", [2, 3, 4])], [("y", [2, 3, 4])],
             {"s": rand(3, 1), "b": rand(4), "b2": np.abs(rand(1, 1, 4)) + 1})
    _check(m)


def test_batchnorm_lrn_and_sum():
    r = np.random.default_rng(3)
    m = make([N("BatchNormalization", ["x", "s", "b", "mu", "var"], ["a"]), N("LRN", ["a"], ["l"], size=3),
              N("Sum", ["l", "a", "x"], ["y"])], [("x", [1, 4, 3, 3])], [("y", [1, 4, 3, 3])],
             {"s": rand(4), "b": rand(4), "mu": rand(4), "var": r.uniform(0.5, 1, 4).astype(np.float32)})
    _check(m)


def test_if_with_runtime_condition_and_nested_branches():
    from onnx import TensorProto
    inner_then = helper.make_graph([N("Sigmoid", ["x"], ["s"])], "it", [], [helper.make_tensor_value_info("s", TensorProto.FLOAT, [2, 3])])
    inner_else = helper.make_graph([N("Identity", ["w"], ["t"])], "ie", [], [helper.make_tensor_value_info("t", TensorProto.FLOAT, [2, 3])])
    then_g = helper.make_graph([N("Relu", ["x"], ["a"]), N("Mul", ["a", "w"], ["b"])], "then", [],
                               [helper.make_tensor_value_info("b", TensorProto.FLOAT, [2, 3])])
    else_g = helper.make_graph([N("Neg", ["x"], ["c"]), N("If", ["c2"], ["d"], then_branch=inner_then, else_branch=inner_else),
                                N("Add", ["c", "d"], ["e"])], "else", [], [helper.make_tensor_value_info("e", TensorProto.FLOAT, [2, 3])])
    g = helper.make_graph([N("If", ["cond"], ["y"], then_branch=then_g, else_branch=else_g)], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
                           helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
                           helper.make_tensor_value_info("c2", TensorProto.BOOL, [])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
                          initializer=[__import__("onnx").numpy_helper.from_array(rand(2, 3), "w")])
    from bornc.frontend.onnx_import import from_proto
    model = from_proto(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    run = CExecutor("x86_64").prepare(model)
    x = rand(2, 3, seed=4)
    for cond in (True, False):
        for c2 in (True, False):
            feeds = {"x": x, "cond": np.array(cond), "c2": np.array(c2)}
            np.testing.assert_allclose(run(feeds)["y"], bornc.run(model, feeds)["y"], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("eq, shapes", [
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),      # attention scores
    ("ij,jk,kl->il", [(3, 4), (4, 5), (5, 2)]),             # a chain, contracted left to right
    ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 5)]),         # ellipsis batch
    ("iij->j", [(3, 3, 4)]),                                # a diagonal, then a sum
    ("ij->", [(3, 4)]),                                     # everything summed
    ("ij,jk", [(3, 4), (4, 2)]),                            # implicit output
    ("bij,bkj->bki", [(2, 3, 4), (2, 5, 4)]),               # transposed operands and output
])
def test_einsum_planned_into_matmul_and_reductions(eq, shapes):
    """Einsum legalized for C (Transpose/Reshape/Gather/ReduceSum/MatMul) against numpy.einsum."""
    g = helper.make_graph([N("Einsum", [f"x{i}" for i in range(len(shapes))], ["y"], equation=eq)], "g",
                          [helper.make_tensor_value_info(f"x{i}", TensorProto.FLOAT, s) for i, s in enumerate(shapes)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    proto = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    rng = np.random.default_rng(0)
    feeds = {f"x{i}": rng.standard_normal(s).astype(np.float32) for i, s in enumerate(shapes)}
    got = CExecutor("x86_64").prepare(from_proto(proto))(feeds)["y"]
    np.testing.assert_allclose(got, np.einsum(eq, *feeds.values()), rtol=1e-4, atol=1e-5)


def test_scan_unrolled_with_directions_axes_and_an_outer_value():
    """Scan-16 with a reverse scan input along axis 1, a scan output stacked along axis 1 in reverse, and a body
    reading an outer-scope value: unrolled for C by legalization, compared with the reference's Scan."""
    body = helper.make_graph(
        [N("Add", ["s_in", "x_t"], ["s_mid"]), N("Mul", ["s_mid", "w"], ["s_out"]), N("Identity", ["s_mid"], ["y_t"])], "body",
        [helper.make_tensor_value_info("s_in", TensorProto.FLOAT, [2]), helper.make_tensor_value_info("x_t", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("s_out", TensorProto.FLOAT, [2]), helper.make_tensor_value_info("y_t", TensorProto.FLOAT, [2])])
    g = helper.make_graph([N("Scan", ["s0", "x"], ["s_final", "ys"], body=body, num_scan_inputs=1, scan_input_axes=[1],
                             scan_input_directions=[1], scan_output_axes=[1], scan_output_directions=[1])], "g",
                          [helper.make_tensor_value_info("s0", TensorProto.FLOAT, [2]), helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 5])],
                          [helper.make_tensor_value_info("s_final", TensorProto.FLOAT, [2]), helper.make_tensor_value_info("ys", TensorProto.FLOAT, [2, 5])],
                          initializer=[numpy_helper.from_array(np.array([0.5, 1.5], np.float32), "w")])
    m = from_proto(helper.make_model(g, opset_imports=[helper.make_opsetid("", 16)]))
    _check(m)


_VECTOR_MATH_PROGRAM = r"""
#include <math.h>
#include <stdio.h>
#include "bornrt.h"
static double ulps(float got, float want) {
    if (got == want || (got != got && want != want)) return 0;
    if (got != got || want != want) return INFINITY;                          /* NaN on one side only */
    if (fabsf(want) < 1.2e-38f && fabsf(got) < 1.2e-38f) return 0;       /* flushed below 2^-126 */
    return fabs((double)got - (double)want) / (double)(nextafterf(fabsf(want), INFINITY) - fabsf(want));
}
int main(void) {
    double worst[3] = {0, 0, 0};
    const float special[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-8f, 0.34657f, -0.34658f, 9.0f, 9.01f, -9.01f, 88.7f, 88.8f,
                             -87.3f, -87.4f, -104.0f, 200.0f, -200.0f, INFINITY, -INFINITY, NAN};
    for (long i = 0; i < 2000000 + 20; ++i) {
        float x;
        if (i < 20) x = special[i];
        else { unsigned u = (unsigned)i * 2654435761u; x = ((float)(u >> 8) / 16777216.0f * 2 - 1) * (i % 3 ? 100.0f : i % 2 ? 1.0f : 1e-3f); }
        if (i % 10 == 0) {      /* and every float near the overflow and underflow ends, in turn */
            static float hi = 88.0f, lo = -87.0f;
            x = (i / 10) % 2 ? (hi = nextafterf(hi, 89.0f)) : (lo = nextafterf(lo, -88.0f));
        }
        const double e[3] = {ulps(bornc_expf(x), expf(x)), ulps(bornc_expm1f(x), expm1f(x)), ulps(bornc_tanhf(x), tanhf(x))};
        for (int k = 0; k < 3; ++k) if (e[k] > worst[k]) worst[k] = e[k];
    }
    printf("%g %g %g\n", worst[0], worst[1], worst[2]);
    return 0;
}
"""


def test_vectorizable_exp_expm1_tanh_within_4_ulp_of_libm(tmp_path):
    """bornrt.h's branch-free bornc_expf/bornc_expm1f/bornc_tanhf (what float elementwise, Softmax, attention and
    RNN kernels call) stay within 4 ulp of glibc's on 2M arguments over [-100, 100], the 100,000 floats above 88 and
    below -87 (where 2^n leaves the float range) and the edge cases (0, -0, tiny, the polynomial's switch points,
    overflow, underflow, infinities, NaN; a NaN on one side only counts as infinitely many ulp), and gcc vectorizes a loop of them."""
    import shutil
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    from pathlib import Path
    runtime = Path(__file__).resolve().parents[2] / "runtime" / "c"
    (tmp_path / "t.c").write_text(_VECTOR_MATH_PROGRAM)
    r = subprocess.run(["gcc", "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-I", str(runtime), "t.c", "-o", "t", "-lm"],
                       cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    worst = [float(v) for v in subprocess.run([str(tmp_path / "t")], capture_output=True, text=True, check=True).stdout.split()]
    assert max(worst) <= 4, worst
    (tmp_path / "v.c").write_text('#include "bornrt.h"\nvoid k(const float *x, float *y, int n) {\n'
                                  '    for (int i = 0; i < n; ++i) y[i] = bornc_tanhf(x[i]) + bornc_expf(x[i]);\n}\n')
    r = subprocess.run(["gcc", "-O3", "-march=x86-64-v3", "-std=c99", "-fopt-info-vec-optimized", "-I", str(runtime), "-c", "v.c",
                        "-o", "v.o"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0 and "loop vectorized" in r.stderr, r.stderr[-2000:]


@pytest.mark.parametrize("attrs, shape", [
    ({"kernel_shape": [13, 13], "pads": [6, 6, 6, 6]}, (1, 2, 20, 17)),                 # SPP: stride 1, same size
    ({"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 0, 0, 1], "ceil_mode": 1}, (2, 3, 9, 8)),
    ({"kernel_shape": [2, 5], "strides": [1, 3], "auto_pad": "SAME_UPPER"}, (1, 1, 7, 11)),
], ids=["spp13", "strided_ceil_asym", "same_upper"])
def test_separable_maxpool_matches_the_reference_with_nan(attrs, shape):
    """2-D float MaxPool without indices runs as a column pass then a row pass (maxpool2d_sep.c.j2): same values
    as the reference, windows clipped at every edge, NaN in a window propagating."""
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    x.flat[::37] = np.nan
    g = helper.make_graph([N("MaxPool", ["x"], ["y"], **attrs)], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    m = from_proto(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]))
    ref = bornc.run(m, {"x": x})["y"]
    got = CExecutor("x86_64").prepare(m)({"x": x})["y"]
    assert np.isnan(ref).any()
    np.testing.assert_array_equal(got, ref)

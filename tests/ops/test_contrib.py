"""onnxruntime's com.microsoft contrib ops on one-node models built with onnx.helper: the reference kernel and
the x86_64, python and webgpu targets (through legalization into standard ops, the user's compile path) against
onnxruntime's CPU EP."""
import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import bornc
from bornc.executors import CExecutor, PythonExecutor, WebGPUExecutor
from bornc.frontend.onnx_import import from_proto

MS = "com.microsoft"
F = TensorProto.FLOAT
rng = np.random.default_rng(7)


def r(*shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _model(op, inputs, inits, outputs, domain=MS, **attrs):
    """One-node model: ``inputs`` (name, array) fed at run time, ``inits`` (name, array) initializers, ``outputs``
    names ("" leaves one out)."""
    node = helper.make_node(op, [n for n, _ in inputs] + [n for n, _ in inits] if not attrs.get("_order") else attrs.pop("_order"),
                            outputs, domain=domain, **attrs)
    vi = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape) for n, a in inputs]
    outs = [helper.make_tensor_value_info(o, F, None) for o in outputs if o]
    g = helper.make_graph([node], "g", vi, outs, initializer=[numpy_helper.from_array(a, n) for n, a in inits])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)])


def _check(proto, feeds, rtol=1e-4, atol=1e-5, targets=("reference", "x86_64", "python", "webgpu")):
    want = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    names = [o.name for o in proto.graph.output]
    m = from_proto(proto)
    for target in targets:
        if target == "reference":
            got = bornc.run(m, feeds)
        else:
            ex = {"python": PythonExecutor, "webgpu": WebGPUExecutor}.get(target, lambda: CExecutor(target))()
            got = ex.prepare(m)(feeds)
        for n, w in zip(names, want):
            np.testing.assert_allclose(np.asarray(got[n], np.float64), w.astype(np.float64), rtol=rtol, atol=atol,
                                       err_msg=f"{target}: {n}")


X = r(2, 5, 8)


@pytest.mark.parametrize("op, extra, attrs", [
    ("Gelu", [], {}), ("FastGelu", [("bias", r(8))], {}), ("FastGelu", [], {}), ("BiasGelu", [("bias", r(8))], {}),
    ("QuickGelu", [], {"alpha": 1.5}), ("QuickGelu", [], {}),
])
def test_gelu_family(op, extra, attrs):
    _check(_model(op, [("x", X)], extra, ["y"], **attrs), {"x": X})


@pytest.mark.parametrize("with_beta, with_bias, outs", [(True, True, ["y", "", "", "sum"]), (False, False, ["y"]),
                                                        (True, False, ["y", "mean", "inv"])])
def test_skip_layer_normalization(with_beta, with_bias, outs):
    inits = [("gamma", r(8) + 1)] + ([("beta", r(8))] if with_beta else [("", None)] if with_bias else []) + \
        ([("bias", r(8))] if with_bias else [])
    order = ["x", "skip"] + [n for n, _ in inits]
    m = _model("SkipLayerNormalization", [("x", X), ("skip", r(2, 5, 8))], [(n, a) for n, a in inits if n], outs,
               epsilon=1e-6, _order=order)
    _check(m, {"x": X, "skip": r(2, 5, 8)})


def test_skip_simplified_layer_normalization():
    m = _model("SkipSimplifiedLayerNormalization", [("x", X), ("skip", r(2, 5, 8))], [("gamma", r(8) + 1), ("bias", r(8))],
               ["y", "", "inv", "sum"], epsilon=1e-6)
    _check(m, {"x": X, "skip": r(2, 5, 8)})


def test_simplified_layer_normalization():
    """onnxruntime registers it in the ONNX domain."""
    m = _model("SimplifiedLayerNormalization", [("x", X)], [("scale", r(8) + 1)], ["y"], domain="", epsilon=1e-5, axis=-1)
    _check(m, {"x": X})


def test_embed_layer_normalization():
    ids = rng.integers(0, 30, (2, 7)).astype(np.int32)
    seg = rng.integers(0, 2, (2, 7)).astype(np.int32)
    mask = np.array([[1] * 7, [1] * 4 + [0] * 3], np.int32)
    inits = [("word", r(30, 8)), ("pos", r(16, 8)), ("segemb", r(2, 8)), ("gamma", r(8) + 1), ("beta", r(8))]
    node_in = ["ids", "seg"] + [n for n, _ in inits] + ["mask"]
    proto = _model("EmbedLayerNormalization", [("ids", ids), ("seg", seg), ("mask", mask)], inits, ["y", "mask_index"],
                   epsilon=1e-12, _order=node_in)
    proto.graph.output[1].type.tensor_type.elem_type = TensorProto.INT32
    _check(proto, {"ids": ids, "seg": seg, "mask": mask})


@pytest.mark.parametrize("act, params", [("Relu", []), ("LeakyRelu", [0.2]), ("Clip", [-0.5, 0.6]), ("HardSigmoid", [0.3, 0.4]),
                                         ("Sigmoid", []), ("Tanh", [])])
def test_fused_conv(act, params):
    x = r(1, 4, 7, 7)
    extra = {"activation_params": params} if params else {}
    m = _model("FusedConv", [("x", x)], [("w", r(6, 4, 3, 3, scale=0.3)), ("b", r(6))], ["y"], pads=[1, 1, 1, 1],
               kernel_shape=[3, 3], activation=act, **extra)
    _check(m, {"x": x})


def test_fused_conv_with_sum_input():
    x, z = r(1, 4, 6, 6), r(1, 6, 6, 6)
    m = _model("FusedConv", [("x", x), ("z", z)], [("w", r(6, 4, 3, 3, scale=0.3)), ("b", r(6))], ["y"],
               _order=["x", "w", "b", "z"], pads=[1, 1, 1, 1], kernel_shape=[3, 3], activation="Relu")
    _check(m, {"x": x, "z": z})


@pytest.mark.parametrize("attrs", [{"activation": "Relu"}, {"activation": "LeakyRelu", "activation_alpha": 0.1, "transB": 1},
                                   {"alpha": 0.5, "beta": 2.0, "activation": "Tanh"}])
def test_fused_gemm(attrs):
    a = r(5, 8)
    w = r(7, 8) if attrs.get("transB") else r(8, 7)
    _check(_model("FusedGemm", [("a", a)], [("w", w), ("c", r(7))], ["y"], **attrs), {"a": a})


@pytest.mark.parametrize("attrs, bs", [({"alpha": 0.5}, (8, 6)), ({"transB": 1}, (6, 8)), ({"transA": 1, "alpha": 2.0}, (8, 6))])
def test_fused_matmul(attrs, bs):
    a = r(2, 5, 8) if not attrs.get("transA") else r(2, 8, 5)
    _check(_model("FusedMatMul", [("a", a)], [("b", r(*bs))], ["y"], **attrs), {"a": a})


def u8(*shape):
    return rng.integers(0, 256, shape).astype(np.uint8)


def s(v):
    return np.array(v, np.float32)


def z(v, dt=np.uint8):
    return np.array(v, dt)


def _check_q(proto, feeds, step=1):
    """Quantized outputs: within ``step`` quanta of onnxruntime's (its integer kernels round once per output)."""
    _check(proto, feeds, rtol=0, atol=step + 1e-6)


@pytest.mark.parametrize("op", ["QLinearAdd", "QLinearMul"])
def test_qlinear_binary(op):
    a, bq = u8(2, 3, 4), u8(3, 4)
    inits = [("as", s(0.02)), ("az", z(120)), ("b", bq), ("bs", s(0.03)), ("bz", z(130)), ("cs", s(0.05 if op == "QLinearAdd" else 0.2)), ("cz", z(125))]
    m = _model(op, [("a", a)], inits, ["y"], _order=["a", "as", "az", "b", "bs", "bz", "cs", "cz"])
    m.graph.output[0].type.tensor_type.elem_type = TensorProto.UINT8
    _check_q(m, {"a": a})


@pytest.mark.parametrize("op, attrs", [("QLinearSigmoid", {}), ("QLinearLeakyRelu", {"alpha": 0.1})])
def test_qlinear_unary(op, attrs):
    x = u8(2, 16)
    m = _model(op, [("x", x)], [("xs", s(0.05)), ("xz", z(128)), ("ys", s(1 / 256 if op == "QLinearSigmoid" else 0.04)), ("yz", z(0 if op == "QLinearSigmoid" else 100))],
               ["y"], **attrs)
    m.graph.output[0].type.tensor_type.elem_type = TensorProto.UINT8
    _check_q(m, {"x": x})


def test_qlinear_concat_and_global_average_pool():
    x, y = u8(1, 3, 4, 4), u8(1, 2, 4, 4)
    m = _model("QLinearConcat", [("x", x), ("y2", y)], [("ys", s(0.04)), ("yz", z(128)), ("xs", s(0.03)), ("xz", z(120)),
                                                       ("y2s", s(0.05)), ("y2z", z(110))], ["c"],
               _order=["ys", "yz", "x", "xs", "xz", "y2", "y2s", "y2z"], axis=1)
    m.graph.output[0].type.tensor_type.elem_type = TensorProto.UINT8
    _check_q(m, {"x": x, "y2": y})
    g = _model("QLinearGlobalAveragePool", [("x", x)], [("xs", s(0.03)), ("xz", z(120)), ("ys", s(0.01)), ("yz", z(128))], ["y"])
    g.graph.output[0].type.tensor_type.elem_type = TensorProto.UINT8
    _check_q(g, {"x": x})


@pytest.mark.parametrize("quantized_out", [True, False])
def test_qgemm(quantized_out):
    a, w = u8(4, 8), rng.integers(-128, 128, (6, 8)).astype(np.int8)
    inits = [("as", s(0.02)), ("az", z(128)), ("w", w), ("ws", s(0.01)), ("wz", z(0, np.int8)),
             ("c", rng.integers(-500, 500, (6,)).astype(np.int32))]
    if quantized_out:
        inits += [("ys", s(0.05)), ("yz", z(128))]
    m = _model("QGemm", [("a", a)], inits, ["y"], _order=["a"] + [n for n, _ in inits], transB=1)
    if quantized_out:
        m.graph.output[0].type.tensor_type.elem_type = TensorProto.UINT8
        _check_q(m, {"a": a})
    else:
        _check(m, {"a": a}, rtol=1e-5, atol=1e-5)


def test_dynamic_quantize_matmul_and_matmul_integer_to_float():
    a = r(3, 8)
    w = rng.integers(-128, 128, (8, 5)).astype(np.int8)
    m = _model("DynamicQuantizeMatMul", [("a", a)], [("w", w), ("ws", r(5) * 0 + 0.01), ("wz", np.zeros(5, np.int8)), ("bias", r(5))], ["y"])
    _check(m, {"a": a}, rtol=1e-4, atol=1e-4)
    aq = u8(3, 8)
    m2 = _model("MatMulIntegerToFloat", [("a", aq)], [("w", w), ("as", s(0.02)), ("ws", s(0.01)), ("az", z(128)), ("wz", z(3, np.int8)),
                                                      ("bias", r(5))], ["y"])
    _check(m2, {"a": aq}, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("zero_points", [None, "packed"])
def test_matmul_nbits(zero_points):
    """4-bit blocked weights (block 16, K = 40 not a multiple: the last block is padded)."""
    k, n, block = 40, 6, 16
    nb = -(-k // block)
    bq = rng.integers(0, 256, (n, nb, block // 2)).astype(np.uint8)
    inits = [("b", bq), ("sc", (rng.random(n * nb) * 0.1 + 0.01).astype(np.float32))]
    if zero_points:
        inits.append(("zp", rng.integers(0, 256, (n * -(-nb // 2),)).astype(np.uint8)))
    a = r(3, k)
    m = _model("MatMulNBits", [("a", a)], inits, ["y"], K=k, N=n, bits=4, block_size=block)
    _check(m, {"a": a}, rtol=1e-4, atol=1e-4)


def test_dynamic_quantize_lstm():
    """onnxruntime quantizes X and H per step inside; the float LSTM on the dequantized weights is within 1e-2."""
    d, h, i = 1, 4, 5
    w = rng.integers(-128, 128, (d, i, 4 * h)).astype(np.int8)
    rq = rng.integers(-128, 128, (d, h, 4 * h)).astype(np.int8)
    inits = [("w", w), ("r", rq), ("b", r(d, 8 * h, scale=0.1)), ("ws", s([0.01])), ("wz", np.zeros(1, np.int8)),
             ("rs", s([0.01])), ("rz", np.zeros(1, np.int8))]
    x = r(3, 2, i)
    m = _model("DynamicQuantizeLSTM", [("x", x)], inits, ["y", "yh"], hidden_size=h,
               _order=["x", "w", "r", "b", "", "", "", "", "ws", "wz", "rs", "rz"])
    _check(m, {"x": x}, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("mask_kind, causal", [(None, 0), ("2d", 0), ("1d", 0), ("2d", 1), ("3d", 0)])
def test_bert_attention(mask_kind, causal):
    """The fused Attention of onnxruntime's transformers optimizer: packed QKV weight, mask_index forms, causal."""
    b, s, hid, heads = 2, 6, 16, 4
    x = r(b, s, hid)
    inits = [("w", r(hid, 3 * hid, scale=0.3)), ("bias", r(3 * hid, scale=0.1))]
    feeds = {"x": x}
    order = ["x", "w", "bias"]
    inputs = [("x", x)]
    if mask_kind:
        mask = {"2d": np.array([[1] * 6, [1] * 4 + [0] * 2], np.int32), "1d": np.array([6, 3], np.int32),
                "3d": (rng.random((b, s, s)) > 0.3).astype(np.int32)}[mask_kind]
        mask[..., 0] = 1
        feeds["mask"] = mask
        inputs.append(("mask", mask))
        order.append("mask")
    m = _model("Attention", inputs, inits, ["y"], _order=order, num_heads=heads, unidirectional=causal)
    _check(m, feeds, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("with_mask, with_attn_bias", [(False, False), (True, False), (True, True)])
def test_multi_head_attention(with_mask, with_attn_bias):
    b, s, t, d, heads = 2, 5, 7, 16, 4
    q, k, v = r(b, s, d), r(b, t, d), r(b, t, d)
    feeds = {"q": q, "k": k, "v": v}
    inputs = [("q", q), ("k", k), ("v", v)]
    order = ["q", "k", "v", "bias"]
    if with_mask:
        feeds["kpm"] = np.array([[1] * 7, [1] * 5 + [0] * 2], np.int32)
        inputs.append(("kpm", feeds["kpm"]))
        order.append("kpm")
    if with_attn_bias:
        feeds["ab"] = r(1, heads, s, t)
        inputs.append(("ab", feeds["ab"]))
        order.append("ab")
    m = _model("MultiHeadAttention", inputs, [("bias", r(3 * d, scale=0.1))], ["y"], _order=order, num_heads=heads)
    _check(m, feeds, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("interleaved, offset", [(0, False), (1, False), (0, True)])
def test_rotary_embedding(interleaved, offset):
    b, s, heads, hd = 2, 5, 2, 8
    x = r(b, s, heads * hd)
    pos = np.array([3], np.int64) if offset else rng.integers(0, 16, (b, s)).astype(np.int64)
    ang = np.arange(16)[:, None] * (1.0 / 10000 ** (np.arange(hd // 2) / (hd // 2)))[None, :]
    m = _model("RotaryEmbedding", [("x", x), ("pos", pos)], [("cos", np.cos(ang).astype(np.float32)), ("sin", np.sin(ang).astype(np.float32))],
               ["y"], interleaved=interleaved, num_heads=heads)
    _check(m, {"x": x, "pos": pos}, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("past, softcap, padded", [(0, 0.0, False), (0, 0.0, True), (3, 0.0, False), (3, 2.0, False)])
def test_group_query_attention(past, softcap, padded):
    """GQA (4 query heads over 2 KV heads): a prompt (with a right-padded row), and decoding after a past of 3."""
    b, s, hq, hkv, d = 2, 4 if not past else 1, 4, 2, 8
    q, k, v = r(b, s, hq * d), r(b, s, hkv * d), r(b, s, hkv * d)
    feeds = {"q": q, "k": k, "v": v}
    inputs = [("q", q), ("k", k), ("v", v)]
    order = ["q", "k", "v"]
    if past:
        feeds["pk"], feeds["pv"] = r(b, hkv, past, d), r(b, hkv, past, d)
        inputs += [("pk", feeds["pk"]), ("pv", feeds["pv"])]
        order += ["pk", "pv"]
    else:
        order += ["", ""]
    lens = np.full(b, past + s - 1, np.int32)
    if padded:
        lens[1] = s - 2                       # row 1: its last key is padding
    feeds["lens"], feeds["total"] = lens, np.array(past + s, np.int32)
    inputs += [("lens", lens), ("total", feeds["total"])]
    order += ["lens", "total"]
    attrs = {"num_heads": hq, "kv_num_heads": hkv}
    if softcap:
        attrs["softcap"] = softcap
    m = _model("GroupQueryAttention", inputs, [], ["y", "present_k", "present_v"], _order=order, **attrs)
    _check(m, feeds, rtol=1e-4, atol=1e-5)

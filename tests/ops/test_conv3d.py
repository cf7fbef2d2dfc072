"""3-D Conv and ConvTranspose on the x86_64 C target (legalized into 2-D ones per depth tap, ops/nn.py) against
onnxruntime: strides, dilations, groups, padding, output_padding, auto_pad and bias. Tolerance: 1e-4 absolute
on unit-normal data (sums of at most 54 products)."""
import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from bornc.executors import CExecutor
from bornc.frontend.onnx_import import from_proto

F = TensorProto.FLOAT
CASES = [
    ("Conv", [1, 2, 4, 5, 6], [3, 2, 3, 3, 3], True, {"pads": [1, 1, 1, 1, 1, 1]}),
    ("Conv", [2, 4, 7, 6, 5], [4, 2, 2, 3, 1], False, {"strides": [2, 1, 2], "dilations": [2, 1, 1], "group": 2,
                                                       "pads": [1, 0, 0, 0, 1, 0]}),
    ("ConvTranspose", [1, 2, 3, 4, 5], [2, 3, 3, 3, 3], True, {}),
    ("ConvTranspose", [2, 4, 3, 4, 3], [4, 2, 2, 3, 2], True, {"strides": [2, 2, 1], "dilations": [2, 1, 1], "group": 2,
                                                              "pads": [1, 0, 1, 0, 1, 0], "output_padding": [1, 1, 0]}),
    ("ConvTranspose", [1, 1, 3, 3, 3], [1, 2, 3, 3, 3], False, {"strides": [3, 2, 2], "auto_pad": "SAME_UPPER"}),
]


@pytest.mark.parametrize("op,xs,ws,bias,attrs", CASES)
def test_3d_conv_on_c_matches_onnxruntime(op, xs, ws, bias, attrs):
    rng = np.random.default_rng(len(xs) + sum(ws))
    m = ws[0] if op == "Conv" else ws[1] * attrs.get("group", 1)
    inits = [helper.make_tensor("w", F, ws, rng.standard_normal(int(np.prod(ws))).astype(np.float32).tolist())]
    if bias:
        inits.append(helper.make_tensor("B", F, [m], rng.standard_normal(m).astype(np.float32).tolist()))
    node = helper.make_node(op, ["x", "w"] + (["B"] if bias else []), ["y"], **attrs)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", F, xs)], [helper.make_tensor_value_info("y", F, None)], inits)
    mp = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    x = rng.standard_normal(xs).astype(np.float32)
    want = ort.InferenceSession(mp.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    got = CExecutor("x86_64").prepare(from_proto(mp))({"x": x})["y"]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)

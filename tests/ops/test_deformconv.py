"""DeformConv through its decomposition (GridSample per tap, im2col MatMul) on x86_64 and python against the
reference kernel, with strides, dilations, pads, groups, offset groups, a mask and a bias (the ONNX node tests
have none of strides, dilations or groups)."""
import numpy as np
from onnx import TensorProto, helper, numpy_helper

import bornc
from bornc.executors import CExecutor, PythonExecutor
from bornc.frontend.onnx_import import from_proto


def test_deformconv_decomposition_matches_reference():
    rng = np.random.default_rng(3)
    n, c, h, w, m, k = 2, 4, 7, 6, 6, 3
    strides, dil, pads, group, og = [2, 1], [1, 2], [1, 2, 0, 1], 2, 2
    oh = (h + pads[0] + pads[2] - dil[0] * (k - 1) - 1) // strides[0] + 1
    ow = (w + pads[1] + pads[3] - dil[1] * (k - 1) - 1) // strides[1] + 1
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    off = (rng.standard_normal((n, og * 2 * k * k, oh, ow)) * 1.5).astype(np.float32)
    mask = rng.uniform(0, 1, (n, og * k * k, oh, ow)).astype(np.float32)
    wt = rng.standard_normal((m, c // group, k, k)).astype(np.float32)
    bias = rng.standard_normal(m).astype(np.float32)
    node = helper.make_node("DeformConv", ["x", "w", "off", "b", "mask"], ["y"], kernel_shape=[k, k], strides=strides,
                            dilations=dil, pads=pads, group=group, offset_group=og)
    vi = [helper.make_tensor_value_info(nm, TensorProto.FLOAT, a.shape) for nm, a in (("x", x), ("off", off), ("mask", mask))]
    g = helper.make_graph([node], "g", vi, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          initializer=[numpy_helper.from_array(wt, "w"), numpy_helper.from_array(bias, "b")])
    model = from_proto(helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)]))
    feeds = {"x": x, "off": off, "mask": mask}
    want = bornc.run(model, feeds)["y"]
    assert want.shape == (n, m, oh, ow)
    for ex in (CExecutor("x86_64"), PythonExecutor()):
        np.testing.assert_allclose(ex.prepare(model)(feeds)["y"], want, rtol=1e-4, atol=1e-5, err_msg=type(ex).__name__)

"""RoiAlign on the reference, x86_64, python and webgpu targets against onnxruntime's CPU kernel: avg and max modes, a
fixed and an adaptive (sampling_ratio 0) grid, half-pixel and output-half-pixel (opset 10) coordinates, boxes
partly outside the image; the C kernel under ASan and UBSan; a batch index out of range is an error.
Tolerance: 1e-5 (both compute in higher precision than the float32 output); webgpu, in f32 throughout, 1e-4."""
import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import bornc
from bornc.executors import CExecutor, PythonExecutor, WebGPUExecutor
from bornc.frontend.onnx_import import from_proto

F = TensorProto.FLOAT


def _model(opset, **attrs):
    node = helper.make_node("RoiAlign", ["x", "rois", "bi"], ["y"], **attrs)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", F, [2, 3, 7, 9]),
                                        helper.make_tensor_value_info("rois", F, [4, 4]),
                                        helper.make_tensor_value_info("bi", TensorProto.INT64, [4])],
                          [helper.make_tensor_value_info("y", F, None)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


FEEDS = {"x": np.random.default_rng(0).standard_normal((2, 3, 7, 9)).astype(np.float32),
         "rois": np.array([[0, 0, 8, 6], [1.5, 2.2, 5.7, 4.1], [-2, -1, 3, 9.5], [6, 4, 30, 20]], np.float32),
         "bi": np.array([0, 1, 1, 0], np.int64)}
CASES = [(16, {"mode": "avg", "output_height": 3, "output_width": 2, "sampling_ratio": 2, "spatial_scale": 1.0}),
         (16, {"mode": "max", "output_height": 2, "output_width": 4, "sampling_ratio": 0, "spatial_scale": 0.5}),
         (16, {"mode": "avg", "output_height": 4, "output_width": 4, "sampling_ratio": 0,
               "coordinate_transformation_mode": "output_half_pixel"}),
         (10, {"mode": "avg", "output_height": 2, "output_width": 3, "sampling_ratio": 3})]


@pytest.mark.parametrize("opset,attrs", CASES)
def test_roialign_matches_onnxruntime(opset, attrs):
    m = _model(opset, **attrs)
    want = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, FEEDS)[0]
    model = from_proto(m)
    np.testing.assert_allclose(bornc.run(model, FEEDS)["y"], want, atol=1e-5, rtol=1e-5)
    for ex in (CExecutor("x86_64"), PythonExecutor()):
        np.testing.assert_allclose(ex.prepare(model)(FEEDS)["y"], want, atol=1e-5, rtol=1e-5, err_msg=type(ex).__name__)
    got = WebGPUExecutor().prepare(model)(FEEDS)["y"]            # f32 coordinates and sums
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4, err_msg="webgpu")


def test_roialign_c_under_sanitizers_and_bad_batch_index():
    m = _model(16, mode="max", output_height=2, output_width=2, sampling_ratio=0)
    want = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, FEEDS)[0]
    run = CExecutor("x86_64", sanitize=True).prepare(from_proto(m))
    np.testing.assert_allclose(run(FEEDS)["y"], want, atol=1e-5, rtol=1e-5)
    with pytest.raises(bornc.errors.BorncError, match="(?i)index"):
        CExecutor("x86_64").prepare(from_proto(m))({**FEEDS, "bi": np.array([0, 2, 0, 0], np.int64)})

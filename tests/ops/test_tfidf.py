"""TfIdfVectorizer on the reference, x86_64, python and webgpu targets against onnx.reference (an independent oracle),
in the three modes; the ONNX node tests cover TF only."""
import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from bornc.executors import CExecutor, PythonExecutor, WebGPUExecutor
from bornc.frontend.onnx_import import from_proto
import bornc


@pytest.mark.parametrize("mode", ["TF", "IDF", "TFIDF"])
def test_tfidf_modes(mode):
    x = np.array([[1, 1, 3, 3, 3, 7], [8, 6, 7, 5, 6, 8]], np.int64)
    node = helper.make_node("TfIdfVectorizer", ["x"], ["y"], mode=mode, min_gram_length=1, max_gram_length=2,
                            max_skip_count=1, ngram_counts=[0, 4], ngram_indexes=[0, 1, 2, 3, 4, 5, 6],
                            pool_int64s=[1, 3, 5, 7, 5, 6, 7, 5, 8, 7], weights=[0.5, 1.5, 2.0, 0.25, 3.0, 1.0, 4.0])
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.INT64, [2, 6])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 7])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    want = ReferenceEvaluator(m).run(None, {"x": x})[0]
    model = from_proto(m)
    np.testing.assert_allclose(bornc.run(model, {"x": x})["y"], want, rtol=1e-6)
    for ex in (CExecutor("x86_64"), PythonExecutor(), WebGPUExecutor()):
        np.testing.assert_allclose(ex.prepare(model)({"x": x})["y"], want, rtol=1e-6, err_msg=type(ex).__name__)

"""Small-graph builders and the before/after numeric check shared by the pass tests."""
import numpy as np
from onnx import TensorProto, helper, numpy_helper

import bornc
from bornc.frontend.onnx_import import from_proto
from bornc.ir.verify import verify


def make(nodes, inputs, outputs, inits=None, opset=17):
    """IR model from ONNX helper nodes; ``inputs``/``outputs`` are (name, shape) pairs (float32),
    ``inits`` a dict of name -> array."""
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
                          initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()])
    return from_proto(helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]))


def feeds_for(model, seed=0):
    rng = np.random.default_rng(seed)
    return {n: rng.standard_normal(model.graph.types[n].shape).astype(np.float32) for n in model.graph.inputs}


def assert_same_outputs(before, after, rtol=1e-5, atol=1e-5, seed=0):
    """The pass kept the model valid and its outputs within tolerance on random inputs."""
    verify(after)
    feeds = feeds_for(before, seed)
    a, b = bornc.run(before, feeds), bornc.run(after, feeds)
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=rtol, atol=atol, err_msg=k)


def ops(model):
    return [n.op for n in model.graph.nodes]


def rand(*shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)

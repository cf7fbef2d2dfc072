"""widen_float16: a float16 model's inner values in float32 on the C and numpy targets, its interface unchanged."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import bornc
from bornc.compile import compile_model
from bornc.executors import load_artifact
from bornc.frontend.onnx_import import from_proto
from bornc.ir.verify import verify
from bornc.passes.widen_float16 import widen_float16

from .helpers import rand

N = helper.make_node


def _fp16_model(io=TensorProto.FLOAT):
    """Conv -> Relu -> MaxPool -> GlobalAveragePool on float16 weights and activations, with Casts at the float32
    interface as onnxruntime's float16 tool writes them (keep_io_types), or a float16 interface."""
    nodes = [N("Conv", ["xh", "w", "b"], ["c"], pads=[1, 1, 1, 1]), N("Relu", ["c"], ["r"]),
             N("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]), N("GlobalAveragePool", ["p"], ["yh"])]
    if io == TensorProto.FLOAT:
        nodes = [N("Cast", ["x"], ["xh"], to=TensorProto.FLOAT16)] + nodes + [N("Cast", ["yh"], ["y"], to=TensorProto.FLOAT)]
        x, y = "x", "y"
    else:
        x, y = "xh", "yh"
    inits = {"w": (rand(8, 3, 3, 3) * 0.3).astype(np.float16), "b": rand(8, seed=2).astype(np.float16)}
    g = helper.make_graph(nodes, "f16", [helper.make_tensor_value_info(x, io, [1, 3, 16, 16])],
                          [helper.make_tensor_value_info(y, io, [1, 8, 1, 1])],
                          initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()])
    return from_proto(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))


def _feeds(m):
    t = m.graph.types[m.graph.inputs[0]]
    return {m.graph.inputs[0]: rand(*t.shape, seed=5).astype(t.dtype)}


@pytest.mark.parametrize("io", [TensorProto.FLOAT, TensorProto.FLOAT16], ids=["f32-io", "f16-io"])
def test_inner_values_widened_interface_kept(io):
    m = _fp16_model(io)
    after = widen_float16(m, target="c")
    verify(after)
    g = after.graph
    assert [g.types[i] for i in g.inputs + g.outputs] == [m.graph.types[i] for i in m.graph.inputs + m.graph.outputs]
    inner = {o for n in g.nodes for o in n.outputs} - set(g.outputs)
    assert all(g.types[v].dtype == "float32" for v in inner)
    assert all(v.dtype == np.float32 for v in g.constants.values())
    if io == TensorProto.FLOAT16:           # one Cast in, one out
        assert [n.op for n in g.nodes].count("Cast") == 2
    a, b = bornc.run(m, _feeds(m)), bornc.run(after, _feeds(m))
    for k in a:                             # float16 rounding per op, at most a few binary16 ulps here
        np.testing.assert_allclose(b[k].astype(np.float32), a[k].astype(np.float32), rtol=4e-3, atol=1e-3)


def test_left_alone_without_a_c_or_numpy_target():
    m = _fp16_model()
    assert widen_float16(m, target="webgpu") is m and widen_float16(m) is m


def test_compiled_c_has_no_float16_kernels_and_matches_float32(tmp_path):
    """Through the user's compile path: no uint16 (binary16) buffers remain in the generated C, and the result is
    the float32 computation on the float16 weights (tolerance: the float16 model's own rounding)."""
    m = _fp16_model()
    compile_model(m, "x86_64", tmp_path / "a", threads=1)
    code = (tmp_path / "a" / "model.c").read_text()
    assert "uint16_t" not in code.split("bornc_model_init")[0]
    got = load_artifact(tmp_path / "a")(_feeds(m))["y"]
    ref32 = bornc.run(widen_float16(m, target="python"), _feeds(m))["y"]
    ref16 = bornc.run(m, _feeds(m))["y"]
    np.testing.assert_allclose(got, ref32, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got, ref16, rtol=4e-3, atol=1e-3)

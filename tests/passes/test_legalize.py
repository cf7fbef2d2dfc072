"""Legalization: ops a target cannot lower become ops it can (function bodies, registered decompositions), through
the user's compile path; what stays unlowerable is one error naming every op and node."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import bornc as bc
from bornc.errors import UnsupportedOpError
from bornc.executors import get_executor
from bornc.frontend.onnx_import import from_proto
from bornc.passes.legalize import legalize
from bornc.passes.pipeline import run_pipeline
from bornc.targets import get_target

RNG = np.random.default_rng(7)

#: (op, opsets, input shape, parameter shapes, attributes): one-node normalization models.
NORMS = [
    ("LayerNormalization", (18, 21, 23), (2, 5, 8), [(8,), (8,)], {"axis": -1, "epsilon": 1e-5}),
    ("LayerNormalization", (18,), (2, 3, 4, 4), [(4, 4), (4, 4)], {"axis": 2}),
    ("GroupNormalization", (18, 21), (2, 6, 3, 3), [(6,), (6,)], {"num_groups": 3, "epsilon": 1e-5}),
    ("InstanceNormalization", (18, 22), (2, 4, 5, 5), [(4,), (4,)], {"epsilon": 1e-5}),
    ("RMSNormalization", (23,), (2, 5, 8), [(8,)], {"axis": -1}),
]


def _norm_model(op, opset, shape, params, attrs) -> onnx.ModelProto:
    if op == "GroupNormalization" and opset < 21:                 # GroupNormalization-18: scale/bias per group
        params = [(attrs["num_groups"],)] * len(params)
    inits = [numpy_helper.from_array(RNG.standard_normal(p).astype(np.float32), f"p{k}") for k, p in enumerate(params)]
    node = helper.make_node(op, ["x"] + [i.name for i in inits], ["y"], name="norm", **attrs)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape))], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


CASES = [(op, v, shape, params, attrs) for op, versions, shape, params, attrs in NORMS for v in versions]


@pytest.mark.parametrize("target", ["x86_64", "rpi"])
@pytest.mark.parametrize("op, opset, shape, params, attrs", CASES, ids=[f"{c[0]}-{c[1]}-{len(c[2])}d" for c in CASES])
def test_normalizations_compile_for_c_targets_and_match_the_reference(tmp_path, target, op, opset, shape, params, attrs):
    path = tmp_path / "m.onnx"
    onnx.save(_norm_model(op, opset, shape, params, attrs), str(path))
    model = bc.load_onnx(path)
    x = RNG.standard_normal(shape).astype(np.float32)
    ref = bc.run(model, {"x": x})["y"]
    got = get_executor(target).prepare(model)({"x": x})["y"]
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("level", [0, 1, 2])
def test_legalize_ends_every_level_and_shows_in_inspect(tmp_path, level, cli):
    path = tmp_path / "ln.onnx"
    onnx.save(_norm_model("LayerNormalization", 18, (2, 5, 8), [(8,), (8,)], {"axis": -1}), str(path))
    model = bc.load_onnx(path)
    out, records = run_pipeline(model, level, target=get_target("x86_64"))
    names = [r.name for r in records]
    assert names[-3:] == ["legalize", "lstm_int8_weights", "materialize_constant_outputs"], names
    assert "LayerNormalization" not in {n.op for n in out.graph.nodes}
    r = cli("inspect", str(path), "--passes", "--target", "x86_64", "--opt-level", str(level))
    assert r.returncode == 0 and "legalize" in r.stdout, r.stdout + r.stderr


def test_reference_and_python_keep_composites():
    """Targets that lower an op keep it: no expansion for the reference interpreter or for bornrt's kernels."""
    proto = _norm_model("LayerNormalization", 18, (2, 5, 8), [(8,), (8,)], {"axis": -1})
    model = from_proto(proto)
    assert {n.op for n in legalize(model, "python").graph.nodes} == {"LayerNormalization"}
    assert legalize(model, None) is model


def test_unlowerable_ops_are_listed_together_with_node_names(tmp_path, cli):
    """Ops with neither a C lowering nor a body: one error (exit 2), every op and node named."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [6])
    nodes = [helper.make_node("Unique", ["x"], ["u"], name="uniq_a", sorted=1),
             helper.make_node("Unique", ["x"], ["v"], name="uniq_b", sorted=1),
             helper.make_node("NonZero", ["x"], ["nz"], name="nonzero_c")]
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("u", "v")] + \
        [helper.make_tensor_value_info("nz", TensorProto.INT64, None)]
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(helper.make_graph(nodes, "g", [x], outs), opset_imports=[helper.make_opsetid("", 17)]),
              str(path))
    with pytest.raises(UnsupportedOpError) as ei:
        legalize(bc.load_onnx(path), "c")
    msg = str(ei.value)
    for name in ("uniq_a", "uniq_b", "nonzero_c", "Unique", "NonZero"):
        assert name in msg, msg
    r = cli("compile", str(path), "--target", "x86_64", "-o", str(tmp_path / "out"))
    assert r.returncode == 2 and "Traceback" not in r.stderr and "uniq_b" in r.stderr, r.stderr

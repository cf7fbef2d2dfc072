"""ai.onnx.ml TreeEnsemble-5 on the reference, x86_64, python and webgpu targets against onnx.reference (onnxruntime
where it runs the op): random trees of every branch mode, set membership, NaN features with
missing-tracks-true, each aggregate function; tables with a cycle or an id out of range are one clear error."""
import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import bornc
from bornc.errors import SpecViolation
from bornc.executors import CExecutor, PythonExecutor, WebGPUExecutor
from bornc.frontend.onnx_import import from_proto

F = TensorProto.FLOAT


def _forest(rng, n_trees=3, depth=3, n_features=4, n_targets=3):
    """Complete binary trees of ``depth`` levels of branch nodes, every mode used, leaves at the bottom."""
    a = {k: [] for k in ("feat", "mode", "split", "tid", "tleaf", "fid", "fleaf", "miss")}
    members, leaves_t, leaves_w, roots = [], [], [], []
    for _ in range(n_trees):
        base = len(a["mode"])
        roots.append(base)
        n_branch = 2 ** depth - 1
        for i in range(n_branch):
            mode = int(rng.integers(0, 7))
            a["feat"].append(int(rng.integers(0, n_features)))
            a["mode"].append(mode)
            a["split"].append(float(np.round(rng.standard_normal(), 1)) if mode != 6 else 0.0)
            a["miss"].append(int(rng.integers(0, 2)))
            if mode == 6:
                members += [float(v) for v in np.round(rng.standard_normal(3), 1)] + [float("nan")]
            for side, child in (("t", 2 * i + 1), ("f", 2 * i + 2)):
                if child < n_branch:
                    a[side + "id"].append(base + child)
                    a[side + "leaf"].append(0)
                else:
                    a[side + "id"].append(len(leaves_w))
                    a[side + "leaf"].append(1)
                    leaves_t.append(int(rng.integers(0, n_targets)))
                    leaves_w.append(float(np.round(rng.standard_normal() * 10, 2)))
    return dict(nodes_featureids=a["feat"], nodes_modes=numpy_helper.from_array(np.array(a["mode"], np.uint8), "m"),
                nodes_splits=numpy_helper.from_array(np.array(a["split"], np.float32), "s"),
                nodes_truenodeids=a["tid"], nodes_trueleafs=a["tleaf"], nodes_falsenodeids=a["fid"],
                nodes_falseleafs=a["fleaf"], nodes_missing_value_tracks_true=a["miss"],
                membership_values=numpy_helper.from_array(np.array(members or [np.nan], np.float32), "mv"),
                leaf_targetids=leaves_t, leaf_weights=numpy_helper.from_array(np.array(leaves_w, np.float32), "w"),
                tree_roots=roots, n_targets=n_targets)


def _model(attrs, n_features=4):
    node = helper.make_node("TreeEnsemble", ["X"], ["Y"], domain="ai.onnx.ml", **attrs)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("X", F, [16, n_features])],
                          [helper.make_tensor_value_info("Y", F, None)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("ai.onnx.ml", 5)])


def _features(rng):
    x = np.round(rng.standard_normal((16, 4)), 1).astype(np.float32)
    x[3, 1] = x[7, 0] = np.nan
    return x


@pytest.mark.parametrize("agg", [0, 1, 2, 3])
def test_tree_ensemble_matches_onnx_reference(agg):
    rng = np.random.default_rng(agg)
    attrs = _forest(rng)
    if int(np.sum(np.array(numpy_helper.to_array(attrs["nodes_modes"])) == 6)) == 0:
        attrs["membership_values"] = None
        del attrs["membership_values"]
    m = _model({**attrs, "aggregate_function": agg})
    x = _features(rng)
    want = ReferenceEvaluator(m).run(None, {"X": x})[0]
    try:                                   # onnxruntime as a second oracle where it runs ai.onnx.ml 5
        sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        np.testing.assert_allclose(sess.run(None, {"X": x})[0], want, rtol=1e-6)
    except ort.capi.onnxruntime_pybind11_state.Fail:
        pass
    model = from_proto(m)
    np.testing.assert_allclose(bornc.run(model, {"X": x})["Y"], want, rtol=1e-6)
    for ex in (CExecutor("x86_64"), PythonExecutor()):
        np.testing.assert_allclose(ex.prepare(model)({"X": x})["Y"], want, rtol=1e-6, err_msg=type(ex).__name__)
    got = WebGPUExecutor().prepare(model)({"X": x})["Y"]              # sums in f32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg="webgpu")


def test_tree_ensemble_bad_tables_are_refused(tmp_path, cli):
    attrs = _forest(np.random.default_rng(5), n_trees=1, depth=2)
    attrs["nodes_modes"] = numpy_helper.from_array(np.zeros(3, np.uint8), "m")
    del attrs["membership_values"]
    cyc = dict(attrs, nodes_trueleafs=[0, 0, 1], nodes_truenodeids=[1, 0, 2])     # node 1 -> node 0: a cycle
    with pytest.raises(SpecViolation, match="cycle"):
        from_proto(_model(cyc))
    bad = dict(attrs, nodes_featureids=[0, 9, 1])
    (tmp_path / "m.onnx").write_bytes(_model(bad).SerializeToString())
    r = cli("compile", str(tmp_path / "m.onnx"), "--target", "x86_64", "-o", str(tmp_path / "A"))
    assert r.returncode == 2 and "out of range" in r.stderr and "Traceback" not in r.stderr

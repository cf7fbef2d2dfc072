"""The mismatch bisector finds the first diverging node, and says so when nothing diverges."""
import numpy as np
from onnx import helper

from bornc.debug import bisect
from bornc.passes.util import clone

from .passes.helpers import feeds_for, make, rand

N = helper.make_node


def _model():
    return make([N("Conv", ["x", "w"], ["a"]), N("Relu", ["a"], ["b"]), N("Mul", ["b", "k"], ["c"]), N("Sigmoid", ["c"], ["y"])],
                [("x", [1, 2, 4, 4])], [("y", [1, 2, 4, 4])], {"w": rand(2, 2, 1, 1), "k": rand(1, 2, 1, 1, seed=3)})


def test_no_divergence_for_a_correct_pipeline():
    m = _model()
    assert bisect(m, feeds_for(m), opt_level=2) is None


def test_reports_first_diverging_node_with_input_stats():
    m = _model()
    broken = clone(m)
    broken.graph.constants["k"] = broken.graph.constants["k"] * np.float32(1.01)
    d = bisect(m, feeds_for(m), candidate=broken)
    assert d is not None and d.value == "c" and d.op == "Mul" and d.max_abs_err > 0
    assert [i["name"] for i in d.inputs] == ["b", "k"] and "mean" in d.inputs[0]


def _onnx_file(tmp_path):
    """The _model graph as an ONNX file (for onnxruntime beside the artifact) and its inputs."""
    import onnx
    from onnx import TensorProto, numpy_helper
    g = helper.make_graph([N("Conv", ["x", "w"], ["a"]), N("Relu", ["a"], ["b"]), N("Mul", ["b", "k"], ["c"]),
                           N("Sigmoid", ["c"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])],
                          initializer=[numpy_helper.from_array(rand(2, 2, 1, 1), "w"),
                                       numpy_helper.from_array(rand(1, 2, 1, 1, seed=3), "k")])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    np.save(tmp_path / "x.npy", rand(1, 2, 4, 4, seed=5))
    return path


def test_debug_target_compares_the_artifact_node_by_node(tmp_path, capsys):
    """bornc debug --target x86_64 on a correct artifact: every surviving value agrees, onnxruntime beside it."""
    from bornc.cli import main
    path = _onnx_file(tmp_path)
    assert main(["debug", str(path), "--target", "x86_64", "--all", "--input", f"x={tmp_path / 'x.npy'}"]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime beside it" in out and "no divergence" in out
    assert "Sigmoid" in out and " NO" not in out


def test_debug_target_names_the_first_diverging_node(tmp_path, capsys, monkeypatch):
    """A target value off by 1% at the Mul (the artifact's values perturbed after the run) is the first divergence;
    the values before it agree."""
    import bornc.debug as dbg
    from bornc.cli import main
    path = _onnx_file(tmp_path)
    real = dbg.target_values

    def perturbed(model, feeds, target, names, opt_level=2):
        got = real(model, feeds, target, names, opt_level)
        if "c" in got:
            got["c"] = got["c"] * np.float32(1.01) + np.float32(0.01)
        return got
    monkeypatch.setattr(dbg, "target_values", perturbed)
    rc = main(["debug", str(path), "--target", "x86_64", "--input", f"x={tmp_path / 'x.npy'}", "--opt-level", "0"])
    out = capsys.readouterr().out
    assert rc == 1 and "first divergence: node" in out and "(Mul) output 'c'" in out
    assert "input 'b'" in out and "onnxruntime there" in out

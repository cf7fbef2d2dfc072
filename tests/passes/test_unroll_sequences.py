"""Sequences, optionals and Loops of static structure on the static-shape targets (passes/unroll_sequences.py):
x86_64 and webgpu against onnx.reference (an independent oracle) and onnxruntime, through the executors and
through the CLI (``--input-shape NAME[k]=...``, inputs and outputs as NAME[k] arrays)."""
import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from bornc.errors import InputError
from bornc.executors import CExecutor
from bornc.frontend.onnx_import import from_proto
from bornc.passes.unroll_sequences import unroll_sequences

F = TensorProto.FLOAT
SEQ_F = helper.make_sequence_type_proto(helper.make_tensor_type_proto(F, None))


def _seq_model():
    """x: seq(float[2, ?]); t: float[2, 3]. Insert t at the front, add t to every element (SequenceMap), split
    the concatenation back into single columns, and return the sequence, its length and column 1."""
    body = helper.make_graph([helper.make_node("Add", ["e", "b"], ["r"])], "body",
                             [helper.make_tensor_value_info("e", F, None), helper.make_tensor_value_info("b", F, None)],
                             [helper.make_tensor_value_info("r", F, None)])
    nodes = [
        helper.make_node("Constant", [], ["zero"], value=helper.make_tensor("zero", TensorProto.INT64, [], [0])),
        helper.make_node("Constant", [], ["one"], value=helper.make_tensor("one", TensorProto.INT64, [], [1])),
        helper.make_node("SequenceInsert", ["x", "t", "zero"], ["s1"]),
        helper.make_node("SequenceMap", ["s1", "t"], ["s2"], body=body),
        helper.make_node("ConcatFromSequence", ["s2"], ["cat"], axis=1),
        helper.make_node("SplitToSequence", ["cat"], ["cols"], axis=1, keepdims=0),
        helper.make_node("SequenceLength", ["cols"], ["n"]),
        helper.make_node("SequenceAt", ["cols", "one"], ["col1"]),
    ]
    g = helper.make_graph(nodes, "g", [helper.make_value_info("x", SEQ_F), helper.make_tensor_value_info("t", F, [2, 3])],
                          [helper.make_value_info("s2", SEQ_F), helper.make_tensor_value_info("n", TensorProto.INT64, []),
                           helper.make_tensor_value_info("col1", F, None)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


def _feeds():
    rng = np.random.default_rng(0)
    return {"x": [rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal((2, 3)).astype(np.float32)],
            "t": rng.standard_normal((2, 3)).astype(np.float32)}


def _check(got, want):
    assert isinstance(got["s2"], list) and len(got["s2"]) == len(want[0])
    for g, w in zip(got["s2"], want[0]):
        np.testing.assert_allclose(g, w, rtol=1e-6)
    assert int(got["n"]) == int(want[1])
    np.testing.assert_allclose(got["col1"], want[2], rtol=1e-6)


def test_sequence_ops_unrolled_on_c_match_onnx_reference():
    m = _seq_model()
    feeds = _feeds()
    want = ReferenceEvaluator(m).run(None, feeds)
    model = from_proto(m, input_shapes={"x": [(2, 3), (2, 3)]})
    flat = unroll_sequences(model)
    assert not any(n.op.startswith("Sequence") or n.op == "SplitToSequence" for n in flat.graph.nodes)
    assert flat.graph.inputs == ["x[0]", "x[1]", "t"]
    assert flat.containers["s2"][0] == "sequence" and len(flat.containers["s2"][1]) == 3
    run = CExecutor("x86_64").prepare(model)
    _check(run(feeds), want)
    with pytest.raises(InputError, match="compiled for 2"):
        run({"x": feeds["x"][:1], "t": feeds["t"]})


def test_sequence_input_shapes_through_the_cli(tmp_path, cli):
    m = _seq_model()
    (tmp_path / "m.onnx").write_bytes(m.SerializeToString())
    feeds = _feeds()
    want = ReferenceEvaluator(m).run(None, feeds)
    r = cli("compile", str(tmp_path / "m.onnx"), "--target", "x86_64", "-o", str(tmp_path / "A"),
            "--input-shape", "x[0]=2,3", "--input-shape", "x[1]=2,3")
    assert r.returncode == 0, r.stderr
    np.savez(tmp_path / "in.npz", **{"x[0]": feeds["x"][0], "x[1]": feeds["x"][1], "t": feeds["t"]})
    r = cli("run", str(tmp_path / "A"), "--inputs", str(tmp_path / "in.npz"), "-o", str(tmp_path / "out.npz"))
    assert r.returncode == 0, r.stderr
    with np.load(tmp_path / "out.npz") as z:
        got = {"s2": [z[f"s2[{k}]"] for k in range(3)], "n": z["n"], "col1": z["col1"]}
        assert sorted(z.files) == ["col1", "n", "s2[0]", "s2[1]", "s2[2]"]
    _check(got, want)
    r = cli("compile", str(tmp_path / "m.onnx"), "--target", "x86_64", "-o", str(tmp_path / "B"),
            "--input-shape", "x[0]=2,3", "--input-shape", "x[2]=2,3")
    assert r.returncode == 2 and "elements 0 to 2" in r.stderr and "Traceback" not in r.stderr


def test_loop_with_constant_trip_count_unrolled_matches_onnxruntime():
    """Loop-11 with a carried sum and a scan output; M and cond are constants (bound), so the C target unrolls
    it; onnxruntime runs the original Loop."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["c_in"], ["c_out"]),
         helper.make_node("Cast", ["i"], ["fi"], to=F),
         helper.make_node("Mul", ["x", "fi"], ["xi"]),
         helper.make_node("Add", ["acc_in", "xi"], ["acc_out"]),
         helper.make_node("Identity", ["acc_out"], ["scan"])], "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []), helper.make_tensor_value_info("c_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", F, [3])],
        [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []), helper.make_tensor_value_info("acc_out", F, [3]),
         helper.make_tensor_value_info("scan", F, [3])])
    g = helper.make_graph([helper.make_node("Loop", ["M", "cond", "acc0"], ["acc", "scans"], body=body)], "g",
                          [helper.make_tensor_value_info("M", TensorProto.INT64, []),
                           helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
                           helper.make_tensor_value_info("acc0", F, [3]), helper.make_tensor_value_info("x", F, [3])],
                          [helper.make_tensor_value_info("acc", F, [3]), helper.make_tensor_value_info("scans", F, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    rng = np.random.default_rng(1)
    acc0, x = rng.standard_normal(3).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    want = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"M": np.array(4, np.int64), "cond": np.array(True), "acc0": acc0, "x": x})
    model = from_proto(m, bind={"M": np.array(4, np.int64), "cond": np.array(True)})
    assert not any(n.op == "Loop" for n in unroll_sequences(model).graph.nodes)
    got = CExecutor("x86_64").prepare(model)({"acc0": acc0, "x": x})
    np.testing.assert_allclose(got["acc"], want[0], rtol=1e-6)
    np.testing.assert_allclose(got["scans"], want[1], rtol=1e-6)
    assert got["scans"].shape == (4, 3)


def test_loop_with_run_time_trip_count_asks_for_bind(tmp_path, cli):
    body = helper.make_graph([helper.make_node("Identity", ["c_in"], ["c_out"]), helper.make_node("Identity", ["v_in"], ["v_out"])],
                             "body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                                      helper.make_tensor_value_info("c_in", TensorProto.BOOL, []),
                                      helper.make_tensor_value_info("v_in", F, [2])],
                             [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []), helper.make_tensor_value_info("v_out", F, [2])])
    g = helper.make_graph([helper.make_node("Loop", ["M", "", "v"], ["y"], body=body)], "g",
                          [helper.make_tensor_value_info("M", TensorProto.INT64, []), helper.make_tensor_value_info("v", F, [2])],
                          [helper.make_tensor_value_info("y", F, [2])])
    (tmp_path / "m.onnx").write_bytes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString())
    r = cli("compile", str(tmp_path / "m.onnx"), "--target", "x86_64", "-o", str(tmp_path / "A"))
    assert r.returncode == 2 and "Loop" in r.stderr and "--bind" in r.stderr and "Traceback" not in r.stderr
    r = cli("compile", str(tmp_path / "m.onnx"), "--target", "x86_64", "-o", str(tmp_path / "A"), "--bind", "M=3")
    assert r.returncode == 0, r.stderr


def test_position_out_of_range_is_one_clear_error():
    g = helper.make_graph([helper.make_node("Constant", [], ["p"], value=helper.make_tensor("p", TensorProto.INT64, [], [5])),
                           helper.make_node("SequenceAt", ["x", "p"], ["y"])], "g",
                          [helper.make_value_info("x", SEQ_F)], [helper.make_tensor_value_info("y", F, None)])
    model = from_proto(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]), input_shapes={"x": [(2,), (2,)]})
    from bornc.errors import ShapeError
    with pytest.raises(ShapeError, match="position 5 is outside a sequence of 2"):
        unroll_sequences(model)


def _if_model():
    """y = If(c) then x * 2 else x + 1, with c computed at run time (ReduceSum(x) > 0)."""
    then_b = helper.make_graph([helper.make_node("Mul", ["x", "two"], ["t"])], "then", [], [helper.make_tensor_value_info("t", F, [2, 3])],
                               [helper.make_tensor("two", F, [], [2.0])])
    else_b = helper.make_graph([helper.make_node("Add", ["x", "one"], ["e"])], "else", [], [helper.make_tensor_value_info("e", F, [2, 3])],
                               [helper.make_tensor("one", F, [], [1.0])])
    nodes = [helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
             helper.make_node("Constant", [], ["zero"], value=helper.make_tensor("zero", F, [], [0.0])),
             helper.make_node("Greater", ["s", "zero"], ["c"]),
             helper.make_node("If", ["c"], ["y"], then_branch=then_b, else_branch=else_b)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, [2, 3])], [helper.make_tensor_value_info("y", F, [2, 3])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


def test_if_with_run_time_condition_becomes_a_select_on_webgpu():
    """WebGPU runs no If: both branches and a Where; the result matches onnxruntime for either condition."""
    from bornc.executors import WebGPUExecutor
    m = _if_model()
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    model = from_proto(m)
    flat = unroll_sequences(model, select_if=True)
    assert [n.op for n in flat.graph.nodes if n.op in ("If", "Where")] == ["Where"]
    run = WebGPUExecutor().prepare(model)
    for x in (np.ones((2, 3), np.float32), -np.ones((2, 3), np.float32)):
        np.testing.assert_allclose(run({"x": x})["y"], sess.run(None, {"x": x})[0], rtol=1e-6)
    assert any(n.op == "If" for n in unroll_sequences(model).graph.nodes)      # C keeps If: it runs it

"""ONNX importer: symbolic dims, bindings, version rewrites, folding, unsupported ops, unsafe files."""
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import bornc
from bornc.errors import ModelImportError, ShapeError, UnsupportedOpError
from bornc.frontend.onnx_import import from_proto
from bornc.ir import TensorType


def _model(nodes, inputs, outputs, inits=(), opset=17):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _vi(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def test_unbound_symbolic_dim_names_input_and_dims():
    m = _model([helper.make_node("Relu", ["x"], ["y"])], [_vi("x", ["N", 3])], [_vi("y", ["N", 3])])
    with pytest.raises(ShapeError, match=r"input 'x' has symbolic dims \[N, 3\].*--input-shape x=N,3"):
        from_proto(m)


def test_input_shape_binds_symbolic_dims_and_propagates():
    m = _model([helper.make_node("Relu", ["x"], ["y"])], [_vi("x", ["N", 3])], [_vi("y", ["N", 3])])
    model = from_proto(m, input_shapes={"x": (4, 3)})
    assert model.graph.types["y"] == TensorType("float32", (4, 3))
    with pytest.raises(ShapeError, match="has shape"):
        from_proto(m, input_shapes={"x": (4, 5)})
    with pytest.raises(ShapeError, match="no model input named 'z'"):
        from_proto(m, input_shapes={"z": (1,)})


def test_bind_turns_scalar_input_into_constant_and_folds_if():
    then_g = helper.make_graph([helper.make_node("Neg", ["x"], ["a"])], "t", [], [_vi("a", [2])])
    else_g = helper.make_graph([helper.make_node("Abs", ["x"], ["b"])], "e", [], [_vi("b", [2])])
    sixteen = numpy_helper.from_array(np.array(16000, np.int64), "k")
    m = _model([helper.make_node("Equal", ["sr", "k"], ["c"]),
                helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)],
               [_vi("x", [2]), _vi("sr", [], TensorProto.INT64)], [_vi("y", [2])], [sixteen])
    model = from_proto(m, bind={"sr": 16000})
    assert [n.op for n in model.graph.nodes] == ["Neg", "Identity"]
    assert model.graph.inputs == ["x"]
    x = np.array([1.0, -2.0], np.float32)
    np.testing.assert_array_equal(bornc.run(model, {"x": x})["y"], -x)
    unbound = from_proto(m)
    assert bornc.run(unbound, {"x": x, "sr": np.array(8000)})["y"].tolist() == [1.0, 2.0]


def test_unsupported_ops_listed_all_at_once():
    m = _model([helper.make_node("FooOp", ["x"], ["a"], name="first", domain="com.example"),
                helper.make_node("BarOp", ["a"], ["b"], name="second", domain="com.example"),
                helper.make_node("BarOp", ["b"], ["y"], name="third", domain="com.example")],
               [_vi("x", [2])], [_vi("y", [2])])
    m.opset_import.append(helper.make_opsetid("com.example", 1))
    with pytest.raises(UnsupportedOpError) as ei:
        from_proto(m)
    msg = str(ei.value)
    assert "2 unsupported operator type(s)" in msg
    assert "com.example.BarOp (nodes: second, third)" in msg and "com.example.FooOp (nodes: first)" in msg


def test_model_of_only_another_domain_needs_no_ai_onnx_opset():
    """A model whose nodes are all of ai.onnx.ml (LabelEncoder, as in the ONNX node tests) imports no ai.onnx
    opset: it imports and runs (Binarizer), or is an unsupported op (Scaler), not a malformed model; a model with
    an ai.onnx node and no such opset is refused (hostile corpus: no_opset_import)."""
    import numpy as np

    import bornc
    for op, attrs in (("Binarizer", {"threshold": 0.5}), ("Scaler", {"scale": [2.0]})):
        g = helper.make_graph([helper.make_node(op, ["x"], ["y"], domain="ai.onnx.ml", **attrs)], "g",
                              [_vi("x", [2])], [_vi("y", [2])])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("ai.onnx.ml", 1)])
        if op == "Binarizer":
            y = bornc.run(from_proto(m), {"x": np.array([0.2, 0.7], np.float32)})["y"]
            np.testing.assert_array_equal(y, [0.0, 1.0])
        else:
            with pytest.raises(UnsupportedOpError, match=r"ai\.onnx\.ml\.Scaler"):
                from_proto(m)
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [_vi("x", [2])], [_vi("y", [2])])
    with pytest.raises(ModelImportError, match="imports ai.onnx opset none"):
        from_proto(helper.make_model(g, opset_imports=[helper.make_opsetid("ai.onnx.ml", 1)]))


def test_shape_subgraph_folds_to_constants():
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "zero1"], ["n1"]),
             helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
             helper.make_node("Reshape", ["x", "shape"], ["y"])]
    inits = [numpy_helper.from_array(np.array(0, np.int64), "zero"), numpy_helper.from_array(np.array([0], np.int64), "zero1"),
             numpy_helper.from_array(np.array([-1], np.int64), "minus1")]
    m = _model(nodes, [_vi("x", ["N", 3, 4])], [_vi("y", None)], inits)
    model = from_proto(m, input_shapes={"x": (2, 3, 4)})
    assert [n.op for n in model.graph.nodes] == ["Reshape"]
    assert model.graph.types["y"] == TensorType("float32", (2, 12))


@pytest.mark.parametrize("opset", [11, 13])
def test_squeeze_axes_attribute_and_input_forms_agree(opset):
    if opset < 13:
        node = helper.make_node("Squeeze", ["x"], ["y"], axes=[1])
        inits = []
    else:
        node = helper.make_node("Squeeze", ["x", "ax"], ["y"])
        inits = [numpy_helper.from_array(np.array([1], np.int64), "ax")]
    m = _model([node], [_vi("x", [2, 1, 3])], [_vi("y", [2, 3])], inits, opset=opset)
    model = from_proto(m)
    assert model.graph.types["y"].shape == (2, 3)
    x = np.arange(6, dtype=np.float32).reshape(2, 1, 3)
    np.testing.assert_array_equal(bornc.run(model, {"x": x})["y"], x.reshape(2, 3))


def test_clip_v6_attributes_become_inputs():
    m = _model([helper.make_node("Clip", ["x"], ["y"], min=-1.0, max=1.0)], [_vi("x", [3])], [_vi("y", [3])], opset=6)
    model = from_proto(m)
    out = bornc.run(model, {"x": np.array([-5, 0.5, 5], np.float32)})["y"]
    np.testing.assert_array_equal(out, [-1, 0.5, 1])


def test_constant_nodes_become_constants():
    m = _model([helper.make_node("Constant", [], ["c"], value_floats=[1.0, 2.0]), helper.make_node("Add", ["x", "c"], ["y"])],
               [_vi("x", [2])], [_vi("y", [2])])
    model = from_proto(m)
    assert "c" in model.graph.constants and [n.op for n in model.graph.nodes] == ["Add"]


def test_malformed_file_is_a_clear_error(tmp_path: Path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not protobuf \xff\xff\xff")
    with pytest.raises(ModelImportError, match="not a valid ONNX model|holds no graph"):
        bornc.load_onnx(bad)
    with pytest.raises(ModelImportError, match="not found"):
        bornc.load_onnx(tmp_path / "missing.onnx")


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "sub/../../x.bin"])
def test_external_data_outside_model_folder_is_rejected(tmp_path: Path, location):
    w = numpy_helper.from_array(np.ones(4, np.float32), "w")
    w.data_location = TensorProto.EXTERNAL
    w.ClearField("raw_data")
    for k, v in (("location", location), ("offset", "0"), ("length", "16")):
        e = w.external_data.add()
        e.key, e.value = k, v
    m = _model([helper.make_node("Add", ["x", "w"], ["y"])], [_vi("x", [4])], [_vi("y", [4])], [w])
    d = tmp_path / "model"
    d.mkdir()
    (tmp_path / "secret.bin").write_bytes(np.ones(4, np.float32).tobytes())
    onnx.save(m, d / "m.onnx")
    with pytest.raises(ModelImportError, match="external data location"):
        bornc.load_onnx(d / "m.onnx")


def test_external_data_inside_model_folder_loads(tmp_path: Path):
    w = np.arange(4, dtype=np.float32)
    m = _model([helper.make_node("Add", ["x", "w"], ["y"])], [_vi("x", [4])], [_vi("y", [4])], [numpy_helper.from_array(w, "w")])
    onnx.save(m, tmp_path / "m.onnx", save_as_external_data=True, all_tensors_to_one_file=True, location="w.bin", size_threshold=0)
    model = bornc.load_onnx(tmp_path / "m.onnx")
    np.testing.assert_array_equal(bornc.run(model, {"x": np.ones(4, np.float32)})["y"], w + 1)


def test_nodes_out_of_order_are_imported_in_dependency_order():
    """onnxruntime's float16 converter (keep_io_types) appends input Casts after the nodes that read them; the
    importer orders nodes by their dependencies (and keeps the file's order where it is valid)."""
    import numpy as np
    from onnx import TensorProto, helper

    import bornc
    from bornc.frontend.onnx_import import from_proto
    nodes = [helper.make_node("Relu", ["xc"], ["r"], name="relu"), helper.make_node("Neg", ["r"], ["y"], name="neg"),
             helper.make_node("Cast", ["x"], ["xc"], to=TensorProto.FLOAT, name="cast")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])])
    m = from_proto(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    assert [n.name for n in m.graph.nodes] == ["cast", "relu", "neg"]
    out = bornc.run(m, {"x": np.array([-1.0, 0.5, 2.0], np.float32)})["y"]
    np.testing.assert_array_equal(out, [0.0, -0.5, -2.0])


def test_loop_with_a_float_trip_count_is_refused():
    """A Loop whose M input is a float tensor (a fuzz mutant of onnx's test_loop11 that rewired M to the float
    state): one clear error naming the node and the input, where the reference and the numpy target used to
    disagree on how many times it runs."""
    from onnx.backend.test.case.node import collect_testcases
    from bornc.errors import BorncError
    case = next(c for c in collect_testcases() if c.name == "test_loop11")
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    loop = model.graph.node[0]
    loop.input[0] = loop.input[2]                 # M := the float state y
    with pytest.raises(BorncError, match=r"\(Loop\): input 0 \(M\) is float32, the operator takes int64"):
        from_proto(model)

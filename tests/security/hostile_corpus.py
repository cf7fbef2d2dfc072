"""The hostile-model corpus: one small model per class of attack or fault in issue 17, with the one-line error
bornc must give for it (a regular expression over ``bornc: error: ...``).

Models are built in code (reviewable, no opaque binaries). Each entry: (id, class, build() -> bytes, expected
error per target, ``None`` meaning the target must compile it and run it correctly instead[, inputs besides the
float32[3, 4] ``x`` for that run]).
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper, numpy_helper

vi = helper.make_tensor_value_info


def _model(nodes, inputs, outputs, inits=(), opset=17, sparse=()) -> bytes:
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits), sparse_initializer=list(sparse))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def _c(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def _one(op, ins, inits, out_dtype=T.FLOAT, inputs=None, **attrs):
    return _model([helper.make_node(op, ins, ["y"], **attrs)], inputs or [], [vi("y", out_dtype, None)], inits)


def _sparse(dims, idx, vals):
    return helper.make_sparse_tensor(numpy_helper.from_array(np.asarray(vals, np.float32), "w"),
                                     numpy_helper.from_array(np.asarray(idx, np.int64), "w_idx"), dims)


X4 = [vi("x", T.FLOAT, [4])]
X43 = [vi("x", T.FLOAT, [4, 3])]
LIMIT = r"needs [\d,]+ bytes, above the limit of [\d,]+ bytes \(raise it with --max-constant-bytes\)"
ANY = ("python", "x86_64")

CORPUS = [
    # --- 3: memory blow-up before anything is allocated
    ("constantofshape_3gb", "memory", lambda: _one("ConstantOfShape", ["s"], [_c("s", np.array([750, 1000, 1000]))]), LIMIT),
    ("expand_10g_elements", "memory", lambda: _one("Expand", ["x", "s"], [_c("s", np.array([100000, 100000]))], inputs=[vi("x", T.FLOAT, [1])]), LIMIT),
    ("tile_huge", "memory", lambda: _one("Tile", ["x", "r"], [_c("r", np.array([10 ** 6, 10 ** 5]))], inputs=[vi("x", T.FLOAT, [2, 2])]), LIMIT),
    ("range_1e10", "memory", lambda: _one("Range", ["a", "b", "d"], [_c("a", np.array(0.0, np.float32)), _c("b", np.array(1e10, np.float32)), _c("d", np.array(1.0, np.float32))]), LIMIT),
    ("onehot_depth_1e10", "memory", lambda: _one("OneHot", ["i", "d", "v"], [_c("d", np.array(10 ** 10)), _c("v", np.array([0.0, 1.0], np.float32))], inputs=[vi("i", T.INT64, [3])]), LIMIT),
    ("pad_huge", "memory", lambda: _one("Pad", ["x", "p"], [_c("p", np.array([0, 0, 100000, 100000]))], inputs=[vi("x", T.FLOAT, [2, 2])]), LIMIT),
    ("resize_huge_scales", "memory", lambda: _one("Resize", ["x", "", "s"], [_c("s", np.array([1, 1, 1e5, 1e5], np.float32))], inputs=[vi("x", T.FLOAT, [1, 1, 2, 2])]), LIMIT),
    ("sparse_dense_4tb", "memory", lambda: _model([helper.make_node("Identity", ["w"], ["y"])], [], [vi("y", T.FLOAT, None)], sparse=[_sparse([10 ** 6, 10 ** 6], [5], [1.0])]), LIMIT),
    ("input_int64_overflow", "memory", lambda: _model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", T.FLOAT, [2 ** 62, 4])], [vi("y", T.FLOAT, None)]), r"input 'x': .*" + LIMIT),
    ("input_40gb", "memory", lambda: _model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", T.FLOAT, [100000, 100000])], [vi("y", T.FLOAT, None)]), LIMIT),
    # --- 4: out-of-bounds access the spec forbids, refused with the node named
    ("gather_const_oob", "bounds", lambda: _one("Gather", ["x", "i"], [_c("i", np.array([1, 7]))], inputs=X43), r"'Gather_0'.*out of range"),
    ("gather_const_negative_oob", "bounds", lambda: _one("Gather", ["x", "i"], [_c("i", np.array([-5, 0]))], inputs=X43), r"'Gather_0'.*out of range"),
    ("gatherelements_const_oob", "bounds", lambda: _one("GatherElements", ["x", "i"], [_c("i", np.array([[0, 9, 0]]))], inputs=X43), r"'GatherElements_0'.*out of range"),
    ("scatternd_const_oob", "bounds", lambda: _one("ScatterND", ["x", "i", "u"], [_c("i", np.array([[4]])), _c("u", np.ones((1, 3), np.float32))], inputs=X43), r"'ScatterND_0'.*out of range"),
    ("scatternd_updates_short", "bounds", lambda: _model([helper.make_node("ScatterND", ["d", "i", "u"], ["y"])], [vi("d", T.FLOAT, [4, 4, 4]), vi("i", T.INT64, [2, 1]), vi("u", T.FLOAT, [2, 4])], [vi("y", T.FLOAT, [4, 4, 4])]), r"'ScatterND_0'.*updates shape \[2, 4\], the spec asks \[2, 4, 4\]"),
    ("scatterelements_indices_wider", "bounds", lambda: _model([helper.make_node("ScatterElements", ["d", "i", "u"], ["y"], axis=0)], [vi("d", T.FLOAT, [3, 2]), vi("i", T.INT64, [1, 5]), vi("u", T.FLOAT, [1, 5])], [vi("y", T.FLOAT, [3, 2])]), r"'ScatterElements_0'.*indices shape \[1, 5\] exceeds data shape \[3, 2\]"),
    ("gatherelements_indices_wider", "bounds", lambda: _model([helper.make_node("GatherElements", ["d", "i"], ["y"], axis=0)], [vi("d", T.FLOAT, [3, 1]), vi("i", T.INT64, [2, 4])], [vi("y", T.FLOAT, [2, 4])]), r"'GatherElements_0'.*indices shape \[2, 4\] exceeds data shape \[3, 1\]"),
    ("conv_group_of_another_type", "malformed", lambda: _conv_group_graphs(), r"'Conv_0'.*attribute 'group' is GRAPHS, the op takes INT"),
    ("conv_kernel_shape_lies", "bounds", lambda: _model([helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2])], [vi("x", T.FLOAT, [1, 1, 7, 5]), vi("w", T.FLOAT, [1, 1, 1, 3])], [vi("y", T.FLOAT, [1, 1, 4, 3])]), r"'Conv_0'.*kernel_shape \[3, 3\] but the weight's spatial dims are \[1, 3\]"),
    ("concat_without_axis", "bounds", lambda: _model([helper.make_node("Concat", ["x", "z"], ["y"])], [vi("x", T.FLOAT, [3, 4, 5]), vi("z", T.FLOAT, [5])], [vi("y", T.FLOAT, [3, 4, 5])]), r"'Concat_0'.*required attribute\(s\) 'axis' missing"),
    ("conv_channels_differ", "bounds", lambda: _model([helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])], [vi("x", T.FLOAT, [1, 256, 8, 8]), vi("w", T.FLOAT, [8, 1, 3, 3])], [vi("y", T.FLOAT, [1, 8, 8, 8])]), r"'Conv_0'.*input has 256 channels"),
    ("layernorm_scale_does_not_broadcast", "bounds", lambda: _model([helper.make_node("LayerNormalization", ["x", "s", "b"], ["y"], axis=0)], [vi("x", T.FLOAT, [3, 0]), vi("s", T.FLOAT, [3, 4]), vi("b", T.FLOAT, [3, 4])], [vi("y", T.FLOAT, [3, 0])], opset=17), r"'LayerNormalization_0'.*does not broadcast to the normalized shape \[3, 0\]"),
    ("reshape_3x3_from_4", "bounds", lambda: _one("Reshape", ["x", "s"], [_c("s", np.array([3, 3]))], inputs=X4), r"'Reshape_0'.*cannot reshape"),
    ("reshape_two_inferred_dims", "bounds", lambda: _one("Reshape", ["x", "s"], [_c("s", np.array([-1, -1]))], inputs=X4), r"'Reshape_0'.*(one unknown dimension|multiple -1 dimensions)"),
    ("reshape_0_5_from_4", "bounds", lambda: _one("Reshape", ["x", "s"], [_c("s", np.array([0, 5]))], inputs=X4), r"'Reshape_0'.*cannot reshape"),
    ("reshape_missing_shape", "bounds", lambda: _one("Reshape", ["x", ""], [], inputs=X4), r"'Reshape_0'.*(1 inputs, the op takes 2 to 2|required input 1)"),
    ("duplicate_graph_output", "bounds", lambda: _model([helper.make_node("Relu", ["x"], ["y"])], X4, [vi("y", T.FLOAT, [4]), vi("y", T.FLOAT, [4])]), r"graph output 'y' is listed twice"),
    ("duplicate_value", "bounds", lambda: _model([helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Neg", ["x"], ["y"])], X4, [vi("y", T.FLOAT, [4])]), r"'Neg_1'.*output 'y' is already defined"),
    ("gemm_inner_dims_differ", "bounds", lambda: _model([helper.make_node("Gemm", ["a", "b"], ["y"])], [vi("a", T.FLOAT, [2, 10]), vi("b", T.FLOAT, [3, 3])], [vi("y", T.FLOAT, [2, 3])]), r"'Gemm_0'.*Dimension mismatch"),
    ("batchnorm_scalar_var", "bounds", lambda: _model([helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])], [vi("x", T.FLOAT, [2, 3, 4]), vi("s", T.FLOAT, [3]), vi("b", T.FLOAT, [3]), vi("m", T.FLOAT, [3]), vi("v", T.FLOAT, [])], [vi("y", T.FLOAT, [2, 3, 4])]), r"'BatchNormalization_0'.*rank"),
    ("concat_mixed_dtypes", "bounds", lambda: _model([helper.make_node("Concat", ["a", "b"], ["y"], axis=0)], [vi("a", T.FLOAT, [2, 2]), vi("b", T.UINT8, [2, 2])], [vi("y", T.FLOAT, [4, 2])]), r"'Concat_0'.*must have one type"),
    ("lstm_w_of_another_input_size", "bounds", lambda: _model([helper.make_node("LSTM", ["x", "w", "r"], ["", "y"], hidden_size=3)], [vi("x", T.FLOAT, [1, 12, 3]), vi("w", T.FLOAT, [1, 12, 2]), vi("r", T.FLOAT, [1, 12, 3])], [vi("y", T.FLOAT, [1, 12, 3])]), r"'LSTM_0'.*input 1 has shape \[1, 12, 2\], the spec wants \[1, 12, 3\]"),
    ("if_branch_dtypes_differ", "bounds", lambda: _model([helper.make_node("If", ["c"], ["y"], then_branch=helper.make_graph([], "t", [], [vi("c", T.BOOL, [])]), else_branch=helper.make_graph([helper.make_node("Constant", [], ["e"], value=numpy_helper.from_array(np.ones(5, np.float32)))], "e", [], [vi("e", T.FLOAT, [5])]))], [vi("c", T.BOOL, [])], [vi("y", T.FLOAT, [5])]), r"'If_0'.*bool in then_branch and float32 in else_branch"),
    ("where_bad_broadcast", "bounds", lambda: _model([helper.make_node("Where", ["c", "x", "x"], ["y"])], [vi("c", T.BOOL, [0, 2]), vi("x", T.FLOAT, [2, 2])], [vi("y", T.FLOAT, [2, 2])]), r"'Where_0'.*(do not broadcast|Incompatible dimensions)"),
    ("declared_dtype_lies", "bounds", lambda: _model([helper.make_node("Reshape", ["x", "s"], ["y"])], [vi("x", T.UINT8, [4]), vi("s", T.INT64, [1])], [vi("y", T.FLOAT, [4])]),
     {"python": r"'Reshape_0'.*(declared float32, but the op gives uint8|elem type differs)", "x86_64": r"'Reshape_0'.*(declared float32, but the op gives uint8|elem type differs)"}),
    ("unsqueeze_runtime_axes", "bounds", lambda: _model([helper.make_node("Unsqueeze", ["x", "a"], ["y"])], [vi("x", T.FLOAT, [3, 4]), vi("a", T.INT64, [1])], [vi("y", T.FLOAT, [1, 3, 4])]),
     {"python": None, "x86_64": r"Unsqueeze with run-time value input\(s\)"}, {"a": np.array([0])}),
    ("reduce_runtime_axes", "bounds", lambda: _model([helper.make_node("ReduceSum", ["x", "a"], ["y"], keepdims=0)], [vi("x", T.FLOAT, [3, 4]), vi("a", T.INT64, [1])], [vi("y", T.FLOAT, None)], opset=18),
     {"python": None, "x86_64": r"ReduceSum with run-time value input\(s\)"}, {"a": np.array([1])}),
    # --- 7: malformed files and fields: one line, never a traceback
    ("sparse_index_oob", "malformed", lambda: _model([helper.make_node("Identity", ["w"], ["y"])], [], [vi("y", T.FLOAT, None)], sparse=[_sparse([4], [9], [1.0])]), r"sparse tensor 'w': an index lies outside its 4 elements"),
    ("sparse_count_mismatch", "malformed", lambda: _model([helper.make_node("Identity", ["w"], ["y"])], [], [vi("y", T.FLOAT, None)], sparse=[_sparse([4], [0, 1, 2], [1.0])]), r"sparse tensor 'w': 1 values but 3 indices"),
    ("truncated_protobuf", "malformed", lambda: _one("Relu", ["x"], [], inputs=X4)[:-7], r"."),
    ("garbage_bytes", "malformed", lambda: bytes(range(256)) * 4, r"."),
    ("empty_file", "malformed", lambda: b"", r"."),
    ("no_opset_import", "malformed", lambda: helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", X4, [vi("y", T.FLOAT, [4])]), opset_imports=[]).SerializeToString(), r"imports ai.onnx opset none"),
    ("control_chars_in_dim_param", "malformed", lambda: _model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", T.FLOAT, ["n\r\nX"])], [vi("y", T.FLOAT, None)]),
     r"input 'x' has symbolic dims \[n\\r\\nX\]; bind them with --input-shape x=N$"),
]


def expected(entry, target: str):
    """The expected error pattern of a corpus entry on ``target`` (None: it must compile and run correctly)."""
    exp = entry[3]
    return exp.get(target) if isinstance(exp, dict) else exp


def _conv_group_graphs():
    """A Conv whose group attribute is an empty GRAPHS list (fuzz seed 0, mutant 704: a bit flipped in the type)."""
    m = onnx.ModelProto.FromString(_model([helper.make_node("Conv", ["x", "w"], ["y"])],
                                          [vi("x", T.FLOAT, [1, 1, 3, 3]), vi("w", T.FLOAT, [1, 1, 1, 1])],
                                          [vi("y", T.FLOAT, [1, 1, 3, 3])]))
    m.graph.node[0].attribute.append(onnx.AttributeProto(name="group", type=onnx.AttributeProto.GRAPHS))
    return m.SerializeToString()


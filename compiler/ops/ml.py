"""Classic ML operators: LabelEncoder, ArrayFeatureExtractor and Binarizer of ai.onnx.ml, and
TfIdfVectorizer (ai.onnx 9). Binarizer and ArrayFeatureExtractor also decompose into ONNX ops for the compiled
targets; the others are reference only.

Source: ONNX spec text (ai.onnx.ml LabelEncoder-4, ArrayFeatureExtractor-1, Binarizer-1; TfIdfVectorizer-9).
"""
from __future__ import annotations

import math

import numpy as np
from onnx import numpy_helper

from ..ir.types import TensorType, np_dtype
from ..pyrt import rt
from .body import FunctionBody, attr_of
from .registry import decomposition, register

ML = "ai.onnx.ml"


def _tensor_attr(v):
    return numpy_helper.to_array(v) if v is not None and hasattr(v, "data_type") else v


@register("LabelEncoder", domain=ML, attrs={"default_float": -0.0, "default_int64": -1, "default_string": "_Unused",
                                            "default_tensor": None, "keys_floats": None, "keys_int64s": None,
                                            "keys_strings": None, "keys_tensor": None, "values_floats": None,
                                            "values_int64s": None, "values_strings": None, "values_tensor": None},
          versions="ai.onnx.ml 2-4")
def ref_labelencoder(ctx, x):
    """keys_* -> values_* elementwise (the last of repeated keys wins; NaN keys match NaN), default_* otherwise."""
    a = ctx.attrs
    kname = next(k for k in ("keys_tensor", "keys_strings", "keys_int64s", "keys_floats") if a[k] is not None)
    vname = next(k for k in ("values_tensor", "values_strings", "values_int64s", "values_floats") if a[k] is not None)
    keys, vals = _tensor_attr(a[kname]), _tensor_attr(a[vname])
    keys = list(np.asarray(keys).ravel()) if not isinstance(keys, list) else keys
    vals = np.asarray(vals if not isinstance(vals, list) else vals)
    if vname == "values_strings":
        vals, default = vals.astype(object), a["default_string"]
    elif vname == "values_int64s":
        vals, default = vals.astype(np.int64), a["default_int64"]
    elif vname == "values_floats":
        vals, default = vals.astype(np.float32), a["default_float"]
    else:
        dt = _tensor_attr(a["default_tensor"])
        default = np.asarray(dt).ravel()[0] if dt is not None else ("_Unused" if vals.dtype.kind in "OUS" else
                                                                     -1 if vals.dtype.kind in "iu" else -0.0)
    table = {}
    nan_value = None
    for k, v in zip(keys, vals):
        k = k.decode() if isinstance(k, bytes) else k
        if isinstance(k, float) and math.isnan(k):
            nan_value = v
        else:
            table[k.item() if isinstance(k, np.generic) else k] = v

    def look(e):
        e = e.item() if isinstance(e, np.generic) else e
        if isinstance(e, float) and math.isnan(e):
            return nan_value if nan_value is not None else default
        return table.get(e, default)
    xs = np.asarray(x)
    out = np.array([look(e) for e in xs.ravel()], dtype=vals.dtype if vals.dtype.kind != "U" else object)
    return out.reshape(xs.shape)


def _tree_infer(ctx) -> list:
    """(N, n_targets) in X's dtype; the tables checked (ids in range, no cycle) when X's feature count is known."""
    from ..errors import SpecViolation
    xs = ctx.shape(0)
    try:
        rt.tree_tables(ctx.attrs, xs[1] if xs is not None and len(xs) == 2 and isinstance(xs[1], int) else None)
    except rt.BornrtError as ex:
        raise SpecViolation(f"node {ctx.node.name!r} (TreeEnsemble): {ex}") from None
    if int(ctx.attrs["post_transform"] or 0) != 0:
        raise SpecViolation(f"node {ctx.node.name!r} (TreeEnsemble): post_transform {ctx.attrs['post_transform']} "
                            "is not supported (only NONE)")
    return [TensorType(ctx.dtype(0), (xs[0] if xs else None, int(ctx.attrs["n_targets"])))]


@register("TreeEnsemble", domain=ML, attrs={"aggregate_function": 1, "leaf_targetids": None, "leaf_weights": None,
                                            "membership_values": None, "n_targets": None, "nodes_falseleafs": None,
                                            "nodes_falsenodeids": None, "nodes_featureids": None, "nodes_hitrates": None,
                                            "nodes_missing_value_tracks_true": None, "nodes_modes": None,
                                            "nodes_splits": None, "nodes_trueleafs": None, "nodes_truenodeids": None,
                                            "post_transform": 0, "tree_roots": None},
          infer=_tree_infer, versions="ai.onnx.ml 5 (post_transform NONE)")
def ref_treeensemble(ctx, x):
    return rt.tree_ensemble(ctx.attrs, x)


@register("ArrayFeatureExtractor", domain=ML, versions="ai.onnx.ml 1")
def ref_arrayfeatureextractor(ctx, x, idx):
    """x[..., idx] along the last axis (a 1-D x is treated as [1, C])."""
    from ..pyrt import rt
    xs = x.reshape(1, -1) if x.ndim == 1 else x
    return np.take(xs, rt.in_range(np.asarray(idx).ravel(), xs.shape[-1]), axis=-1)


@register("Binarizer", domain=ML, attrs={"threshold": 0.0}, versions="ai.onnx.ml 1")
def ref_binarizer(ctx, x):
    return np.where(x > ctx.attrs["threshold"], 1, 0).astype(x.dtype)


@decomposition("Binarizer", ML)
def decompose_binarizer(node, opset, in_types):
    """Where(X > threshold, 1, 0) in X's type."""
    if not in_types or not isinstance(in_types[0], TensorType):
        return None
    b = FunctionBody()
    dt = np_dtype(in_types[0].dtype)
    b.op("Where", [b.op("Greater", ["x", b.scalar(attr_of(node, "threshold", 0.0), dt)]), b.scalar(1, dt),
                   b.scalar(0, dt)], "y")
    return b.function("Binarizer", ["x"], ["y"], domain=ML)


@decomposition("ArrayFeatureExtractor", ML)
def decompose_arrayfeatureextractor(node, opset, in_types):
    """Gather along the last axis of X (a 1-D X read as [1, C]) by the indices flattened to 1-D."""
    if len(in_types) < 2 or not isinstance(in_types[0], TensorType) or in_types[0].shape is None:
        return None
    b = FunctionBody()
    x = b.op("Reshape", ["x", b.const(np.array([1, -1], np.int64))]) if len(in_types[0].shape) == 1 else "x"
    idx = b.op("Reshape", ["idx", b.const(np.array([-1], np.int64))])
    b.op("Gather", [x, idx], "y", axis=-1)
    return b.function("ArrayFeatureExtractor", ["x", "idx"], ["y"], domain=ML)


@register("TfIdfVectorizer", attrs={"max_gram_length": 1, "max_skip_count": 0, "min_gram_length": 1, "mode": "TF",
                                    "ngram_counts": [], "ngram_indexes": [], "pool_int64s": None, "pool_strings": None,
                                    "weights": None}, versions="9-24")
def ref_tfidfvectorizer(ctx, x):
    """``tfidf_vectorizer`` of the Python runtime (runtime/python/bornrt.py), shared with the python target."""
    return rt.tfidf_vectorizer(ctx.attrs, x)

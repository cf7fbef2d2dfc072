"""fold_batchnorm: fold an inference BatchNormalization, or a multiplication / addition by a per-channel
constant, into the preceding Conv, ConvTranspose or Gemm whose weights are constant.

BatchNormalization computes y = (x - mean) * s + beta with s = scale / sqrt(var + eps) (ONNX spec); folded:
W' = W * s along the output-channel axis and B' = (B - mean) * s + beta. Mul by k: W' = W * k, B' = B * k;
Add of k: B' = B + k. The producer's output must have no other reader. Results match the unfolded graph up to
float rounding.
"""
from __future__ import annotations

import numpy as np

from ..ir.graph import Model, Node
from ..ir.types import TensorType
from .util import clone, fresh_name, use_counts

_FOLDABLE = ("Conv", "ConvTranspose", "Gemm")


def _channels(g, core: Node) -> int | None:
    t = g.types.get(core.outputs[0])
    if not isinstance(t, TensorType) or not t.is_static or len(t.shape) < 2:
        return None
    return t.shape[1]


def _per_channel(g, core: Node, value: np.ndarray, m: int) -> np.ndarray | None:
    """``value`` as a length-m vector when it only varies along the channel axis of ``core``'s output."""
    out_rank = len(g.types[core.outputs[0]].shape)
    v = np.asarray(value)
    if v.size == 1:
        return np.full(m, v.ravel()[0], dtype=np.float64)
    if v.ndim > out_rank:
        return None
    shape = (1,) * (out_rank - v.ndim) + v.shape
    if core.op == "Gemm":
        ok = all(d == 1 for d in shape[:-1]) and shape[-1] == m
    else:
        ok = shape[1] == m and all(d == 1 for i, d in enumerate(shape) if i != 1)
    return v.reshape(-1).astype(np.float64) if ok else None


def _scale_weights(g, core: Node, s: np.ndarray) -> None:
    w = g.constants[core.inputs[1]].astype(np.float64)
    if core.op == "Conv":
        w = w * s.reshape((-1,) + (1,) * (w.ndim - 1))
    elif core.op == "ConvTranspose":
        group = core.attrs.get("group", 1)
        cin, mg = w.shape[0], w.shape[1]
        w = (w.reshape((group, cin // group, mg) + w.shape[2:]) * s.reshape((group, 1, mg) + (1,) * (w.ndim - 2))).reshape(w.shape)
    else:
        w = w * (s.reshape(-1, 1) if core.attrs.get("transB", 0) else s.reshape(1, -1))
    name = fresh_name(g, core.inputs[1] + "_folded")
    g.constants[name] = w.astype(g.constants[core.inputs[1]].dtype)
    g.types[name] = TensorType.of(g.constants[name])
    core.inputs[1] = name


def _set_bias(g, core: Node, b: np.ndarray, dtype) -> None:
    name = fresh_name(g, (core.inputs[2] if len(core.inputs) > 2 and core.inputs[2] else core.name) + "_bias_folded")
    g.constants[name] = b.astype(dtype)
    g.types[name] = TensorType.of(g.constants[name])
    core.inputs = core.inputs[:2] + [name] + core.inputs[3:]
    if core.op == "Gemm":
        core.attrs["beta"] = 1.0


def _bias(g, core: Node, m: int) -> np.ndarray | None:
    if len(core.inputs) < 3 or not core.inputs[2]:
        return np.zeros(m)
    b = g.constants.get(core.inputs[2])
    if b is None:
        return None
    if core.op == "Gemm":
        b = _per_channel(g, core, b, m)
        return None if b is None else b * core.attrs.get("beta", 1.0)
    return b.astype(np.float64).reshape(-1)


def fold_batchnorm(model: Model) -> Model:
    m = clone(model)
    g = m.graph
    producers = g.producers()
    uses = use_counts(g)
    removed = set()
    for n in g.nodes:
        if n.op not in ("BatchNormalization", "Mul", "Add") or not n.inputs:
            continue
        x_idx = 0
        if n.op in ("Mul", "Add") and n.inputs[0] in g.constants:
            x_idx = 1
        core = producers.get(n.inputs[x_idx])
        if (core is None or id(core) in removed or core.op not in _FOLDABLE or uses[core.outputs[0]] != 1
                or core.outputs[0] in g.outputs or core.inputs[1] not in g.constants):
            continue
        mch = _channels(g, core)
        bias = _bias(g, core, mch) if mch else None
        if mch is None or bias is None:
            continue
        if n.op == "BatchNormalization":
            if len(n.outputs) > 1 and any(n.outputs[1:]) or n.attrs.get("training_mode", 0):
                continue
            params = [g.constants.get(i) for i in n.inputs[1:5]]
            if any(p is None for p in params):
                continue
            scale, beta, mean, var = (p.astype(np.float64).reshape(-1) for p in params)
            s = scale / np.sqrt(var + n.attrs.get("epsilon", 1e-5))
            new_bias = (bias - mean) * s + beta
        else:
            k = g.constants.get(n.inputs[1 - x_idx])
            kv = None if k is None else _per_channel(g, core, k, mch)
            if kv is None or (n.op == "Mul" and not np.all(np.isfinite(kv))):
                continue
            s = kv if n.op == "Mul" else None
            new_bias = bias * kv if n.op == "Mul" else bias + kv
        dtype = g.constants[core.inputs[1]].dtype
        if s is not None:
            _scale_weights(g, core, s)
        _set_bias(g, core, new_bias, dtype)
        old_out = core.outputs[0]
        core.outputs[0] = n.outputs[0]
        g.types.pop(old_out, None)
        removed.add(id(n))
        producers[n.outputs[0]] = core
    g.nodes = [n for n in g.nodes if id(n) not in removed]
    return m

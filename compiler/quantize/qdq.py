"""fold_qdq: pre-quantized ONNX models onto bornc's integer layers.

Two forms are recognized (both as onnxruntime's quantization tools write them):

- QDQ: ``DequantizeLinear(x_q) -> Conv/Gemm/MatMul(weights DequantizeLinear(w_q) [, bias]) [-> Relu/Clip] ->
  QuantizeLinear -> y_q``;
- QOperator: ``QLinearConv`` and ``QLinearMatMul`` with constant weights.

Between them, ``DequantizeLinear -> MaxPool/Concat -> QuantizeLinear`` runs on the uint8 codes (a LookupTable
requantizes an input whose scale differs).

Each Conv/Gemm/MatMul becomes one QConv / QMatMul (uint8 activations, int8 weights, int32 bias, fixed-point requantization;
see ``ops/qint.py``). Conditions: activations uint8 with per-tensor scale and zero point; weights int8 with zero
zero point, or uint8 with zero point 128 (shifted to int8), per tensor or per output channel; a float bias is
quantized with scale x_scale * w_scale. ONNX defines the requantization of QLinearConv/QLinearMatMul in
floating point (round(acc * M)); the fixed-point multiplier differs from it by at most one quantization step, in
the rare elements whose scaled accumulator lies within 2^-31 relative of a rounding tie (double rounding).
"""
from __future__ import annotations

import numpy as np

from ..ir.graph import Model, Node
from ..ir.types import TensorType
from ..ops.qint import quantize_multiplier
from ..passes.eliminate_dead_code import eliminate_dead_code
from ..passes.util import clone, consumers, fresh_name, use_counts

_CONV_ATTRS = ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")


def _scalar(g, name, dtype=None):
    v = g.constants.get(name) if name else None
    if v is None or np.asarray(v).size != 1 or (dtype is not None and np.asarray(v).dtype != dtype):
        return None
    return np.asarray(v).reshape(())


def _weights(g, w_name, s_name, zp_name, out_channels_axis: int):
    """(int8 weights with output channels first, float64 scales per channel) from constant quantized weights."""
    w = g.constants.get(w_name)
    s = g.constants.get(s_name)
    if w is None or s is None:
        return None
    zp = g.constants.get(zp_name) if zp_name else None
    w = np.asarray(w)
    if w.dtype == np.uint8:
        if zp is None or np.any(np.asarray(zp) != 128):
            return None
        wi = w.astype(np.int16) - 128
    elif w.dtype == np.int8:
        if zp is not None and np.any(np.asarray(zp) != 0):
            return None
        wi = w.astype(np.int16)
    else:
        return None
    wi = np.moveaxis(wi, out_channels_axis, 0)
    m = wi.shape[0]
    s = np.asarray(s, np.float64).reshape(-1)
    if s.size == 1:
        s = np.full(m, s[0])
    if s.size != m:
        return None
    return wi.astype(np.int8), s


def _requant(sx: float, sw: np.ndarray, sy: float):
    mult = [quantize_multiplier(float(v)) for v in sx * sw / sy]
    return [q for q, _ in mult], [s for _, s in mult]


def _bias(g, name, acc_scale: np.ndarray):
    """int32 bias: a float constant quantized with the accumulator scale, or an int32 constant as is."""
    if not name:
        return None
    b = g.constants.get(name)
    if b is None:
        return "bad"
    b = np.asarray(b)
    if b.dtype == np.int32:
        return b.reshape(-1)
    if b.dtype.kind != "f":
        return "bad"
    return np.clip(np.rint(b.astype(np.float64).reshape(-1) / acc_scale), -(1 << 31), (1 << 31) - 1).astype(np.int32)


def fold_qdq(model: Model) -> Model:
    """The model with QDQ-wrapped Conv/Gemm/MatMul and QLinearConv/QLinearMatMul as bornc integer layers."""
    m = clone(model)
    g = m.graph
    prod = g.producers()
    cons, uses = consumers(g), use_counts(g)
    replace: dict[int, list[Node]] = {}
    drop: set[int] = set()

    def add_const(hint, value):
        name = fresh_name(g, hint)
        g.constants[name] = value
        g.types[name] = TensorType.of(value)
        return name

    def emit(core: Node, kind: str, xq: str, zx: int, sx: float, w8, sw, bias, yq: str, zy: int, sy: float,
             attrs: dict, bounds=(0, 255)):
        mult, shift = _requant(sx, sw, sy)
        inputs = [xq, add_const(core.name + "_w_int8", w8)]
        if bias is not None:
            inputs.append(add_const(core.name + "_b_int32", bias))
        node = Node(kind, inputs, [yq], {**attrs, "x_zero_point": zx, "y_zero_point": zy, "multiplier": mult,
                                         "shift": shift, "qmin": bounds[0], "qmax": bounds[1]}, core.name, "bornc")
        return node

    for n in g.nodes:
        if n.domain:
            continue
        if n.op == "QLinearConv" and len(n.inputs) >= 8:
            x, xs, xz, w, ws, wz, ys, yz = n.inputs[:8]
            sx, zx, sy, zy = _scalar(g, xs), _scalar(g, xz, np.uint8), _scalar(g, ys), _scalar(g, yz, np.uint8)
            wt = _weights(g, w, ws, wz, 0)
            if None in (sx, zx, sy, zy) or wt is None or getattr(g.types.get(x), "dtype", None) != "uint8":
                continue
            acc_scale = float(sx) * wt[1]
            b = _bias(g, n.inputs[8] if len(n.inputs) > 8 else "", acc_scale)
            if isinstance(b, str):
                continue
            attrs = {k: n.attrs[k] for k in _CONV_ATTRS if k in n.attrs}
            replace[id(n)] = [emit(n, "QConv", x, int(zx), float(sx), wt[0], wt[1], b, n.outputs[0], int(zy), float(sy), attrs)]
        elif n.op == "QLinearMatMul":
            a, as_, az, b_, bs, bz, ys, yz = n.inputs[:8]
            sx, zx, sy, zy = _scalar(g, as_), _scalar(g, az, np.uint8), _scalar(g, ys), _scalar(g, yz, np.uint8)
            bt = g.constants.get(b_)
            if None in (sx, zx, sy, zy) or bt is None or np.asarray(bt).ndim != 2 or \
                    getattr(g.types.get(a), "dtype", None) != "uint8":
                continue
            wt = _weights(g, b_, bs, bz, 1)
            if wt is None:
                continue
            replace[id(n)] = [emit(n, "QMatMul", a, int(zx), float(sx), wt[0], wt[1], None, n.outputs[0], int(zy), float(sy), {})]
        elif n.op in ("Conv", "Gemm", "MatMul"):
            folded = _fold_pattern(g, n, prod, cons, uses)
            if folded is None:
                continue
            dq_x, dq_w, core_attrs, bias_name, act, bounds_f, q_out, kind = folded
            sx, zx = float(_scalar(g, dq_x.inputs[1])), int(_scalar(g, dq_x.inputs[2]) if len(dq_x.inputs) > 2 and dq_x.inputs[2] else 0)
            sy, zy = float(_scalar(g, q_out.inputs[1])), int(_scalar(g, q_out.inputs[2]))
            axis = 0 if kind == "QConv" else (0 if n.op == "Gemm" and n.attrs.get("transB", 0) else 1)
            wt = _weights(g, dq_w.inputs[0], dq_w.inputs[1], dq_w.inputs[2] if len(dq_w.inputs) > 2 else "", axis)
            if wt is None:
                continue
            acc_scale = sx * wt[1]
            b = _bias(g, bias_name, acc_scale)
            if isinstance(b, str):
                continue
            lo = int(np.clip(np.rint(bounds_f[0] / sy) + zy, 0, 255)) if np.isfinite(bounds_f[0]) else 0
            hi = int(np.clip(np.rint(bounds_f[1] / sy) + zy, 0, 255)) if np.isfinite(bounds_f[1]) else 255
            replace[id(n)] = [emit(n, kind, dq_x.inputs[0], zx, sx, wt[0], wt[1], b, q_out.outputs[0], zy, sy,
                                   core_attrs, (lo, hi))]
            drop.update({id(q_out)} | ({id(act)} if act is not None else set()))
    _fold_data_movement(g, prod, cons, uses, replace, drop)
    if not replace:
        return model
    nodes = []
    for n in g.nodes:
        if id(n) in drop:
            continue
        nodes.extend(replace.get(id(n), [n]))
    g.nodes = nodes
    return eliminate_dead_code(m)


#: ops that only select or move elements: between a DequantizeLinear and a QuantizeLinear they run on the codes
_MOVERS = ("MaxPool", "Concat")


def _qparams(g, node: Node):
    """(scale, zero point) of a per-tensor uint8 QuantizeLinear/DequantizeLinear, or None."""
    s = _scalar(g, node.inputs[1]) if len(node.inputs) > 1 else None
    z = _scalar(g, node.inputs[2], np.uint8) if len(node.inputs) > 2 and node.inputs[2] else None
    if s is None or z is None:
        return None
    return float(np.float32(s)), int(z)


def requant_table(src: tuple, dst: tuple) -> list[int] | None:
    """QuantizeLinear(DequantizeLinear(c, *src), *dst) for the 256 uint8 codes c, in float32 as the ONNX
    reference computes it (ONNX spec, DequantizeLinear then QuantizeLinear: round half to even, saturate);
    None when it is the identity."""
    (sx, zx), (sy, zy) = src, dst
    if (sx, zx) == (sy, zy):
        return None
    v = (np.arange(256, dtype=np.int32) - zx).astype(np.float32) * np.float32(sx)
    return [int(t) for t in np.clip(np.rint(v / np.float32(sy)) + zy, 0, 255)]


def _fold_data_movement(g, prod, cons, uses, replace, drop) -> None:
    """``DequantizeLinear -> MaxPool/Concat -> QuantizeLinear`` onto the uint8 codes: the op reads the
    DequantizeLinear inputs, through a LookupTable (``requant_table``) where an input's scale or zero point
    differs from the output's. Exact: Q(DQ(.)) is monotone, so it commutes with taking a maximum, and Concat only
    places elements."""
    for n in g.nodes:
        if n.domain or n.op not in _MOVERS or id(n) in replace or len([o for o in n.outputs if o]) != 1:
            continue
        y = n.outputs[0]
        rd = cons.get(y, [])
        if len(rd) != 1 or uses[y] != 1 or y in g.outputs or rd[0].op != "QuantizeLinear" or rd[0].domain:
            continue
        q_out, data = rd[0], n.inputs if n.op == "Concat" else n.inputs[:1]
        dqs = [prod.get(i) for i in data]
        if any(d is None or d.op != "DequantizeLinear" or d.domain or len(d.inputs) < 3 or
               getattr(g.types.get(d.inputs[0]), "dtype", None) != "uint8" for d in dqs):
            continue
        dst = _qparams(g, q_out)
        srcs = [_qparams(g, d) for d in dqs]
        if dst is None or None in srcs:
            continue
        new, inputs = [], []
        for d, src in zip(dqs, srcs):
            table = requant_table(src, dst)
            if table is None:
                inputs.append(d.inputs[0])
                continue
            t = fresh_name(g, d.inputs[0] + "_requant")
            g.types[t] = TensorType("uint8", g.types[d.inputs[0]].shape)
            new.append(Node("LookupTable", [d.inputs[0]], [t], {"table": table}, t, "bornc"))
            inputs.append(t)
        g.types[q_out.outputs[0]] = TensorType("uint8", g.types[y].shape)
        moved = Node(n.op, inputs + n.inputs[len(data):], [q_out.outputs[0]], dict(n.attrs), n.name, n.domain)
        replace[id(n)] = new + [moved]
        drop.add(id(q_out))


def _fold_pattern(g, n: Node, prod, cons, uses):
    """The QDQ pattern around Conv/Gemm/MatMul ``n``: (DequantizeLinear of x, of w, core attrs, bias name, the
    activation node or None, its float bounds, the output QuantizeLinear, kind), or None."""
    if len(n.inputs) < 2:
        return None
    dq_x, dq_w = prod.get(n.inputs[0]), prod.get(n.inputs[1])
    if dq_x is None or dq_w is None or dq_x.op != "DequantizeLinear" or dq_w.op != "DequantizeLinear":
        return None
    if getattr(g.types.get(dq_x.inputs[0]), "dtype", None) != "uint8" or _scalar(g, dq_x.inputs[1]) is None:
        return None
    if len(dq_x.inputs) > 2 and dq_x.inputs[2] and _scalar(g, dq_x.inputs[2], np.uint8) is None:
        return None
    if dq_w.inputs[0] not in g.constants:
        return None
    bias_name = n.inputs[2] if len(n.inputs) > 2 else ""
    if bias_name and bias_name not in g.constants:
        bp = prod.get(bias_name)         # an int32 bias behind a DequantizeLinear: use the integers
        if bp is None or bp.op != "DequantizeLinear" or bp.inputs[0] not in g.constants:
            return None
        bias_name = bp.inputs[0]
    if n.op == "Conv":
        kind, attrs = "QConv", {k: n.attrs[k] for k in _CONV_ATTRS if k in n.attrs}
        if len(g.types[n.inputs[0]].shape) not in (3, 4):
            return None
    elif n.op == "Gemm":
        if n.attrs.get("transA", 0) or n.attrs.get("alpha", 1.0) != 1.0 or n.attrs.get("beta", 1.0) != 1.0:
            return None
        kind, attrs = "QMatMul", {}
    else:
        if np.asarray(g.constants[dq_w.inputs[0]]).ndim != 2 or bias_name:
            return None
        kind, attrs = "QMatMul", {}
    y = n.outputs[0]
    rd = cons.get(y, [])
    if len(rd) != 1 or uses[y] != 1 or y in g.outputs:
        return None
    act, bounds = None, (-np.inf, np.inf)
    nxt = rd[0]
    if nxt.op in ("Relu", "Clip") and not nxt.domain:
        act = nxt
        if nxt.op == "Relu":
            bounds = (0.0, np.inf)
        else:
            lo = _scalar(g, nxt.inputs[1]) if len(nxt.inputs) > 1 and nxt.inputs[1] else -np.inf
            hi = _scalar(g, nxt.inputs[2]) if len(nxt.inputs) > 2 and nxt.inputs[2] else np.inf
            if lo is None or hi is None:
                return None
            bounds = (float(lo), float(hi))
        rd = cons.get(act.outputs[0], [])
        if len(rd) != 1 or uses[act.outputs[0]] != 1 or act.outputs[0] in g.outputs:
            return None
        nxt = rd[0]
    if nxt.op != "QuantizeLinear" or nxt.domain or _scalar(g, nxt.inputs[1]) is None or len(nxt.inputs) < 3 \
            or _scalar(g, nxt.inputs[2], np.uint8) is None:
        return None
    return dq_x, dq_w, attrs, bias_name, act, bounds, nxt, kind

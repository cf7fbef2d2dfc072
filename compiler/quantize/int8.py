"""quantize_int8: rewrite Conv, Gemm and MatMul with constant weights into bornc's integer QConv / QMatMul.

Scheme (what edge integer runtimes use; Jacob et al., CVPR 2018; TensorFlow Lite's int8 spec):

- activations uint8, per tensor, asymmetric: scale = (hi - lo) / 255 over the calibrated range widened to hold
  0, zero point = round(-lo / scale), so real 0 is exact (zero padding stays exact);
- weights int8, symmetric per output channel in [-127, 127]: scale[c] = max|w[c]| / 127;
- bias int32 with scale x_scale * w_scale[c]; requantization multiplier M[c] = x_scale * w_scale[c] / y_scale in
  fixed point (``ops.qint.quantize_multiplier``);
- a Relu or Clip with constant bounds that alone reads the product is folded into the requantization clamp.

Each rewritten layer is QuantizeLinear (only where its input is not already uint8 from an earlier layer) ->
QConv/QMatMul -> DequantizeLinear, the last writing the layer's original float output name; consecutive
integer layers read each other's uint8 outputs directly, so the DequantizeLinear -> QuantizeLinear pair
between them never exists. Float ops between layers (HardSwish, Add, Resize...) stay float.

Weight-only int8: other float32 constants of at least ``MIN_WEIGHT_ELEMS`` elements read by ops without an
integer kernel (LSTM, ConvTranspose, ...) are stored int8 per channel (axis 0, or 1 when axis 0 has size 1)
and expanded by a DequantizeLinear node at run time.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..interpreter import run_node
from ..ir.graph import Model, Node
from ..ir.types import TensorType
from ..ops import registry
from ..ops.qint import quantize_multiplier
from ..passes.eliminate_dead_code import eliminate_dead_code
from ..passes.util import clone, consumers, fresh_name, use_counts

MIN_WEIGHT_ELEMS = 256



@dataclass
class Layer:
    """One integer layer: the float node(s) it replaces (``float_nodes`` with the float constants they read in
    ``consts``), the QConv/QMatMul node's name, its float input ``x`` and uint8 input ``x_q`` with their
    (scale, zero point), and its float output name ``y`` (written by the DequantizeLinear) and uint8 ``y_q``."""

    name: str
    op: str
    x: str
    x_q: str
    x_params: tuple
    y: str
    y_q: str
    y_params: tuple
    float_nodes: list = field(default_factory=list)
    consts: dict = field(default_factory=dict)


def activation_params(lo: float, hi: float) -> tuple[float, int]:
    """(scale, zero point) of uint8 asymmetric quantization of [lo, hi] widened to contain 0; scale is a
    float32 value (as a Python float), zero point in [0, 255]."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if not np.isfinite(lo) or not np.isfinite(hi) or hi - lo <= 0:
        return 1.0, 0
    scale = float(np.float32((hi - lo) / 255.0))
    zp = int(np.clip(np.rint(-lo / scale), 0, 255))
    return scale, zp


def weight_params(w: np.ndarray, axis: int, qmax: int = 127) -> tuple[np.ndarray, np.ndarray]:
    """(int8 codes in [-qmax, qmax], float32 scales) of symmetric per-channel quantization of ``w`` along
    ``axis``."""
    red = tuple(i for i in range(w.ndim) if i != axis)
    amax = np.max(np.abs(w.astype(np.float64)), axis=red) if w.ndim > 1 else np.abs(w.astype(np.float64))
    scale = np.where(amax > 0, amax / float(qmax), 1.0).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.rint(w.astype(np.float64) / scale.astype(np.float64).reshape(shape)), -qmax, qmax).astype(np.int8)
    return q, scale


def _const(g, hint: str, value: np.ndarray) -> str:
    name = fresh_name(g, hint)
    g.constants[name] = value
    g.types[name] = TensorType.of(value)
    return name


def _float_const(g, name: str) -> np.ndarray | None:
    v = g.constants.get(name) if name else None
    return v if isinstance(v, np.ndarray) and v.dtype == np.float32 else None


def _candidate(g, n: Node):
    """(kind, weight (M, ...) for QConv or (N, K) for QMatMul as float64, bias (M,) or None, QConv attrs) when
    ``n`` can become an integer layer, else None."""
    if n.domain or not n.inputs or g.types.get(n.inputs[0]) is None:
        return None
    xt = g.types[n.inputs[0]]
    if not isinstance(xt, TensorType) or xt.dtype != "float32" or not xt.is_static:
        return None
    w = _float_const(g, n.inputs[1]) if len(n.inputs) > 1 else None
    if w is None:
        return None
    b = _float_const(g, n.inputs[2]) if len(n.inputs) > 2 and n.inputs[2] else None
    if len(n.inputs) > 2 and n.inputs[2] and b is None:
        return None
    if n.op == "Conv" and len(xt.shape) in (3, 4):
        attrs = {k: n.attrs[k] for k in ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides") if k in n.attrs}
        return "QConv", w.astype(np.float64), None if b is None else b.astype(np.float64).reshape(-1), attrs
    if n.op == "MatMul" and w.ndim == 2 and len(xt.shape) >= 2:
        return "QMatMul", w.astype(np.float64).T, None, {}
    if n.op == "Gemm" and not n.attrs.get("transA", 0) and len(xt.shape) == 2:
        wm = w.astype(np.float64) * float(n.attrs.get("alpha", 1.0))
        wm = wm if n.attrs.get("transB", 0) else wm.T
        if b is not None:
            if b.size not in (1, wm.shape[0]) or (b.ndim == 2 and b.shape[0] != 1):
                return None
            b = np.broadcast_to(b.astype(np.float64).reshape(-1), (wm.shape[0],)) * float(n.attrs.get("beta", 1.0))
        return "QMatMul", wm, b, {}
    return None


def _activation(g, n: Node, cons, uses):
    """The Relu/Clip node that alone reads ``n``'s output, with its (lo, hi) bounds, or (None, None)."""
    y = n.outputs[0]
    rd = cons.get(y, [])
    if len(rd) != 1 or uses[y] != 1 or y in g.outputs or rd[0].domain:
        return None, None
    a = rd[0]
    if a.op == "Relu":
        return a, (0.0, np.inf)
    if a.op == "Clip":
        bounds = []
        for k, default in ((1, -np.inf), (2, np.inf)):
            if len(a.inputs) > k and a.inputs[k]:
                c = g.constants.get(a.inputs[k])
                if c is None:
                    return None, None
                bounds.append(float(np.asarray(c).reshape(-1)[0]))
            else:
                bounds.append(default)
        return a, tuple(bounds)
    return None, None


def quantize_int8(model: Model, ranges: dict, keep_float: set | frozenset = frozenset(),
                  min_weight_elems: int = MIN_WEIGHT_ELEMS, means: dict | None = None,
                  weight_only_layers: set | frozenset = frozenset(),
                  weight_max: int = 127) -> tuple[Model, list[Layer], list[str]]:
    """Rewrite ``model``'s main graph: returns (model, integer layers, names of weight-only int8 constants).

    ``ranges`` maps float value names to calibrated (lo, hi); a layer whose input or output has no range, or
    whose node name is in ``weight_only_layers``, computes in float on int8-stored weights; one named in
    ``keep_float`` stays float entirely. ``means`` (per-channel means of layer inputs over the
    calibration data) enables bias correction: the bias absorbs the expected output shift that rounding the
    weights causes, sum (w_q * scale - w) * E[x] (Nagel et al., "Data-Free Quantization Through Weight
    Equalization and Bias Correction", ICCV 2019, section 4.2, with E[x] measured instead of derived)."""
    means = means or {}
    m = clone(model)
    g = m.graph
    cons, uses = consumers(g), use_counts(g)
    producers = g.producers()
    wcache: dict = {}
    qmap: dict[str, tuple] = {}          # float value -> (uint8 value, (scale, zero point))
    layers: list[Layer] = []
    absorbed: set[int] = set()
    nodes: list[Node] = []
    for n in g.nodes:
        if id(n) in absorbed:
            continue
        cand = _candidate(g, n) if n.name not in keep_float and n.name not in weight_only_layers else None
        act, bounds = _activation(g, n, cons, uses) if cand else (None, None)
        y = act.outputs[0] if act is not None else (n.outputs[0] if cand else None)
        x = n.inputs[0]
        if cand is None or y not in ranges or (x not in ranges and x not in qmap):
            nodes.append(n)
            continue
        kind, w, b, attrs = cand
        if x in qmap:
            xq, (sx, zx) = qmap[x]
        else:
            sx, zx = activation_params(*ranges[x])
            xq = fresh_name(g, x + "_q")
            g.types[xq] = TensorType("uint8", g.types[x].shape)
            lut = _lookup_table(g, x, qmap, producers, (sx, zx), m.opsets)
            if lut is not None:
                nodes.append(Node("LookupTable", [lut[0]], [xq], {"table": lut[1]}, fresh_name(g, n.name + "_lut"),
                                  "bornc"))
            else:
                nodes.append(Node("QuantizeLinear", [x, _const(g, x + "_scale", np.array(sx, np.float32)),
                                                     _const(g, x + "_zp", np.array(zx, np.uint8))], [xq], {},
                                  fresh_name(g, n.name + "_quantize")))
            qmap[x] = (xq, (sx, zx))
        sy, zy = activation_params(*ranges[y])
        key = (n.inputs[1], n.op, n.attrs.get("transB", 0), n.attrs.get("alpha", 1.0))
        if key not in wcache:                       # a weight several layers share is stored once
            wq, ws = weight_params(w, 0, weight_max)
            wcache[key] = (_const(g, n.inputs[1] + "_int8", wq), wq, ws)
        wname, wq, ws = wcache[key]
        if x in means:
            shift_ = _weight_rounding_shift(wq, ws, w, means[x], kind, attrs.get("group", 1))
            if shift_ is not None:
                b = (np.zeros(w.shape[0]) if b is None else b) - shift_
        acc_scale = sx * ws.astype(np.float64)
        mult = [quantize_multiplier(float(s / sy)) for s in acc_scale]
        qmin, qmax = 0, 255
        if bounds is not None:
            qmin = int(np.clip(np.rint(bounds[0] / sy) + zy, 0, 255)) if np.isfinite(bounds[0]) else 0
            qmax = int(np.clip(np.rint(bounds[1] / sy) + zy, 0, 255)) if np.isfinite(bounds[1]) else 255
        inputs = [xq, wname]
        if b is not None:
            bq = np.clip(np.rint(b / acc_scale), -(1 << 31), (1 << 31) - 1).astype(np.int32)
            inputs.append(_const(g, (n.inputs[2] if len(n.inputs) > 2 and n.inputs[2] else n.name) + "_int32", bq))
        yq = fresh_name(g, y + "_q")
        out_shape = g.types[y].shape
        g.types[yq] = TensorType("uint8", out_shape)
        qattrs = {**attrs, "x_zero_point": zx, "y_zero_point": zy, "multiplier": [q for q, _ in mult],
                  "shift": [s for _, s in mult], "qmin": qmin, "qmax": qmax}
        nodes.append(Node(kind, inputs, [yq], qattrs, n.name, "bornc"))
        nodes.append(Node("DequantizeLinear", [yq, _const(g, y + "_scale", np.array(sy, np.float32)),
                                               _const(g, y + "_zp", np.array(zy, np.uint8))], [y], {},
                          fresh_name(g, n.name + "_dequantize")))
        qmap[y] = (yq, (sy, zy))
        float_nodes = [n] + ([act] if act is not None else [])
        layers.append(Layer(n.name, n.op + (f"+{act.op}" if act is not None else ""), x, xq, (sx, zx), y, yq, (sy, zy),
                            float_nodes, {i: g.constants[i] for fn in float_nodes for i in fn.inputs if i in g.constants}))
        if act is not None:
            absorbed.add(id(act))
    g.nodes = nodes
    m = eliminate_dead_code(m)
    reuse = {k[0]: (v[0], v[2]) for k, v in wcache.items() if k[1] == "Conv" and k[3] == 1.0}
    weight_only = _weight_only(m.graph, min_weight_elems, keep_float, reuse)
    return m, layers, weight_only


def _weight_rounding_shift(wq, ws, w, mean_x, kind: str, group: int):
    """Per output channel, sum over the inputs of (w_q * scale - w) * E[x] (None when shapes do not match)."""
    dw = wq.astype(np.float64) * ws.astype(np.float64).reshape((-1,) + (1,) * (w.ndim - 1)) - w
    mean_x = np.asarray(mean_x, np.float64)
    if kind == "QMatMul":
        return dw @ mean_x if mean_x.size == dw.shape[1] else None
    m, cg = dw.shape[0], dw.shape[1]
    if mean_x.size != cg * group:
        return None
    per_in = dw.reshape(m, cg, -1).sum(axis=2)                          # (M, C/group)
    mx = mean_x.reshape(group, cg)[np.arange(m) // (m // group)]        # each output channel's group inputs
    return (per_in * mx).sum(axis=1)


def _lookup_table(g, x: str, qmap: dict, producers: dict, params: tuple, opsets, limit: int = 8):
    """(uint8 source, table) when ``x`` is computed from one integer layer's output by elementwise ops alone
    (activations such as HardSwish, SiLU, Sigmoid, also decomposed as x * relu6(x + 3) / 6; scalar constants
    only): dequantize -> those ops -> quantize(params) is tabulated over the 256 codes with the reference kernels.
    The source may also be a uint8 value cast to float (an image's pixels, x / 255 or (x - mean) / std): the
    first layer then reads its input codes through the table, and the float image is never stored."""
    chain: dict[int, Node] = {}
    sources: set[str] = set()

    def visit(v: str) -> bool:
        if v in qmap:
            sources.add(v)
            return True
        if v in g.constants:
            return np.asarray(g.constants[v]).size == 1
        p = producers.get(v)
        if p is not None and p.op == "Cast" and not p.domain and v not in g.outputs and \
                getattr(g.types.get(p.inputs[0]), "dtype", None) == "uint8" and p.inputs[0] not in g.constants:
            chain[id(p)] = p
            sources.add(p.inputs[0])     # a uint8 value cast to float (camera pixels): its 256 values tabulated
            return True
        if p is None or p.domain or len(p.outputs) != 1 or not registry.has(p.op, "lut") or len(chain) >= limit:
            return False
        if id(p) in chain:
            return True
        chain[id(p)] = p
        return all(visit(i) for i in p.inputs if i)

    if not visit(x) or len(sources) != 1 or not chain:
        return None
    v = sources.pop()
    if v not in qmap:                    # the uint8 source of a Cast
        src, vals = v, {v: np.arange(256, dtype=np.uint8)}
    else:
        src, (s0, z0) = qmap[v]
        vals = {v: ((np.arange(256, dtype=np.float64) - z0) * s0).astype(np.float32)}
    order = {id(n): k for k, n in enumerate(g.nodes)}
    for p in sorted(chain.values(), key=lambda n: order[id(n)]):
        args = [vals[i] if i in vals else (g.constants[i] if i else None) for i in p.inputs]
        vals[p.outputs[0]] = np.asarray(run_node(p, args, opsets)[0]).reshape(-1)
    y = vals[x].astype(np.float64)
    sx, zx = params
    table = np.where(np.isnan(y), zx, np.clip(np.rint(y / np.float64(np.float32(sx))) + zx, 0, 255))
    return src, [int(t) for t in table]


def _weight_only(g, min_elems: int, keep_float=frozenset(), reuse: dict | None = None) -> list[str]:
    """Store large float32 constants read by float ops (LSTM, ConvTranspose, layers left float) as int8 + a
    run-time DequantizeLinear (in place); nodes named in ``keep_float`` keep their float weights. A Conv weight an
    integer layer already stores as int8 (``reuse``: float name -> (int8 name, per-channel scales)) is shared."""
    reuse = reuse or {}
    done: list[str] = []
    nodes: list[Node] = []
    skip = {i for n in g.nodes if n.name in keep_float for i in n.inputs}
    for n in g.nodes:
        opdef = registry.get(n.op, n.domain)
        value_inputs = opdef.value_inputs if opdef is not None else ()
        for k, name in enumerate(n.inputs):
            c = _float_const(g, name)
            if c is None or c.size < min_elems or k in value_inputs or name in done or name in g.outputs or name in skip:
                continue
            axis = 0 if c.ndim > 1 and c.shape[0] > 1 else (1 if c.ndim > 1 else 0)
            if name in reuse and (axis == 0 or c.shape[0] == 1):
                qn, s = reuse[name]
                axis = 0
            else:
                q, s = weight_params(c, axis) if c.ndim > 1 else weight_params(c.reshape(1, -1), 0)
                qn = _const(g, name + "_int8", q.reshape(c.shape))
            sn = _const(g, name + "_scale", s if c.ndim > 1 else s.reshape(()))
            del g.constants[name]
            nodes.append(Node("DequantizeLinear", [qn, sn], [name], {"axis": axis} if c.ndim > 1 else {},
                              fresh_name(g, name + "_dequantize")))
            done.append(name)
        nodes.append(n)
    g.nodes = nodes
    return done


def fuse_lookup_tables(model: Model) -> Model:
    """A LookupTable that alone reads a QConv/QMatMul output moves into that layer (its ``table`` attribute), so
    the activation is applied as the layer stores its result instead of in a second pass."""
    m = clone(model)
    g = m.graph
    uses, producers = use_counts(g), g.producers()
    drop = set()
    for n in g.nodes:
        if n.op != "LookupTable" or n.domain != "bornc":
            continue
        p = producers.get(n.inputs[0])
        if p is None or p.domain != "bornc" or p.op not in ("QConv", "QMatMul") or p.attrs.get("table") is not None \
                or uses[n.inputs[0]] != 1 or n.inputs[0] in g.outputs:
            continue
        p.attrs["table"] = list(n.attrs["table"])
        p.outputs = [n.outputs[0]]
        drop.add(id(n))
    g.nodes = [n for n in g.nodes if id(n) not in drop]
    return eliminate_dead_code(m)

"""Post-training quantization: ``bornc compile MODEL --quantize int8|fp16``.

int8 (static): calibrate activation ranges on the float model (``calibrate``), rewrite Conv/Gemm/MatMul into
integer layers (``int8.quantize_int8``), measure every layer's own error on the validation sets and keep the
layers whose output sensitivity is above ``fallback_threshold`` float, then more until the outputs reach
``target_cosine`` on a calibration set (reported by name), then measure the outputs against float32. fp16:
float32 weights stored as float16 (``fp16.quantize_fp16``). The pass runs inside the optimizer pipeline after
BatchNorm folding and before elementwise/epilogue fusion (``passes.pipeline.optimize(quantize=...)``), so
layers are still plain Conv/Gemm/MatMul(+Relu) when they are rewritten.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import BorncError
from ..interpreter import run, run_node
from ..ir.graph import Model
from ..progress import progress
from .calibrate import METHODS, collect_ranges, load_sets
from .int8 import fuse_lookup_tables, quantize_int8

log = logging.getLogger(__name__)

#: A layer whose sensitivity (how much the cosine of the model's outputs against float32 drops when that layer
#: alone computes in int8, every other layer computing in float on int8-stored weights; on the first 1-4
#: calibration sets) exceeds this computes in float (on int8-stored weights).
FALLBACK_THRESHOLD = 0.002
#: Then more layers, the most sensitive first, stay float until the outputs reach this cosine on up to 4
#: calibration sets.
TARGET_COSINE = 0.995
#: The sensitivity analysis uses up to 4 calibration sets, as many as fit in about this many seconds.
SENSITIVITY_SECONDS = 60.0
RANDOM_WARNING = ("WARNING: --calibration random:N quantizes with ranges from random inputs; this is a smoke test "
                  "and its accuracy figures mean nothing for real data")


class QuantizeError(BorncError):
    """Bad quantization options: unknown mode or method, --keep-float names that are not nodes, no data."""


@dataclass
class QuantizeConfig:
    """What ``--quantize`` asks for. ``calibration``/``validation``: lists of {input name: array};
    ``keep_float``: node names to leave float; ``fallback_threshold``: sensitivity above which a layer is kept
    float (None: no automatic fallback); ``target_cosine``: the output cosine the fallback then works toward."""

    mode: str
    calibration: list = field(default_factory=list)
    validation: list = field(default_factory=list)
    method: str = "percentile"
    keep_float: frozenset = frozenset()
    fallback_threshold: float | None = FALLBACK_THRESHOLD
    target_cosine: float = TARGET_COSINE
    weight_max: int = 127
    fp16_compute: bool = False
    random_calibration: bool = False
    validation_source: str = ""
    report: dict = field(default_factory=dict)
    reached: tuple | None = None     # run state: (output cosine the fallback search reached, calibration sets used)

    @classmethod
    def from_options(cls, model: Model, mode: str, calibration: str | None = None, validation: str | None = None,
                     method: str = "percentile", keep_float: str | None = None,
                     fallback_threshold: float | None = FALLBACK_THRESHOLD,
                     target_cosine: float = TARGET_COSINE) -> "QuantizeConfig":
        """Build a config from CLI-style strings. Without ``validation`` the report uses every fourth
        calibration set, held out of calibration (all sets when there are fewer than 2).

        Raises QuantizeError / InputError for bad options or data."""
        if mode not in ("int8", "fp16"):
            raise QuantizeError(f"--quantize must be int8 or fp16, not {mode!r}")
        if method not in METHODS:
            raise QuantizeError(f"--calibrate-method must be one of {', '.join(METHODS)}, not {method!r}")
        keep = frozenset(k.strip() for k in (keep_float or "").split(",") if k.strip())
        names = {n.name for _, n in model.graph.walk()}
        unknown = sorted(keep - names)
        if unknown:
            raise QuantizeError(f"--keep-float names no node of the model: {', '.join(unknown)}")
        cfg = cls(mode, method=method, keep_float=keep, fallback_threshold=fallback_threshold,
                  target_cosine=target_cosine)
        if mode == "fp16":
            if validation or calibration:
                cal = load_sets(validation or calibration, model)[0]
                cfg.validation, cfg.validation_source = cal, "validation" if validation else "calibration"
            return cfg
        if not calibration:
            raise QuantizeError("--quantize int8 needs calibration data: --calibration CAL.npz (or a folder of "
                                ".npz files, or random:N for a smoke test)")
        cal, cfg.random_calibration = load_sets(calibration, model)
        if validation:
            cfg.calibration, cfg.validation = cal, load_sets(validation, model, seed=1)[0]
            cfg.validation_source = "validation"
        elif len(cal) >= 2:
            cfg.validation = cal[3::4]
            cfg.calibration = [s for i, s in enumerate(cal) if i % 4 != 3]
            cfg.validation_source = "held-out calibration sets (every 4th)"
        else:
            cfg.calibration = cfg.validation = cal
            cfg.validation_source = "the calibration set itself (give --validation for an honest figure)"
        return cfg

    def __call__(self, model: Model) -> Model:
        """The pipeline pass: returns the quantized model and fills ``self.report`` (with the weights bytes of
        the model before and after: constants of the main graph)."""
        if self.mode == "fp16":
            from .fp16 import quantize_fp16, to_float16_compute
            q = to_float16_compute(model) if self.fp16_compute else quantize_fp16(model, self.keep_float)
            self.report = {"mode": "fp16", "compute": "float16" if self.fp16_compute else
                           "float32 on float16-stored weights",
                           **output_report(model, q, self.validation, self.validation_source)}
        else:
            q = self._int8(model)
        self.report["weights_bytes_float32"], self.report["weights_bytes_quantized"] = weight_bytes(model, q)
        self.report["constants_bytes_float32"] = model.param_count()[1]
        self.report["constants_bytes_quantized"] = q.param_count()[1]
        return q

    def _int8(self, model: Model) -> Model:
        self.reached = None
        g = model.graph
        names = set(g.inputs) | {o for n in g.nodes for o in n.outputs if o}
        names = {v for v in names if getattr(g.types.get(v), "dtype", None) == "float32"}
        mean_axes = {n.inputs[0]: (1 if n.op == "Conv" else -1) for n in g.nodes
                     if n.op in ("Conv", "Gemm", "MatMul") and not n.domain and n.inputs}
        ranges, means = collect_ranges(model, self.calibration, names, self.method, mean_axes)

        def build(fallback):
            return quantize_int8(model, ranges, self.keep_float, means=means, weight_only_layers=fallback,
                                 weight_max=self.weight_max)

        q, layers, weight_only = build(set())
        sensitivity: dict[str, float] = {}
        fallback: list[str] = []
        if self.fallback_threshold is not None and layers:
            t0 = time.perf_counter()
            ref = [run(model, self.calibration[0])]
            per_run = (time.perf_counter() - t0) * 2.5           # a quantized run costs about 2.5 float runs
            # as many calibration sets (1 to 4) as keep the sensitivity runs near SENSITIVITY_SECONDS
            n = int(max(1, min(4, len(self.calibration), SENSITIVITY_SECONDS / max(per_run * len(layers), 1e-9))))
            probe = self.calibration[:n]
            ref += [run(model, s) for s in probe[1:]]
            everything = {ly.name for ly in layers}
            base = _cosine(ref, build(everything)[0], probe)       # every layer float on int8-stored weights
            for ly in progress(layers, "sensitivity of each layer", unit="layer"):
                sensitivity[ly.name] = base - _cosine(ref, build(everything - {ly.name})[0], probe)
            fallback = [n for n, v in sensitivity.items() if v > self.fallback_threshold]
            q, layers, weight_only = build(set(fallback))
            rest = sorted((n for n in sensitivity if n not in fallback), key=lambda n: -sensitivity[n])
            step = 1
            check = self.calibration[:max(len(probe), 4)]     # the target is checked on more sets than the probe
            ref = ref + [run(model, s) for s in check[len(probe):]]
            reached = _cosine(ref, q, check)
            while rest and reached < self.target_cosine:     # greedy: the most sensitive next
                fallback += rest[:step]
                rest = rest[step:]
                step *= 2
                q, layers, weight_only = build(set(fallback))
                reached = _cosine(ref, q, check)
            self.reached = (reached, len(check))
        qouts: list = []
        errors = layer_errors(layers, q, self.validation, qouts)
        q = fuse_lookup_tables(q)
        worst = sorted(layers, key=lambda ly: (-sensitivity.get(ly.name, 0.0), -errors.get(ly.name, 0.0)))[:5]
        self.report = {
            "mode": "int8", "calibration_method": self.method, "calibration_sets": len(self.calibration),
            "random_calibration": self.random_calibration,
            "scheme": "activations uint8 per tensor asymmetric; weights int8 symmetric per output channel in "
                      f"[-{self.weight_max}, {self.weight_max}]; bias int32 with bias correction; fixed-point "
                      "requantization (TensorFlow Lite / gemmlowp)",
            "integer_layers": len(layers), "weight_only_int8": weight_only,
            "kept_float": sorted(self.keep_float),
            "fallback_threshold": self.fallback_threshold, "target_cosine": self.target_cosine,
            "fallback_to_float": [{"node": n, "sensitivity": round(sensitivity[n], 6)} for n in fallback],
            "fallback_means": "float computation on int8-stored weights (weight-only)",
            "worst_layers": [{"node": ly.name, "op": ly.op, "layer_error": round(errors.get(ly.name, 0.0), 6),
                              **({"sensitivity": round(sensitivity[ly.name], 6)} if ly.name in sensitivity else {})}
                             for ly in worst],
            **output_report(model, q, self.validation, self.validation_source, qouts),
        }
        if self.random_calibration:
            self.report["warning"] = RANDOM_WARNING
        if self.reached is not None:
            cos, sets = self.reached
            self.report["target_reached"] = {"cosine": round(cos, 6), "sets": sets, "met": cos >= self.target_cosine}
        return q


def weight_bytes(fmodel: Model, qmodel: Model) -> tuple[int, int]:
    """(bytes of the float model's weights, bytes of what stores them in the quantized model): the float constants
    of the main graph, against every constant of the quantized one except integer constants carried over unchanged
    (shapes, axes, indices are not weights)."""
    fc, qc = fmodel.graph.constants, qmodel.graph.constants
    before = sum(int(v.nbytes) for v in fc.values() if isinstance(v, np.ndarray) and v.dtype.kind == "f")
    carried = {k for k, v in fc.items() if isinstance(v, np.ndarray) and v.dtype.kind != "f"}
    after = sum(int(v.nbytes) for k, v in qc.items() if isinstance(v, np.ndarray) and k not in carried)
    return before, after


def _cosine(ref: list, qmodel: Model, sets: list) -> float:
    """The smallest, over outputs, cosine similarity between ``ref`` (float outputs per set) and ``qmodel``'s."""
    got = [run(qmodel, s) for s in sets]
    worst = 1.0
    for k in ref[0]:
        a = np.concatenate([np.asarray(r[k], np.float64).reshape(-1) for r in ref])
        b = np.concatenate([np.asarray(o[k], np.float64).reshape(-1) for o in got])
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        worst = min(worst, float(a @ b / (na * nb)) if na > 0 and nb > 0 else float(na == nb))
    return worst


def layer_errors(layers: list, qmodel: Model, sets: list, outputs: list | None = None) -> dict[str, float]:
    """{layer name: the layer's own output error}, over ``sets``: the mean over output channels of
    ||dequant(y_q) - y_float||_c / ||y_float||_c (channel-wise relative RMS error). The quantized model's
    outputs per set are appended to ``outputs`` when given.

    For each integer layer, the float layer (its original nodes and float weights) runs on the same dequantized
    uint8 input the integer layer received in the quantized model, so the figure is what quantizing this layer's
    weights and output costs, without the error earlier layers pass on. Channels are weighed alike so that a
    channel of small range that per-tensor quantization wipes out counts as fully wrong (depthwise layers)."""
    want = {ly.x_q for ly in layers} | {ly.y_q for ly in layers}
    num: dict[str, np.ndarray] = {}
    den: dict[str, np.ndarray] = {}
    for feeds in sets:
        seen: dict = {}

        def observe(node, outs):
            for name, v in zip(node.outputs, outs):
                if name in want:
                    seen[name] = v

        got = run(qmodel, feeds, observe)
        if outputs is not None:                    # the quantized model's outputs, for output_report
            outputs.append(got)
        for ly in layers:
            if ly.x_q not in seen or ly.y_q not in seen:
                continue
            sx, zx = ly.x_params
            v = (seen[ly.x_q].astype(np.float64) - zx) * sx
            val = {ly.x: v.astype(np.float32), **ly.consts}
            for fn in ly.float_nodes:
                outs = run_node(fn, [val.get(i) if i else None for i in fn.inputs], qmodel.opsets)
                val.update(zip(fn.outputs, outs))
            ref = val[ly.y].astype(np.float64)
            sy, zy = ly.y_params
            got = (seen[ly.y_q].astype(np.float64) - zy) * sy
            ax = 1 if ly.op.startswith("Conv") else ref.ndim - 1
            e = np.moveaxis((got - ref) ** 2, ax, 0).reshape(ref.shape[ax], -1).sum(axis=1)
            r = np.moveaxis(ref ** 2, ax, 0).reshape(ref.shape[ax], -1).sum(axis=1)
            num[ly.name] = num.get(ly.name, 0.0) + e
            den[ly.name] = den.get(ly.name, 0.0) + r
    out = {}
    for k in num:
        d = den[k]
        floor = 1e-6 * d.max() if d.size and d.max() > 0 else 1e-30      # channels that are ~0 in float
        live = d > floor
        out[k] = float(np.mean(np.sqrt(num[k][live] / d[live]))) if live.any() else 0.0
    return out


def output_report(fmodel: Model, qmodel: Model, sets: list, source: str, qoutputs: list | None = None) -> dict:
    """Per output of the quantized model against the float32 one on ``sets``: max and mean abs error, cosine
    similarity (all sets flattened together) and, for classifier outputs (one axis longer than 1), top-1
    agreement (fraction of sets whose argmax matches). ``qoutputs``: the quantized model's outputs per set when
    already computed."""
    if not sets:
        return {"validation": "none given"}
    rows: dict[str, dict] = {}
    for j, feeds in enumerate(sets):
        f = run(fmodel, feeds)
        q = qoutputs[j] if qoutputs is not None else run(qmodel, feeds)
        for k in fmodel.graph.outputs:
            a, b = np.asarray(f[k], np.float64), np.asarray(q[k], np.float64)
            r = rows.setdefault(k, {"f": [], "q": [], "top1": []})
            r["f"].append(a.reshape(-1))
            r["q"].append(b.reshape(-1))
            if sum(d > 1 for d in a.shape) == 1 and a.dtype.kind == "f":
                r["top1"].append(int(np.argmax(a)) == int(np.argmax(b)))
    out = {}
    for k, r in rows.items():
        a, b = np.concatenate(r["f"]), np.concatenate(r["q"])
        d = np.abs(a - b)
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        cos = float(a @ b / (na * nb)) if na > 0 and nb > 0 else float(na == nb)
        row = {"max_abs_err": float(d.max()) if d.size else 0.0, "mean_abs_err": float(d.mean()) if d.size else 0.0,
               "cosine": cos}
        if r["top1"]:
            row["top1_agreement"] = float(np.mean(r["top1"]))
        out[k] = row
    return {"validation": f"{len(sets)} sets from {source}", "outputs": out}


def format_report(report: dict, warning: bool = True) -> list[str]:
    """The report as lines for the terminal (``warning``: include the random-calibration warning, for callers
    that have not printed it already); a missed --target-cosine is said plainly, with what to try next."""
    lines = []
    weights_before, weights_after = report["weights_bytes_float32"], report["weights_bytes_quantized"]
    if report.get("warning") and warning:
        lines.append(report["warning"])
    lines.append(f"quantization {report['mode']}: weights {weights_before:,} -> {weights_after:,} bytes "
                 f"({weights_before / max(weights_after, 1):.2f}x smaller)")
    if report["mode"] == "int8":
        lines.append(f"  {report['integer_layers']} integer layers, {len(report['weight_only_int8'])} weight-only int8 "
                     f"tensors; calibration {report['calibration_method']} on {report['calibration_sets']} sets")
        if report["fallback_to_float"]:
            lines.append(f"  float on int8 weights ({len(report['fallback_to_float'])} layers: sensitivity > "
                         f"{report['fallback_threshold']}, then the most sensitive until cosine >= "
                         f"{report['target_cosine']}): " + ", ".join(f"{f['node']} {f['sensitivity']:.2g}"
                                                                      for f in report["fallback_to_float"]))
        if report["kept_float"]:
            lines.append(f"  kept float (--keep-float): {', '.join(report['kept_float'])}")
        if report["worst_layers"]:
            lines.append("  largest layer errors (own output error; sensitivity): " + ", ".join(
                f"{w['node']} {w['layer_error']:.3g}" + (f"; {w['sensitivity']:.2g}" if "sensitivity" in w else "")
                for w in report["worst_layers"]))
    t = report.get("target_reached")
    if t and not t["met"]:
        lines.append(f"  TARGET MISSED: output cosine {t['cosine']:.4f} on {t['sets']} calibration set(s), below --target-cosine "
                     f"{report['target_cosine']}, with {report['integer_layers']} integer layer(s) left. Try real calibration "
                     "data (--calibration DIR or .npz)" + (" instead of random inputs" if report.get("random_calibration") else "")
                     + ", --calibrate-method percentile or entropy, --keep-float on the worst layers above, or --quantize fp16")
    lines.append(f"  against float32 on {report['validation']}:")
    for k, r in report.get("outputs", {}).items():
        lines.append(f"    {k}: cosine {r['cosine']:.5f}, max abs err {r['max_abs_err']:.4g}, mean abs err "
                     f"{r['mean_abs_err']:.4g}" + (f", top-1 agreement {100 * r['top1_agreement']:.1f}%"
                                                   if "top1_agreement" in r else ""))
    return lines

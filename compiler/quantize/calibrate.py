"""Calibration: activation ranges from running the float model on sample inputs with the reference interpreter.

Methods (``--calibrate-method``):

- ``minmax``: the smallest and largest value seen over all calibration sets.
- ``percentile``: the 0.01th and 99.99th percentiles (``PERCENTILE``) of the values seen, from a uniform
  subsample of at most ``SAMPLE`` values per tensor per set (exact min and max are kept as bounds).
- ``entropy``: the clipping threshold T on |x| that minimizes the Kullback-Leibler divergence between the
  2048-bin histogram of |x| and its quantization to 128 levels (255 levels for non-negative tensors), as in
  S. Migacz, "8-bit Inference with TensorRT", GTC 2017. The range is then [max(min, -T), min(max, T)].

Calibration sets come from ``.npz`` files keyed by input name (one set per file, or many stacked on a new
leading axis), a folder of them, or ``random:N`` (seeded random inputs: for smoke tests only).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..interpreter import run
from ..ir.graph import Model
from ..ir.types import TensorType, np_dtype
from ..progress import progress

METHODS = ("minmax", "percentile", "entropy")
PERCENTILE = 99.99
SAMPLE = 1 << 16
BINS = 2048


def load_sets(spec: str, model: Model, seed: int = 0) -> tuple[list[dict], bool]:
    """Input sets from ``spec`` (an .npz file, a folder of .npz files, or ``random:N``) for ``model``'s inputs.

    Returns (sets, is_random). Each set maps every input name to an array of the input's shape and dtype; an
    .npz whose arrays have one more leading axis than the input holds that many sets. Raises InputError for a
    missing file, a missing or unknown input name, or a wrong shape or dtype."""
    types = model.input_types()
    if spec.startswith("random:"):
        try:
            n = int(spec.split(":", 1)[1])
        except ValueError:
            raise InputError(f"--calibration {spec!r}: expected random:N with N a positive integer") from None
        if n < 1:
            raise InputError(f"--calibration {spec!r}: N must be at least 1")
        rng = np.random.default_rng(seed)
        return [{k: _random(t, rng) for k, t in types.items()} for _ in range(n)], True
    p = Path(spec)
    files = sorted(p.glob("*.npz")) if p.is_dir() else [p]
    if not files or not all(f.is_file() for f in files):
        raise InputError(f"calibration data {spec!r}: no such .npz file or folder of .npz files")
    sets: list[dict] = []
    for f in files:
        try:
            with np.load(f, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except Exception as ex:  # noqa: BLE001 - any unreadable file is one clear input error
            raise InputError(f"calibration file {f}: not a readable .npz ({ex})") from None
        sets.extend(_split(arrays, types, f))
    return sets, False


def _random(t: TensorType, rng) -> np.ndarray:
    dt = np_dtype(t.dtype)
    if dt.kind == "f":
        return rng.standard_normal(t.shape).astype(dt)
    if dt.kind == "b":
        return rng.integers(0, 2, t.shape).astype(dt)
    return rng.integers(0, 16, t.shape).astype(dt)


def _split(arrays: dict, types: dict, f: Path) -> list[dict]:
    unknown = sorted(set(arrays) - set(types))
    missing = sorted(set(types) - set(arrays))
    if unknown or missing:
        raise InputError(f"calibration file {f}: " + "; ".join(
            ([f"unknown input(s) {', '.join(unknown)}"] if unknown else []) +
            ([f"missing input(s) {', '.join(missing)}"] if missing else [])) +
            f" (the model's inputs: {', '.join(types)})")
    counts = set()
    for k, t in types.items():
        a = arrays[k]
        if a.dtype != np_dtype(t.dtype):
            raise InputError(f"calibration file {f}: input {k!r} has dtype {a.dtype}, the model takes {t.dtype}")
        if tuple(a.shape) == tuple(t.shape):
            counts.add(0)
        elif tuple(a.shape[1:]) == tuple(t.shape):
            counts.add(a.shape[0])
        else:
            raise InputError(f"calibration file {f}: input {k!r} has shape {list(a.shape)}, the model takes "
                             f"{list(t.shape)} (or [n, ...] for n sets)")
    if len(counts) != 1:
        raise InputError(f"calibration file {f}: inputs hold different numbers of sets")
    n = counts.pop()
    if n == 0:
        return [dict(arrays)]
    return [{k: arrays[k][i] for k in types} for i in range(n)]


class _Stats:
    """Running min/max and a bounded uniform subsample of one tensor's values."""

    def __init__(self, axis=None):
        self.lo, self.hi, self.samples = np.inf, -np.inf, []
        self.axis, self.sum, self.count = axis, None, 0

    def add(self, v: np.ndarray, rng, keep_samples: bool) -> None:
        if self.axis is not None and v.ndim:
            ax = self.axis % v.ndim
            s = np.moveaxis(np.asarray(v, np.float64), ax, 0).reshape(v.shape[ax], -1)
            self.sum = s.sum(axis=1) if self.sum is None else self.sum + s.sum(axis=1)
            self.count += s.shape[1]
        v = np.asarray(v, dtype=np.float32).reshape(-1)
        v = v[np.isfinite(v)]
        if not v.size:
            return
        self.lo, self.hi = min(self.lo, float(v.min())), max(self.hi, float(v.max()))
        if keep_samples:
            self.samples.append(v if v.size <= SAMPLE else v[rng.integers(0, v.size, SAMPLE)])


def collect_ranges(model: Model, sets: list[dict], names: set[str], method: str = "minmax",
                   mean_axes: dict | None = None) -> tuple[dict[str, tuple], dict[str, np.ndarray]]:
    """({value name: (lo, hi)}, {value name: per-channel means}) for the float tensors ``names`` of ``model``
    over the calibration ``sets``; means are taken along the axis ``mean_axes`` gives for a name (float64).

    Runs the reference interpreter once per set. Raises ValueError for an unknown method."""
    if method not in METHODS:
        raise ValueError(f"calibrate method must be one of {', '.join(METHODS)}, not {method!r}")
    mean_axes = mean_axes or {}
    stats = {n: _Stats(mean_axes.get(n)) for n in names}
    rng = np.random.default_rng(0)
    keep = method != "minmax"

    def observe(node, outs):
        for name, v in zip(node.outputs, outs):
            if name in stats and isinstance(v, np.ndarray):
                stats[name].add(v, rng, keep)

    for feeds in progress(sets, "calibration", unit="set"):
        for k, v in feeds.items():
            if k in stats:
                stats[k].add(v, rng, keep)
        run(model, feeds, observe)
    out = {}
    for n, s in stats.items():
        if s.lo > s.hi:
            continue
        if method == "minmax":
            out[n] = (s.lo, s.hi)
        elif method == "percentile":
            v = np.concatenate(s.samples)
            lo, hi = np.percentile(v, [100 - PERCENTILE, PERCENTILE])
            out[n] = (max(s.lo, float(lo)), min(s.hi, float(hi)))
        else:
            t = entropy_threshold(np.abs(np.concatenate(s.samples)), 255 if s.lo >= 0 else 128)
            out[n] = (max(s.lo, -t), min(s.hi, t))
    means = {n: s.sum / s.count for n, s in stats.items() if s.sum is not None and s.count}
    return out, means


def entropy_threshold(a: np.ndarray, levels: int = 128, bins: int = BINS) -> float:
    """The threshold T on the non-negative values ``a`` whose clipped ``levels``-level quantization keeps the
    histogram closest in KL divergence (TensorRT's entropy calibration, Migacz 2017). Returns max(a) when the
    values do not spread over the histogram."""
    top = float(a.max()) if a.size else 0.0
    if top <= 0:
        return 0.0
    hist, edges = np.histogram(a, bins=bins, range=(0.0, top))
    hist = hist.astype(np.float64)
    best, best_i = np.inf, bins
    for i in range(levels, bins + 1, 16):
        h = hist[:i]
        p = h.copy()
        p[-1] += hist[i:].sum()                              # outliers clipped into the last bin
        starts = (np.arange(levels) * i) // levels
        sizes = np.diff(np.append(starts, i))
        used = h > 0
        sums = np.add.reduceat(h, starts)                    # the candidate: i bins merged into `levels` groups,
        counts = np.add.reduceat(used.astype(np.float64), starts)   # each group's mass spread over its used bins
        per = np.repeat(np.divide(sums, counts, out=np.zeros(levels), where=counts > 0), sizes)
        q = np.where(used, per, 0.0)
        nz = p > 0
        q = np.where(nz & (q <= 0), 1e-6 * p.sum(), q)     # smoothing: no empty candidate bin under P's mass
        pn, qn = p[nz] / p.sum(), q[nz] / q.sum()
        kl = float(np.sum(pn * np.log(pn / qn)))
        if kl < best:
            best, best_i = kl, i
    return float(edges[best_i])

"""Golden cases: recorded inputs and expected outputs that every target must reproduce.

Layout (``golden/<case>/``): ``case.toml`` (model reference, bound shapes, tolerances, targets),
``inputs/*.npy``, ``expected/*.npy``. The model reference is one of: ``path`` (relative to the repository
root), ``package_file`` (``"pkg:relative/path"`` inside an installed Python package) or ``pypi`` (package,
version, member, sha256; fetched and cached by :mod:`bornc.fetch`). ``bornc golden record`` computes the
expected outputs with the reference interpreter and cross-checks them with onnxruntime (when installed);
``bornc golden check`` runs each case on an executor and compares with
``|got - expected| <= atol + rtol * |expected|`` per output.
"""
from __future__ import annotations

import importlib.util
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import GoldenError
from .executors import get_executor
from .fetch import fetch_pypi_member, sha256_file
from .frontend.onnx_import import load_onnx
from .interpreter import run


def safe_name(name: str) -> str:
    """File-name-safe form of a value name (anything but letters, digits, '.', '-' and '_' becomes '_')."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


@dataclass
class GoldenCase:
    """One parsed golden case. ``tolerances`` maps output name -> (rtol, atol); ``default_tol`` applies otherwise."""

    name: str
    folder: Path
    model: dict
    input_shapes: dict = field(default_factory=dict)
    bind: dict = field(default_factory=dict)
    tolerances: dict = field(default_factory=dict)
    default_tol: tuple = (1e-4, 1e-5)
    targets: list = field(default_factory=lambda: ["reference"])
    inputs: dict = field(default_factory=dict)      # input name -> file name under inputs/
    outputs: dict = field(default_factory=dict)     # output name -> file name under expected/
    ort_check: bool = True
    quantize: dict = field(default_factory=dict)     # [quantize]: mode, calibration (file in the case folder), ...

    def tolerance(self, output: str) -> tuple[float, float]:
        return self.tolerances.get(output, self.default_tol)


def repo_root() -> Path:
    """The folder holding ``golden/`` (the repository root in a checkout, else the current folder)."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "golden").is_dir() else Path.cwd()


def golden_dir() -> Path:
    return repo_root() / "golden"


def load_case(name_or_path: str | Path) -> GoldenCase:
    """Parse ``golden/<case>/case.toml``; GoldenError if it is missing or malformed."""
    p = Path(name_or_path)
    folder = p if (p / "case.toml").is_file() else golden_dir() / str(name_or_path)
    f = folder / "case.toml"
    if not f.is_file():
        raise GoldenError(f"no golden case {str(name_or_path)!r} (looked for {f})")
    try:
        data = tomllib.loads(f.read_text())
    except tomllib.TOMLDecodeError as ex:
        raise GoldenError(f"{f}: {ex}") from None
    if "model" not in data:
        raise GoldenError(f"{f}: missing [model] table")
    tol = data.get("tolerance", {})
    default = tol.get("default", {"rtol": 1e-4, "atol": 1e-5})
    per = {k: (float(v["rtol"]), float(v["atol"])) for k, v in tol.items() if k != "default"}
    return GoldenCase(folder.name, folder, data["model"], {k: tuple(v) for k, v in data.get("input_shapes", {}).items()},
                      dict(data.get("bind", {})), per, (float(default["rtol"]), float(default["atol"])),
                      list(data.get("targets", ["reference"])), dict(data.get("inputs", {})), dict(data.get("outputs", {})),
                      bool(data.get("ort_check", True)), dict(data.get("quantize", {})))


def list_cases() -> list[str]:
    return sorted(p.parent.name for p in golden_dir().glob("*/case.toml"))


def model_path(case: GoldenCase) -> Path:
    """Resolve the case's model reference to a local file (fetching from PyPI when needed)."""
    m = case.model
    if "path" in m:               # relative to the case folder, else to the repository root
        p = case.folder / m["path"] if (case.folder / m["path"]).is_file() else repo_root() / m["path"]
    elif "package_file" in m:
        pkg, rel = m["package_file"].split(":", 1)
        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.submodule_search_locations:
            raise GoldenError(f"case {case.name}: Python package {pkg!r} is not installed")
        p = Path(list(spec.submodule_search_locations)[0]) / rel
    elif "pypi" in m:
        q = m["pypi"]
        return fetch_pypi_member(q["package"], q["version"], q["member"], q["sha256"], q.get("platform"))
    else:
        raise GoldenError(f"case {case.name}: [model] needs path, package_file or pypi")
    if not p.is_file():
        raise GoldenError(f"case {case.name}: model file {p} not found")
    if "sha256" in m and sha256_file(p) != m["sha256"]:
        raise GoldenError(f"case {case.name}: {p} does not match the recorded sha256")
    return p


def load_case_model(case: GoldenCase):
    """The case's model; for a quantized case ([quantize] in case.toml) the quantized IR, whose reference run is
    the integer path every target must reproduce."""
    model = load_onnx(model_path(case), input_shapes=case.input_shapes, bind=case.bind)
    return quantized_case_model(case, model) if case.quantize else model


def quantized_case_model(case: GoldenCase, model):
    """The quantized model for a case with a [quantize] table: mode, calibration (an .npz in
    the case folder), and optionally method, keep_float, fallback_threshold ("none" for no fallback)."""
    from .passes.pipeline import optimize
    from .quantize import QuantizeConfig
    q = case.quantize
    thr = q.get("fallback_threshold", 0.002)
    cfg = QuantizeConfig.from_options(model, q.get("mode", "int8"), str(case.folder / q["calibration"]),
                                      str(case.folder / q["validation"]) if "validation" in q else None,
                                      q.get("method", "percentile"), q.get("keep_float"),
                                      None if thr == "none" else float(thr))
    return optimize(model, 2, quantize=cfg)


def case_inputs(case: GoldenCase) -> dict[str, np.ndarray]:
    return {name: np.load(case.folder / "inputs" / f, allow_pickle=False) for name, f in case.inputs.items()}


def compare(got: np.ndarray, exp: np.ndarray, rtol: float, atol: float) -> tuple[bool, float, float]:
    """(ok, max abs error, max rel error) for ``|got-exp| <= atol + rtol*|exp|`` (NaNs must match; equal infinities
    are no error)."""
    if got.shape != exp.shape:
        return False, float("inf"), float("inf")
    g, e = got.astype(np.float64), exp.astype(np.float64)
    if e.size == 0:
        return True, 0.0, 0.0
    with np.errstate(invalid="ignore"):
        err = np.abs(g - e)
    nan_ok = np.isnan(g) == np.isnan(e)
    err = np.where((np.isnan(e) & np.isnan(g)) | (g == e), 0.0, err)        # NaN = NaN, inf = inf
    rel = err / np.maximum(np.abs(e), 1e-30)
    ok = bool(np.all(nan_ok) and np.all(err <= atol + rtol * np.abs(e)))
    return ok, float(np.nanmax(err)), float(np.nanmax(np.where(err == 0, 0.0, rel)))


def record(case: GoldenCase, ort: bool = True) -> list[str]:
    """Compute and write ``expected/*.npy`` with the reference interpreter; returns report lines.

    When onnxruntime is installed (and ``ort``), its outputs must agree within the case's tolerances,
    otherwise GoldenError is raised and nothing is written."""
    model = load_case_model(case)
    feeds = case_inputs(case)
    outs = run(model, feeds)
    lines = []
    if case.quantize:
        lines += _check_against_float(case, feeds, outs)
    elif ort and case.ort_check and importlib.util.find_spec("onnxruntime") is not None:
        import onnxruntime as ort_mod
        so = ort_mod.SessionOptions()
        so.graph_optimization_level = ort_mod.GraphOptimizationLevel.ORT_DISABLE_ALL
        so.intra_op_num_threads = 1
        sess = ort_mod.InferenceSession(str(model_path(case)), so, providers=["CPUExecutionProvider"])
        ort_feeds = dict(feeds)
        ort_feeds.update({k: np.asarray(v) for k, v in case.bind.items()})
        names = [o.name for o in sess.get_outputs()]
        res = dict(zip(names, sess.run(names, {i.name: ort_feeds[i.name] for i in sess.get_inputs()})))
        for name, val in outs.items():
            rtol, atol = case.tolerance(name)
            ok, err, _ = compare(val, res[name], rtol, atol)
            lines.append(f"{case.name}: {name}: reference vs onnxruntime max abs err {err:.3g} ({'ok' if ok else 'MISMATCH'})")
            if not ok:
                raise GoldenError(f"case {case.name}: output {name!r}: reference and onnxruntime disagree "
                                  f"(max abs err {err:.3g} > atol {atol} + rtol {rtol}); nothing recorded")
    exp_dir = case.folder / "expected"
    exp_dir.mkdir(exist_ok=True)
    for name, val in outs.items():
        f = case.outputs.get(name, safe_name(name) + ".npy")
        np.save(exp_dir / f, val)
        lines.append(f"{case.name}: wrote expected/{f} {val.dtype}{list(val.shape)}")
    return lines


def _check_against_float(case: GoldenCase, feeds: dict, outs: dict) -> list[str]:
    """A quantized case's outputs must agree with the float model's: cosine >= [quantize] min_cosine (0.99)."""
    floats = run(load_onnx(model_path(case), input_shapes=case.input_shapes, bind=case.bind), feeds)
    need = float(case.quantize.get("min_cosine", 0.99))
    lines = []
    for name, val in outs.items():
        a, b = np.asarray(floats[name], np.float64).reshape(-1), np.asarray(val, np.float64).reshape(-1)
        cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))) if a.any() and b.any() else float(np.array_equal(a, b))
        lines.append(f"{case.name}: {name}: {case.quantize.get('mode', 'int8')} vs float32 cosine {cos:.5f} (need {need})")
        if cos < need:
            raise GoldenError(f"case {case.name}: output {name!r}: quantized and float32 outputs disagree (cosine "
                              f"{cos:.5f} < {need}); nothing recorded")
    return lines


@dataclass
class CheckRow:
    case: str
    output: str
    max_abs: float
    max_rel: float
    rtol: float
    atol: float
    ok: bool
    note: str = ""


def check(case: GoldenCase, target: str = "reference") -> list[CheckRow]:
    """Run the case on the executor for ``target`` and compare every output with its expected file."""
    model = load_case_model(case)
    outs = get_executor(target).prepare(model)(case_inputs(case))
    rows = []
    for name in model.graph.outputs:
        f = case.folder / "expected" / case.outputs.get(name, safe_name(name) + ".npy")
        rtol, atol = case.tolerance(name)
        if not f.is_file():
            rows.append(CheckRow(case.name, name, float("nan"), float("nan"), rtol, atol, False, "no expected file (run golden record)"))
            continue
        ok, err, rel = compare(np.asarray(outs[name]), np.load(f, allow_pickle=False), rtol, atol)
        rows.append(CheckRow(case.name, name, err, rel, rtol, atol, ok))
    return rows

"""The python target end to end: bornrt.py + model.py + weights.bin, run in-process, from its own command
line, and in a venv with the oldest numpy that installs here (Python 3.8 when this machine has one).

Tolerances: golden cases use the tolerances in their case.toml; real models those their card suggests.
"""
import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np
import pytest

import bornc
from bornc import golden
from bornc.backends.python.runner import load_python_artifact
from bornc.bench import bench_artifact
from bornc.compile import compile_model
from bornc.conformance import run_conformance
from ..conformance_guard import assert_no_regressions
from bornc.errors import ArtifactError, InputError

from ..conftest import load_shared_model_case, shared_model_dirs


@pytest.mark.parametrize("case", [c for c in golden.list_cases() if "python" in golden.load_case(c).targets])
def test_golden_case_on_python(case):
    rows = golden.check(golden.load_case(case), "python")
    assert rows and all(r.ok for r in rows), [(r.output, r.max_abs, r.note) for r in rows if not r.ok]


@pytest.mark.skipif(not shared_model_dirs(), reason="no ../shared/models here (golden cases cover real models)")
@pytest.mark.parametrize("folder", shared_model_dirs(), ids=lambda p: p.name)
def test_shared_model_on_python(folder, tmp_path):
    case = load_shared_model_case(folder)
    shapes = {k: v.shape for k, v in case["inputs"].items() if v.ndim}
    model = bornc.load_onnx(folder / "model.onnx", input_shapes=shapes)
    compile_model(model, "python", tmp_path / "out")
    outs = load_python_artifact(tmp_path / "out")(case["inputs"])
    for name, exp in case["expected"].items():
        rtol, atol = case["tol"].get(name, (1e-4, 1e-5))
        ok, err, _ = golden.compare(np.asarray(outs[name]), exp, rtol, atol)
        assert ok, f"{folder.name}:{name} max abs err {err:.3g}"


@pytest.fixture(scope="module")
def cls_artifact(tmp_path_factory):
    """ppocr cls compiled for python, with its golden input as self-test data."""
    case = golden.load_case("ppocr_mobile_v2_cls")
    model = golden.load_case_model(case)
    feeds = golden.case_inputs(case)
    out = tmp_path_factory.mktemp("py") / "cls"
    compile_model(model, "python", out, self_test={"inputs": feeds, "outputs": bornc.run(model, feeds)})
    return out, model, feeds


def test_artifact_is_self_contained_and_checks_itself(cls_artifact, tmp_path):
    out, model, feeds = cls_artifact
    files = sorted(p.name for p in out.iterdir())
    assert files == ["bornrt.py", "manifest.json", "model.py", "selftest.npz", "weights.bin"]
    m = json.loads((out / "manifest.json").read_text())
    assert m["backend"] == "python" and m["arena_bytes"] > 0 and len(m["weights_sha256"]) == 64
    # the device has no bornc: run bornrt.py with a bare interpreter path (-I: isolated, no site-packages of ours)
    dev = tmp_path / "device"
    shutil.copytree(out, dev)
    r = subprocess.run([sys.executable, "bornrt.py", ".", "--self-test"], cwd=dev, capture_output=True, text=True)
    assert r.returncode == 0 and "self-test passed" in r.stdout, r.stdout + r.stderr
    np.save(tmp_path / "x.npy", feeds["x"])
    r = subprocess.run([sys.executable, str(dev / "bornrt.py"), str(dev), "--input", f"x={tmp_path / 'x.npy'}",
                        "-o", str(tmp_path / "y.npz")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    exp = bornc.run(model, feeds)
    with np.load(tmp_path / "y.npz") as z:
        for k, v in exp.items():
            np.testing.assert_allclose(z[k], v, rtol=1e-5, atol=1e-6)


def test_bad_inputs_are_clear_errors(cls_artifact, tmp_path):
    out, model, feeds = cls_artifact
    run = load_python_artifact(out)
    with pytest.raises(InputError, match="unknown input"):
        run({"y": feeds["x"]})
    with pytest.raises(InputError, match="expected shape"):
        run({"x": feeds["x"][:, :, :10]})
    with pytest.raises(InputError, match="expected dtype"):
        run({"x": feeds["x"].astype(np.float64)})
    np.save(tmp_path / "bad.npy", feeds["x"][:, :2])
    r = subprocess.run([sys.executable, str(out / "bornrt.py"), str(out), "--input", f"x={tmp_path / 'bad.npy'}"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("bornrt: error: input 'x': expected shape") and "Traceback" not in r.stderr


def test_corrupted_weights_are_refused(cls_artifact, tmp_path):
    out, _, _ = cls_artifact
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    data = bytearray((bad / "weights.bin").read_bytes())
    data[100] ^= 0xFF
    (bad / "weights.bin").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="SHA-256"):
        load_python_artifact(bad)


def test_inference_allocates_little_after_the_first_call(cls_artifact):
    """Intermediates live in the arena and scratch is kept per step: what one inference still allocates
    (numpy temporaries of a few activation kernels) must stay far below the arena."""
    out, _, feeds = cls_artifact
    r = bench_artifact(out, feeds=feeds, runs=3, warmup=1)
    m = json.loads((out / "manifest.json").read_text())
    assert r["allocated_bytes_per_inference"] < m["arena_bytes"] / 20, (r["allocated_bytes_per_inference"], m["arena_bytes"])
    assert r["bornc_ms"] > 0


def test_outputs_are_views_into_plan_and_runs_repeat(cls_artifact):
    out, model, feeds = cls_artifact
    run = load_python_artifact(out)
    a = run(feeds)
    b = run(feeds)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    # every intermediate of fixed shape is a view into the one arena
    arena = run.model.arena
    views = [v for v in run.model.v if isinstance(v, np.ndarray) and v.base is not None and np.shares_memory(v, arena)]
    assert len(views) >= len([t for t in json.loads((out / "manifest.json").read_text())["plan"]["tensors"]]) // 2


def _oldest_python_and_numpy():
    """(python executable, numpy requirement): Python 3.8 with numpy 1.21 when pyenv or PATH has a 3.8, else this
    interpreter with the oldest numpy that has a wheel for it."""
    candidates = [shutil.which("python3.8"), str(Path.home() / ".pyenv" / "versions" / "3.8.18" / "bin" / "python3.8")]
    for c in candidates:
        if c and Path(c).exists():
            try:
                subprocess.run([c, "-c", "import venv"], check=True, capture_output=True)
                return c, "numpy==1.21.6"
            except (subprocess.CalledProcessError, OSError):
                continue
    minor = sys.version_info[:2]
    oldest = {(3, 9): "1.21.6", (3, 10): "1.21.6", (3, 11): "1.23.2", (3, 12): "1.26.0"}.get(minor, "1.26.4")
    return sys.executable, f"numpy=={oldest}"


@pytest.mark.slow
def test_runs_with_the_oldest_numpy(cls_artifact, tmp_path):
    out, model, feeds = cls_artifact
    py, req = _oldest_python_and_numpy()
    env_dir = tmp_path / "venv"
    subprocess.run([py, "-m", "venv", str(env_dir)], check=True)
    vpy = env_dir / "bin" / "python"
    r = subprocess.run([str(vpy), "-m", "pip", "install", "-q", "--only-binary=:all:", req], capture_output=True, text=True)
    assert r.returncode == 0, f"pip install {req} failed: {r.stderr[-500:]}"
    np.save(tmp_path / "x.npy", feeds["x"])
    r = subprocess.run([str(vpy), str(out / "bornrt.py"), str(out), "--input", f"x={tmp_path / 'x.npy'}", "-o", str(tmp_path / "y.npz")],
                       capture_output=True, text=True, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert r.returncode == 0, r.stderr
    ver = subprocess.run([str(vpy), "-c", "import numpy, sys; print(numpy.__version__, sys.version_info[:2])"],
                         capture_output=True, text=True).stdout
    assert req.split("==")[1] in ver
    exp = bornc.run(model, feeds)
    with np.load(tmp_path / "y.npz") as z:
        for k, v in exp.items():
            np.testing.assert_allclose(z[k], v, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_conformance_of_python_executor():
    """All ONNX node test cases through the python target; the figure is recorded in docs/conformance-python.json,
    and no case that passed there may fail now."""
    res = run_conformance("python")
    assert_no_regressions(res)
    assert res["total"] >= 1800 and res["passed"] + res["failed"] + res["unsupported"] == res["total"]
    rate = res["passed"] / res["total"]
    assert rate >= GOAL, f"{res['passed']}/{res['total']} = {rate:.1%}"


#: The issue's goal is 85%; see the closing note for where the python executor stands.
GOAL = 0.85

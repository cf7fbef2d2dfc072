"""The wheel: built from this checkout, installed into a fresh virtual environment, used from there.

Checks that templates/, runtime/ and targets/ ship as package data and that ``bornc`` works without the source
tree. Needs the package index for the dependencies; skips, saying so, when it cannot be reached.
"""
import os
import subprocess
import sys
import venv
from pathlib import Path

import onnx
import pytest

from .conftest import ROOT

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / "light_squeezenet.onnx"


def _run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, **kw)


@pytest.mark.slow
def test_wheel_installs_and_runs_in_fresh_venv(tmp_path):
    r = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(ROOT)])
    assert r.returncode == 0, r.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("bornc-*.whl"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    r = _run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)])
    if r.returncode and ("Could not find a version" in r.stderr or "NewConnectionError" in r.stderr or "Network" in r.stderr):
        pytest.skip(f"package index unreachable: {r.stderr.strip().splitlines()[-1]}")
    assert r.returncode == 0, r.stderr[-2000:]
    exe = env_dir / "bin" / "bornc"
    clean_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    r = _run([str(exe), "--version"], cwd=tmp_path, env=clean_env)
    assert r.returncode == 0 and r.stdout.startswith("bornc "), r.stderr
    r = _run([str(exe), "inspect", str(LIGHT)], cwd=tmp_path, env=clean_env)
    assert r.returncode == 0 and "Conv" in r.stdout and "unsupported ops: none" in r.stdout, r.stderr
    r = _run([str(exe), "targets"], cwd=tmp_path, env=clean_env)
    assert r.returncode == 0 and "rpi4" in r.stdout, r.stderr
    r = _run([str(py), "-c", "import bornc, pathlib; from bornc.resources import resource_dir; "
              "print(pathlib.Path(bornc.__file__).parent); print(resource_dir('targets'))"], cwd=tmp_path, env=clean_env)
    pkg, targets = r.stdout.split()
    assert str(env_dir) in pkg and str(env_dir) in targets, "bornc must come from the venv, not the checkout"
    # the installed package compiles and runs: C for the host (the compiler is here) and the python target
    for target in ("x86_64", "python"):
        r = _run([str(exe), "compile", str(LIGHT), "--target", target, "-o", str(tmp_path / target)], cwd=tmp_path, env=clean_env)
        assert r.returncode == 0, r.stdout + r.stderr
        assert (tmp_path / target / "manifest.json").is_file()
    r = _run([str(exe), "run", str(tmp_path / "python"), "-o", str(tmp_path / "y.npz")], cwd=tmp_path, env=clean_env)
    assert r.returncode in (0, 2) and "Traceback" not in r.stderr, r.stderr

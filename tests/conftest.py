"""Shared fixtures: the real-model corpus in ../shared/models (optional) and helpers to run the CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Tests that took longer than this (seconds, in the committed .test_durations of a full run) are marked slow, so
#: ``pytest -m "not slow"`` is the quick tier. Refresh the file with ``pytest -n auto --store-durations``.
SLOW_SECONDS = 2.0
#: Tests longer than this run first (the sort is stable: the others keep their order and their module fixtures).
FIRST_SECONDS = 60.0
SHARED_MODELS = Path(os.environ.get("BORNC_SHARED_MODELS", ROOT.parent / "shared" / "models"))


def shared_model_dirs() -> list[Path]:
    if not SHARED_MODELS.is_dir():
        return []
    return sorted(p for p in SHARED_MODELS.iterdir() if (p / "model.onnx").is_file())


def load_shared_model_case(d: Path) -> dict:
    """Inputs (by model input name), expected outputs and per-output tolerances of a ../shared model folder."""
    card = json.loads((d / "card.json").read_text())
    inputs = {i["name"]: np.load(d / i["file"]) for i in card["inputs"]}
    expected = {o["name"]: np.load(d / o["file"]) for o in card["outputs"]}
    tol = {k: (float(v["rtol"]), float(v["atol"])) for k, v in card.get("suggested_tolerance", {}).items()}
    return {"card": card, "inputs": inputs, "expected": expected, "tol": tol}


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m bornc ARGS`` and capture its output."""
    return subprocess.run([sys.executable, "-m", "bornc", *args], capture_output=True, text=True, cwd=cwd or ROOT, timeout=600)


@pytest.fixture
def cli():
    return run_cli


def pytest_collection_modifyitems(config, items):
    """Mark as slow every test whose committed duration exceeds SLOW_SECONDS (besides those marked by hand)."""
    path = ROOT / ".test_durations"
    durations = json.loads(path.read_text()) if path.is_file() else {}
    for item in items:
        if durations.get(item.nodeid, 0.0) > SLOW_SECONDS:
            item.add_marker(pytest.mark.slow)
    # the longest tests first (longest processing time first), so that pytest-xdist's workers finish together
    items.sort(key=lambda it: -durations.get(it.nodeid, 0.0) if durations.get(it.nodeid, 0.0) > FIRST_SECONDS else 0.0)

"""The real models the pass and planner tests run over: ../shared/models (when present), the onnx light_*
models, and the golden cases fetched from PyPI (skipped, saying so, without network)."""
from pathlib import Path

import numpy as np
import onnx
import pytest

import bornc
from bornc import golden
from bornc.fetch import FetchError

from .conftest import load_shared_model_case, shared_model_dirs

LIGHT = sorted((Path(onnx.__file__).parent / "backend" / "test" / "data" / "light").glob("light_*.onnx"))


def corpus_ids() -> list[str]:
    ids = [f"shared:{d.name}" for d in shared_model_dirs()]
    ids += [f"light:{p.stem}" for p in LIGHT]
    ids += [f"golden:{c}" for c in golden.list_cases() if "pypi" in golden.load_case(c).model]
    return ids


def load_corpus_model(ident: str):
    """(model, feeds, tolerances by output) for a corpus id."""
    kind, name = ident.split(":", 1)
    if kind == "shared":
        d = next(d for d in shared_model_dirs() if d.name == name)
        case = load_shared_model_case(d)
        shapes = {k: v.shape for k, v in case["inputs"].items() if v.ndim}
        return bornc.load_onnx(d / "model.onnx", input_shapes=shapes), case["inputs"], case["tol"]
    if kind == "light":
        model = bornc.load_onnx(next(p for p in LIGHT if p.stem == name))
        x = model.graph.inputs[0]
        shape = model.graph.types[x].shape
        n = int(np.prod(shape))
        return model, {x: (np.arange(n).reshape(shape) / n).astype(np.float32)}, {}
    case = golden.load_case(name)
    try:
        model = golden.load_case_model(case)
    except FetchError as ex:
        pytest.skip(f"model not reachable: {ex}")
    return model, golden.case_inputs(case), dict(case.tolerances)

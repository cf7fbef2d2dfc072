"""Real models on the reference interpreter.

- Every model in ../shared/models (when that folder is present) against its stored onnxruntime outputs, with
  the tolerances its card suggests.
- Every onnx ``light_*`` model (shipped inside the onnx wheel) against the expected output shipped beside it.
The PyPI-fetched golden cases (tests/test_golden.py) cover real models when ../shared is absent.
"""
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import bornc
from bornc.golden import compare

from .conftest import SHARED_MODELS, load_shared_model_case, shared_model_dirs

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
#: light_squeezenet's logits reach 1e10, so float32 accumulation order moves its softmax by up to 0.03 (see
#: golden/light_squeezenet/case.toml); every other light model is held to rtol 1e-3, atol 1e-5.
LIGHT_ATOL = {"light_squeezenet": 0.05}


@pytest.mark.skipif(not shared_model_dirs(), reason=f"no real-model corpus at {SHARED_MODELS} (golden cases fetch from PyPI instead)")
@pytest.mark.parametrize("folder", shared_model_dirs(), ids=lambda p: p.name)
def test_shared_model_matches_onnxruntime(folder):
    case = load_shared_model_case(folder)
    shapes = {k: v.shape for k, v in case["inputs"].items() if v.ndim}
    model = bornc.load_onnx(folder / "model.onnx", input_shapes=shapes)
    outs = bornc.run(model, case["inputs"])
    for name, exp in case["expected"].items():
        rtol, atol = case["tol"].get(name, (1e-4, 1e-5))
        ok, err, _ = compare(np.asarray(outs[name]), exp, rtol, atol)
        assert ok, f"{folder.name}:{name} max abs err {err:.3g} > atol {atol} + rtol {rtol}"


@pytest.mark.parametrize("path", sorted(LIGHT.glob("light_*.onnx")), ids=lambda p: p.stem)
def test_light_model_matches_shipped_output(path):
    model = bornc.load_onnx(path)
    name = model.graph.inputs[0]
    shape = model.graph.types[name].shape
    n = int(np.prod(shape))
    x = (np.arange(n).reshape(shape) / n).astype(np.float32)   # the onnx backend runner's dummy input
    out = bornc.run(model, {name: x})[model.graph.outputs[0]]
    exp = numpy_helper.to_array(onnx.load_tensor(str(path).replace(".onnx", "_output_0.pb")))
    ok, err, _ = compare(out, exp, 1e-3, LIGHT_ATOL.get(path.stem, 1e-5))
    assert ok, f"{path.stem}: max abs err {err:.3g}"


@pytest.mark.skipif(not shared_model_dirs(), reason=f"no real-model corpus at {SHARED_MODELS}")
@pytest.mark.parametrize("folder", shared_model_dirs(), ids=lambda p: p.name)
def test_shared_model_on_x86_64_under_asan_and_ubsan(folder):
    """The generated C of every public real model, built with AddressSanitizer and UndefinedBehaviorSanitizer
    (``bornc compile --sanitize``), runs clean and matches onnxruntime's stored outputs."""
    from bornc.executors import CExecutor
    case = load_shared_model_case(folder)
    shapes = {k: v.shape for k, v in case["inputs"].items() if v.ndim}
    model = bornc.load_onnx(folder / "model.onnx", input_shapes=shapes)
    outs = CExecutor("x86_64", sanitize=True).prepare(model)(case["inputs"])
    for name, exp in case["expected"].items():
        rtol, atol = case["tol"].get(name, (1e-4, 1e-5))
        ok, err, _ = compare(np.asarray(outs[name]), exp, rtol, atol)
        assert ok, f"{folder.name}:{name} max abs err {err:.3g} > atol {atol} + rtol {rtol}"

"""The Python front end: tracing (operators, indexing, layers, errors with file:line), the session API (compile,
inspect, golden record/check), ONNX export checked with onnx.checker and onnxruntime against the reference
interpreter, and the examples (digits CNN on rpi/python/webgpu; torch export, skipped cleanly without torch).

Tolerances: traced ops against numpy formulas rtol 1e-5; ONNX export against the reference atol 1e-5 (or the
golden case's tolerance).
"""
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import bornc as bc
from bornc import golden

from .conftest import ROOT, shared_model_dirs

os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="xdg-"))
RNG = np.random.default_rng(0)


def _ort(proto, feeds):
    s = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in s.get_outputs()]
    return dict(zip(names, s.run(None, feeds)))


def test_operators_indexing_and_reductions_match_numpy():
    x = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    w = RNG.standard_normal((4, 5)).astype(np.float32)

    def fn(t):
        a = (t * 2.0 - 1.0) / 4.0 + t ** 2
        b = a @ w
        c = b[:, 1:, ::2].transpose(2, 0, 1).reshape(3, -1)
        d = c[None, ..., -1] + c.mean(axis=1, keepdims=True).sum()
        return {"b": b, "c": c, "d": d, "m": bc.relu(-t).max(axis=(0, 2)), "lt": t < 0.5}
    m = bc.trace(fn, bc.Input("t", (2, 3, 4)))
    out = m.run({"t": x})
    a = (x * 2.0 - 1.0) / 4.0 + x ** 2
    b = a @ w
    c = b[:, 1:, ::2].transpose(2, 0, 1).reshape(3, -1)
    np.testing.assert_allclose(out["b"], b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["c"], c, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["d"], c[None, ..., -1] + c.mean(axis=1, keepdims=True).sum(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["m"], np.maximum(-x, 0).max(axis=(0, 2)))
    np.testing.assert_array_equal(out["lt"], x < 0.5)


def test_layers_match_their_formulas():
    x = RNG.standard_normal((1, 3, 6, 6)).astype(np.float32)
    conv = bc.Conv2d(3, 4, 3, padding=1, seed=1)
    bn = bc.BatchNorm2d(4, running_mean=np.arange(4.0), running_var=np.arange(1.0, 5.0))
    ln = bc.LayerNorm(6)
    emb = bc.Embedding(10, 6, seed=2)
    mha = bc.MultiHeadAttention(6, 2, seed=3)

    def fn(img, ids):
        y = bn(conv(img))
        e = emb(ids)                        # (1, 5, 6)
        return {"y": y, "n": ln(y), "a": mha(e)}
    m = bc.trace(fn, bc.Input("img", (1, 3, 6, 6)), bc.Input("ids", (1, 5), "int64"))
    ids = np.array([[1, 3, 5, 7, 9]])
    out = m.run({"img": x, "ids": ids})
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ref = np.zeros((1, 4, 6, 6))
    for i in range(6):
        for j in range(6):
            ref[0, :, i, j] = np.tensordot(conv.weight, xp[0, :, i:i + 3, j:j + 3], axes=3) + conv.bias
    ref = (ref - bn.mean[:, None, None]) / np.sqrt(bn.var[:, None, None] + 1e-5)
    np.testing.assert_allclose(out["y"], ref, rtol=1e-4, atol=1e-5)
    mu, var = ref.mean(-1, keepdims=True), ref.var(-1, keepdims=True)
    np.testing.assert_allclose(out["n"], (ref - mu) / np.sqrt(var + 1e-5), rtol=1e-4, atol=1e-4)
    e = emb.weight[ids]
    q, k, v = (e @ lin.weight.T + lin.bias for lin in (mha.q, mha.k, mha.v))
    heads = lambda t: t.reshape(1, 5, 2, 3).transpose(0, 2, 1, 3)  # noqa: E731
    s = heads(q) @ heads(k).transpose(0, 1, 3, 2) / np.sqrt(3)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    att = (p @ heads(v)).transpose(0, 2, 1, 3).reshape(1, 5, 6) @ mha.out.weight.T + mha.out.bias
    np.testing.assert_allclose(out["a"], att, rtol=1e-4, atol=1e-5)


def test_shape_errors_name_the_callers_file_and_line():
    def bad(x):
        return x @ np.ones((5, 2), np.float32)            # the offending line
    line = bad.__code__.co_firstlineno + 1
    with pytest.raises(bc.TraceError, match=rf"{re.escape(__file__)}:{line}: MatMul"):
        bc.trace(bad, bc.Input("x", (1, 4)))

    def bad_index(x):
        return x[3]
    with pytest.raises(bc.TraceError, match=r"test_python_api.py:\d+: index 3 is out of bounds"):
        bc.trace(bad_index, bc.Input("x", (2, 4)))


def test_traced_model_exports_to_valid_onnx_that_onnxruntime_agrees_with(tmp_path):
    fc = bc.Linear(12, 3, seed=4)

    def fn(x):
        h = bc.sigmoid(x.reshape(2, 12)) * 3.0
        return {"p": bc.softmax(fc(h), axis=-1), "k": bc.top_k(h, np.array([2], np.int64), axis=1)[1]}
    m = bc.trace(fn, bc.Input("x", (2, 3, 4)))
    proto = m.to_onnx(tmp_path / "m.onnx")
    onnx.checker.check_model(onnx.load(str(tmp_path / "m.onnx")), full_check=True)
    x = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    ref, got = m.run({"x": x}), _ort(proto, {"x": x})
    np.testing.assert_allclose(got["p"], ref["p"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got["k"], ref["k"])


@pytest.mark.parametrize("case", ["light_shufflenet", "light_inception_v1", "magika_standard_v3_3", "silero_vad_16k",
                                  "ppocr_mobile_v2_cls"])
def test_imported_models_export_to_onnx(case, tmp_path):
    """Imported models (opsets 8 to 15, old operator forms rewritten by the importer) round-trip through
    to_onnx: onnx.checker passes and onnxruntime on the export matches the reference interpreter."""
    c = golden.load_case(case)
    model = golden.load_case_model(c)
    feeds = golden.case_inputs(c)
    proto = model.to_onnx(tmp_path / "m.onnx")
    onnx.checker.check_model(proto)
    ref = model.run(feeds)
    got = _ort(proto, {k: v for k, v in feeds.items() if k in model.graph.inputs})
    for name in model.graph.outputs:
        rtol, atol = c.tolerance(name)
        ok, err, _ = golden.compare(np.asarray(got[name]), np.asarray(ref[name]), rtol, max(atol, 1e-5))
        assert ok, f"{case}:{name} onnxruntime on the export differs from the reference by {err:.3g}"


def test_optimized_models_are_refused_by_export(tmp_path):
    from bornc.passes.pipeline import optimize
    m = golden.load_case_model(golden.load_case("ppocr_mobile_v2_cls"))
    with pytest.raises(bc.BorncError, match="before optimization"):
        optimize(m, 2).to_onnx(tmp_path / "x.onnx")


def test_session_api_compiles_inspects_and_records_golden_cases(tmp_path):
    conv = bc.Conv2d(1, 2, 3, seed=5)
    m = bc.trace(lambda x: bc.relu(conv(x)), bc.Input("x", (1, 1, 5, 5)))
    info = bc.inspect(m)
    assert info["op_histogram"] == {"Conv": 1, "Relu": 1}
    res = bc.compile(m, target="python", out=tmp_path / "py")
    assert res.manifest["backend"] == "python"
    x = RNG.standard_normal((1, 1, 5, 5)).astype(np.float32)
    case = bc.golden_record(m, {"x": x}, tmp_path / "case", targets=["reference", "python"])
    rows = bc.golden_check(case, target="python")
    assert rows and all(r.ok for r in rows)
    np.testing.assert_allclose(np.load(tmp_path / "case" / "expected" / "output.npy"), m.run({"x": x})["output"])


def test_cli_is_a_layer_over_the_api_for_a_traced_model(tmp_path, cli):
    m = bc.trace(lambda x: bc.tanh(x) * 2.0, bc.Input("x", (3,)))
    m.to_onnx(tmp_path / "t.onnx")
    np.save(tmp_path / "x.npy", np.array([0.1, -2.0, 3.0], np.float32))
    r = cli("run", str(tmp_path / "t.onnx"), "--input", f"x={tmp_path / 'x.npy'}", "-o", str(tmp_path / "y.npz"))
    assert r.returncode == 0, r.stderr
    np.testing.assert_allclose(np.load(tmp_path / "y.npz")["output"], np.tanh([0.1, -2.0, 3.0]) * 2.0, rtol=1e-6)


def test_digits_example_compiles_for_rpi_python_and_webgpu(tmp_path):
    """The example trains its CNN in numpy, then each compiled artifact classifies the 360 held-back digits."""
    pytest.importorskip("sklearn", reason="the examples extra (scikit-learn) is not installed")
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "digits_cnn.py"), "--out", str(tmp_path / "d")],
                       capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    acc = dict(re.findall(r"^(\w+)\s+artifact .*?accuracy ([0-9.]+)", r.stdout, re.M))
    ref = float(re.search(r"reference interpreter .*accuracy ([0-9.]+)", r.stdout).group(1))
    assert set(acc) == {"rpi", "python", "webgpu"}, r.stdout
    assert ref >= 0.95 and all(float(a) == ref for a in acc.values()), r.stdout
    assert all(float(s) == 1.0 for s in re.findall(r"same prediction on ([0-9.]+)", r.stdout)), r.stdout


def test_torch_example_runs_or_skips_cleanly(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "torch_to_bornc.py"), "--out", str(tmp_path / "t")],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    try:
        import torch  # noqa: F401
    except ImportError:
        assert "torch is not installed: skipping" in r.stdout
    else:
        assert "max abs diff vs torch" in r.stdout


_ = shared_model_dirs, Path

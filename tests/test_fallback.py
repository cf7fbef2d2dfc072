"""One folder, several targets (`bornc compile --target webgpu,x86_64,rpi4,python`): `bornc run` and
executors.load_artifact run the first target that can run here, say which and why the others were passed over, and
give the reference interpreter's outputs (tolerance 1e-5). Each backend is made unavailable in turn: no WebGPU
adapter, a limit the adapter does not offer, a C library for another CPU."""
import json
import os

import numpy as np
import pytest
from onnx import TensorProto, helper

import bornc
from bornc.errors import ArtifactError
from bornc.executors import load_artifact

F = TensorProto.FLOAT


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    d = tmp_path_factory.mktemp("multi")
    w = helper.make_tensor("w", F, [8, 3], np.linspace(-1, 1, 24, dtype=np.float32).tolist())
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["p"]), helper.make_node("Relu", ["p"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", F, [2, 8])], [helper.make_tensor_value_info("y", F, None)], [w])
    (d / "m.onnx").write_bytes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    x = np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32)
    np.save(d / "x.npy", x)
    want = bornc.run(bornc.load_onnx(d / "m.onnx"), {"x": x})["y"]
    return d, x, want


def _compile(cli, d, targets, out):
    r = cli("compile", str(d / "m.onnx"), "--target", targets, "-o", str(d / out))
    assert r.returncode == 0, r.stderr
    return d / out


def test_first_runnable_target_is_picked_and_others_are_explained(multi, cli, monkeypatch):
    d, x, want = multi
    out = _compile(cli, d, "webgpu,x86_64,python", "all")
    r = cli("run", str(out), "--input", f"x={d / 'x.npy'}", "-o", str(d / "y.npz"))
    assert r.returncode == 0 and "running on webgpu" in r.stderr, r.stderr
    with np.load(d / "y.npz") as z:
        np.testing.assert_allclose(z["y"], want, atol=1e-5)
    monkeypatch.setenv("BORNC_WGPU_ADAPTER", "no-such-adapter")          # no adapter: the C library runs
    run = load_artifact(out)
    assert run.target == "x86_64" and run.passed_over[0][0] == "webgpu" and "no adapter" in run.passed_over[0][1]
    np.testing.assert_allclose(run({"x": x})["y"], want, atol=1e-5)


def test_limit_too_small_and_foreign_cpu_fall_back_to_python(multi, cli):
    d, x, want = multi
    out = _compile(cli, d, "webgpu,rpi4,python", "nolimit")
    mf = out / "webgpu" / "manifest.json"
    m = json.loads(mf.read_text())
    m["webgpu"]["required_limits"] = {"max_storage_buffer_binding_size": 1 << 40}
    mf.write_text(json.dumps(m))
    run = load_artifact(out)
    assert run.target == "python", run.summary()
    reasons = dict(run.passed_over)
    assert "max-storage-buffer-binding-size" in reasons["webgpu"]
    assert "aarch64" in reasons["rpi4"] and os.uname().machine in reasons["rpi4"]
    np.testing.assert_allclose(run({"x": x})["y"], want, atol=1e-5)


def test_no_runnable_target_is_one_error(multi, cli, monkeypatch):
    d, x, _ = multi
    out = _compile(cli, d, "webgpu,rpi4", "none")
    monkeypatch.setenv("BORNC_WGPU_ADAPTER", "no-such-adapter")
    with pytest.raises(ArtifactError, match="no artifact can run here"):
        load_artifact(out)
    r = cli("run", str(out), "--input", f"x={d / 'x.npy'}")
    assert r.returncode == 2 and "webgpu:" in r.stderr and "rpi4:" in r.stderr and "Traceback" not in r.stderr


_STANDALONE = r"""
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import bornrt
m = bornrt.load(sys.argv[1])
y = m.run({"x": np.load(sys.argv[2])})["y"]
assert not any(k == "bornc" or k.startswith("bornc.") for k in sys.modules), "the loader imported bornc"
print(json.dumps({"target": m.target, "passed_over": m.passed_over, "y": y.tolist()}))
"""


def _standalone(out, d, **env):
    """bornrt.load(out) in a fresh interpreter that never imports bornc: (picked target, reasons, y)."""
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-c", _STANDALONE, str(out), str(d / "x.npy")], capture_output=True, text=True,
                       env={**os.environ, **env}, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    return res["target"], dict(res["passed_over"]), np.array(res["y"], np.float32)


def test_standalone_loader_in_the_folder_falls_back_without_bornc(multi, cli, tmp_path):
    """The folder's own bornrt.py (numpy, ctypes, wgpu when installed; no bornc) picks the same first runnable
    target as bornc does, says why it passed the others over, and gives the reference's outputs: with an adapter
    (webgpu), with none (the C library through ctypes), and with neither a usable adapter nor a C library for
    this CPU (numpy)."""
    import shutil
    d, x, want = multi
    out = _compile(cli, d, "webgpu,x86_64,python", "standalone")
    assert (out / "bornrt.py").is_file()
    target, _, y = _standalone(out, d)
    assert target == "webgpu"
    np.testing.assert_allclose(y, want, atol=1e-5)
    target, why, y = _standalone(out, d, BORNC_WGPU_ADAPTER="no-such-adapter")
    assert target == "x86_64" and "no adapter" in why["webgpu"], why
    np.testing.assert_allclose(y, want, atol=1e-5)
    foreign = tmp_path / "foreign"
    shutil.copytree(out, foreign)
    mf = foreign / "x86_64" / "manifest.json"
    m = json.loads(mf.read_text())
    m["target_profile"]["features"] = m["target_profile"].get("features", []) + ["no_such_cpu_flag"]
    mf.write_text(json.dumps(m))
    target, why, y = _standalone(foreign, d, BORNC_WGPU_ADAPTER="no-such-adapter")
    assert target == "python" and "no_such_cpu_flag" in why["x86_64"], why
    np.testing.assert_allclose(y, want, atol=1e-5)
    mf.write_text(json.dumps({**m, "target_profile": {**m["target_profile"], "features": []},
                              "outputs": [{**m["outputs"][0], "shape": [4, 3]}]}))     # an edited manifest
    target, why, _ = _standalone(foreign, d, BORNC_WGPU_ADAPTER="no-such-adapter")
    assert target == "python" and "does not match build/libmodel.so" in why["x86_64"], why

"""The bornc command line: outputs, file formats and the one-line errors (exit status 2)."""
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from .conftest import ROOT


@pytest.fixture
def tiny_model(tmp_path):
    """y:0 = Relu(x) + 1 and z/1 = x * 2, with names that are unsafe in file names."""
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Add", ["r", "one"], ["y:0"]),
                           helper.make_node("Mul", ["x", "two"], ["z/1"])], "tiny",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
                          [helper.make_tensor_value_info("y:0", TensorProto.FLOAT, ["N", 3]),
                           helper.make_tensor_value_info("z/1", TensorProto.FLOAT, ["N", 3])],
                          initializer=[onnx.numpy_helper.from_array(np.float32(1), "one"), onnx.numpy_helper.from_array(np.float32(2), "two")])
    p = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), p)
    return p


def test_version(cli):
    r = cli("--version")
    assert r.returncode == 0 and r.stdout.startswith("bornc ")


def test_run_writes_npz_keyed_by_exact_names(cli, tiny_model, tmp_path):
    x = np.array([[-1, 0, 2]], np.float32)
    np.save(tmp_path / "x.npy", x)
    r = cli("run", str(tiny_model), "--input-shape", "x=1,3", "--input", f"x={tmp_path / 'x.npy'}", "-o", str(tmp_path / "o.npz"))
    assert r.returncode == 0, r.stderr
    with np.load(tmp_path / "o.npz") as z:
        assert set(z.files) == {"y:0", "z/1"}
        np.testing.assert_array_equal(z["y:0"], np.maximum(x, 0) + 1)
        np.testing.assert_array_equal(z["z/1"], x * 2)


def test_run_writes_one_npy_per_output_with_safe_names(cli, tiny_model, tmp_path):
    np.savez(tmp_path / "in.npz", x=np.ones((2, 3), np.float32))
    r = cli("run", str(tiny_model), "--input-shape", "x=2,3", "--inputs", str(tmp_path / "in.npz"), "-o", str(tmp_path / "out") + "/")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["y_0.npy", "z_1.npy"]


@pytest.mark.parametrize("array, message", [
    (np.ones((1, 4), np.float32), "input 'x': expected shape [1, 3], got [1, 4]"),
    (np.ones((1, 3), np.float64), "input 'x': expected dtype float32, got float64"),
])
def test_wrong_input_is_one_clear_error(cli, tiny_model, tmp_path, array, message):
    np.save(tmp_path / "x.npy", array)
    r = cli("run", str(tiny_model), "--input-shape", "x=1,3", "--input", f"x={tmp_path / 'x.npy'}")
    assert r.returncode == 2
    assert r.stderr.strip() == f"bornc: error: {message}"
    assert "Traceback" not in r.stderr


def test_wrong_input_name_and_unbound_dims(cli, tiny_model, tmp_path):
    np.save(tmp_path / "x.npy", np.ones((1, 3), np.float32))
    r = cli("run", str(tiny_model), "--input-shape", "x=1,3", "--input", f"q={tmp_path / 'x.npy'}")
    assert r.returncode == 2 and "unknown input(s) 'q'" in r.stderr
    r = cli("inspect", str(tiny_model))
    assert r.returncode == 2 and "input 'x' has symbolic dims [N, 3]" in r.stderr and "--input-shape" in r.stderr


def test_malformed_model_and_debug_traceback(cli, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model at all")
    r = cli("inspect", str(bad))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    r = cli("--debug", "inspect", str(bad))
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_inspect_json_reports_io_histogram_params_flops(cli, tiny_model):
    r = cli("inspect", str(tiny_model), "--input-shape", "x=2,3", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["inputs"] == [{"name": "x", "type": "float32[2x3]", "dtype": "float32", "shape": [2, 3]}]
    assert info["op_histogram"] == {"Relu": 1, "Add": 1, "Mul": 1}
    assert info["parameters"] == 2 and info["parameter_bytes"] == 8
    assert info["flops"] == 18 and info["unsupported"] == {}


def test_inspect_ir_dump(cli, tiny_model):
    r = cli("inspect", str(tiny_model), "--input-shape", "x=2,3", "--ir")
    assert r.returncode == 0 and "= Relu(%x)" in r.stdout and "%y:0: float32[2x3] = Add(%r, %one)" in r.stdout


def test_inspect_lists_unsupported_ops(cli, tmp_path):
    g = helper.make_graph([helper.make_node("Frobnicate", ["x"], ["y"], name="f1", domain="com.acme")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.acme", 1)])
    onnx.save(m, tmp_path / "u.onnx")
    r = cli("inspect", str(tmp_path / "u.onnx"))
    assert r.returncode == 2 and "com.acme.Frobnicate (nodes: f1)" in r.stdout
    r = cli("run", str(tmp_path / "u.onnx"))
    assert r.returncode == 2 and "unsupported operator" in r.stderr


def test_targets_lists_every_target_file(cli):
    r = cli("targets", "--json")
    names = {t["name"] for t in json.loads(r.stdout)}
    files = {p.stem for p in (ROOT / "targets").glob("*.toml")}
    assert names == files and "reference" in names


def test_targets_table_keeps_long_statuses_out_of_the_description(capsys, monkeypatch):
    """A target whose tools are missing says 'not ready [k]' in the table and the whole reason, with the Debian
    package, below it; every row's description starts in the same column."""
    import shutil
    from bornc.cli import main
    monkeypatch.setattr(shutil, "which", lambda tool: None if "aarch64" in tool else "/usr/bin/" + tool)
    assert main(["targets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    head = lines[0].index("description")
    rows = [ln for ln in lines[1:] if not ln.startswith("[")]
    assert all(len(ln) > head and ln[head - 1] == " " and ln[head] != " " for ln in rows)
    rpi4 = next(ln for ln in rows if ln.startswith("rpi4 "))
    assert "not ready [1]" in rpi4
    assert any(ln.startswith("[1] rpi4: missing aarch64-linux-gnu-gcc") and "apt-get install" in ln for ln in lines)


def test_conformance_json_keys(cli, tmp_path):
    r = cli("conformance", "--executor", "reference", "--json", "--filter", "^test_relu$|^test_abs$")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert set(res) >= {"passed", "failed", "unsupported", "total", "per_op"}
    assert res["total"] == 2 and res["passed"] == 2


def test_golden_check_table_and_exit_status(cli):
    r = cli("golden", "check", "light_bvlc_alexnet")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "light_bvlc_alexnet" in r.stdout and "pass" in r.stdout and "1/1 outputs pass on reference" in r.stdout


def test_inspect_passes_plan_and_debug(cli, tmp_path):
    from pathlib import Path
    light = str(Path(onnx.__file__).parent / "backend/test/data/light/light_squeezenet.onnx")
    r = cli("inspect", light, "--passes")
    assert r.returncode == 0 and "fuse_epilogue" in r.stdout and "opt level 2, target reference:" in r.stdout
    r = cli("inspect", light, "--plan", "--json")
    plan = json.loads(r.stdout)["plan"]
    assert {"arena_bytes", "lower_bound_bytes", "no_reuse_bytes", "weights_bytes"} <= set(plan)
    assert plan["tensors"] and {"offset", "size", "first_step", "last_step"} <= set(plan["tensors"][0])
    r = cli("inspect", light, "--plan", "--target", "webgpu")
    assert r.returncode == 0 and "alignment 256 bytes" in r.stdout
    x = np.random.default_rng(0).random((1, 3, 224, 224), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    r = cli("debug", light, "--input", f"data_0={tmp_path / 'x.npy'}", "--rtol", "1e-3", "--atol", "1e-3")
    assert r.returncode == 0 and "no divergence" in r.stdout, r.stdout + r.stderr
    r = cli("run", light, "--opt-level", "2", "--input", f"data_0={tmp_path / 'x.npy'}", "-o", str(tmp_path / "o2.npz"))
    assert r.returncode == 0, r.stderr


def test_progress_bars_only_on_a_terminal(monkeypatch, capsys):
    """Progress bars are drawn only when stdout and stderr are terminals (or BORNC_PROGRESS=1), never into logs."""
    from bornc import progress
    monkeypatch.delenv("BORNC_PROGRESS", raising=False)
    assert not progress.enabled()                    # pytest captures both streams: not terminals
    assert list(progress.progress(range(3), "x")) == [0, 1, 2]
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("BORNC_PROGRESS", "1")
    assert progress.enabled()
    list(progress.progress(range(3), "steps", unit="step"))
    assert "steps" in capsys.readouterr().err

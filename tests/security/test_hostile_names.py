"""Names from a model never reach generated sources as raw text (C, python, WebGPU targets).

Each model below computes y = x + w with its input, initializer, node and output named by hostile strings: C and
WGSL comment terminators, a constructor injection, carriage returns and newlines that would end a Python comment
early, quotes, backslashes, Jinja delimiters, ``</script>`` and non-ASCII text. The artifact must build with the
target's warnings as errors, compute the right values, keep the names exactly (as the C API and the manifest
report them), and run nothing: a marker file the injected code would create must not appear.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import bornc as bc
from bornc.backends.common.text import c_string, py_string
from bornc.errors import ModelImportError
from bornc.executors import load_artifact

MARK = "/tmp/bornc_pwned_marker"
HOSTILE = [
    f'w*/ __attribute__((constructor)) static void pwn(void) {{ system("touch {MARK}"); }} /*',
    "open /* never closed",
    f'a\rimport os; os.system("touch {MARK}")',
    f'b\nimport os; os.system("touch {MARK}")\n#',
    'quote " and \' and \\ and \\\\',
    "{{ 7*7 }} {% if true %}jinja{% endif %} {# c #}",
    "</script><script>alert(1)</script><!--",
    "trigraph ??/ ??= %:%: #define x",
    "naïve 名前 \u2028 line sep",
    "$(touch /tmp/x) `id` ; \\\n",
]


def _model(names: tuple[str, str, str, str]) -> onnx.ModelProto:
    x, w, node, y = names
    g = helper.make_graph([helper.make_node("Add", [x, w], [y], name=node)], "g",
                          [helper.make_tensor_value_info(x, TensorProto.FLOAT, [2, 3])],
                          [helper.make_tensor_value_info(y, TensorProto.FLOAT, [2, 3])],
                          [numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), w)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _roles(k: int) -> tuple[str, str, str, str]:
    n = len(HOSTILE)
    return tuple(HOSTILE[(k + j) % n] + f"#{j}" for j in range(4))


@pytest.fixture(autouse=True)
def _no_marker():
    if os.path.exists(MARK):
        os.unlink(MARK)
    yield
    assert not os.path.exists(MARK), "code injected through a model name ran"


@pytest.mark.parametrize("target", ["x86_64", "python", "webgpu"])
@pytest.mark.parametrize("k", range(len(HOSTILE)))
def test_hostile_names_compile_and_run(tmp_path, target, k):
    if target == "webgpu":
        pytest.importorskip("wgpu")
    names = _roles(k)
    path = tmp_path / "m.onnx"
    onnx.save(_model(names), str(path))
    out = tmp_path / "out"
    model = bc.load_onnx(path)
    bc.compile(model, target=target, out=str(out))
    x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    got = load_artifact(out)({names[0]: x})
    np.testing.assert_array_equal(got[names[3]], x + np.arange(6, dtype=np.float32).reshape(2, 3))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"][0]["name"] == names[0] and manifest["outputs"][0]["name"] == names[3]
    for f in out.rglob("*"):
        if f.is_file() and (f.suffix in (".c", ".h", ".py", ".wgsl", ".js", ".html") or f.name == "Makefile"):
            text = f.read_bytes().decode("utf-8", "replace")
            for nm in names:                      # only inside its escaped string literal, never as raw text
                rest = text.replace(c_string(nm), "").replace(py_string(nm), "")
                assert nm not in rest, f"raw name {nm!r} in {f.name}"
    if target == "python":                      # the device command: python3 bornrt.py out/ --input ...
        np.save(tmp_path / "x.npy", x)
        r = subprocess.run([sys.executable, str(out / "bornrt.py"), str(out), "--input", f"{names[0]}=" + str(tmp_path / "x.npy"),
                            "-o", str(tmp_path / "y.npz")], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        np.testing.assert_array_equal(np.load(tmp_path / "y.npz")[names[3]], got[names[3]])


def test_c_self_test_runner_with_hostile_names(tmp_path):
    """The command-line runner (main.c) builds and passes --self-test with hostile input/output names."""
    names = _roles(0)
    path = tmp_path / "m.onnx"
    onnx.save(_model(names), str(path))
    x = np.ones((2, 3), np.float32)
    y = x + np.arange(6, dtype=np.float32).reshape(2, 3)
    res = bc.compile(bc.load_onnx(path), target="x86_64", out=str(tmp_path / "out"),
                     self_test={"inputs": {names[0]: x}, "outputs": {names[3]: y}})
    r = subprocess.run([str(res.built["model_run"]), "--self-test"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("bad", [b"nul\x00abc", b"\xff\xfeutf8x"])   # as long as the name they replace
def test_names_with_nul_or_invalid_utf8_are_rejected(tmp_path, bad):
    proto = _model(("x", "w", "n", "MARKERY"))
    data = proto.SerializeToString().replace(b"MARKERY", bad)
    path = tmp_path / "m.onnx"
    path.write_bytes(data)
    with pytest.raises(ModelImportError, match="NUL|UTF-8"):
        bc.load_onnx(path)
    r = subprocess.run([sys.executable, "-m", "bornc", "compile", str(path), "--target", "python", "-o", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr

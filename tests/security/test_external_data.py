"""External tensor data resolves only inside the model's folder, for every tensor kind (dense, sparse, attribute).

Each hostile model below is checker-valid protobuf whose external data points where it must not: into the
process's working directory (the sparse-initializer hole), through ``..``, an absolute path, a symbolic link or a
hard link that leaves the folder, or past the end of the file. Each must fail with one line and exit 2 through
the CLI; the bytes outside the folder must never reach the artifact.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import bornc as bc
from bornc.errors import ModelImportError

SECRET = np.arange(4, dtype=np.float32) + 1000.0


def _external(t: onnx.TensorProto, location: str, offset: int = 0, length: int | None = None) -> onnx.TensorProto:
    t.ClearField("raw_data")
    t.ClearField("float_data")
    t.data_location = TensorProto.EXTERNAL
    for k, v in [("location", location), ("offset", str(offset))] + ([("length", str(length))] if length is not None else []):
        e = t.external_data.add()
        e.key, e.value = k, v
    return t


def _sparse_model(location: str, **kw) -> onnx.ModelProto:
    """y = x + dense(sparse w) with w's values stored externally at ``location``."""
    values = _external(numpy_helper.from_array(SECRET, "w_values"), location, **kw)
    indices = numpy_helper.from_array(np.array([0, 1, 2, 3], np.int64), "w_indices")
    sp = helper.make_sparse_tensor(values, indices, [4])
    g = helper.make_graph([helper.make_node("Add", ["x", "w_values"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])], sparse_initializer=[sp])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _dense_model(location: str, **kw) -> onnx.ModelProto:
    w = _external(numpy_helper.from_array(SECRET, "w"), location, **kw)
    g = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])], [w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _constant_model(location: str) -> onnx.ModelProto:
    """The same through a Constant node's sparse_value attribute."""
    values = _external(numpy_helper.from_array(SECRET, "c_values"), location)
    sp = helper.make_sparse_tensor(values, numpy_helper.from_array(np.array([0, 1, 2, 3], np.int64), "ci"), [4])
    g = helper.make_graph([helper.make_node("Constant", [], ["w"], sparse_value=sp), helper.make_node("Add", ["x", "w"], ["y"])],
                          "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _save(tmp_path, proto) -> str:
    d = tmp_path / "model"
    d.mkdir(exist_ok=True)
    path = d / "m.onnx"
    path.write_bytes(proto.SerializeToString())
    return str(path)


def _cli_fails(path, cwd) -> str:
    r = subprocess.run([sys.executable, "-m", "bornc", "compile", path, "--target", "python", "-o", str(cwd / "out")],
                       capture_output=True, text=True, cwd=cwd, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (cwd / "out").exists() or not any((cwd / "out").iterdir())
    return r.stderr


@pytest.mark.parametrize("make", [_sparse_model, _dense_model, _constant_model])
def test_bare_name_is_not_read_from_the_working_directory(tmp_path, make):
    (tmp_path / "secret.bin").write_bytes(SECRET.tobytes())          # in the cwd, not beside the model
    path = _save(tmp_path, make("secret.bin"))
    err = _cli_fails(path, tmp_path)
    assert "not found" in err


@pytest.mark.parametrize("make", [_sparse_model, _dense_model, _constant_model])
def test_external_data_inside_the_folder_loads(tmp_path, make):
    path = _save(tmp_path, make("w.bin"))
    (tmp_path / "model" / "w.bin").write_bytes(SECRET.tobytes())
    x = np.ones(4, np.float32)
    np.testing.assert_array_equal(bc.load_onnx(path).run({"x": x})["y"], x + SECRET)


@pytest.mark.parametrize("location, why", [("../secret.bin", "'..'"), ("/etc/hostname", "relative"),
                                           ("sub/../../secret.bin", "'..'"), ("C:\\secret.bin", "relative")])
def test_escaping_locations_are_refused(tmp_path, location, why):
    (tmp_path / "secret.bin").write_bytes(SECRET.tobytes())
    for make in (_sparse_model, _dense_model):
        path = _save(tmp_path, make(location))
        with pytest.raises(ModelImportError, match=why):
            bc.load_onnx(path)
        _cli_fails(path, tmp_path)


def test_symlink_and_hardlink_out_of_the_folder_are_refused(tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(SECRET.tobytes())
    path = _save(tmp_path, _sparse_model("link.bin"))
    os.symlink(secret, tmp_path / "model" / "link.bin")
    with pytest.raises(ModelImportError, match="leaves the model's folder"):
        bc.load_onnx(path)
    os.unlink(tmp_path / "model" / "link.bin")
    os.link(secret, tmp_path / "model" / "link.bin")
    with pytest.raises(ModelImportError, match="hard link"):
        bc.load_onnx(path)
    _cli_fails(path, tmp_path)


@pytest.mark.parametrize("kw, why", [({"offset": 8, "length": 16}, "outside"), ({"offset": 64}, "outside"),
                                     ({"offset": 0, "length": 8}, "need 16"), ({"offset": -4}, "negative")])
def test_ranges_outside_the_file_or_the_tensor_are_refused(tmp_path, kw, why):
    path = _save(tmp_path, _dense_model("w.bin", **kw))
    (tmp_path / "model" / "w.bin").write_bytes(SECRET.tobytes())
    with pytest.raises(ModelImportError, match=why):
        bc.load_onnx(path)


def test_in_memory_model_with_external_data_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secret.bin").write_bytes(SECRET.tobytes())
    from bornc.frontend.onnx_import import from_proto
    with pytest.raises(ModelImportError, match="external data"):
        from_proto(_sparse_model("secret.bin"))

"""C artifacts end to end: golden cases on every C target (x86_64 in-process, Raspberry Pi targets under
qemu-user), AddressSanitizer + UndefinedBehaviorSanitizer builds, clang -pedantic, the weights file check,
--self-test, the memory budget check, a missing toolchain, unsupported ops, and the CLI."""
import json
from pathlib import Path
import shutil
import subprocess

import numpy as np
import pytest
from onnx import helper

import bornc
from bornc import golden
from bornc.backends.c import compile_c
from bornc.backends.c.build import build
from bornc.backends.c.runner import Subprocess, load_artifact
from bornc.compile import compile_model
from bornc.errors import ArtifactError, UnsupportedOpError
from bornc.executors import CExecutor
from bornc.fetch import FetchError
from bornc.passes.pipeline import optimize
from bornc.targets import Target, get_target

from ..passes.helpers import feeds_for, make, rand

N = helper.make_node
TARGETS = ["x86_64", "rpi4", "rpi-armv7", "rpi5", "rpi-zero", "cortex-m4", "cortex-m55", "cortex-m7"]


def _needs(target: str):
    t = get_target(target)
    missing = [x for x in (t.cc, t.qemu) if x and shutil.which(x) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install {' '.join(t.debian_packages)})")


def _golden_params():
    return [(t, c) for c in golden.list_cases() for t in TARGETS if t in golden.load_case(c).targets]


@pytest.mark.parametrize("target, case", _golden_params())
def test_golden_case_on_c_target(target, case):
    _needs(target)
    try:
        rows = golden.check(golden.load_case(case), target)
    except FetchError as ex:
        pytest.skip(f"model not reachable: {ex}")
    assert rows and all(r.ok for r in rows), [(r.output, r.max_abs, r.atol) for r in rows if not r.ok]


@pytest.mark.parametrize("case", golden.list_cases())
def test_golden_case_under_asan_and_ubsan(case):
    _needs("x86_64")
    c = golden.load_case(case)
    try:
        model = golden.load_case_model(c)
    except FetchError as ex:
        pytest.skip(f"model not reachable: {ex}")
    run = CExecutor("x86_64", sanitize=True).prepare(model)
    assert isinstance(run, Subprocess)
    outs = run(golden.case_inputs(c))
    for name in model.graph.outputs:
        rtol, atol = c.tolerance(name)
        exp = np.load(c.folder / "expected" / c.outputs[name])
        ok, err, _ = golden.compare(outs[name], exp, rtol, atol)
        assert ok, f"{case}:{name} max abs err {err:.3g}"


def _small_model():
    return make([N("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), N("Relu", ["c"], ["y"])], [("x", [1, 2, 5, 5])],
                [("y", [1, 3, 5, 5])], {"w": rand(3, 2, 3, 3), "b": rand(3)})


def test_clang_pedantic_build(tmp_path):
    if shutil.which("clang") is None:
        pytest.skip("clang not installed (apt-get install clang)")
    compile_c(optimize(_small_model(), 2), get_target("x86_64"), tmp_path, name="small")
    build(tmp_path, get_target("x86_64"), "small", cc="clang")
    assert (tmp_path / "build" / "model_run").exists()


def test_weights_file_is_checked(tmp_path):
    model = _small_model()
    manifest = compile_c(optimize(model, 2), get_target("x86_64"), tmp_path, name="small", weights="file")
    build(tmp_path, get_target("x86_64"), "small")
    assert manifest["compile"]["weights"] == "file" and (tmp_path / "weights.bin").read_bytes()[:8] == b"BORNCWT1"
    feeds = feeds_for(model)
    np.testing.assert_allclose(load_artifact(tmp_path)(feeds)["y"], bornc.run(model, feeds)["y"], rtol=1e-5, atol=1e-5)
    data = bytearray((tmp_path / "weights.bin").read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / "weights.bin").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="init failed: weights"):
        load_artifact(tmp_path)
    np.save(tmp_path / "x.npy", feeds["x"])
    r = subprocess.run([str(tmp_path / "build" / "model_run"), "--weights", str(tmp_path / "weights.bin"),
                        "--input", f"x={tmp_path / 'x.npy'}"], capture_output=True, text=True)
    assert r.returncode != 0 and "weights" in r.stderr


@pytest.mark.parametrize("weights", ["embed", "file"])
def test_constant_and_input_as_graph_outputs(tmp_path, weights):
    """A graph output that is a constant, and one that is a model input, are copied out whether the weights are
    embedded or in weights.bin, and nodes reading them read the constant and the input (the file form once
    copied the output onto itself and failed -Werror=restrict; a node once read the not yet written output)."""
    c = rand(2, 3)
    m = make([N("Identity", ["x"], ["y"]), N("Add", ["x", "c"], ["s"])], [("x", [2, 3])],
             [("y", [2, 3]), ("c", [2, 3]), ("x", [2, 3]), ("s", [2, 3])], inits={"c": c})
    res = compile_model(m, "x86_64", tmp_path, name="k", weights=weights)
    assert res.manifest["compile"]["weights"] == weights
    feeds = feeds_for(m)
    got = load_artifact(tmp_path)(feeds)
    np.testing.assert_array_equal(got["c"], c)
    np.testing.assert_array_equal(got["x"], feeds["x"])
    np.testing.assert_array_equal(got["y"], feeds["x"])
    np.testing.assert_allclose(got["s"], feeds["x"] + c, rtol=1e-6)


def test_self_test_finds_weights_beside_the_artifact_from_any_folder(tmp_path):
    """model_run --self-test with weights in weights.bin, started from another folder, reads the artifact's
    weights.bin (it once looked in the current directory only)."""
    m = _small_model()
    feeds = feeds_for(m)
    art = tmp_path / "art"
    compile_model(m, "x86_64", art, name="small", weights="file",
                  self_test={"inputs": feeds, "outputs": bornc.run(m, feeds), "rtol": 1e-4, "atol": 1e-4})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for binary in (art / "build" / "model_run", Path("..") / "art" / "build" / "model_run"):
        r = subprocess.run([str(binary), "--self-test"], capture_output=True, text=True, cwd=elsewhere)
        assert r.returncode == 0 and "self-test passed" in r.stdout, r.stdout + r.stderr
    shutil.copy(art / "build" / "model_run", art / "model_run")      # beside weights.bin
    r = subprocess.run([str(art / "model_run"), "--self-test"], capture_output=True, text=True, cwd=elsewhere)
    assert r.returncode == 0, r.stdout + r.stderr
    (art / "weights.bin").unlink()
    r = subprocess.run([str(art / "model_run"), "--self-test"], capture_output=True, text=True, cwd=elsewhere)
    assert r.returncode != 0 and "cannot read weights file (tried " in r.stderr and "art/weights.bin" in r.stderr


def test_storage_counts_embedded_weights_once(tmp_path, cli):
    """Storage needed = code + runtime + weights, each once: with 100 KB of embedded weights, the figure is at
    most the storage sections of the model and runtime objects (it once added the weights to a code size that
    already held them). Targets without a budget print none."""
    from bornc.backends.c.build import storage_bytes
    m = make([N("MatMul", ["x", "w"], ["y"])], [("x", [1, 160])], [("y", [1, 160])], {"w": rand(160, 160)})
    res = compile_model(m, "x86_64", tmp_path / "c", name="mm", weights="embed")
    b = res.manifest["budget"]
    t = get_target("x86_64")
    sections = storage_bytes(t, tmp_path / "c" / "build" / "mm.o") + storage_bytes(t, tmp_path / "c" / "build" / "bornrt.o")
    assert b["weights_bytes"] >= 160 * 160 * 4 and b["sized_by"].startswith("object sections")
    assert b["flash_needed"] == b["code_bytes"] + b["runtime_bytes"] + b["weights_bytes"] <= sections
    assert b["code_bytes"] < 160 * 160 * 4 // 4
    import onnx
    onnx.save(helper.make_model(helper.make_graph([N("Relu", ["x"], ["y"])], "g",
                                                  [helper.make_tensor_value_info("x", 1, [4])],
                                                  [helper.make_tensor_value_info("y", 1, [4])]),
                                opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "r.onnx")
    r = cli("compile", str(tmp_path / "r.onnx"), "--target", "python", "-o", str(tmp_path / "p"))
    assert r.returncode == 0 and "storage needed" in r.stdout and "budget" not in r.stdout, r.stdout
    r = cli("compile", str(tmp_path / "r.onnx"), "--target", "x86_64", "-o", str(tmp_path / "x"))
    assert r.returncode == 0 and r.stdout.count("budget") == 2, r.stdout


def test_manifest_contract(tmp_path):
    manifest = compile_c(optimize(_small_model(), 2), get_target("rpi4"), tmp_path, name="small")
    for key in ("format_version", "bornc_version", "source_model", "compile", "target_profile", "inputs", "outputs",
                "arena_bytes", "weights_bytes", "weights_sha256", "ops", "plan"):
        assert key in manifest
    assert {"arena_bytes", "lower_bound_bytes", "no_reuse_bytes", "weights_bytes"} <= set(manifest["plan"])
    assert {"small.h", "small.c", "main.c", "bornrt.h", "bornrt_gemm.h", "bornrt.c", "Makefile", "manifest.json"} <= set(p.name for p in tmp_path.iterdir())
    text = (tmp_path / "small.c").read_text()
    assert "malloc" not in text and "/* node 'Conv_0' (FusedConv) */" in text


def test_missing_toolchain_still_writes_sources(tmp_path):
    fake = Target(name="fake-arm", backend="c", cc="no-such-arm-gcc", cflags=("-O2",), run="qemu-user", qemu="qemu-fake",
                  debian_packages=("gcc-fake-linux-gnu",), ram_bytes=1 << 30, flash_bytes=1 << 30)
    res = compile_model(_small_model(), fake, tmp_path, name="small")
    assert (tmp_path / "small.c").exists() and (tmp_path / "Makefile").exists()
    assert any("apt-get install gcc-fake-linux-gnu" in n for n in res.notes)


def test_unsupported_ops_listed_together(tmp_path):
    m = make([N("Unique", ["x"], ["d"]), N("Einsum", ["x", "x"], ["y"], equation="ij,ij->i")],
             [("x", [3, 3])], [("y", None), ("d", None)])
    with pytest.raises(UnsupportedOpError) as ei:
        compile_c(optimize(m, 2), get_target("x86_64"), tmp_path, name="u")
    assert "Unique" in str(ei.value) and "Einsum" in str(ei.value)


def test_cli_compile_run_self_test_and_budget(cli, tmp_path):
    m = _small_model()
    import onnx
    from onnx import TensorProto, numpy_helper
    g = helper.make_graph([N("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), N("Relu", ["c"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 5, 5])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          initializer=[numpy_helper.from_array(m.graph.constants["w"], "w"), numpy_helper.from_array(m.graph.constants["b"], "b")])
    path = tmp_path / "small.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    x = rand(1, 2, 5, 5, seed=5)
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "st.npz", x=x)
    art = tmp_path / "art"
    r = cli("compile", str(path), "--target", "host", "-o", str(art), "--input-shape", "x=1,2,5,5", "--self-test-data", str(tmp_path / "st.npz"))
    assert r.returncode == 0, r.stderr
    assert "RAM" in r.stdout and "storage" in r.stdout
    st = subprocess.run([str(art / "build" / "model_run"), "--self-test"], capture_output=True, text=True)
    assert st.returncode == 0 and "self-test passed" in st.stdout, st.stdout + st.stderr
    r = cli("run", str(art), "--input", f"x={tmp_path / 'x.npy'}", "-o", str(tmp_path / "o.npz"))
    assert r.returncode == 0, r.stderr
    ref = bornc.run(bornc.load_onnx(path, input_shapes={"x": (1, 2, 5, 5)}), {"x": x})["y"]
    np.testing.assert_allclose(np.load(tmp_path / "o.npz")["y"], ref, rtol=1e-5, atol=1e-5)
    np.save(tmp_path / "bad.npy", rand(1, 2, 5, 4))
    r = cli("run", str(art), "--input", f"x={tmp_path / 'bad.npy'}")
    assert r.returncode == 2 and "input 'x': expected shape [1, 2, 5, 5], got [1, 2, 5, 4]" in r.stderr
    r = cli("compile", str(path), "--target", "rpi", "-o", str(tmp_path / "tiny"), "--input-shape", "x=1,2,5,5", "--ram", "1000", "--no-build")
    assert r.returncode == 2 and "does not fit rpi4" in r.stderr and "--schedule memory" in r.stderr
    r = cli("bench", str(art), "--runs", "3", "--warmup", "1", "--json")
    assert r.returncode == 0, r.stderr
    figures = json.loads(r.stdout)
    assert figures["bornc_ms"] > 0 and figures["onnxruntime_ms"] > 0 and figures["cold_start_ms"] > 0
    assert figures["inputs"].startswith("random inputs")
    r = cli("bench", str(art), "--runs", "3", "--warmup", "1")
    assert r.returncode == 0 and "random inputs (seed 0" in r.stdout and "no --input/--inputs given" in r.stdout
    r = cli("bench", str(art), "--runs", "3", "--warmup", "1", "--input", f"x={tmp_path / 'x.npy'}", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["inputs"] == "given"

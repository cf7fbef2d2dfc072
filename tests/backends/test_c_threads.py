"""The C runtime's thread pool through the user's path (`bornc compile --threads`, the C API's cap, model_run
--threads): outputs are bitwise the same for every thread count, with the pool compiled out, and under the
sanitizers; compared with the reference interpreter at the kernel tests' tolerance."""
import json
import subprocess
import sys

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import bornc
from bornc.compile import compile_model
from bornc.errors import InputError
from bornc.executors import load_artifact

from bornc.frontend.onnx_import import from_proto

from ..passes.helpers import feeds_for, rand

N = helper.make_node


def _conv_chain_proto():
    """Convolutions that take each packed path (1x1 packed from its input, stride 1 padded, strided im2col,
    grouped) and a depthwise one split into tasks, with fused Relu, a residual add and channel counts that are not
    multiples of 6."""
    nodes = [N("Conv", ["x", "w0", "b0"], ["c0"], pads=[3, 3, 3, 3], strides=[2, 2]), N("Relu", ["c0"], ["r0"]),
             N("Conv", ["r0", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]), N("Relu", ["c1"], ["r1"]),
             N("Conv", ["r1", "w2"], ["c2"]), N("Add", ["c2", "r0"], ["s2"]),
             N("Conv", ["s2", "wd"], ["d"], pads=[3, 3, 3, 3], group=40),
             N("Conv", ["d", "w3", "b3"], ["c3"], pads=[1, 1, 1, 1], group=2), N("Relu", ["c3"], ["y"])]
    inits = {"w0": rand(40, 3, 7, 7) * 0.1, "b0": rand(40), "w1": rand(48, 40, 3, 3) * 0.03, "b1": rand(48),
             "w2": rand(40, 48, 1, 1) * 0.15, "wd": rand(40, 1, 7, 7) * 0.1, "w3": rand(14, 20, 3, 3) * 0.07, "b3": rand(14)}
    g = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 96, 96])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture(scope="module")
def chain():
    m = from_proto(_conv_chain_proto())
    return m, feeds_for(m, 0)


def test_outputs_bitwise_equal_for_every_thread_count(chain, tmp_path):
    """An artifact compiled for 3 threads, capped at 1, 2 and 3 through the C API, and one compiled for 1
    thread (another task split) all give the same bits, which match the reference interpreter."""
    model, feeds = chain
    ref = bornc.run(model, feeds)["y"]
    compile_model(model, "x86_64", tmp_path / "t3", threads=3)
    code = (tmp_path / "t3" / "model.c").read_text()
    assert code.count("bornc_parallel(") >= 5           # every Conv (all above 8M MACs), the depthwise one too
    run3 = load_artifact(tmp_path / "t3")
    assert run3.max_threads == 3
    outs = {}
    for t in (1, 2, 3):
        run3.set_threads(t)
        outs[t] = run3(feeds)["y"]
    compile_model(model, "x86_64", tmp_path / "t1", threads=1)
    outs["compiled for 1"] = load_artifact(tmp_path / "t1")(feeds)["y"]
    for k, v in outs.items():
        assert v.tobytes() == outs[1].tobytes(), k
    np.testing.assert_allclose(outs[1], ref, rtol=1e-4, atol=1e-5)


def _has_avx512() -> bool:
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return " avx512f" in flags and " avx512_vnni" in flags


@pytest.mark.skipif(not _has_avx512(), reason="this CPU has no AVX-512: x86_64-v4 artifacts cannot run here")
def test_avx512_tiles_give_the_avx2_bits(chain, tmp_path):
    """x86_64-v4's 6 x 32 and 12 x 32 AVX-512 tiles (partial tiles, an odd weight panel, in-place and tile
    stores) add each output's products in the same order as x86_64's 6 x 16 AVX2 tile: the same bits at 1 and 2
    threads."""
    model, feeds = chain
    compile_model(model, "x86_64", tmp_path / "v3", threads=1)
    compile_model(model, "x86_64-v4", tmp_path / "v4", threads=2)
    assert "bornc_sgemm_po" in (tmp_path / "v4" / "model.c").read_text()
    want = load_artifact(tmp_path / "v3")(feeds)["y"]
    v4 = load_artifact(tmp_path / "v4")
    for t in (1, 2):
        v4.set_threads(t)
        assert v4(feeds)["y"].tobytes() == want.tobytes(), t


def test_thread_cap_is_checked(chain, tmp_path):
    model, feeds = chain
    compile_model(model, "x86_64", tmp_path / "a", threads=2)
    r = load_artifact(tmp_path / "a")
    for bad in (0, 3):
        with pytest.raises(InputError, match="1 to 2 threads"):
            r.set_threads(bad)
    exe = tmp_path / "a" / "build" / "model_run"
    res = subprocess.run([str(exe), "--threads", "5"], capture_output=True, text=True)
    assert res.returncode == 2 and "give 1 to 2" in res.stderr


def test_pool_compiled_out_gives_the_same_bits(chain, tmp_path):
    """-DBORNC_NO_THREADS (the bare-metal build) runs every task on the caller."""
    model, feeds = chain
    compile_model(model, "x86_64", tmp_path / "mt", threads=2)
    want = load_artifact(tmp_path / "mt")(feeds)["y"]
    from bornc.targets import get_target
    flags = list(get_target("x86_64").cflags) + ["-DBORNC_NO_THREADS"]
    compile_model(model, "x86_64", tmp_path / "st", threads=2, cflags=flags)
    from bornc.backends.c.runner import load_artifact as load_c
    r = load_c(tmp_path / "st", in_process=False)
    r.set_threads(2)
    got = r(feeds)["y"]
    assert got.tobytes() == want.tobytes()
    nm = subprocess.run(["nm", str(tmp_path / "st" / "build" / "model_run")], capture_output=True, text=True).stdout
    assert "pthread_create" not in nm


@pytest.mark.parametrize("target", ["x86_64", "x86_64-v4"])
def test_threads_clean_under_sanitizers(chain, tmp_path, target):
    """AddressSanitizer and UndefinedBehaviorSanitizer over 2 workers (model_run); on x86_64-v4 the AVX-512 tiles,
    whose partial forms must not read past the last packed panel."""
    if target == "x86_64-v4" and not _has_avx512():
        pytest.skip("this CPU has no AVX-512")
    model, feeds = chain
    compile_model(model, target, tmp_path / "san", threads=2, sanitize=True)
    r = load_artifact(tmp_path / "san")
    r.set_threads(2)
    got = r(feeds)["y"]
    np.testing.assert_allclose(got, bornc.run(model, feeds)["y"], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_rpi4_threads_bitwise_under_qemu(chain, tmp_path):
    """The aarch64 build (NEON micro-kernels) under qemu-user: 1 and 4 threads give the same bits."""
    from bornc.targets import get_target
    if get_target("rpi4").status() != "ready":
        pytest.skip(get_target("rpi4").status())
    model, feeds = chain
    compile_model(model, "rpi4", tmp_path / "pi")
    manifest = json.loads((tmp_path / "pi" / "manifest.json").read_text())
    assert manifest["target_profile"]["threads"] == 4          # the cores field of targets/rpi4.toml
    r = load_artifact(tmp_path / "pi")
    outs = []
    for t in (1, 4):
        r.set_threads(t)
        outs.append(r(feeds)["y"])
    assert outs[0].tobytes() == outs[1].tobytes()
    np.testing.assert_allclose(outs[0], bornc.run(model, feeds)["y"], rtol=1e-4, atol=1e-5)


def test_cli_threads_option(tmp_path):
    import onnx
    model_path = tmp_path / "m.onnx"
    onnx.save(_conv_chain_proto(), str(model_path))
    res = subprocess.run([sys.executable, "-m", "bornc", "compile", str(model_path), "--target", "x86_64",
                          "--threads", "65", "-o", str(tmp_path / "o")], capture_output=True, text=True)
    assert res.returncode == 2 and "1 to 64" in res.stderr and "Traceback" not in res.stderr


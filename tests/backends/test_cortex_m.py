"""Bare-metal Cortex-M targets under qemu-system-arm: the CLI's compile and run, what the firmware links (no
heap, threads or files in the model code), --self-test, the measured stack and its overflow, deterministic
instruction counts, the budgets and their refusal, and the flash and RAM goals on the golden models."""
import dataclasses
import json
import shutil
import subprocess

import numpy as np
import pytest
from onnx import helper

import bornc
from bornc import golden
from bornc.backends.c.runner import Subprocess, load_artifact
from bornc.compile import compile_model
from bornc.errors import BorncError
from bornc.targets import get_target

from ..passes.helpers import feeds_for, make, rand

N = helper.make_node
BARE = ["cortex-m4", "cortex-m55", "cortex-m7"]
MCU_CASES = ["mcu_kws_dscnn_int8", "mcu_vww_mobilenet_int8", "mcu_anomaly_autoencoder_int8"]


def _needs(target: str):
    t = get_target(target)
    if t.status() != "ready":
        pytest.skip(f"{target}: {t.status()}")


def _model():
    """Conv + Relu + global average pool + Gemm + Softmax: float kernels, libm's expf, a reduction."""
    return make([N("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), N("Relu", ["c"], ["r"]),
                 N("GlobalAveragePool", ["r"], ["p"]), N("Flatten", ["p"], ["f"]),
                 N("Gemm", ["f", "wf", "bf"], ["g"], transB=1), N("Softmax", ["g"], ["y"])],
                [("x", [1, 2, 6, 6])], [("y", [1, 4])],
                {"w": rand(3, 2, 3, 3), "b": rand(3), "wf": rand(4, 3), "bf": rand(4)})


@pytest.mark.parametrize("target", BARE)
def test_compile_and_run_through_the_cli(target, tmp_path, cli):
    """bornc compile --target cortex-m* then bornc run out/: outputs within 1e-5 of the reference interpreter."""
    _needs(target)
    m = _model()
    m.to_onnx(tmp_path / "m.onnx")
    feeds = feeds_for(m)
    np.save(tmp_path / "x.npy", feeds["x"])
    r = cli("compile", str(tmp_path / "m.onnx"), "--target", target, "-o", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert "stack reserved" in r.stdout and "build/firmware.elf link map" in r.stdout
    r = cli("run", str(tmp_path / "out"), "--input", f"x={tmp_path / 'x.npy'}", "-o", str(tmp_path / "y.npz"))
    assert r.returncode == 0, r.stderr
    got = np.load(tmp_path / "y.npz")["y"]
    np.testing.assert_allclose(got, bornc.run(m, feeds)["y"], rtol=1e-5, atol=1e-6)


def test_run_from_a_relative_path(tmp_path, cli):
    """bornc run on an artifact named relative to the current folder (the runner starts qemu in a temporary one)."""
    _needs("cortex-m4")
    m = _model()
    feeds = feeds_for(m)
    compile_model(m, "cortex-m4", tmp_path / "out dir", name="tiny")      # a space in the path, too
    np.save(tmp_path / "x.npy", feeds["x"])
    r = cli("run", "out dir", "--input", "x=x.npy", "-o", "y.npz", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    np.testing.assert_allclose(np.load(tmp_path / "y.npz")["y"], bornc.run(m, feeds)["y"], rtol=1e-5, atol=1e-6)


def test_link_map_roles():
    """bare_metal_sizes on a GNU ld map with wrapped names, fill, COMMON and an orphan section."""
    from pathlib import Path
    from bornc.backends.c.build import bare_metal_sizes
    text = """Discarded input sections
 .text.unused   0x00000000       0x40 build/m.o
Linker script and memory map

.text           0x00000000      0x200
 .vectors       0x00000000       0x40 build/bornrt_cortexm.o
 .text.k0_conv_with_a_long_name
                0x00000040      0x100 build/m.o
 .rodata.W0     0x00000140       0x80 build/m.o
 *fill*         0x000001c0        0x4
 .text          0x000001c4       0x3c /usr/lib/libc.a(lib_a-memcpy.o)
.init_array     0x00000200        0x4
 .init_array    0x00000200        0x4 build/firmware.o
.data           0x20000000        0x8 load address 0x00000204
 .data.x        0x20000000        0x8 build/bornrt.o
.bss            0x20000008      0x120
 .bss.bornc_io_in0
                0x20000008       0x10 build/firmware.o
 .bss.bornc_m_static_arena
                0x20000018      0x100 build/m.o
 COMMON         0x20000118       0x10 build/bornrt.o
.comment        0x00000000       0x26
 .comment       0x00000000       0x26 build/m.o
"""
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "f.map").write_text(text)
        sizes = bare_metal_sizes(Path(d) / "f.map", "m")
    assert sizes == {"kernels": 0x100, "weights": 0x80, "runtime": 0x40 + 4 + 0x3c + 4 + 8, "arena": 0x100, "io": 0x10,
                     "state": 8 + 0x10}


def test_firmware_links_no_heap_threads_or_files(tmp_path):
    """The model code and runtime, linked into the smallest application, pull in no malloc, no pthreads, no
    stdio and no software double arithmetic on the M4 (single-precision FPU)."""
    _needs("cortex-m4")
    res = compile_model(_model(), "cortex-m4", tmp_path, name="tiny")
    nm = subprocess.run(["arm-none-eabi-nm", str(res.built["firmware"])], capture_output=True, text=True, check=True)
    names = {line.split()[-1] for line in nm.stdout.splitlines()}
    banned = {"malloc", "_malloc_r", "free", "_sbrk", "fopen", "printf", "fprintf", "pthread_create", "__aeabi_dadd",
              "__aeabi_dmul", "__aeabi_ddiv", "__aeabi_f2d", "__aeabi_d2f", "__aeabi_dcmplt", "__aeabi_dcmpgt"}
    assert not names & banned, names & banned
    assert {"bornc_tiny_run", "bornc_tiny_init", "Reset_Handler"} <= names


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m55"])
def test_self_test_stack_and_instructions(target, tmp_path):
    """--self-test passes under qemu; the runner reports the stack a run used (non-zero, below the reserve)
    and, for --bench, an instruction count that is the same on every run (qemu -icount)."""
    _needs(target)
    m = _model()
    feeds = feeds_for(m)
    compile_model(m, target, tmp_path, name="tiny",
                  self_test={"inputs": feeds, "outputs": bornc.run(m, feeds), "rtol": 1e-4, "atol": 1e-5})
    run = load_artifact(tmp_path)
    assert isinstance(run, Subprocess)
    r = subprocess.run(run.prefix + ["-append", "--self-test"], capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and "self-test passed" in r.stdout, r.stdout + r.stderr
    counts = []
    for _ in range(2):
        run(feeds, bench=3)
        assert 0 < run.stats["stack_bytes"] < get_target(target).stack_bytes
        counts.append(run.stats["instructions"])
    assert counts[0] == counts[1] and counts[0] > 1000


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m55"])
def test_stack_overflow_is_reported(target, tmp_path):
    """With a stack smaller than the run needs, the M4 runner finds its paint gone and the M55's stack limit
    register (MSPLIM) faults: an error, never a silent wrong answer."""
    _needs(target)
    m = _model()
    compile_model(m, target, tmp_path / "fits", name="tiny")
    run = load_artifact(tmp_path / "fits")
    run(feeds_for(m))
    need, runner = run.stats["stack_bytes"], run.stats["runner_stack_bytes"]
    assert need > 64 and runner > 0
    small = dataclasses.replace(get_target(target), stack_bytes=runner + need // 2)   # the runner fits, the run not
    compile_model(m, small, tmp_path / "small", name="tiny")
    with pytest.raises(BorncError, match="stack overflow|stack limit"):
        load_artifact(tmp_path / "small")(feeds_for(m))


def test_a_model_too_large_is_refused_with_suggestions(tmp_path, cli):
    """The float visual-wake-words net needs more RAM than an M4 has: exit 2, one line naming int8."""
    _needs("cortex-m4")
    src = golden.golden_dir() / "mcu_vww_mobilenet_int8" / "model.onnx"
    r = cli("compile", str(src), "--target", "cortex-m4", "-o", str(tmp_path / "out"))
    assert r.returncode == 2 and "does not fit cortex-m4: RAM" in r.stderr and "int8" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_weights_file_is_refused_on_bare_metal(tmp_path, cli):
    _needs("cortex-m4")
    _model().to_onnx(tmp_path / "m.onnx")
    r = cli("compile", str(tmp_path / "m.onnx"), "--target", "cortex-m4", "--weights", "file", "-o", str(tmp_path / "o"))
    assert r.returncode == 2 and "no file system" in r.stderr


@pytest.mark.parametrize("case", MCU_CASES)
def test_golden_models_meet_the_flash_and_ram_goals(case, tmp_path):
    """On cortex-m4, each int8 golden model's runtime (everything in flash but its kernels and weights) is at
    most 16 KiB, and RAM beyond the arena and its I/O buffers (runtime state) at most 2 KiB; the measured
    stack stays within link.ld's reserve."""
    _needs("cortex-m4")
    c = golden.load_case(case)
    model = golden.load_case_model(c)
    res = compile_model(model, "cortex-m4", tmp_path, name="m")
    fw = res.manifest["firmware"]
    assert fw["runtime"] <= 16 * 1024 and fw["state"] <= 2048, fw
    run = load_artifact(tmp_path)
    outs = run(golden.case_inputs(c))
    assert 0 < run.stats["stack_bytes"] <= fw["stack_reserved"]
    for name, file in c.outputs.items():
        np.testing.assert_array_equal(outs[name], np.load(c.folder / "expected" / file))


def test_makefile_builds_the_same_firmware(tmp_path):
    """The artifact's own Makefile (what a user runs on another machine) builds the runner and firmware."""
    _needs("cortex-m4")
    if shutil.which("make") is None:
        pytest.skip("make not installed (apt-get install make)")
    compile_model(_model(), "cortex-m4", tmp_path, name="tiny", build=False)
    r = subprocess.run(["make", "-s"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "build" / "model_run.elf").exists() and (tmp_path / "build" / "firmware.elf").exists()


KERNEL_PROBE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <limits.h>
#include <string.h>
#include "bornrt_gemm.h"

static uint32_t seed = 12345u;
static uint32_t next(void) { seed = seed * 1664525u + 1013904223u; return seed >> 8; }
/* mostly extremes (-128, 127; 0, 255), some random values */
static int8_t w8(void) { uint32_t r = next() % 4u; return r == 0 ? -128 : r == 1 ? 127 : (int8_t)(next() & 0xFF); }
static uint8_t x8(void) { uint32_t r = next() % 4u; return r == 0 ? 0 : r == 1 ? 255 : (uint8_t)(next() & 0xFF); }

enum { K = 50, KQ = 13 };

/* C = W x X (mr rows, nc columns wanted) through the packers and the tile kernel, whatever the kernel's panel
 * layout (quads or k-major) and activation bytes (x or x - 128) */
static void gemm(const int8_t *W, const uint8_t *X, int mr, int nc, int32_t *C) {
    static int32_t A[6 * KQ];
    static uint8_t B[KQ * 64], R[KQ * 64], XT[16 * K];
    int r, t, k;
    bornc_qpack_a8(W, K, mr, A);
    bornc_qpack_b8(X, 16, K, KQ, nc, B);
    for (t = 0; t < 16; ++t)
        for (k = 0; k < K; ++k) XT[t * K + k] = X[k * 16 + t];
    bornc_qpack_rows8(XT, K, K, KQ, nc, R);
    if (memcmp(B, R, sizeof B)) printf("rows8 differs from b8 ");
    memset(C, 0, 6 * 16 * sizeof *C);              /* the outputs past mr and nc may stay unwritten */
    bornc_qgemm8_6x16(KQ, A, B, mr, nc, C);
#if defined(BORNC_QGEMM8_SIGNED_B)
    for (r = 0; r < 6; ++r) {
        int32_t sum = 0;
        for (k = 0; k < K; ++k) sum += W[r * K + k];
        for (t = 0; t < 16; ++t) C[r * 16 + t] += 128 * sum;
    }
#else
    (void)r;
#endif
}

int main(void) {
    int32_t C[6 * 16], acc[16];
    uint8_t X[K * 16], x[53], q[16];
    int8_t W[6 * K], w[53], wdw[15];
    int16_t plane[3 * 40];
    const int tap[5] = {0, 1, 2, 3, 4}, gaps[5] = {0, 1, 3, 5, 6};    /* adjacent taps; a pair, then singles */
    const int flat_off[15] = {0, 1, 2, 3, 4, 40, 41, 42, 43, 44, 80, 81, 82, 83, 84};
    const int flat3[9] = {0, 1, 2, 40, 41, 42, 80, 81, 82};
    unsigned long sum = 0;
    int i, rep;
#if defined(PROBE_SEMIHOSTING)
    extern void initialise_monitor_handles(void);
    initialise_monitor_handles();
#endif
    for (rep = 0; rep < 20; ++rep) {
        const int nc = rep % 2 ? 16 : 1 + rep % 16, mr = rep % 3 ? 6 : 1 + rep % 5;
        for (i = 0; i < 6 * K; ++i) W[i] = w8();
        for (i = 0; i < K * 16; ++i) X[i] = x8();
        gemm(W, X, mr, nc, C);
        for (i = 0; i < 96; ++i) { printf("%ld ", (long)(i % 16 < nc && i / 16 < mr ? C[i] : 0)); sum += (unsigned long)C[i]; }
        for (i = 0; i < 53; ++i) { w[i] = w8(); x[i] = x8(); }
        printf("%ld ", (long)bornc_qdot8(53 - rep, w, x));
        for (i = 0; i < 15; ++i) wdw[i] = w8();
        for (i = 0; i < 3 * 40; ++i) plane[i] = (int16_t)((int)x8() - (int)x8());
        bornc_qdw8(plane + 1, 40, wdw, 3, 5, tap, acc);
        for (i = 0; i < 8; ++i) printf("%ld ", (long)acc[i]);
        bornc_qdw8(plane + 2, 40, wdw, 3, 5, gaps, acc);
        for (i = 0; i < 8; ++i) printf("%ld ", (long)acc[i]);
        bornc_qdw_flat(X + rep, 16, wdw, flat_off, 15, (int32_t)(next() % 2001u) - 1000, acc);   /* 3 x 5 taps, pitch 40 */
        for (i = 0; i < 16; ++i) printf("%ld ", (long)acc[i]);
        bornc_qdw_flat(X + rep, 16, wdw, flat3, 9, (int32_t)(next() % 2001u) - 1000, acc);       /* 3 x 3: SMLAD rows */
        for (i = 0; i < 16; ++i) printf("%ld ", (long)acc[i]);
        printf("\n");
    }
    for (rep = 0; rep < 400; ++rep) {      /* requantization: extremes of acc, multipliers in [2^30, 2^31), shifts */
        const int32_t acc_ = rep % 7 == 0 ? INT32_MIN + 1 : rep % 7 == 1 ? INT32_MAX : (int32_t)(next() << 8) >> (rep % 24);
        const int32_t mult = (int32_t)((1u << 30) | (next() & 0x3FFFFFFFu));
        const int shift = (int)(next() % 40u) - 31;
        printf("R %ld %ld %d %ld\n", (long)acc_, (long)mult, shift, (long)bornc_requant(acc_, mult, shift));
    }
    for (rep = 0; rep < 200; ++rep) {      /* the requantizing store: 1 to 16 lanes, zero points, clamps, biases */
        const int n = 1 + rep % 16, shift = (int)(next() % 20u) - 15;
        const int32_t mult = (int32_t)((1u << 30) | (next() & 0x3FFFFFFFu)), bias = (int32_t)(next() % 20001u) - 10000;
        const int32_t zp = (int32_t)(next() % 256u), qmin = rep % 3 ? 0 : 10, qmax = rep % 3 ? 255 : 200;
        for (i = 0; i < 16; ++i) acc[i] = i % 5 == 0 ? (rep % 2 ? INT32_MAX - 20000 : INT32_MIN + 20000) : (int32_t)(next() << 8) >> (rep % 20);
        memset(q, 0xAA, sizeof q);
        bornc_requant_store(acc, n, bias, mult, shift, zp, qmin, qmax, q, NULL);
        printf("S");
        for (i = 0; i < 16; ++i) printf(" %d", q[i]);
        printf("\n");
    }
    for (rep = 0; rep < 8; ++rep) {        /* the float tile: packed or in-place B, first or accumulate, bias, clamp */
        static float fa[6 * 19], fb[19 * 40], fc[6 * 20];
        static const float lim[2] = {-3.0f, 2.5f};
        const float fbias[6] = {0.5f, -1.25f, 2.0f, 0.0f, -0.75f, 3.5f};
        int offs[19];
        for (i = 0; i < 6 * 19; ++i) fa[i] = (float)((int)(next() % 2001u) - 1000) / 317.0f;
        for (i = 0; i < 19 * 40; ++i) fb[i] = (float)((int)(next() % 2001u) - 1000) / 211.0f;
        for (i = 0; i < 6 * 20; ++i) fc[i] = (float)((int)(next() % 2001u) - 1000) / 97.0f;
        for (i = 0; i < 19; ++i) offs[i] = 40 * (int)(next() % 19u) + (int)(next() % 24u);
        bornc_sgemm_6x16g(19, fa, fb, rep % 2 ? offs : NULL, fc, 20, rep % 4 < 2, rep % 3 ? fbias : NULL, rep & 4 ? lim : NULL);
        printf("F");
        for (i = 0; i < 6 * 20; ++i) {
            uint32_t bits;
            memcpy(&bits, fc + i, 4);
            printf(" %08lx", (unsigned long)bits);
        }
        printf("\n");
    }
#if defined(PROBE_SEMIHOSTING)
    fflush(stdout);
    exit(sum == 0);
#endif
    return sum == 0;
}
"""


def _probe_flags():
    from bornc.resources import resource_dir
    return ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-I", str(resource_dir("runtime") / "c")]


def _host_probe(tmp_path) -> str:
    """The probe's output with the portable kernels: built for x86-64 without AVX2, run here."""
    if shutil.which("gcc") is None:
        pytest.skip("host gcc not installed (apt-get install gcc)")
    (tmp_path / "probe.c").write_text(KERNEL_PROBE)
    subprocess.run(["gcc", *_probe_flags(), str(tmp_path / "probe.c"), "-march=x86-64", "-o", str(tmp_path / "host")],
                   check=True)
    return subprocess.run([str(tmp_path / "host")], capture_output=True, text=True, check=True).stdout


def _check_probe(host: str) -> None:
    """The probe's shape, and its requantization lines against bornrt.py's requantize (the reference's integer path)."""
    assert "differs" not in host
    kernels = [ln for ln in host.splitlines() if not ln.startswith(("R ", "S", "F"))]
    assert len(kernels) == 20 and all(len(ln.split()) == 96 + 1 + 16 + 16 + 16 for ln in kernels)
    from bornc.pyrt import rt
    req = np.array([[int(v) for v in ln.split()[1:]] for ln in host.splitlines() if ln.startswith("R ")], np.int64)
    assert len(req) == 400
    for acc, mult, shift, got in req:
        assert int(rt.requantize(np.array([acc]), int(mult), int(shift), 0, -2 ** 40, 2 ** 40)[0]) == got, (acc, mult, shift)
    stores = [ln for ln in host.splitlines() if ln.startswith("S")]
    assert len(stores) == 200 and any(ln.split()[1:].count("170") < 15 for ln in stores)
    assert sum(ln.startswith("F") for ln in host.splitlines()) == 8


def test_simd32_kernels_equal_the_portable_ones(tmp_path):
    """bornrt_gemm.h's SMLAD kernels (qgemm8 tile and its packers, dot product, depthwise taps on rows and on flat
    planes) and its scalar-FPU float tile, built for 32-bit Arm with the DSP instructions and VFP (ARMv6 of the Pi
    Zero under qemu-user: the same code as on the Cortex-M4F), give the integers and float bits the portable C
    kernels give on the host (built for x86-64 without AVX2), on weights and activations at their extremes; its
    fixed-point requantization equals bornrt.py's (the reference's) on both."""
    t = get_target("rpi-zero")
    if t.status() != "ready":
        pytest.skip(f"rpi-zero: {t.status()}")
    host = _host_probe(tmp_path)
    arm_flags = ["-march=armv6zk", "-mfpu=vfp", "-mfloat-abi=hard", "-marm"]
    subprocess.run([t.cc, *_probe_flags(), str(tmp_path / "probe.c"), *arm_flags, "-static", "-o", str(tmp_path / "arm")],
                   check=True)
    arm = subprocess.run([t.qemu, str(tmp_path / "arm")], capture_output=True, text=True, check=True).stdout
    assert arm == host
    _check_probe(host)
    probe = subprocess.run([t.cc, *_probe_flags(), *arm_flags, "-E", "-dM", str(tmp_path / "probe.c")], capture_output=True,
                           text=True, check=True)
    assert "#define BORNC_ARM_SIMD32 1" in probe.stdout      # the SMLAD branch is the one compiled


def test_helium_kernels_equal_the_portable_ones(tmp_path):
    """The Helium (MVE) kernels (VMLADAVA tile on k-major panels, the scattering packer, dot product, widening
    depthwise taps on rows and on flat planes, the vector requantizing store), built with cortex-m55's flags and run
    bare metal on its qemu board, give the integers and bytes the portable C kernels give on the host."""
    _needs("cortex-m55")
    from bornc.backends.c.build import qemu_system_command
    t = get_target("cortex-m55")
    host = _host_probe(tmp_path)
    _check_probe(host)
    art = tmp_path / "art"
    compile_model(_model(), "cortex-m55", art, name="tiny", build=False)      # link.ld and the startup file
    flags = [*_probe_flags(), *t.cflags, "-DPROBE_SEMIHOSTING"]
    subprocess.run([t.cc, *flags, "-nostartfiles", "-T", str(art / "link.ld"), "--specs=rdimon.specs",
                    str(tmp_path / "probe.c"), str(art / "bornrt_cortexm.c"), "-o", str(tmp_path / "probe.elf"), "-lm"],
                   check=True)
    r = subprocess.run(qemu_system_command(t, str(tmp_path / "probe.elf")), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.replace("\r\n", "\n") == host
    probe = subprocess.run([t.cc, *flags, "-E", "-dM", str(tmp_path / "probe.c")], capture_output=True, text=True,
                           check=True)
    assert "#define BORNC_ARM_MVE 1" in probe.stdout and "#define BORNC_QGEMM8_KMAJOR 1" in probe.stdout

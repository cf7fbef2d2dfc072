"""The artifact folder is not trusted either (issue 17, items 5 and 6), and the C API keeps its promises.

- ``bornc run`` cross-checks manifest.json against the compiled artifact's own queries (C: the library's
  ``*_input_info`` / ``*_output_info`` / ``*_arena_bytes``; python: the schedule in model.py): an edited shape,
  name, arena size or a malformed manifest is one line and exit 2, never a short buffer or a traceback.
- A weights file one byte too long or too short is refused on C, python and the weights-file C API.
- The C API answers NULL arguments (``inputs``/``outputs`` themselves or any entry, ``check_weights(NULL)``) with
  BORNC_ERR_ARGUMENT instead of crashing, under AddressSanitizer and UndefinedBehaviorSanitizer.
"""
from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.security.fuzz import cli

W = np.arange(64, dtype=np.float32).reshape(8, 8) / 10


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    d = tmp_path_factory.mktemp("trust")
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("MatMul", ["h", "w"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])], [numpy_helper.from_array(W, "w")])
    path = d / "m.onnx"
    path.write_bytes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    np.savez(d / "in.npz", x=np.ones((2, 8), np.float32))
    return path


def _compile(model_path, tmp_path, target):
    art = tmp_path / target
    st, rc, err = cli(["compile", str(model_path), "--target", target, "--weights", "file", "-o", str(art)])
    assert st == "ok", err
    return art


def _run(art, model_path):
    return cli(["run", str(art), "--inputs", str(model_path.parent / "in.npz")])


def _edit(art, fn):
    m = json.loads((art / "manifest.json").read_text())
    fn(m)
    (art / "manifest.json").write_text(json.dumps(m))


EDITS = {
    "input_shape": (lambda m: m["inputs"][0].update(shape=[1, 8]), r"do(es)? not match|expected shape"),
    "input_name": (lambda m: m["inputs"][0].update(name="z"), r"do(es)? not match|unknown input|missing input"),
    "output_dtype": (lambda m: m["outputs"][0].update(dtype="float16"), r"do(es)? not match"),
    "arena_bytes_huge": (lambda m: m.update(arena_bytes=1 << 50), r"arena|does not"),
    "arena_bytes_small": (lambda m: m.update(arena_bytes=1), r"arena|does not"),
    "no_inputs_key": (lambda m: m.pop("inputs"), r"manifest.json"),
    "name": (lambda m: m.update(name="x; rm -rf /"), r"model name|manifest"),
}


@pytest.mark.parametrize("target", ["x86_64", "python"])
@pytest.mark.parametrize("edit", sorted(EDITS))
def test_edited_manifest_is_one_line(model_path, tmp_path, target, edit):
    art = _compile(model_path, tmp_path, target)
    assert _run(art, model_path)[0] == "ok"
    fn, pattern = EDITS[edit]
    _edit(art, fn)
    st, rc, err = _run(art, model_path)
    if target == "x86_64" and edit in ("arena_bytes_huge", "arena_bytes_small"):
        assert st == "ok", err              # C takes the arena size from the library, not from the manifest
        return
    if target == "python" and edit == "name":
        assert st == "ok", err              # the python runtime does not use the name
        return
    assert st == "error", f"{st}: {err}"
    import re
    assert re.search(pattern, err), err


@pytest.mark.parametrize("target", ["x86_64", "python"])
@pytest.mark.parametrize("change", ["longer", "shorter", "garbage_manifest"])
def test_weights_length_and_manifest_json(model_path, tmp_path, target, change):
    art = _compile(model_path, tmp_path, target)
    w = (art / "weights.bin").read_bytes()
    if change == "longer":
        (art / "weights.bin").write_bytes(w + b"\0")
    elif change == "shorter":
        (art / "weights.bin").write_bytes(w[:-1])
    else:
        (art / "manifest.json").write_text("{not json")
    st, rc, err = _run(art, model_path)
    assert st == "error", f"{st}: {err}"


HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "m.h"
static unsigned char arena[BORNC_M_ARENA_BYTES + 64] __attribute__((aligned(64)));
int main(int argc, char **argv) {
    (void)argc;
    FILE *f = fopen(argv[1], "rb");
    static unsigned char w[1 << 20];
    size_t n = fread(w, 1, sizeof w, f);
    float x[16] = {0}, y[16];
    const void *in[1] = {x};
    void *out[1] = {y};
    const void *in_null[1] = {NULL};
    void *out_null[1] = {NULL};
    bornc_m_ctx_t ctx;
    int bad = 0;
    fclose(f);
    bad |= bornc_m_init(&ctx, arena, sizeof arena, w, n + 1) != BORNC_ERR_WEIGHTS;   /* one byte too long */
    bad |= bornc_m_init(&ctx, arena, sizeof arena, w, n - 1) != BORNC_ERR_WEIGHTS;   /* one byte short */
    bad |= bornc_m_init(NULL, arena, sizeof arena, w, n) != BORNC_ERR_ARGUMENT;
    if (bornc_m_init(&ctx, arena, sizeof arena, w, n) != BORNC_OK) return 10;
    bad |= (bornc_m_run(&ctx, in_null, out) != BORNC_ERR_ARGUMENT) << 1;
    bad |= (bornc_m_run(&ctx, in, out_null) != BORNC_ERR_ARGUMENT) << 2;
    bad |= (bornc_m_run(&ctx, NULL, out) != BORNC_ERR_ARGUMENT) << 3;
    bad |= (bornc_m_run(&ctx, in, NULL) != BORNC_ERR_ARGUMENT) << 4;
    bad |= (bornc_m_run(NULL, in, out) != BORNC_ERR_ARGUMENT) << 5;
    bad |= (bornc_m_check_weights(NULL) != BORNC_ERR_ARGUMENT) << 6;
    bad |= (bornc_m_check_weights(&ctx) != BORNC_OK) << 7;
    bad |= (bornc_m_arena_bytes() != BORNC_M_ARENA_BYTES) << 8;
    bad |= (bornc_m_run(&ctx, in, out) != BORNC_OK) << 9;
    printf("bad=%d\n", bad);
    return bad;
}
"""


def test_c_api_null_arguments_and_weights_length_under_sanitizers(model_path, tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("gcc (Debian package gcc) is not installed")
    art = _compile(model_path, tmp_path, "x86_64")
    (art / "harness.c").write_text(HARNESS)
    flags = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
    subprocess.run(["gcc", *flags, "harness.c", "m.c", "bornrt.c", "-o", "harness", "-lm"], cwd=art, check=True)
    r = subprocess.run([str(art / "harness"), str(art / "weights.bin")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "bad=0" in r.stdout, r.stdout + r.stderr

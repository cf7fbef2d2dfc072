"""Fuzzing bornc with mutated models, through the CLI a user runs (issue 17).

Seeds: ONNX backend node-test models chosen to cover indexing, shape, growth, recurrent and control-flow ops, and
the small golden models. Each mutant is drawn by Hypothesis (seeded; the draws still differ from run to run, as Hypothesis adapts its generation, so every run explores new mutants) as one of:

- ``bitflip``: bytes of the serialized model flipped, truncated or inserted;
- ``field``: one field of one protobuf message anywhere in the model (shapes, dims, dtypes, attributes, names,
  raw data, enums, repeated entries dropped, duplicated or cleared) set to an edge value, by protobuf reflection;
- ``rewire``: node inputs and outputs pointed at other values, nodes dropped, duplicated or reordered, op types
  and domains changed;
- ``external``: a tensor moved to external data with hostile locations (``..``, absolute paths, symlinks and
  hard links leaving the folder, out-of-range offsets and lengths).

Each mutant is compiled and run as a user does, with ``bornc.cli.main`` in this process: ``bornc compile
--target python``, ``bornc compile --target x86_64 --sanitize`` (AddressSanitizer and UndefinedBehaviorSanitizer,
run as ``build/model_run``), ``bornc run`` on each artifact and on the model (the reference interpreter) with the
same inputs. The outcome of a mutant is good when every command ends in exit 0 or in exit 2 with one line
``bornc: error: ...``, and every target that ran agrees with the reference (rtol 1e-3, atol 1e-4, NaN equal).
Bad outcomes: ``traceback`` (an exception escaped, or an exit code other than 0/2, or more than one line),
``sanitizer``, ``crash`` (model_run killed by a signal), ``hang`` (over the time limit), ``memory`` (peak RSS over
the limit), ``mismatch`` (outputs differ), ``leak`` (a file outside the model's folder reached an artifact) and
``escape`` (a file written outside the work folder).

    python -m tests.security.fuzz --mutants 20000 --seed 7 --out fuzz-report/     # a longer run

The CI run is tests/security/test_fuzz.py.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import onnx

REPO = Path(__file__).resolve().parents[2]
SEED_CASES = [
    "test_gather_0", "test_gather_negative_indices", "test_gather_elements_0", "test_gathernd_example_int32",
    "test_scatternd", "test_scatter_elements_with_axis", "test_reshape_reordered_all_dims",
    "test_reshape_negative_dim", "test_expand_dim_changed", "test_tile", "test_constantofshape_int_zeros",
    "test_range_float_type_positive_delta", "test_constant_pad", "test_slice", "test_slice_neg_steps",
    "test_resize_upsample_scales_nearest", "test_conv_with_strides_padding", "test_maxpool_2d_pads",
    "test_averagepool_2d_default", "test_matmul_2d", "test_gemm_default_no_bias", "test_softmax_axis_1",
    "test_lstm_defaults", "test_gru_defaults", "test_top_k", "test_cast_FLOAT_to_FLOAT16", "test_where_example",
    "test_reduce_sum_keepdims_example", "test_transpose_default", "test_onehot_with_axis", "test_if",
    "test_split_equal_parts_1d_opset18", "test_concat_2d_axis_0", "test_add_bcast", "test_einsum_batch_matmul",
    "test_batchnorm_epsilon", "test_argmax_default_axis_example", "test_cumsum_1d", "test_layer_normalization_2d_axis0",
    "test_unsqueeze_axis_0", "test_squeeze", "test_flatten_axis0", "test_depthtospace_example", "test_trilu_upper",
    "test_nonzero_example", "test_compress_0", "test_loop11", "test_quantizelinear", "test_dequantizelinear",
]
GOLDEN_SEEDS = ["digits_cnn", "digits_cnn_int8"]
HOSTILE = ["", "x", "../x", "a/b", "*/", "\r", "\n", "{{ x }}", "\\", '"', "\x7f", "\u00e9", "0", "model"]
INTS = [0, 1, -1, 2, 3, 4, 7, 255, 256, 65535, 2 ** 31 - 1, -2 ** 31, 10 ** 9, 2 ** 62, 2 ** 63 - 1, -2 ** 63]
FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, 3.5, 1e38, -1e38, 1e-45, math.nan, math.inf, -math.inf]
SECRET = b"BORNC-FUZZ-SECRET-" * 4           # bytes outside the model's folder: must never reach an artifact
TIME_LIMIT_S = 60
MEMORY_LIMIT_KB = 3 << 20                    # peak RSS of this process per mutant
STAGES: Counter = Counter()                 # commands that succeeded, by stage: compiled_python, ran_x86_64...
BAD = ("traceback", "sanitizer", "crash", "hang", "memory", "mismatch", "leak", "escape")


# ------------------------------------------------------------------------------------------------ seeds
def seed_models() -> list[tuple[str, bytes]]:
    """(name, serialized model) of every seed present in this onnx release and in golden/."""
    import warnings
    from onnx.backend.test.case.node import collect_testcases
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = {c.name: c for c in collect_testcases()}
    seeds = [(n, cases[n].model.SerializeToString()) for n in SEED_CASES if n in cases]
    for g in GOLDEN_SEEDS:
        p = REPO / "golden" / g / "model.onnx"
        if p.is_file():
            seeds.append((g, p.read_bytes()))
    return seeds


# ------------------------------------------------------------------------------------------------ mutations
def _repeated(fd) -> bool:
    return fd.is_repeated if hasattr(fd, "is_repeated") else fd.label == fd.LABEL_REPEATED


def _messages(msg):
    yield msg
    for fd, val in msg.ListFields():
        if fd.type == fd.TYPE_MESSAGE:
            for v in (val if _repeated(fd) else [val]):
                yield from _messages(v)


def _names(model: onnx.ModelProto) -> list[str]:
    g = model.graph
    names = {i.name for i in list(g.input) + list(g.output) + list(g.initializer) + list(g.value_info)}
    for n in g.node:
        names.update(n.input)
        names.update(n.output)
    return sorted(names)


def _scalar(data, fd, names):
    from hypothesis import strategies as st
    T = fd
    if fd.type in (T.TYPE_INT32, T.TYPE_SINT32, T.TYPE_SFIXED32):
        return data.draw(st.sampled_from([v for v in INTS if -2 ** 31 <= v < 2 ** 31]) | st.integers(-8, 8))
    if fd.type in (T.TYPE_INT64, T.TYPE_SINT64, T.TYPE_SFIXED64):
        return data.draw(st.sampled_from(INTS) | st.integers(-8, 64))
    if fd.type in (T.TYPE_UINT32, T.TYPE_FIXED32):
        return data.draw(st.sampled_from([v for v in INTS if 0 <= v < 2 ** 32]))
    if fd.type in (T.TYPE_UINT64, T.TYPE_FIXED64):
        return data.draw(st.sampled_from([v for v in INTS if v >= 0]))
    if fd.type in (T.TYPE_FLOAT, T.TYPE_DOUBLE):
        return data.draw(st.sampled_from(FLOATS))
    if fd.type == T.TYPE_BOOL:
        return data.draw(st.booleans())
    if fd.type == T.TYPE_ENUM:
        return data.draw(st.sampled_from([v.number for v in fd.enum_type.values]) | st.integers(0, 40))
    if fd.type == T.TYPE_STRING:
        return data.draw(st.sampled_from(names + HOSTILE))
    if fd.type == T.TYPE_BYTES:
        return data.draw(st.binary(max_size=64))
    raise ValueError(fd.type)


def _mutate_field(data, model: onnx.ModelProto) -> None:
    from hypothesis import strategies as st
    msgs = list(_messages(model))
    msg = data.draw(st.sampled_from(msgs))
    fd = data.draw(st.sampled_from(list(msg.DESCRIPTOR.fields)))
    names = _names(model)
    if _repeated(fd):
        lst = getattr(msg, fd.name)
        op = data.draw(st.sampled_from(["append", "drop", "clear", "set", "dup"]))
        if op == "clear":
            msg.ClearField(fd.name)
        elif op in ("drop", "set", "dup") and len(lst):
            k = data.draw(st.integers(0, len(lst) - 1))
            if op == "drop":
                del lst[k]
            elif op == "dup":
                lst.add().CopyFrom(lst[k]) if fd.type == fd.TYPE_MESSAGE else lst.append(lst[k])
            elif fd.type != fd.TYPE_MESSAGE:
                lst[k] = _scalar(data, fd, names)
        elif op == "append":
            if fd.type == fd.TYPE_MESSAGE:
                lst.add()
            else:
                lst.append(_scalar(data, fd, names))
    elif fd.type == fd.TYPE_MESSAGE:
        msg.ClearField(fd.name)
    elif fd.name == "raw_data" and msg.raw_data:
        raw = msg.raw_data
        op = data.draw(st.sampled_from(["truncate", "extend", "flip"]))
        if op == "truncate":
            msg.raw_data = raw[:data.draw(st.integers(0, len(raw) - 1))]
        elif op == "extend":
            msg.raw_data = raw + bytes(data.draw(st.integers(1, 64)))
        else:
            k = data.draw(st.integers(0, len(raw) - 1))
            msg.raw_data = raw[:k] + bytes([raw[k] ^ 0xFF]) + raw[k + 1:]
    else:
        setattr(msg, fd.name, _scalar(data, fd, names))


def _rewire(data, model: onnx.ModelProto) -> None:
    from hypothesis import strategies as st
    g = model.graph
    names = _names(model) + ["", "nowhere"]
    op = data.draw(st.sampled_from(["input", "output", "graph_output", "drop", "dup", "swap", "op_type", "domain"]))
    if not len(g.node):
        return
    k = data.draw(st.integers(0, len(g.node) - 1))
    n = g.node[k]
    if op == "input" and len(n.input):
        n.input[data.draw(st.integers(0, len(n.input) - 1))] = data.draw(st.sampled_from(names))
    elif op == "output" and len(n.output):
        n.output[data.draw(st.integers(0, len(n.output) - 1))] = data.draw(st.sampled_from(names))
    elif op == "graph_output" and len(g.output):
        g.output[data.draw(st.integers(0, len(g.output) - 1))].name = data.draw(st.sampled_from(names))
    elif op == "drop":
        del g.node[k]
    elif op == "dup":
        g.node.add().CopyFrom(n)
    elif op == "swap":
        j = data.draw(st.integers(0, len(g.node) - 1))
        a, b = onnx.NodeProto(), onnx.NodeProto()
        a.CopyFrom(g.node[k])
        b.CopyFrom(g.node[j])
        g.node[k].CopyFrom(b)
        g.node[j].CopyFrom(a)
    elif op == "op_type":
        n.op_type = data.draw(st.sampled_from(["Gather", "Reshape", "Expand", "Tile", "ConstantOfShape", "Range",
                                               "Pad", "Resize", "Slice", "Concat", "Identity", "Loop", "If",
                                               "ScatterND", "OneHot", "Conv", "MatMul", "Unknown"]))
    else:
        n.domain = data.draw(st.sampled_from(["com.microsoft", "ai.onnx.ml", "x.y", "ai.onnx"]))


def _external(data, model: onnx.ModelProto, files: dict) -> None:
    """Move one tensor to external data, with a hostile location and range; ``files`` gets what the model's
    folder holds beside it (name -> bytes, or ('symlink'|'hardlink', target))."""
    from hypothesis import strategies as st
    tensors = [m for m in _messages(model) if isinstance(m, onnx.TensorProto)]
    if not tensors:
        return
    t = data.draw(st.sampled_from(tensors))
    for f in ("raw_data", "float_data", "int32_data", "int64_data", "double_data", "uint64_data", "string_data"):
        t.ClearField(f)
    t.data_location = onnx.TensorProto.EXTERNAL
    del t.external_data[:]
    loc = data.draw(st.sampled_from(["data.bin", "../secret.bin", "/etc/hostname", "sub/../data.bin", "link.bin",
                                     "hard.bin", "", ".", "sub", "data.bin\0x", "./data.bin"]))
    t.external_data.add(key="location", value=loc)
    for key in data.draw(st.lists(st.sampled_from(["offset", "length", "checksum", "location", "bogus"]), max_size=3)):
        t.external_data.add(key=key, value=str(data.draw(st.sampled_from(INTS + ["x", "-5", ""]))))
    files["data.bin"] = bytes(data.draw(st.integers(0, 4096)))
    files["link.bin"] = ("symlink", "../secret.bin")
    files["hard.bin"] = ("hardlink", "../secret.bin")


def draw_mutant(data, seeds) -> tuple[str, str, bytes, dict]:
    """(seed name, kind, model bytes, folder files) for one Hypothesis draw."""
    from hypothesis import strategies as st
    name, raw = data.draw(st.sampled_from(seeds))
    kind = data.draw(st.sampled_from(["bitflip", "field", "field", "rewire", "external"]))
    files: dict = {}
    if kind == "bitflip":
        b = bytearray(raw)
        for _ in range(data.draw(st.integers(1, 4))):
            op = data.draw(st.sampled_from(["flip", "flip", "truncate", "insert"]))
            k = data.draw(st.integers(0, max(len(b) - 1, 0)))
            if op == "flip" and b:
                b[k] ^= 1 << data.draw(st.integers(0, 7))
            elif op == "truncate":
                del b[k:]
            else:
                b[k:k] = data.draw(st.binary(min_size=1, max_size=8))
        return name, kind, bytes(b), files
    model = onnx.ModelProto()
    model.ParseFromString(raw)
    for _ in range(data.draw(st.integers(1, 3)) if kind != "external" else 1):
        try:
            if kind == "field":
                _mutate_field(data, model)
            elif kind == "rewire":
                _rewire(data, model)
            else:
                _external(data, model, files)
        except (ValueError, TypeError, IndexError):    # protobuf refused the value (closed enum, range): keep the rest
            pass
    return name, kind, model.SerializeToString(), files


# ------------------------------------------------------------------------------------------------ running
class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def cli(argv: list[str]) -> tuple[str, int, str]:
    """Run ``bornc ARGV`` in this process: (status, exit code, stderr). status: ok, error (exit 2, one line),
    or a bad outcome (traceback, hang, sanitizer, crash)."""
    from bornc.cli import main
    err, out = io.StringIO(), io.StringIO()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TIME_LIMIT_S)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            rc = main(argv)
    except _Timeout:
        return "hang", -1, ""
    except BaseException as ex:  # noqa: BLE001 - anything escaping main is a traceback a user would see
        import traceback
        return "traceback", -1, "".join(traceback.format_exception(ex))[-3000:]
    finally:
        signal.alarm(0)
    text = err.getvalue()
    if "Sanitizer" in text or "runtime error:" in text:
        return "sanitizer", rc, text[-3000:]
    if "killed by signal" in text:
        return "crash", rc, text[-3000:]
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if rc == 0:
        return "ok", 0, text
    if rc == 2 and len(lines) == 1 and lines[0].startswith("bornc: error: "):
        return "error", 2, text
    return "traceback", rc, text[-3000:]


def _feeds(manifest: dict) -> dict | None:
    from bornc.ir.types import np_dtype
    rng = np.random.default_rng(0)
    feeds = {}
    for t in manifest["inputs"]:
        if t.get("shape") is None or math.prod(int(d) for d in t["shape"]) > 1 << 20:
            return None
        dt = np_dtype(t["dtype"])
        if dt.kind == "f":
            a = rng.standard_normal(t["shape"]).astype(dt)
        elif dt.kind == "b":
            a = rng.integers(0, 2, t["shape"]).astype(bool)
        elif dt.kind in "iu":
            a = rng.integers(0, 3, t["shape"]).astype(dt)
        else:
            return None
        feeds[t["name"]] = a
    return feeds


def _agree(ref: dict, got: dict) -> bool:
    if set(ref) != set(got):
        return False
    for k in ref:
        a, b = np.asarray(ref[k]), np.asarray(got[k])
        if a.shape != b.shape:
            return False
        if a.dtype.kind in "fc" or b.dtype.kind in "fc":
            if not np.allclose(a.astype(np.float64), b.astype(np.float64), rtol=1e-3, atol=1e-4, equal_nan=True):
                return False
        elif not np.array_equal(a, b):
            return False
    return True


def _status_kb(key: str) -> int:
    """A /proc/self/status memory figure (KiB): VmHWM (the peak RSS) or VmRSS."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def _peak_kb() -> int:
    return _status_kb("VmHWM")


def _reset_peak() -> int:
    """Reset the peak RSS to the current RSS; returns that (KiB), the baseline a check measures growth from (a
    pytest worker may hold memory from the tests it ran before)."""
    with contextlib.suppress(OSError):
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    return _status_kb("VmRSS")


def _setup_folder(work: Path, raw: bytes, files: dict) -> Path:
    mdir = work / "model"
    mdir.mkdir(parents=True)
    (work / "secret.bin").write_bytes(SECRET)
    (work / "data.bin").write_bytes(SECRET)             # a reader resolving against the cwd would find this
    (mdir / "sub").mkdir()
    for name, content in files.items():
        if isinstance(content, tuple):
            kind, target = content
            if kind == "symlink":
                os.symlink(target, mdir / name)
            else:
                os.link(work / "secret.bin", mdir / name)
        else:
            (mdir / name).write_bytes(content)
    path = mdir / "model.onnx"
    path.write_bytes(raw)
    return path


def _leaked(folder: Path) -> bool:
    for p in folder.rglob("*"):
        if p.is_file() and not p.is_symlink() and SECRET[:18] in p.read_bytes():
            return True
    return False


def check_mutant(work: Path, raw: bytes, files: dict, build_c: bool) -> tuple[str, str]:
    """Compile and run one mutant in ``work`` (the cwd meanwhile): (outcome, detail)."""
    path = _setup_folder(work, raw, files)
    before = sorted(p.name for p in work.parent.iterdir())
    outcome, detail = "refused", ""
    runs: dict = {}
    prev = os.getcwd()
    os.chdir(work)
    base = _reset_peak()
    try:
        targets = ["python"] + (["x86_64"] if build_c else [])
        feeds = None
        for t in targets:
            art = work / f"art_{t}"
            st, rc, err = cli(["compile", str(path), "--target", t, "-o", str(art)] + (["--sanitize"] if t != "python" else []))
            if st not in ("ok", "error"):
                return st, f"compile {t}: {err}"
            if st == "error":
                continue
            STAGES[f"compiled_{t}"] += 1
            if _leaked(art):
                return "leak", f"compile {t}: the artifact holds bytes from outside the model's folder"
            if feeds is None:
                feeds = _feeds(json.loads((art / "manifest.json").read_text()))
                if feeds is None:
                    break
                np.savez(work / "feeds.npz", **feeds)
            st, rc, err = cli(["run", str(art), "--inputs", str(work / "feeds.npz"), "-o", str(work / f"out_{t}.npz")])
            if st not in ("ok", "error"):
                return st, f"run {t}: {err}"
            runs[t] = st
            STAGES[f"ran_{t}"] += st == "ok"
        if feeds is not None and runs:
            st, rc, err = cli(["run", str(path), "--inputs", str(work / "feeds.npz"), "-o", str(work / "out_ref.npz")])
            if st not in ("ok", "error"):
                return st, f"run reference: {err}"
            outcome = "ran"
            STAGES["ran_reference"] += st == "ok"
            if st == "ok":
                with np.load(work / "out_ref.npz") as z:
                    ref = {k: z[k] for k in z.files}
                for t, s in runs.items():
                    if s == "ok":
                        with np.load(work / f"out_{t}.npz") as z:
                            got = {k: z[k] for k in z.files}
                        if not _agree(ref, got):
                            return "mismatch", f"{t} differs from the reference"
            elif any(s == "ok" for s in runs.values()):
                outcome = "ran-reference-refused"
        elif runs or feeds is None and (work / "art_python").exists():
            outcome = "compiled"
    finally:
        os.chdir(prev)
        peak = _peak_kb() - base
    if peak > MEMORY_LIMIT_KB:
        return "memory", f"peak RSS growth {peak // 1024} MiB"
    if sorted(p.name for p in work.parent.iterdir()) != before:
        return "escape", f"files appeared beside the work folder: {sorted(p.name for p in work.parent.iterdir())}"
    return outcome, detail


def campaign(mutants: int, seed: int, c_every: int = 1, out: Path | None = None, log=print) -> dict:
    """Run ``mutants`` Hypothesis-drawn mutants (fixed by ``seed``); the C target is built for every ``c_every``-th
    mutant that the python target compiles. Returns {"outcomes": Counter, "bad": [...], "seconds": ...}."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed
    from hypothesis import strategies as st

    seeds = seed_models()
    outcomes: Counter = Counter()
    kinds: Counter = Counter()
    bad: list = []
    root = Path(tempfile.mkdtemp(prefix="bornc-fuzz-"))
    count = [0]
    t0 = time.time()

    @hseed(seed)
    @settings(max_examples=mutants, database=None, deadline=None, phases=[Phase.generate], derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def one(data):
        name, kind, raw, files = draw_mutant(data, seeds)
        k = count[0]
        count[0] += 1
        work = root / f"m{k:05d}" / "w"
        work.parent.mkdir()
        res, detail = check_mutant(work, raw, files, build_c=(k % c_every == 0))
        outcomes[res] += 1
        kinds[kind] += 1
        if res in BAD:
            bad.append({"mutant": k, "seed": name, "kind": kind, "outcome": res, "detail": detail[-1500:]})
            if out is not None:
                out.mkdir(parents=True, exist_ok=True)
                (out / f"m{k:05d}-{res}.onnx").write_bytes(raw)
            log(f"mutant {k} ({name}, {kind}): {res}: {detail[-400:]}")
        shutil.rmtree(work.parent, ignore_errors=True)

    one()
    shutil.rmtree(root, ignore_errors=True)
    report = {"mutants": count[0], "seed": seed, "seeds": len(seeds), "outcomes": dict(outcomes), "kinds": dict(kinds),
              "stages": dict(STAGES),
              "bad": bad, "seconds": round(time.time() - t0, 1)}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps(report, indent=1))
    return report


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mutants", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--c-every", type=int, default=1, help="build and run C for every N-th mutant (default every one)")
    p.add_argument("--out", type=Path, help="folder for report.json and the bad mutants")
    args = p.parse_args(argv)
    rep = campaign(args.mutants, args.seed, args.c_every, args.out)
    print(json.dumps({k: v for k, v in rep.items() if k != "bad"}))
    return 1 if rep["bad"] else 0


if __name__ == "__main__":
    sys.exit(main())

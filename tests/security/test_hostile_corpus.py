"""Every model of the hostile corpus (hostile_corpus.py) through ``bornc compile`` for python and x86_64, the way a
user runs it (``bornc.cli.main`` in this process): exit 2 with exactly one line ``bornc: error: ...`` matching the
entry's pattern, no traceback, and a peak RSS growth during the compile far below what the model asks for (the
size checks run before any allocation). Entries a target must accept are compiled, run, and compared with the reference interpreter."""
from __future__ import annotations

import re

import numpy as np
import pytest

from tests.security.fuzz import _peak_kb, _reset_peak, cli
from tests.security.hostile_corpus import CORPUS, expected

PEAK_LIMIT_KB = 1 << 20          # 1 GiB: every memory entry asks for 3 GB to 4 TB


@pytest.mark.parametrize("target", ["python", "x86_64"])
@pytest.mark.parametrize("entry", CORPUS, ids=[e[0] for e in CORPUS])
def test_hostile_model_gets_one_clear_line(entry, target, tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(entry[2]())
    want = expected(entry, target)
    base = _reset_peak()
    status, rc, err = cli(["compile", str(path), "--target", target, "-o", str(tmp_path / "art")])
    assert _peak_kb() - base < PEAK_LIMIT_KB, f"peak RSS grew by {(_peak_kb() - base) // 1024} MiB"
    if want is None:
        assert status == "ok", err
        x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
        feeds = {"x": x, **(entry[4] if len(entry) > 4 else {})}
        np.savez(tmp_path / "in.npz", **feeds)
        for src, out in ((tmp_path / "art", "got.npz"), (path, "ref.npz")):
            st, rc, err = cli(["run", str(src), "--inputs", str(tmp_path / "in.npz"), "-o", str(tmp_path / out)])
            assert st == "ok", err
        with np.load(tmp_path / "got.npz") as got, np.load(tmp_path / "ref.npz") as ref:
            assert set(got.files) == set(ref.files)
            for k in ref.files:
                np.testing.assert_array_equal(got[k], ref[k])
        return
    assert status == "error", f"{status} (exit {rc}): {err}"
    line = err.strip()
    assert re.search(want, line), line


def test_corpus_covers_every_class():
    classes = {e[1] for e in CORPUS}
    assert classes == {"memory", "bounds", "malformed"}
    assert len({e[0] for e in CORPUS}) == len(CORPUS)

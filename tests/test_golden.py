"""Golden cases under golden/: each is checked on the reference executor (pytest collects one test per case).

Cases whose model comes from PyPI are fetched (and cached); with no network they skip, saying so.
"""
import pytest

from bornc import golden
from bornc.fetch import FetchError


@pytest.mark.parametrize("name", golden.list_cases())
def test_golden_case_on_reference(name):
    case = golden.load_case(name)
    try:
        rows = golden.check(case, "reference")
    except FetchError as ex:
        pytest.skip(f"model not reachable: {ex}")
    assert rows and all(r.ok for r in rows), [(r.output, r.max_abs, r.note) for r in rows if not r.ok]


def test_golden_case_detects_a_wrong_expected_output(tmp_path):
    """A check must be able to fail: corrupt a copy of a case's expected output and check again."""
    import shutil

    import numpy as np
    src = golden.golden_dir() / "light_bvlc_alexnet"
    dst = tmp_path / "light_bvlc_alexnet"
    shutil.copytree(src, dst)
    f = next((dst / "expected").glob("*.npy"))
    arr = np.load(f)
    np.save(f, arr + 0.01)
    rows = golden.check(golden.load_case(dst), "reference")
    assert rows and not any(r.ok for r in rows)

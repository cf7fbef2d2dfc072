"""The test tiers of the README: `-m "not slow"` is a subset, and pytest-split's shards (`--splits N --group k`,
balanced by the committed .test_durations) together cover the whole suite exactly once."""
import subprocess
import sys

import pytest

from .conftest import ROOT


def _collect(*args: str) -> list[str]:
    r = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return [ln for ln in r.stdout.splitlines() if "::" in ln]


@pytest.mark.slow
def test_shards_cover_the_suite_exactly_once():
    everything = _collect()
    assert len(everything) > 100
    shards = [_collect("--splits", "3", "--group", str(k), "--durations-path", str(ROOT / ".test_durations"))
              for k in (1, 2, 3)]
    merged = [t for s in shards for t in s]
    assert sorted(merged) == sorted(everything), "shards differ from the suite"
    assert len(merged) == len(set(merged)), "a test runs in two shards"
    assert all(shards), "an empty shard"


def test_fast_tier_is_a_proper_subset():
    fast, everything = set(_collect("-m", "not slow")), set(_collect())
    assert fast < everything and len(fast) > 50

"""Per-case regression guard for the conformance runs: compare with the committed docs/conformance-<executor>.json.

A case that passed in the committed results and does not pass now fails the test, named. The committed files
are written by `bornc conformance --executor E` (run it after a change that moves cases, and commit the result).
"""
from __future__ import annotations

import json
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"


def committed(executor: str) -> dict:
    """The committed results of ``executor`` ({} when there are none yet)."""
    p = DOCS / f"conformance-{executor}.json"
    return json.loads(p.read_text()) if p.is_file() else {}


def regressions(res: dict) -> dict[str, str]:
    """{case: what it is now} for every case that passed in the committed results and does not pass in ``res``."""
    old = committed(res["executor"]).get("cases", {})
    now = res["cases"]
    return {n: (f"{now[n][0]}: {now[n][1][:200]}" if n in now else "missing") for n, (s, _) in sorted(old.items())
            if s == "passed" and (n not in now or now[n][0] != "passed")}


def assert_no_regressions(res: dict) -> None:
    lost = regressions(res)
    assert committed(res["executor"]), f"docs/conformance-{res['executor']}.json is not committed"
    assert not lost, f"{len(lost)} case(s) passed in docs/conformance-{res['executor']}.json and fail now: " + \
        "; ".join(f"{k} ({v})" for k, v in list(lost.items())[:40])

"""Progress bars for the long steps (calibration, the sensitivity search, batched conformance, C builds):
tqdm bars on stderr, shown only when both stdout and stderr are terminals, so logs, pipes and CI stay quiet.
``BORNC_PROGRESS=0`` turns them off, ``BORNC_PROGRESS=1`` on (for terminals that do not say they are)."""
from __future__ import annotations

import os
import sys


def enabled() -> bool:
    """True when progress bars are shown (see the module docstring)."""
    forced = os.environ.get("BORNC_PROGRESS")
    if forced in ("0", "1"):
        return forced == "1"
    return sys.stdout.isatty() and sys.stderr.isatty()


def progress(iterable=None, desc: str = "", total: int | None = None, unit: str = "it"):
    """``iterable`` wrapped in a tqdm bar labelled ``desc`` (counting ``unit``), or a bar to ``update`` by hand
    when ``iterable`` is None; disabled (a plain pass-through) unless :func:`enabled`. The bar is removed when
    done."""
    try:
        from tqdm import tqdm
    except ImportError:                       # an environment installed before tqdm was a dependency
        return _Plain(iterable)
    return tqdm(iterable, desc=desc, total=total, unit=unit, disable=not enabled(), leave=False, file=sys.stderr,
                dynamic_ncols=True)


class _Plain:
    """What progress() returns without tqdm: the iterable, and no-op update/close."""

    def __init__(self, iterable):
        self.iterable = iterable if iterable is not None else ()

    def __iter__(self):
        return iter(self.iterable)

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


__all__ = ["enabled", "progress"]

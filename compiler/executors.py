"""Executors: run a model (or, later, a compiled artifact) on this machine and return numpy outputs.

``bornc run``, ``bornc golden check``, ``bornc conformance`` and ``bornc bench`` all go through
:func:`get_executor`, so every target is tested the same way. Target backends add entries to EXECUTORS.
"""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from .errors import BorncError
from .interpreter import run
from .ir.graph import Model

Prepared = Callable[[Mapping[str, np.ndarray]], dict]


class ReferenceExecutor:
    """The numpy reference interpreter (the oracle)."""

    name = "reference"

    def prepare(self, model: Model) -> Prepared:
        """Return ``feeds -> {output name: value}`` for ``model``."""
        return lambda feeds: run(model, feeds)


EXECUTORS: dict[str, Callable[[], object]] = {"reference": ReferenceExecutor}


def get_executor(name: str):
    """The executor registered under ``name``; BorncError listing the known ones otherwise."""
    if name not in EXECUTORS:
        raise BorncError(f"unknown executor {name!r}; available: {', '.join(sorted(EXECUTORS))}")
    return EXECUTORS[name]()

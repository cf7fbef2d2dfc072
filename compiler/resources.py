"""Locate the data folders shipped with bornc (``templates``, ``runtime``, ``targets``).

In a source checkout (editable install) they sit beside ``compiler/``; in an installed wheel they are the
package data ``bornc/share/<name>``.
"""
from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """Folder of shipped data ``name`` (one of templates, runtime, targets)."""
    for p in (_HERE / "share" / name, _HERE.parent / name):
        if p.is_dir() and any(p.iterdir()):
            return p
    raise FileNotFoundError(f"bornc data folder {name!r} not found (broken installation?)")

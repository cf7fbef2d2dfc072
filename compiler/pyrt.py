"""The Python runtime module, ``runtime/python/bornrt.py``, loaded from the file that ships to devices.

Formulas that the reference interpreter shares with the python target (Resize, recurrent cells, window
geometry) are defined there once; ``from bornc.pyrt import rt`` gives that module.
"""
from __future__ import annotations

import importlib.util
import sys

from .resources import resource_dir


def _load():
    name = "bornc._bornrt"
    if name in sys.modules:
        return sys.modules[name]
    path = resource_dir("runtime") / "python" / "bornrt.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


rt = _load()

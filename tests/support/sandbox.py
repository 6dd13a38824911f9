"""For tests whose auto-run shell commands run in the kernel sandbox, where /tmp (so pytest's tmp_path) is private.

A command the policy auto-runs sees the host read-only, but not the host's /tmp: files it should read go under a
home made here, outside /tmp, and $HOME points at it (the policy judges relative paths and runs commands there).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

VISIBLE_TEMP_ROOT = "/var/tmp"


@contextmanager
def home_outside_tmp(monkeypatch: pytest.MonkeyPatch, prefix: str = "aiventbus-home-") -> Iterator[Path]:
    """A fresh user home under /var/tmp, with $HOME set to it; removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=VISIBLE_TEMP_ROOT))
    monkeypatch.setenv("HOME", str(folder))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)

"""Fixtures shared by every test layer."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.clock import FakeClock
from tests.support.daemon import RunningDaemon, running_daemon

pytest_plugins = ["tests.support.llm_fixtures"]


def pytest_configure(config: pytest.Config) -> None:
    """A fresh base temp dir per run: pytest's default rotation would delete a concurrent run's dirs."""
    if config.option.basetemp is None:
        config.option.basetemp = tempfile.mkdtemp(prefix="aiventbus-tests-")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    basetemp = session.config.option.basetemp
    if exitstatus == 0 and basetemp and Path(basetemp).name.startswith("aiventbus-tests-"):
        shutil.rmtree(basetemp, ignore_errors=True)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the real user's config, data or state."""
    for variable, sub in {
        "XDG_CONFIG_HOME": "xdg-config",
        "XDG_DATA_HOME": "xdg-data",
        "XDG_STATE_HOME": "xdg-state",
    }.items():
        monkeypatch.setenv(variable, str(tmp_path / sub))
    monkeypatch.delenv("AIVENTBUS_CONFIG", raising=False)
    monkeypatch.delenv("AIBUS_URL", raising=False)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[RunningDaemon]:
    async with running_daemon(tmp_path) as running:
        yield running


@pytest.fixture(autouse=True)
def _no_leftover_daemons() -> Iterator[None]:
    """A failed test must not leave a `python -m aiventbus` behind to disturb later tests."""
    before = _daemon_pids()
    yield
    for pid in _daemon_pids() - before:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)


def _daemon_pids() -> set[int]:
    """Daemons started by this test process (never another run's, which may be going on beside it)."""
    result = subprocess.run(
        ["pgrep", "-P", str(os.getpid()), "-f", r"python.* -m aiventbus( |$)"], capture_output=True, text=True
    )
    return {int(pid) for pid in result.stdout.split()}

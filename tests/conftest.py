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

from aiventbus.config import BusConfig
from aiventbus.core.bus import EventBus
from aiventbus.store.database import Database
from aiventbus.telemetry import Metrics
from tests.support.clock import FakeClock
from tests.support.daemon import (
    DaemonProcess,
    RunningDaemon,
    free_port,
    running_daemon,
    start_daemon_process,
    stop_process,
    write_config,
)

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


@pytest.fixture
def daemon_process(tmp_path: Path) -> Iterator[DaemonProcess]:
    """A real `python -m aiventbus` on a free port, for tests that drive it from outside (aibus, signals)."""
    process = start_daemon_process(write_config(tmp_path, port=free_port()))
    yield process
    stop_process(process.process)


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[EventBus]:
    """An EventBus over a fresh database, with dedupe off."""
    db = Database(tmp_path / "events.db")
    await db.open()
    try:
        yield EventBus(db, BusConfig(dedupe_window_seconds=0), Metrics())
    finally:
        await db.close()


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

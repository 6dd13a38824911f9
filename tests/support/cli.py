"""Run the real `aibus` command in a subprocess against a test daemon."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

AIBUS = [sys.executable, "-m", "aiventbus.cli"]


def aibus(config: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """For a daemon in another process: blocks until the command ends."""
    return subprocess.run(
        [*AIBUS, "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


async def aibus_async(config: Path, *args: str, timeout: float = 60) -> tuple[int, str, str]:
    """For an in-process daemon, which must keep serving while the command runs: (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        *AIBUS,
        "--config",
        str(config),
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    return int(process.returncode or 0), out.decode(), err.decode()

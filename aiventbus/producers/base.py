"""The Producer protocol and the subprocess helper producers share."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from aiventbus.producers.outlet import Outlet


class Producer(Protocol):
    """Watches one thing and offers events to its outlet until cancelled.

    `run` raises `aiventbus.platform.CapabilityUnavailable` when the thing cannot be watched here (the
    manager marks it unavailable and does not retry) and any other exception for a failure (retried with backoff).
    """

    name: str
    source: str
    capability: str

    async def run(self, outlet: Outlet) -> None: ...

    def details(self) -> dict[str, Any]: ...


async def read_output(
    argv: Sequence[str], max_bytes: int, timeout: float, env: Mapping[str, str] | None = None
) -> tuple[int, bytes, bytes]:
    """Run argv without a shell: (exit code, stdout cut at max_bytes, stderr cut at 4 KiB); killed on timeout."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env) if env is not None else None,
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        async with asyncio.timeout(timeout):
            out = await process.stdout.read(max_bytes + 1)
            if len(out) > max_bytes:
                out = out[:max_bytes]
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
            err = await process.stderr.read(4096)
            code = await process.wait()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    return code, out, err


async def stop_process(process: asyncio.subprocess.Process) -> None:
    """Terminate, then kill after a grace period, and reap."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 3)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

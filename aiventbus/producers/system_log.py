"""log.<level> from the system log's JSON lines (journalctl -f -o json), restarted with backoff if it dies."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiventbus.platform import CapabilityUnavailable
from aiventbus.platform.base import SYSTEM_LOG
from aiventbus.producers.base import stop_process
from aiventbus.producers.outlet import Outlet

LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
MAX_LINE_BYTES = 1_048_576
MAX_MESSAGE_CHARS = 8192


def _text(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(b, int) for b in value):
        return bytes(b & 0xFF for b in value).decode("utf-8", "replace")
    return "" if value is None else str(value)


def parse_log_line(line: str) -> tuple[str, dict[str, Any]] | None:
    """One journal JSON line -> (topic, payload); None for anything that is not a JSON object."""
    try:
        entry = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(entry, dict):
        return None
    if "eventMessage" in entry:
        return _parse_unified_log(entry)
    try:
        priority = int(entry.get("PRIORITY", 6))
    except (TypeError, ValueError):
        priority = 6
    level = LEVELS[min(max(priority, 0), 7)]
    pid_raw = entry.get("_PID") or entry.get("SYSLOG_PID")
    pid = int(pid_raw) if isinstance(pid_raw, str | int) and str(pid_raw).isdigit() else None
    unit = entry.get("_SYSTEMD_UNIT") or entry.get("UNIT") or entry.get("SYSLOG_IDENTIFIER") or ""
    timestamp = entry.get("__REALTIME_TIMESTAMP")
    payload: dict[str, Any] = {
        "unit": _text(unit),
        "identifier": _text(entry.get("SYSLOG_IDENTIFIER")),
        "message": _text(entry.get("MESSAGE"))[:MAX_MESSAGE_CHARS],
        "pid": pid,
        "priority": priority,
        "timestamp": int(timestamp) / 1_000_000 if isinstance(timestamp, str) and timestamp.isdigit() else None,
    }
    return f"log.{level}", payload


UNIFIED_LEVELS = {"Fault": 2, "Error": 3, "Default": 5, "Info": 6, "Debug": 7}


def _parse_unified_log(entry: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """One line of `log stream --style ndjson` (the unified log format)."""
    priority = UNIFIED_LEVELS.get(str(entry.get("messageType")), 5)
    pid = entry.get("processID")
    image = str(entry.get("processImagePath") or "")
    payload: dict[str, Any] = {
        "unit": str(entry.get("subsystem") or image.rsplit("/", 1)[-1]),
        "identifier": image.rsplit("/", 1)[-1],
        "message": _text(entry.get("eventMessage"))[:MAX_MESSAGE_CHARS],
        "pid": pid if isinstance(pid, int) else None,
        "priority": priority,
        "timestamp": None,
    }
    return f"log.{LEVELS[priority]}", payload


class SystemLogProducer:
    name = "system_log"
    source = "system_log"
    capability = SYSTEM_LOG

    def __init__(
        self,
        command: list[str],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_backoff: float = 30.0,
    ) -> None:
        self.command = command
        self.sleep = sleep
        self.max_backoff = max_backoff
        self.restarts = 0
        self.lines = 0
        self.unparsed = 0
        self.last_exit = ""

    def details(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "restarts": self.restarts,
            "lines": self.lines,
            "unparsed": self.unparsed,
            "last_exit": self.last_exit,
        }

    async def run(self, outlet: Outlet) -> None:
        backoff = 1.0
        while True:
            started = time.monotonic()
            code = await self._follow(outlet)
            self.last_exit = f"{self.command[0]} exited with status {code}"
            if time.monotonic() - started > 60:
                backoff = 1.0
            self.restarts += 1
            await self.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)

    async def _follow(self, outlet: Outlet) -> int:
        try:
            process = await asyncio.create_subprocess_exec(
                *self.command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                limit=MAX_LINE_BYTES,
            )
        except (FileNotFoundError, PermissionError) as error:
            raise CapabilityUnavailable(
                SYSTEM_LOG, f"cannot run {self.command[0]}: {error.strerror}", "fix producers.system_log_command"
            ) from None
        assert process.stdout is not None
        try:
            while True:
                try:
                    raw = await process.stdout.readline()
                except ValueError:
                    self.unparsed += 1
                    continue
                if not raw:
                    # End of output: let the command finish by itself, so its own exit status is what we report.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(process.wait(), 5)
                    break
                self.lines += 1
                parsed = parse_log_line(raw.decode("utf-8", "replace"))
                if parsed is None:
                    self.unparsed += 1
                    continue
                topic, payload = parsed
                outlet.offer(topic, payload, key=f"{topic}:{payload['unit']}:{payload['message'][:200]}")
        finally:
            await stop_process(process)
        return int(process.returncode or 0)

"""clipboard.text on every change: read when the platform reports a change, by polling, or via wl-paste --watch."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

from aiventbus.platform import CapabilityUnavailable, Platform
from aiventbus.platform.base import CLIPBOARD
from aiventbus.producers.base import read_output, stop_process
from aiventbus.producers.outlet import Outlet

READ_TIMEOUT_SECONDS = 5.0
NO_TEXT_MARKERS = ("target STRING not available", "target UTF8_STRING not available", "Nothing is copied")


class ClipboardProducer:
    name = "clipboard"
    source = "clipboard"
    capability = CLIPBOARD

    def __init__(
        self,
        platform: Platform,
        poll_interval: float,
        max_chars: int,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.platform = platform
        self.poll_interval = poll_interval
        self.max_chars = max_chars
        self.sleep = sleep
        self.last_text: str | None = None
        self.mode = ""
        self.watching = False

    def details(self) -> dict[str, Any]:
        return {"mode": self.mode, "watching": self.watching, "poll_interval_seconds": self.poll_interval}

    async def run(self, outlet: Outlet) -> None:
        watch = self.platform.clipboard_watch_command()
        if watch is not None:
            self.mode = "watch"
            await self._watch(watch, outlet)
            return
        notifier = self.platform.clipboard_change_notifier()
        if notifier is not None and await self._on_change(notifier, self.platform.clipboard_command(), outlet):
            return
        self.mode = "poll"
        await self._poll(self.platform.clipboard_command(), outlet)

    def observe(self, text: str, outlet: Outlet) -> None:
        """One clipboard reading: emit it when it differs from the last one seen."""
        if text == self.last_text:
            return
        self.last_text = text
        if not text.strip():
            return
        kept = text[: self.max_chars]
        payload: dict[str, Any] = {"text": kept, "length": len(text), "truncated": len(kept) < len(text)}
        outlet.offer("clipboard.text", payload, key="clipboard")

    async def _poll(self, command: list[str], outlet: Outlet) -> None:
        first = True
        while True:
            text = await self._read(command)
            if first:
                # What was copied before the daemon started is not a change.
                self.last_text = text
                first = False
                self.watching = True
            elif text is not None:
                self.observe(text, outlet)
            await self.sleep(self.poll_interval)

    async def _on_change(self, notifier: list[str], command: list[str], outlet: Outlet) -> bool:
        """Read the clipboard only when the notifier reports a change; False when it cannot start (then poll)."""
        process = await asyncio.create_subprocess_exec(
            *notifier, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        assert process.stdout is not None and process.stderr is not None
        try:
            first = await asyncio.wait_for(process.stdout.readline(), READ_TIMEOUT_SECONDS)
            if first.strip() != b"ready":
                problem = (await process.stderr.read(500)).decode("utf-8", "replace").strip()
                if "display" in problem:
                    display = os.environ.get("DISPLAY", "")
                    raise CapabilityUnavailable(
                        CLIPBOARD, f"cannot open display {display!r}: {problem}", "start the X server or fix $DISPLAY"
                    )
                return False
            self.mode = "change events"
            self.last_text = await self._read(command)
            self.watching = True
            # One read per chunk, however many changes it reports: a burst of copies costs one xclip run.
            # After `ready` the helper prints only change lines: any chunk means at least one change.
            while await process.stdout.read(65_536):
                text = await self._read(command)
                if text is not None:
                    self.observe(text, outlet)
        except TimeoutError:
            return False
        finally:
            self.watching = False
            await stop_process(process)
        raise RuntimeError(f"the clipboard change notifier exited with status {process.returncode}")

    async def _read(self, command: list[str]) -> str | None:
        code, out, err = await read_output(command, self.max_chars * 4, READ_TIMEOUT_SECONDS)
        if code == 0:
            return out.decode("utf-8", "replace")
        message = err.decode("utf-8", "replace").strip()
        if "display" in message.lower() and ("open" in message.lower() or "connect" in message.lower()):
            display = os.environ.get("DISPLAY", "")
            raise CapabilityUnavailable(
                CLIPBOARD, f"cannot open display {display!r}: {message[:200]}", "start the X server or fix $DISPLAY"
            )
        if any(marker in message for marker in NO_TEXT_MARKERS) or not message:
            return None
        raise RuntimeError(f"{command[0]} failed with exit status {code}: {message[:200]}")

    async def _watch(self, command: list[str], outlet: Outlet) -> None:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            limit=self.max_chars * 4 + 1024,
        )
        assert process.stdout is not None
        self.watching = True
        try:
            while True:
                try:
                    chunk = await process.stdout.readuntil(b"\0")
                except asyncio.IncompleteReadError:
                    break
                except asyncio.LimitOverrunError as error:
                    await process.stdout.readexactly(error.consumed)
                    continue
                self.observe(chunk[:-1].decode("utf-8", "replace"), outlet)
        finally:
            self.watching = False
            await stop_process(process)
        raise RuntimeError(f"{command[0]} exited with status {process.returncode}")

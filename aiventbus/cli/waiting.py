"""What a waiting command shows on stderr: a live spinner line on a terminal; elsewhere (scripts, logs) a plain line
each time the reason it is held up changes, and nothing while it makes progress."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.status import Status

# A quick answer shows no waiting line at all.
QUIET_SECONDS = 1.0


def waiting_line(subject: str, reason: str, waited: float, timeout: float) -> str:
    """e.g. `waiting for agent_x (12 s of at most 120 s): queued: the model m1 at http://…: unreachable`."""
    return f"waiting for {subject} ({waited:.0f} s of at most {timeout:g} s): {reason}"


class WaitDisplay:
    """Shows what a command waits for, for how long and why; `stop()` before writing the answer to stdout."""

    def __init__(self, subject: str, timeout: float, interactive: bool | None = None) -> None:
        self.subject = subject
        self.timeout = timeout
        self.interactive = sys.stderr.isatty() if interactive is None else interactive
        self.started = time.monotonic()
        self.reason = ""
        self.stalled = False
        self._printed_reason: str | None = None
        self._spinner: Status | None = None
        self._stopped = False

    @property
    def waited(self) -> float:
        return time.monotonic() - self.started

    def show(self, reason: str, stalled: bool) -> None:
        """Record the current reason; shown once the wait is no longer quick."""
        self.reason, self.stalled = reason, stalled
        self.refresh()

    def refresh(self) -> None:
        if self._stopped or not self.reason or self.waited < QUIET_SECONDS:
            return
        if self.interactive:
            self._spin()
        elif self.stalled and self.reason != self._printed_reason:
            self._printed_reason = self.reason
            typer.echo(f"aibus: {waiting_line(self.subject, self.reason, self.waited, self.timeout)}", err=True)

    def _spin(self) -> None:
        text = waiting_line(self.subject, self.reason, self.waited, self.timeout)
        if self._spinner is None:
            from rich.console import Console

            self._spinner = Console(stderr=True).status(_plain(text))
            self._spinner.start()
        else:
            self._spinner.update(_plain(text))

    def stop(self) -> None:
        self._stopped = True
        if self._spinner is not None:
            self._spinner.stop()
            self._spinner = None


def _plain(text: str) -> Any:
    """The text as rich shows it literally (no [markup] interpretation of reasons from the daemon)."""
    from rich.text import Text

    return Text(text, no_wrap=True, overflow="ellipsis")

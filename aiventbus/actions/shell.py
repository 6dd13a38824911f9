"""Run one shell_exec command: without a shell when it is a plain command, in its own process group, capped.

Interface (used by the executor):
    result = await run_command(command, timeout_seconds, max_output_bytes, cwd=None, env=None, confine=None)
    -> ShellResult(exit_code, stdout, stderr, truncated, timed_out, duration_seconds, argv_or_shell, sandboxed)
`exit_code` is None when the process was killed on timeout; `argv_or_shell` is the argv run directly, or
["/bin/sh", "-c", command] when the command needed a shell. `confine` (a platform sandbox's wrapper) turns that
argv into the one that runs it inside the sandbox; the caps, the timeout and the group kill apply the same (the
sandbox dies with its outermost process). A command that cannot start (not found, not executable) gives exit_code
127/126 and the reason in `stderr`, like a shell would; it never raises.

`ShellActions.run` is the shell_exec handler: a command no person approved runs inside the platform's sandbox, or
not at all; `sandbox_report()` says whether auto-run commands can be confined here, `unconfined_reason()` why one
must wait for a person instead, and `problems()` reports a missing sandbox in the daemon's status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiventbus.config import PolicyConfig
from aiventbus.platform import Capability, Sandbox
from aiventbus.platform.base import SANDBOX
from aiventbus.records.actions import ActionFailed, ActionScope, HandlerResult, ShellExecAction
from aiventbus.service import Problem

log = logging.getLogger(__name__)
SHELL = "/bin/sh"
KILL_GRACE_SECONDS = 2.0
_READ_CHUNK = 65_536
# Characters that mean the command needs a shell (operators, expansions, globs, redirects, quotes, escapes).
_SHELL_SYNTAX = frozenset("|&;<>()$`\\\"'*?[]#~{}!\n\r\t")
# Shell builtins with no program of the same name: only a shell can run them.
_SHELL_ONLY_BUILTINS = frozenset(
    {
        "cd", "exit", "export", "unset", "set", "alias", "unalias", ".", "source", "eval", "exec", "read",
        "shift", "trap", "ulimit", "umask", "wait", "jobs", "fg", "bg", "type", "hash", "command", "getopts",
        "readonly", "return", "break", "continue", "times", "local", ":",
    }
)  # fmt: skip
_BASE_ENV_KEYS = ("PATH", "HOME", "LANG")
_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class ShellResult:
    """What a finished (or killed) command left behind."""

    exit_code: int | None
    stdout: str
    stderr: str
    truncated: bool
    timed_out: bool
    duration_seconds: float
    argv_or_shell: list[str]
    sandboxed: bool = False


def plan_argv(command: str) -> list[str]:
    """The argv to exec: the split words for a plain command, else the command under /bin/sh -c."""
    if command.strip() and not any(char in _SHELL_SYNTAX for char in command):
        words = shlex.split(command)
        # NAME=value first is an assignment, and builtins have no program: both need the shell.
        if words and "=" not in words[0] and words[0] not in _SHELL_ONLY_BUILTINS:
            return words
    return [SHELL, "-c", command]


def clean_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A minimal environment: PATH, HOME and LANG from the daemon, then the caller's additions."""
    base = {key: os.environ[key] for key in _BASE_ENV_KEYS if key in os.environ}
    base.setdefault("PATH", _DEFAULT_PATH)
    base.setdefault("LANG", "C.UTF-8")
    if extra:
        base.update(extra)
    return base


class _CappedSink:
    """Keeps the first `limit` bytes of a stream and counts what it had to drop."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.dropped = 0

    async def drain(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(_READ_CHUNK):
            room = self.limit - len(self.data)
            if room > 0:
                self.data += chunk[:room]
            self.dropped += max(0, len(chunk) - max(room, 0))

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


async def run_command(
    command: str,
    timeout_seconds: float,
    max_output_bytes: int,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    confine: Callable[[list[str]], list[str]] | None = None,
) -> ShellResult:
    """Run `command` with stdin from /dev/null; on timeout kill its whole process group (TERM, then KILL)."""
    argv = plan_argv(command)
    sandboxed = confine is not None
    run = confine(argv) if confine is not None else argv
    started = time.monotonic()
    try:
        process = await asyncio.create_subprocess_exec(
            *run,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=cwd,
            env=clean_environment(env),
            start_new_session=True,
        )
    except (FileNotFoundError, PermissionError, NotADirectoryError, ValueError) as error:
        code = 127 if isinstance(error, FileNotFoundError) else 126
        why = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        return ShellResult(code, "", f"{run[0]}: {why}", False, False, 0.0, argv, sandboxed)
    assert process.stdout is not None and process.stderr is not None
    out, err = _CappedSink(max_output_bytes), _CappedSink(max_output_bytes)
    readers = asyncio.gather(out.drain(process.stdout), err.drain(process.stderr))
    finish = asyncio.ensure_future(_finish(process, readers))
    try:
        done, _ = await asyncio.wait({finish}, timeout=timeout_seconds)
    except asyncio.CancelledError:
        await _kill_group(process)
        finish.cancel()
        raise
    timed_out = not done
    if timed_out:
        await _kill_group(process)
        # Descendants may still hold the pipes open; the group kill closes them, so draining ends.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(finish, KILL_GRACE_SECONDS)
    duration = time.monotonic() - started
    exit_code = None if timed_out else process.returncode
    truncated = out.dropped > 0 or err.dropped > 0
    return ShellResult(exit_code, out.text(), err.text(), truncated, timed_out, duration, argv, sandboxed)


async def _finish(process: asyncio.subprocess.Process, readers: asyncio.Future[tuple[None, None]]) -> None:
    await readers
    await process.wait()


async def _kill_group(process: asyncio.subprocess.Process) -> None:
    """SIGTERM the process group, wait a grace period, then SIGKILL whatever is left of it."""
    pgid = process.pid  # start_new_session made the child the leader of its own group
    _signal_group(pgid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(process.wait(), KILL_GRACE_SECONDS)
    # Members other than the leader may ignore SIGTERM or outlive it: the KILL goes to the group regardless.
    _signal_group(pgid, signal.SIGKILL)
    await process.wait()


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


# Where confined commands run and what the sandbox hides: the user's home, and the protected and sensitive paths.
Confinement = Callable[[], tuple[str, Iterable[str]]]


class ShellActions:
    """The shell_exec handler: auto-run commands confined to the kernel sandbox, approved ones run as the user."""

    def __init__(self, policy: PolicyConfig, sandbox: Sandbox, confinement: Confinement) -> None:
        self.policy = policy
        self.sandbox = sandbox
        self.confinement = confinement

    async def run(self, action: ShellExecAction, scope: ActionScope) -> HandlerResult:
        """Run the command in the user's home; confined unless a person approved it."""
        home, hidden = self.confinement()
        confine = None if scope.approved_by else await self._confine(action, home, hidden)
        outcome = await run_command(
            action.command, self.policy.shell_timeout_seconds, self.policy.shell_output_max_bytes, home, confine=confine
        )
        data = {
            "command": action.command,
            "exit_code": outcome.exit_code,
            "stdout": outcome.stdout,
            "stderr": outcome.stderr,
            "truncated": outcome.truncated,
            "timed_out": outcome.timed_out,
            "duration_seconds": round(outcome.duration_seconds, 3),
            "sandboxed": outcome.sandboxed,
        }
        if outcome.timed_out:
            timeout = self.policy.shell_timeout_seconds
            raise ActionFailed(f"timed out after {timeout:g}s (process group killed)", data)
        if outcome.exit_code != 0:
            raise ActionFailed(f"exit code {outcome.exit_code}", data)
        return HandlerResult(data, source="executor")

    async def _confine(
        self, action: ShellExecAction, home: str, hidden: Iterable[str]
    ) -> Callable[[list[str]], list[str]]:
        """The sandbox wrapper hiding the daemon's files and the sensitive paths; an auto-run never runs bare."""
        report = await self.sandbox_report()
        if not report.available:
            data = {"command": action.command, "sandboxed": False}
            raise ActionFailed(f"not run: auto-run shell needs a kernel sandbox: {report.reason}", data)
        # Finding which hidden paths exist (globs over /home among them) takes a millisecond of stat calls.
        return await asyncio.to_thread(self.sandbox.wrapper, home, hidden)

    async def probe_sandbox(self) -> None:
        """Probe the sandbox once (at the executor's start; cached since) and warn when it does not work."""
        sandbox = await self.sandbox_report()
        if not sandbox.available:
            log.warning("auto-run shell commands need approval: no sandbox (%s; %s)", sandbox.reason, sandbox.fix)

    async def unconfined_reason(self) -> str | None:
        """Why a command the policy would auto-run must wait for a person here (no working sandbox), or None."""
        sandbox = await self.sandbox_report()
        if sandbox.available:
            return None
        fix = f" (fix: {sandbox.fix})" if sandbox.fix else ""
        return f"auto-run shell needs a kernel sandbox and none works here: {sandbox.reason}{fix}"

    async def sandbox_report(self) -> Capability:
        """Whether auto-run shell commands can be confined here; when not, why and how to fix it."""
        if self.policy.shell_sandbox == "off":
            return Capability(SANDBOX, False, "policy.shell_sandbox is off", "set policy.shell_sandbox: auto")
        return await self.sandbox.probe()

    def missing_sandbox(self) -> Capability | None:
        """The cached report of a sandbox that does not work, unless the user turned it off (a choice, not a
        problem); None when it works. Call after `sandbox_report()` has probed once."""
        if self.policy.shell_sandbox == "off":
            return None
        report = self.sandbox.report()
        return None if report.available else report

    def problems(self) -> list[Problem]:
        """The missing sandbox, unless the user turned it off: every shell command then waits for approval."""
        missing = self.missing_sandbox()
        if missing is None:
            return []
        problem = f"no kernel sandbox, so every shell command waits for approval: {missing.reason}"
        return [Problem("executor.sandbox", problem, missing.fix)]

    async def sandbox_status(self) -> dict[str, Any]:
        report = await self.sandbox_report()
        return {"available": report.available, "kind": self.sandbox.kind, "reason": report.reason, "fix": report.fix}

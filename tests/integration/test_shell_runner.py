"""The shell runner against real programs: exec without a shell, shell syntax, caps, timeouts, process groups."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from aiventbus.actions.shell import SHELL, plan_argv, run_command
from aiventbus.platform.sandbox import RUN_PROGRAM_LINKS, Bubblewrap

TIMEOUT = 30.0
CAP = 65_536


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        ("ls -la /tmp", ["ls", "-la", "/tmp"]),
        ("uptime", ["uptime"]),
        ("git log --oneline -5", ["git", "log", "--oneline", "-5"]),
        ("grep --color=never x", ["grep", "--color=never", "x"]),
        ("echo $HOME", [SHELL, "-c", "echo $HOME"]),
        ("ls | wc -l", [SHELL, "-c", "ls | wc -l"]),
        ("echo 'a b'", [SHELL, "-c", "echo 'a b'"]),
        ("ls *.txt", [SHELL, "-c", "ls *.txt"]),
        ("ls ~", [SHELL, "-c", "ls ~"]),
        ("X=1 env", [SHELL, "-c", "X=1 env"]),
        ("exit 3", [SHELL, "-c", "exit 3"]),
        ("cd /tmp", [SHELL, "-c", "cd /tmp"]),
        ("ls > out", [SHELL, "-c", "ls > out"]),
        ("   ", [SHELL, "-c", "   "]),
    ],
)
def test_plan_argv(command: str, argv: list[str]) -> None:
    assert plan_argv(command) == argv


async def test_a_plain_command_runs_without_a_shell(tmp_path: Path) -> None:
    script = tmp_path / "show.py"
    script.write_text("import os, sys\nprint(sys.argv[1:], os.getppid() == int(sys.argv[1]))\n")
    result = await run_command(f"{sys.executable} {script} {os.getpid()} two", TIMEOUT, CAP)
    assert result.argv_or_shell == [sys.executable, str(script), str(os.getpid()), "two"]
    # The daemon itself is the parent: no shell sits in between.
    assert result.stdout == f"['{os.getpid()}', 'two'] True\n"
    assert (result.exit_code, result.timed_out, result.truncated) == (0, False, False)


async def test_shell_syntax_goes_through_sh() -> None:
    result = await run_command("echo one && echo two | tr a-z A-Z; echo three >&2", TIMEOUT, CAP)
    assert result.argv_or_shell[:2] == [SHELL, "-c"]
    assert result.stdout == "one\nTWO\n"
    assert result.stderr == "three\n"
    assert result.exit_code == 0


@pytest.mark.parametrize(("command", "code"), [("true", 0), ("false", 1), ("exit 3", 3), ("ls /no/such/path", 2)])
async def test_exit_codes(command: str, code: int) -> None:
    result = await run_command(command, TIMEOUT, CAP)
    assert result.exit_code == code
    assert not result.timed_out


async def test_a_missing_or_unrunnable_program_reports_like_a_shell(tmp_path: Path) -> None:
    missing = await run_command("no-such-program-aiventbus --flag", TIMEOUT, CAP)
    assert missing.exit_code == 127
    assert "no-such-program-aiventbus" in missing.stderr
    plain_file = tmp_path / "not-executable"
    plain_file.write_text("data")
    refused = await run_command(str(plain_file), TIMEOUT, CAP)
    assert refused.exit_code == 126


async def test_output_is_capped_and_the_rest_drained() -> None:
    result = await run_command("head -c 3000000 /dev/zero | tr '\\0' a; echo done >&2", TIMEOUT, 1000)
    assert result.stdout == "a" * 1000
    assert result.truncated
    assert result.stderr == "done\n"
    assert result.exit_code == 0
    assert not result.timed_out


async def test_stdin_is_dev_null() -> None:
    result = await run_command("cat", TIMEOUT, CAP)
    assert (result.exit_code, result.stdout) == (0, "")


async def test_the_environment_is_clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIVENTBUS_TEST_SECRET", "hunter2")
    result = await run_command("env", TIMEOUT, CAP, cwd=str(tmp_path), env={"EXTRA": "1"})
    names = {line.split("=", 1)[0] for line in result.stdout.splitlines()}
    assert names <= {"PATH", "HOME", "LANG", "EXTRA"}
    assert {"PATH", "EXTRA"} <= names
    assert "hunter2" not in result.stdout
    where = await run_command("pwd", TIMEOUT, CAP, cwd=str(tmp_path))
    assert where.stdout.strip() == str(tmp_path)


def _gone(pid: int) -> bool:
    """True once `pid` no longer runs (gone, or a zombie nobody reaped yet)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return any(line.startswith("State:") and "Z" in line for line in status.splitlines())


async def _wait_until_gone(pid: int, deadline_seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        await asyncio.sleep(0.05)
    return _gone(pid)


def _pid_in(path: Path) -> int | None:
    text = path.read_text().strip() if path.exists() else ""
    return int(text) if text.isdigit() else None


async def _read_pid(path: Path, deadline_seconds: float = 15.0) -> int:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        pid = _pid_in(path)
        if pid is not None:
            return pid
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} never got a pid")


async def test_a_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    # sh -c -> sh (child) -> sleep 100 in the background (grandchild), while the child waits too.
    command = f"sh -c 'sleep 100 & echo $! > {pid_file}; sleep 100'"
    result = await run_command(command, 1.0, CAP)
    assert result.timed_out
    assert result.exit_code is None
    grandchild = await _read_pid(pid_file)
    assert await _wait_until_gone(grandchild), f"grandchild {grandchild} survived the timeout"


async def test_a_group_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "stubborn.pid"
    command = f"trap '' TERM; sleep 100 & echo $! > {pid_file}; wait"
    result = await run_command(command, 1.0, CAP)
    assert result.timed_out
    stubborn = await _read_pid(pid_file)
    assert await _wait_until_gone(stubborn)


async def test_cancelling_the_run_kills_the_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    task = asyncio.create_task(run_command(f"sleep 100 & echo $! > {pid_file}; wait", TIMEOUT, CAP))
    child = await _read_pid(pid_file)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _wait_until_gone(child)


async def test_a_daemonised_grandchild_does_not_hold_the_result_past_the_timeout(tmp_path: Path) -> None:
    pid_file = tmp_path / "bg.pid"
    result = await run_command(f"sleep 100 & echo $! > {pid_file}; echo started", 1.0, CAP)
    # The shell exits at once, but the background sleep keeps the pipe open until the group is killed.
    assert result.timed_out
    assert result.stdout == "started\n"
    assert await _wait_until_gone(await _read_pid(pid_file))


# -- inside the kernel sandbox (bubblewrap): the same caps, timeout and group kill -------------------------------

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="bubblewrap is the Linux sandbox")


def _bwrap(cwd: Path, hidden: list[str] | None = None) -> Callable[[list[str]], list[str]]:
    sandbox = Bubblewrap()
    assert sandbox.report().available, sandbox.report()
    return sandbox.wrapper(str(cwd), hidden or [])


def _host_pids_running(marker: str) -> list[int]:
    """Host processes whose command line holds `marker` (the sandbox's own pids mean nothing out here)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and not _gone(int(entry.name)):
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


async def _wait_until_none_run(marker: str, deadline_seconds: float = 15.0) -> list[int]:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        if not _host_pids_running(marker):
            return []
        await asyncio.sleep(0.05)
    return _host_pids_running(marker)


async def _wait_until_running(marker: str, deadline_seconds: float = 15.0) -> None:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        if _host_pids_running(marker):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"nothing running {marker!r}")


@linux_only
async def test_a_confined_command_sees_a_read_only_world_and_a_private_tmp(tmp_path: Path) -> None:
    outside = Path(tempfile.mkdtemp(prefix="aiventbus-runner-", dir="/var/tmp"))
    try:
        command = f"mkdir -p {tmp_path} && touch {tmp_path}/private; ls {tmp_path}; touch {outside}/canary"
        result = await run_command(command, TIMEOUT, CAP, cwd=str(outside), confine=_bwrap(outside))
    finally:
        planted = (outside / "canary").exists()
        shutil.rmtree(outside)
    assert result.sandboxed and result.argv_or_shell == [SHELL, "-c", command]
    assert result.stdout == "private\n"  # the sandbox's /tmp is its own: writable, and empty on the host
    assert "Read-only file system" in result.stderr and result.exit_code == 1
    assert not planted and not (tmp_path / "private").exists()


@linux_only
async def test_a_confined_command_cannot_see_the_daemons_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AIVENTBUS_TEST_SECRET", "hunter2")
    command = f"cat /proc/1/environ /proc/self/environ /proc/{os.getpid()}/environ; ls /proc"
    result = await run_command(command, TIMEOUT, CAP, confine=_bwrap(tmp_path))
    assert "hunter2" not in result.stdout + result.stderr
    assert str(os.getpid()) not in result.stdout.split()  # a fresh pid namespace: the daemon is not there


@linux_only
async def test_a_confined_hidden_path_is_not_there(tmp_path: Path) -> None:
    outside = Path(tempfile.mkdtemp(prefix="aiventbus-runner-", dir="/var/tmp"))
    try:
        (outside / "data").mkdir()
        (outside / "data" / "api-token").write_text("hunter2\n")
        (outside / "secret.txt").write_text("hunter2\n")
        hidden = [str(outside / "data"), str(outside / "secret.txt"), str(outside / "missing"), "/proc/*/environ"]
        command = "ls -A data; cat data/api-token secret.txt"
        result = await run_command(command, TIMEOUT, CAP, cwd=str(outside), confine=_bwrap(outside, hidden))
    finally:
        shutil.rmtree(outside)
    assert result.stdout == "" and "hunter2" not in result.stderr
    assert "data/api-token: No such file or directory" in result.stderr
    assert "secret.txt: Permission denied" in result.stderr


@linux_only
async def test_a_confined_output_is_capped(tmp_path: Path) -> None:
    command = "head -c 3000000 /dev/zero | tr '\\0' a; echo done >&2"
    result = await run_command(command, TIMEOUT, 1000, confine=_bwrap(tmp_path))
    assert (result.stdout, result.stderr, result.truncated, result.exit_code) == ("a" * 1000, "done\n", True, 0)


@linux_only
async def test_a_timeout_kills_the_whole_sandbox(tmp_path: Path) -> None:
    marker = f"{100 + os.getpid() % 1000}.{time.monotonic_ns() % 10**9}"
    command = f"trap '' TERM; sleep {marker} & sh -c 'sleep {marker}'; wait"
    result = await run_command(command, 1.0, CAP, confine=_bwrap(tmp_path))
    assert result.timed_out and result.exit_code is None
    assert await _wait_until_none_run(marker) == [], "a sandboxed process outlived the timeout"


@linux_only
async def test_cancelling_a_confined_run_kills_the_sandbox(tmp_path: Path) -> None:
    marker = f"{200 + os.getpid() % 1000}.{time.monotonic_ns() % 10**9}"
    task = asyncio.create_task(run_command(f"sleep {marker}", TIMEOUT, CAP, confine=_bwrap(tmp_path)))
    await _wait_until_running(f"sleep\0{marker}")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _wait_until_none_run(marker) == []


@linux_only
async def test_a_confined_command_sees_no_host_sockets_in_run(tmp_path: Path) -> None:
    result = await run_command("ls -A /run /var/run", TIMEOUT, CAP, confine=_bwrap(tmp_path))
    kept = {Path(link).name for link in RUN_PROGRAM_LINKS}
    assert [name for name in result.stdout.split() if name not in kept] == ["/run:", "/var/run:"], result

"""A real bash under tmux with the preexec hook -> terminal.command with cwd and exit status; history polling."""

from __future__ import annotations

import asyncio
import base64
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiventbus.producers.terminal import TerminalProducer, hook_snippet, parse_history_line, parse_spool_line
from tests.support.daemon import running_daemon
from tests.support.desktop import EventCollector, require
from tests.support.waiting import eventually


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("git status", "git status"),
        (": 1764579600:0;make test", "make test"),
        (": 1764579600:12;echo a;b", "echo a;b"),
        ("#1764579600", None),
        ("   ", None),
    ],
)
def test_history_lines(line: str, command: str | None) -> None:
    assert parse_history_line(line) == command


def test_spool_lines() -> None:
    assert parse_spool_line("1764579600\t2\tL3RtcA==\tbHMgLXg=") == {
        "command": "ls -x",
        "cwd": "/tmp",
        "exit_status": 2,
        "at": 1764579600,
    }
    assert parse_spool_line("garbage") is None
    assert parse_spool_line("1\t0\t!!\t??") is None


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[list[str]]:
    """A private tmux server (its own socket), killed at the end."""
    require("tmux", "bash", "base64")
    socket = tmp_path / "tmux.sock"
    command = ["tmux", "-S", str(socket)]
    try:
        yield command
    finally:
        subprocess.run([*command, "kill-server"], capture_output=True, timeout=10)


def send(tmux: list[str], line: str) -> None:
    subprocess.run([*tmux, "send-keys", "-t", "t", "-l", line], check=True, timeout=10)
    subprocess.run([*tmux, "send-keys", "-t", "t", "Enter"], check=True, timeout=10)


SHELLS = {
    "bash": "bash --norc --noprofile -i",
    "zsh": "zsh -f -i",  # -f: no rc files, so only the hook is loaded
}


@pytest.mark.parametrize("shell_name", sorted(SHELLS))
async def test_preexec_hook_in_a_real_shell_under_tmux(tmp_path: Path, tmux: list[str], shell_name: str) -> None:
    require(shell_name)
    spool = tmp_path / "state" / "terminal-spool.log"
    workdir = tmp_path / "project dir"
    workdir.mkdir()
    zsh_history = tmp_path / "zsh_history"
    zsh_history.write_text(": 1764579000:0;old command, not an event\n")
    overrides = {
        "producers": {
            "terminal_monitor_enabled": True,
            "terminal_spool_file": str(spool),
            "terminal_history_files": [str(zsh_history)],
            "terminal_poll_interval_seconds": 0.1,
            "rate_limit_per_second": 100,
            "rate_limit_burst": 100,
        }
    }
    async with running_daemon(tmp_path, overrides) as running:
        collector = EventCollector(running.daemon.bus)
        producer = running.daemon.producers.get("terminal")
        assert isinstance(producer, TerminalProducer)
        await eventually(
            lambda: producer.spool.offset >= 0 and producer.history[0].offset >= 0, timeout=20, what="the first poll"
        )

        hook = tmp_path / "hook.sh"
        hook.write_text(hook_snippet(shell_name, spool))
        environment = f"HOME={tmp_path} PATH=/usr/bin:/bin TERM=xterm HISTFILE={tmp_path}/{shell_name}_history"
        shell = f"env -i {environment} {SHELLS[shell_name]}"
        new_session = [*tmux, "new-session", "-d", "-s", "t", "-x", "200", "-y", "50", shell]
        await asyncio.to_thread(subprocess.run, new_session, check=True, timeout=10)
        await asyncio.to_thread(send, tmux, f"source {hook}")
        await asyncio.to_thread(send, tmux, f"cd '{workdir}'")
        await asyncio.to_thread(send, tmux, "ls no-such-file")
        await asyncio.to_thread(send, tmux, "")
        await asyncio.to_thread(send, tmux, "echo password=hunter2hunter2 | tr a-z A-Z")

        events = await collector.wait_for(lambda e: e.topic == "terminal.command", count=3)
        by_command = {e.payload["command"]: e.payload for e in events}
        assert by_command[f"cd '{workdir}'"]["exit_status"] == 0
        failed = by_command["ls no-such-file"]
        assert failed["cwd"] == str(workdir) and failed["exit_status"] == 2 and failed["via"] == "hook"
        redacted = by_command["echo password=[REDACTED:password] | tr a-z A-Z"]
        assert redacted["exit_status"] == 0 and redacted["cwd"] == str(workdir)
        assert not [c for c in by_command if c.startswith("source ")], "sourcing the hook is not reported"
        assert all(e.source == "terminal" and e.taint == ["terminal"] for e in events)
        assert spool.stat().st_mode & 0o777 == 0o600

        with zsh_history.open("a") as handle:
            handle.write(": 1764579600:0;make deploy\n")
        [from_history] = await collector.wait_for(lambda e: e.payload.get("via") == "history")
        assert from_history.payload["command"] == "make deploy"
        assert not collector.matching(lambda e: "old command" in str(e.payload)), "history before start is skipped"


async def test_the_spool_is_rotated_without_losing_lines(tmp_path: Path) -> None:
    spool = tmp_path / "spool.log"
    overrides = {
        "producers": {
            "terminal_monitor_enabled": True,
            "terminal_spool_file": str(spool),
            "terminal_history_files": [],
            "terminal_poll_interval_seconds": 0.05,
            "rate_limit_per_second": 1000,
            "rate_limit_burst": 1000,
        }
    }
    async with running_daemon(tmp_path, overrides) as running:
        collector = EventCollector(running.daemon.bus)
        producer = running.daemon.producers.get("terminal")
        assert isinstance(producer, TerminalProducer)
        producer.spool_rotate_bytes = 200
        await eventually(lambda: producer.spool.offset >= 0, timeout=20, what="the first poll")
        cwd = base64.b64encode(b"/w").decode()
        for batch in range(3):
            with spool.open("a") as handle:  # as the hook does: open, append, close
                for i in range(10):
                    command = base64.b64encode(f"cmd {batch}-{i}".encode()).decode()
                    handle.write(f"1764579600\t0\t{cwd}\t{command}\n")
            await collector.wait_for(lambda e: e.topic == "terminal.command", count=10 * (batch + 1))
        commands = sorted(e.payload["command"] for e in collector.events if e.topic == "terminal.command")
        assert commands == sorted(f"cmd {b}-{i}" for b in range(3) for i in range(10))
        assert (tmp_path / "spool.log.old").exists(), "the spool was rotated"
        assert not spool.exists() or spool.stat().st_size < 1000

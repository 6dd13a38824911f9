"""Auto-run shell commands in the real kernel sandbox, through a real daemon: what a policy gap can no longer do.

Each attack is judged `auto` (a user allowlist entry lets it through) and must fail inside bubblewrap, leave no
canary, and be recorded as a clear result; the control, approved by the user, runs as before and writes.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from aiventbus.core.executor import ActionOutcome
from aiventbus.platform import Capability
from aiventbus.platform.base import SANDBOX
from aiventbus.platform.sandbox import Bubblewrap, NoSandbox
from tests.integration.test_executor import run_context
from tests.support.daemon import RunningDaemon, running_daemon
from tests.support.sandbox import home_outside_tmp

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="bubblewrap is the Linux sandbox")
APT_FIX = "apt-get install bubblewrap"


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A user home outside /tmp (the sandbox's /tmp is private, so a home there would not be seen at all)."""
    with home_outside_tmp(monkeypatch, "aiventbus-sandbox-home-") as folder:
        (folder / "Downloads").mkdir()
        yield folder


def config(home: Path, **policy: Any) -> dict[str, Any]:
    """The daemon's data dir where it is by default: in the user's home, so only the sandbox can hide it."""
    return {"paths": {"data_dir": str(home / ".local/share/aiventbus")}, "policy": policy}


@pytest.fixture
async def sandboxed(tmp_path: Path, home: Path) -> AsyncIterator[RunningDaemon]:
    """A daemon whose user allowlisted `touch` and `sh`: the policy auto-runs `touch X` and `sh SCRIPT`."""
    assert Bubblewrap().report().available, Bubblewrap().report()
    async with running_daemon(tmp_path, config(home, allowlist=["touch", "sh"])) as d:
        yield d


async def propose(d: RunningDaemon, command: str) -> ActionOutcome:
    [outcome] = await d.daemon.executor.handle_proposals(
        [{"action_type": "shell_exec", "command": command}], await run_context(d)
    )
    return outcome


def assert_failed_in_sandbox(outcome: ActionOutcome) -> dict[str, Any]:
    """The policy let it run (no approval), it ran confined, and failed with a recorded result."""
    assert outcome.status == "failed", outcome
    assert outcome.result is not None and outcome.result["sandboxed"] is True, outcome
    assert outcome.error is not None and outcome.error.startswith("exit code"), outcome
    return outcome.result


async def test_writing_in_home_fails_read_only(sandboxed: RunningDaemon, home: Path) -> None:
    canary = home / "canary"
    result = assert_failed_in_sandbox(await propose(sandboxed, f"touch {canary}"))
    assert "Read-only file system" in result["stderr"]
    assert not canary.exists()
    stored = (await sandboxed.client.get("/api/v1/actions/history")).json()["actions"]
    assert [(a["status"], a["verdict"], a["result"]["sandboxed"]) for a in stored] == [("failed", "auto", True)]


async def test_a_downloaded_script_cannot_write(sandboxed: RunningDaemon, home: Path, tmp_path: Path) -> None:
    canary, in_tmp = home / "canary", tmp_path / "canary"
    script = f"echo installing\necho owned > {in_tmp}\necho owned > {canary}\n"
    (home / "Downloads" / "setup.sh").write_text(script)
    result = assert_failed_in_sandbox(await propose(sandboxed, "sh Downloads/setup.sh"))
    assert result["stdout"] == "installing\n"
    assert "Read-only file system" in result["stderr"]
    assert not canary.exists()
    assert not in_tmp.exists()  # the sandbox's /tmp is its own


async def test_the_network_is_unreachable(sandboxed: RunningDaemon, home: Path) -> None:
    connections: list[int] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    script = home / "Downloads" / "phone-home.sh"
    script.write_text(f"curl -sS --max-time 10 -o /dev/null http://127.0.0.1:{port}/exfil\n")
    try:
        result = assert_failed_in_sandbox(await propose(sandboxed, "sh Downloads/phone-home.sh"))
    finally:
        server.close()
        await server.wait_closed()
    assert "Couldn't connect to server" in result["stderr"] or "Connection refused" in result["stderr"], result
    assert connections == []


async def test_the_token_is_not_there(sandboxed: RunningDaemon, home: Path) -> None:
    token_path = sandboxed.daemon.config.token_path
    assert token_path.is_relative_to(home) and token_path.read_text().strip() == sandboxed.token
    (home / "Downloads" / "steal.sh").write_text(f"cat {token_path}\n")
    result = assert_failed_in_sandbox(await propose(sandboxed, "sh Downloads/steal.sh"))
    # Not "No such": the result's secret masking may take "api-token: No" for a secret's shape.
    assert "such file or directory" in result["stderr"]
    assert sandboxed.token not in result["stdout"] + result["stderr"]


async def test_sensitive_files_are_hidden_and_the_temp_dir_is_writable(sandboxed: RunningDaemon, home: Path) -> None:
    (home / ".ssh").mkdir()
    (home / ".ssh" / "id_ed25519").write_text("PRIVATE KEY\n")
    (home / ".netrc").write_text("machine x password hunter2\n")
    script = "ls -A .ssh; cat .netrc; echo scratch > $TMPDIR/work && cat $TMPDIR/work\n"
    (home / "Downloads" / "look.sh").write_text(script)
    outcome = await propose(sandboxed, "sh Downloads/look.sh")
    assert outcome.status == "executed" and outcome.result is not None, outcome
    assert outcome.result["stdout"] == "scratch\n"  # an empty .ssh, an unreadable .netrc, a writable temp dir
    assert ".netrc" in outcome.result["stderr"] and "hunter2" not in outcome.result["stderr"]


async def test_the_control_approved_by_the_user_runs_unsandboxed(tmp_path: Path, home: Path) -> None:
    canary = home / "canary"
    async with running_daemon(tmp_path, config(home)) as d:
        parked = await propose(d, f"touch {canary}")
        assert parked.status == "pending" and parked.rule != "sandbox.unavailable", parked
        assert parked.action_id is not None
        approved = await d.daemon.executor.approvals.approve(parked.action_id)
    assert approved.status.value == "executed", approved
    assert approved.result is not None and approved.result["sandboxed"] is False
    assert canary.exists()


async def test_a_sandboxed_success_is_recorded_as_executed(sandboxed: RunningDaemon, home: Path) -> None:
    (home / "notes.txt").write_text("read me\n")
    (home / "Downloads" / "read.sh").write_text("cat notes.txt; pwd\n")
    outcome = await propose(sandboxed, "sh Downloads/read.sh")
    assert outcome.status == "executed", outcome
    assert outcome.result is not None
    assert (outcome.result["stdout"], outcome.result["sandboxed"]) == (f"read me\n{home}\n", True)


@pytest.mark.parametrize(
    ("sandbox", "kind", "reason", "fix"),
    [
        (
            Bubblewrap(
                probe=lambda: Capability(
                    SANDBOX,
                    False,
                    "user namespaces are disabled (user.max_user_namespaces=0)",
                    "sysctl -w user.max_user_namespaces=15000",
                )
            ),
            "bubblewrap",
            "user namespaces are disabled (user.max_user_namespaces=0)",
            "sysctl -w user.max_user_namespaces=15000",
        ),
        (Bubblewrap(which=lambda _: None), "bubblewrap", "bubblewrap (bwrap) is not installed", APT_FIX),
        (NoSandbox("no kernel sandbox is known on this OS"), "none", "no kernel sandbox is known on this OS", ""),
    ],
)  # fmt: skip
async def test_without_a_sandbox_auto_run_shell_waits_for_approval(
    tmp_path: Path, home: Path, sandbox: Any, kind: str, reason: str, fix: str
) -> None:
    canary = home / "canary"
    async with running_daemon(tmp_path, config(home, allowlist=["touch"])) as d:
        d.daemon.executor.shell.sandbox = sandbox
        outcome = await propose(d, f"touch {canary}")
        assert (outcome.status, outcome.rule) == ("pending", "sandbox.unavailable"), outcome
        assert reason in outcome.reason and fix in outcome.reason
        status = (await d.client.get("/api/v1/system/status")).json()
        [logged] = await d.daemon.executor.handle_proposals(
            [{"action_type": "log", "message": "other action types are untouched"}], await run_context(d)
        )
    assert logged.status == "executed", logged
    assert status["components"]["executor"]["sandbox"] == {
        "available": False,
        "kind": kind,
        "reason": reason,
        "fix": fix,
    }
    assert status["status"] == "degraded"
    [problem] = [p for p in status["problems"] if p["component"] == "executor.sandbox"]
    assert reason in problem["problem"] and problem["fix"] == fix
    assert not canary.exists()


async def test_policy_shell_sandbox_off_means_no_auto_run_shell(tmp_path: Path, home: Path) -> None:
    async with running_daemon(tmp_path, config(home, allowlist=["touch"], shell_sandbox="off")) as d:
        outcome = await propose(d, f"touch {home / 'canary'}")
        status = (await d.client.get("/api/v1/system/status")).json()
    assert (outcome.status, outcome.rule) == ("pending", "sandbox.unavailable"), outcome
    assert "policy.shell_sandbox is off" in outcome.reason
    assert status["components"]["executor"]["sandbox"]["available"] is False
    assert not [p for p in status["problems"] if p["component"] == "executor.sandbox"]  # the user chose it


async def test_status_shows_the_working_sandbox(sandboxed: RunningDaemon) -> None:
    status = (await sandboxed.client.get("/api/v1/system/status")).json()
    assert status["components"]["executor"]["sandbox"] == {
        "available": True,
        "kind": "bubblewrap",
        "reason": "",
        "fix": "",
    }
    producers = (await sandboxed.client.get("/api/v1/producers")).json()
    [report] = [c for c in producers["capabilities"] if c["name"] == "sandbox"]
    assert report["available"] is True and "bubblewrap" in report["backend"]

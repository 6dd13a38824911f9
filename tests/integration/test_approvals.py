"""Approve and deny over the API and the CLI; edited, expired and double approvals are refused."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from aiventbus.actions.tool_registry import ToolBackend, ToolMethod
from tests.support.cli import aibus_async
from tests.support.clock import FakeClock
from tests.support.daemon import RunningDaemon, running_daemon, write_config
from tests.support.runs import run_context


class SlowCounter(ToolBackend):
    """Counts its calls; each call waits until released, so concurrent approvals overlap."""

    def __init__(self) -> None:
        self.calls = 0
        self.called = asyncio.Event()
        self.release = asyncio.Event()

    @property
    def name(self) -> str:
        return "counter"

    @property
    def description(self) -> str:
        return "Counts"

    def methods(self) -> list[ToolMethod]:
        return [ToolMethod("bump", "Add one", {"by": "how much"})]

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        self.calls += 1
        self.called.set()
        await self.release.wait()
        return {"count": self.calls}


async def park(d: RunningDaemon, proposal: dict[str, Any]) -> str:
    [outcome] = await d.daemon.executor.handle_proposals([proposal], await run_context(d))
    assert outcome.status == "pending", outcome
    assert outcome.action_id is not None
    return outcome.action_id


BUMP = {"action_type": "tool_call", "tool": "counter", "method": "bump", "params": {"by": 1}}


async def test_approve_over_the_api_runs_the_action_and_returns_its_result(tmp_path: Path) -> None:
    backend = SlowCounter()
    backend.release.set()
    async with running_daemon(tmp_path) as d:
        d.daemon.executor.tool_registry.register(backend)
        action_id = await park(d, BUMP)
        answer = await d.client.post(f"/api/v1/actions/{action_id}/approve")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["status"] == "executed"
        assert body["result"]["output"] == {"count": 1}
        assert body["decided_by"] == "user"
        assert (await d.client.get("/api/v1/actions/pending")).json()["actions"] == []
        again = await d.client.post(f"/api/v1/actions/{action_id}/approve")
        assert again.status_code == 409
        assert again.json()["result"]["output"] == {"count": 1}
        assert backend.calls == 1
        trace = (await d.client.get(f"/api/v1/events/trace/{body['trace_id']}")).json()["events"]
        executed = next(e for e in trace if e["topic"] == "action.tool_call.executed")
        assert executed["source"] == "tool_output" and "tool_output" in executed["taint"]


async def test_deny_over_the_api_never_runs_it(tmp_path: Path) -> None:
    backend = SlowCounter()
    async with running_daemon(tmp_path) as d:
        d.daemon.executor.tool_registry.register(backend)
        action_id = await park(d, BUMP)
        answer = await d.client.post(f"/api/v1/actions/{action_id}/deny", json={"reason": "not today"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "denied" and answer.json()["error"] == "not today"
        refused = await d.client.post(f"/api/v1/actions/{action_id}/approve")
        assert refused.status_code == 409 and "denied" in refused.json()["detail"]
        assert (await d.client.post(f"/api/v1/actions/{action_id}/deny")).status_code == 409
        assert (await d.client.post("/api/v1/actions/act_missing/approve")).status_code == 404
        assert (await d.client.get("/api/v1/actions/act_missing")).status_code == 404
        assert backend.calls == 0
        history = (await d.client.get("/api/v1/actions/history", params={"status": "denied"})).json()["actions"]
        assert [a["id"] for a in history] == [action_id]


async def test_approving_an_edited_action_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "victim.txt"
    target.write_text("original")
    async with running_daemon(tmp_path) as d:
        action_id = await park(d, {"action_type": "file_write", "path": str(tmp_path / "harmless.txt"), "content": "x"})
        with sqlite3.connect(d.daemon.config.db_path) as conn:
            edited = json.dumps({"action_type": "file_write", "path": str(target), "content": "pwned"})
            conn.execute("UPDATE actions SET content = ? WHERE id = ?", (edited, action_id))
        answer = await d.client.post(f"/api/v1/actions/{action_id}/approve")
        assert answer.status_code == 409
        assert "changed" in answer.json()["detail"]
        assert target.read_text() == "original"
        assert not (tmp_path / "harmless.txt").exists()
        assert (await d.client.get(f"/api/v1/actions/{action_id}")).json()["status"] == "denied"


async def test_approving_an_expired_action_is_refused(tmp_path: Path) -> None:
    clock = FakeClock()
    backend = SlowCounter()
    backend.release.set()
    overrides = {"policy": {"approval_ttl_seconds": 60}}
    async with running_daemon(tmp_path, overrides, clock=clock) as d:
        d.daemon.executor.tool_registry.register(backend)
        action_id = await park(d, BUMP)
        clock.advance(61)
        answer = await d.client.post(f"/api/v1/actions/{action_id}/approve")
        assert answer.status_code == 409
        assert "expired" in answer.json()["detail"]
        assert backend.calls == 0
        assert (await d.client.get(f"/api/v1/actions/{action_id}")).json()["status"] == "expired"
        second = await park(d, BUMP)
        clock.advance(61)
        assert (await d.client.get("/api/v1/actions/pending")).json()["actions"] == []
        assert (await d.client.get(f"/api/v1/actions/{second}")).json()["status"] == "expired"


async def test_concurrent_double_approve_executes_once(tmp_path: Path) -> None:
    backend = SlowCounter()
    async with running_daemon(tmp_path) as d:
        d.daemon.executor.tool_registry.register(backend)
        action_id = await park(d, BUMP)
        first = asyncio.create_task(d.client.post(f"/api/v1/actions/{action_id}/approve"))
        second = asyncio.create_task(d.client.post(f"/api/v1/actions/{action_id}/approve"))
        await asyncio.wait_for(backend.called.wait(), 30)
        # While the first approval is running, the action is claimed: any other approval finds it not pending.
        assert (await d.client.get(f"/api/v1/actions/{action_id}")).json()["status"] == "approved"
        third = asyncio.create_task(d.client.post(f"/api/v1/actions/{action_id}/approve"))
        backend.release.set()
        answers = await asyncio.gather(first, second, third)
        assert sorted(a.status_code for a in answers) == [200, 409, 409]
        winner = next(a for a in answers if a.status_code == 200).json()
        expected = {"tool": "counter", "method": "bump", "output": {"count": 1}}
        assert winner["result"] == expected
        assert all(a.json()["result"] == expected for a in answers if a.status_code == 409)
        assert backend.calls == 1


async def test_a_policy_denied_action_can_never_be_approved(tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as d:
        [outcome] = await d.daemon.executor.handle_proposals(
            [{"action_type": "shell_exec", "command": "sudo rm -rf /"}], await run_context(d)
        )
        assert outcome.status == "denied"
        answer = await d.client.post(f"/api/v1/actions/{outcome.action_id}/approve")
        assert answer.status_code == 409


async def test_the_blocklist_is_checked_again_at_approval(tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as d:
        action_id = await park(d, {"action_type": "shell_exec", "command": "touch /tmp/h5-approval-recheck"})
        d.daemon.config.policy.blocklist = ["touch"]
        answer = await d.client.post(f"/api/v1/actions/{action_id}/approve")
        assert answer.status_code == 403, answer.text
        assert not exists(Path("/tmp/h5-approval-recheck"))
        assert (await d.client.get(f"/api/v1/actions/{action_id}")).json()["status"] == "denied"


def exists(path: Path) -> bool:
    return path.exists()


async def test_approve_and_deny_with_the_cli(tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as d:
        config = write_config(tmp_path, port=d.daemon.config.server.port)
        ids = []
        for name in ("a.txt", "b.txt"):
            proposal = {"action_type": "file_write", "path": str(tmp_path / name), "content": f"written {name}"}
            ids.append(await park(d, proposal))
        code, out, err = await aibus_async(config, "actions", "pending")
        assert code == 0, err
        assert ids[0] in out and ids[1] in out

        code, out, err = await aibus_async(config, "approve", ids[0])
        assert code == 0, err
        assert "executed" in out
        assert (tmp_path / "a.txt").read_text() == "written a.txt"

        code, out, err = await aibus_async(config, "deny", ids[1], "--reason", "no thanks")
        assert code == 0, err
        assert "denied" in out
        assert not (tmp_path / "b.txt").exists()

        code, out, err = await aibus_async(config, "approve", ids[0])
        assert code == 1
        assert err.startswith("aibus: 409") and "Traceback" not in err
        code, out, err = await aibus_async(config, "approve", "act_nothing")
        assert code == 1 and "404" in err and "Traceback" not in err

        code, out, err = await aibus_async(config, "actions", "show", ids[1])
        assert code == 0 and "no thanks" in out
        code, out, err = await aibus_async(config, "actions", "history", "--json")
        assert code == 0, err
        assert {a["id"] for a in json.loads(out)} == set(ids)


async def test_pending_actions_are_pushed_on_the_websocket(tmp_path: Path) -> None:
    backend = SlowCounter()
    async with running_daemon(tmp_path) as d:
        d.daemon.executor.tool_registry.register(backend)
        url = d.base_url.replace("http://", "ws://") + "/ws?channels=approval"
        async with connect(url, additional_headers={"Authorization": f"Bearer {d.token}"}) as ws:
            hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert hello["channel"] == "hello"
            action_id = await park(d, BUMP)
            pushed = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert pushed["channel"] == "approval" and pushed["topic"] == "action.tool_call.pending"
            assert pushed["data"]["id"] == action_id and pushed["data"]["status"] == "pending"
            assert pushed["data"]["content"]["tool"] == "counter"

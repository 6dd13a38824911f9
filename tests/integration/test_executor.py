"""handle_proposals against a real daemon: validation, policy verdicts, results as events on the trace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aiventbus.actions.notify import DesktopActions
from aiventbus.actions.tool_registry import ToolBackend, ToolMethod
from aiventbus.core.executor import RunContext
from aiventbus.platform import Capability, CapabilityUnavailable
from aiventbus.records.actions import ActionFailed, ActionScope, AlertAction, NotifyAction, OpenAppAction
from aiventbus.records.events import Event, EventIn
from tests.support.daemon import RunningDaemon, running_daemon
from tests.support.runs import run_context


class EchoBackend(ToolBackend):
    """A tool backend that records its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    @property
    def name(self) -> str:
        return "echo"

    @property
    def description(self) -> str:
        return "Repeats what it is given"

    def methods(self) -> list[ToolMethod]:
        return [ToolMethod("say", "Say a text back", {"text": "what to say"})]

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        self.calls.append((method, params))
        return {"said": params["text"]}


async def trace_events(d: RunningDaemon, trace_id: str) -> list[dict[str, Any]]:
    answer = await d.client.get(f"/api/v1/events/trace/{trace_id}")
    assert answer.status_code == 200, answer.text
    events: list[dict[str, Any]] = answer.json()["events"]
    return events


async def test_auto_action_runs_and_its_result_is_an_event_on_the_trace(tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as d:
        ctx = await run_context(d)
        [outcome] = await d.daemon.executor.handle_proposals([{"action_type": "log", "message": "hello"}], ctx)
        assert outcome.status == "executed", outcome
        assert outcome.result is not None and outcome.result["message"] == "hello"
        events = await trace_events(d, ctx.trace_id)
        result = next(e for e in events if e["topic"] == "action.log.executed")
        assert result["parent_event"] == ctx.response_event_id
        assert result["payload"]["action_id"] == outcome.action_id
        stored = (await d.client.get(f"/api/v1/actions/{outcome.action_id}")).json()
        assert stored["status"] == "executed"
        assert stored["result_event_id"] == result["id"]
        assert stored["agent_id"] == "agent_tester" and stored["event_id"] == ctx.event.id
        assert stored["rule"] and stored["reason"]
        metrics = (await d.client.get("/metrics")).text
        assert 'aiventbus_action_executions_total{action_type="log",agent_id="agent_tester",result="executed"} 1.0' in (
            metrics
        )


async def test_malformed_and_unknown_proposals_are_refused_with_system_events(tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as d:
        ctx = await run_context(d)
        outcomes = await d.daemon.executor.handle_proposals(
            [
                {"action_type": "shell_exec"},
                {"action_type": "launch_missiles", "target": "moon"},
                "rm -rf /",
                {"action_type": "tool_call", "tool": "nope", "method": "x", "params": {}},
            ],
            ctx,
        )
        assert [o.status for o in outcomes] == ["invalid"] * 4
        assert "command" in outcomes[0].reason
        assert "tool" in outcomes[3].reason
        topics = [e["topic"] for e in await trace_events(d, ctx.trace_id)]
        assert topics.count("system.invalid_action") == 3
        assert topics.count("system.unknown_action") == 1
        assert (await d.client.get("/api/v1/actions/history")).json()["actions"] == []


async def test_confirm_parks_the_action_and_pushes_an_approval(tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as d:
        backend = EchoBackend()
        d.daemon.executor.tool_registry.register(backend)
        subscription = d.daemon.hub.subscribe(["approval"])
        ctx = await run_context(d)
        proposal = {"action_type": "tool_call", "tool": "echo", "method": "say", "params": {"text": "hi"}}
        [outcome] = await d.daemon.executor.handle_proposals([proposal], ctx)
        assert outcome.status == "pending"
        assert backend.calls == []
        message = subscription.queue.get_nowait()
        assert message["channel"] == "approval" and message["data"]["id"] == outcome.action_id
        pending = (await d.client.get("/api/v1/actions/pending")).json()["actions"]
        assert [a["id"] for a in pending] == [outcome.action_id]
        assert pending[0]["expires_at"] > pending[0]["created_at"]
        topics = [e["topic"] for e in await trace_events(d, ctx.trace_id)]
        assert "action.tool_call.pending" in topics


async def test_tool_call_params_must_match_the_declared_ones(tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as d:
        d.daemon.executor.tool_registry.register(EchoBackend())
        ctx = await run_context(d)
        outcomes = await d.daemon.executor.handle_proposals(
            [
                {"action_type": "tool_call", "tool": "echo", "method": "say", "params": {}},
                {"action_type": "tool_call", "tool": "echo", "method": "say", "params": {"text": "a", "loud": 1}},
                {"action_type": "tool_call", "tool": "echo", "method": "shout", "params": {"text": "a"}},
            ],
            ctx,
        )
        assert [o.status for o in outcomes] == ["invalid"] * 3
        assert "missing" in outcomes[0].reason and "unknown" in outcomes[1].reason and "shout" in outcomes[2].reason


async def test_blocked_command_is_denied_with_its_rule(tmp_path: Path) -> None:
    async with running_daemon(tmp_path, {"policy": {"trust_overrides": {"shell_exec": "auto"}}}) as d:
        ctx = await run_context(d)
        [outcome] = await d.daemon.executor.handle_proposals(
            [{"action_type": "shell_exec", "command": "sudo rm -rf /"}], ctx
        )
        assert outcome.status == "denied"
        assert outcome.rule and outcome.reason
        topics = [e["topic"] for e in await trace_events(d, ctx.trace_id)]
        assert "action.shell_exec.denied" in topics


async def test_agent_allowed_actions_limit_what_runs(tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as d:
        base = await run_context(d)
        ctx = RunContext(**{**base.__dict__, "allowed_actions": ["notify"]})
        [outcome] = await d.daemon.executor.handle_proposals([{"action_type": "log", "message": "x"}], ctx)
        assert outcome.status == "denied" and outcome.rule == "agent.allowed_actions"


async def test_emit_event_reenters_the_bus_on_the_trace(tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as d:
        ctx = await run_context(d, source="clipboard")
        proposal = {"action_type": "emit_event", "topic": "notes.saved", "payload": {"n": 1}}
        [outcome] = await d.daemon.executor.handle_proposals([proposal], ctx)
        assert outcome.status == "executed", outcome
        assert outcome.result is not None
        emitted = (await d.client.get(f"/api/v1/events/{outcome.result['event_id']}")).json()
        assert emitted["topic"] == "notes.saved"
        assert emitted["trace_id"] == ctx.trace_id
        assert emitted["parent_event"] == ctx.response_event_id
        assert emitted["source"] == "agent:agent_tester"
        assert emitted["taint"] == ["clipboard"]


async def test_file_read_result_carries_the_file_source(tmp_path: Path) -> None:
    target = tmp_path / "note.txt"
    target.write_text("remember the milk")
    async with running_daemon(tmp_path, {"policy": {"trust_overrides": {"file_read": "auto"}}}) as d:
        ctx = await run_context(d)
        [outcome] = await d.daemon.executor.handle_proposals([{"action_type": "file_read", "path": str(target)}], ctx)
        assert outcome.status == "executed", outcome
        assert outcome.result is not None and outcome.result["content"] == "remember the milk"
        result: Event | None = None
        for event in await trace_events(d, ctx.trace_id):
            if event["topic"] == "action.file_read.executed":
                result = Event.model_validate(event)
        assert result is not None and result.source == "file" and result.taint == ["file"]


async def test_failed_shell_command_is_recorded_as_failed(tmp_path: Path) -> None:
    async with running_daemon(tmp_path, {"policy": {"trust_overrides": {"shell_exec": "auto"}}}) as d:
        ctx = await run_context(d)
        [outcome] = await d.daemon.executor.handle_proposals(
            [{"action_type": "shell_exec", "command": "ls /nonexistent-h5"}], ctx
        )
        assert outcome.status == "failed", outcome
        assert outcome.error is not None and "exit code" in outcome.error
        assert outcome.result is not None and "nonexistent-h5" in outcome.result["stderr"]


async def test_prompt_section_lists_enabled_types_and_tools(tmp_path: Path) -> None:
    async with running_daemon(tmp_path, {"tools": {"http_request_enabled": False}}) as d:
        executor = d.daemon.executor
        without_tools = executor.prompt_section(None)
        assert "shell_exec" in without_tools and "set_knowledge" in without_tools
        assert "http_request" not in without_tools
        assert "tool_call" not in without_tools
        executor.tool_registry.register(EchoBackend())
        with_tools = executor.prompt_section(None)
        assert 'tool "echo"' in with_tools and 'method "say"' in with_tools and "text: what to say" in with_tools
        only_log = executor.prompt_section(["log", "tool_call"])
        assert "- log:" in only_log and "shell_exec" not in only_log and 'tool "echo"' in only_log
        none_left = executor.prompt_section([])
        assert "leave proposed_actions empty" in none_left


async def test_desktop_actions_are_offered_only_where_the_desktop_can_do_them(tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as d:
        executor = d.daemon.executor
        notifications = d.daemon.executor.desktop.unavailable("notify")
        offered = "notify" in executor.available_actions()
        assert offered is (notifications is None)
        if notifications is not None:
            [outcome] = await executor.handle_proposals(
                [{"action_type": "notify", "title": "t", "message": "m"}], await run_context(d)
            )
            assert outcome.status == "denied" and outcome.rule == "executor.unavailable"
            assert "notifications_outbound" in outcome.reason


async def test_set_and_get_knowledge_go_through_the_knowledge_store(tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as d:
        ctx = await run_context(d)
        outcomes = await d.daemon.executor.handle_proposals(
            [
                {"action_type": "set_knowledge", "key": "security.last_alert", "value": "stuffing from 10.0.0.1"},
                {"action_type": "get_knowledge", "key": "security.last_alert"},
                {"action_type": "get_knowledge", "key": "never.set"},
            ],
            ctx,
        )
        assert [o.status for o in outcomes] == ["executed"] * 3, outcomes
        entry = await d.daemon.knowledge.get("security.last_alert")
        assert entry is not None and entry.value == "stuffing from 10.0.0.1" and entry.set_by == "agent:agent_tester"
        assert outcomes[1].result is not None and outcomes[1].result["value"] == "stuffing from 10.0.0.1"
        assert outcomes[2].result == {"key": "never.set", "found": False, "value": None}


class RecordingDesktop:
    def __init__(self, fail: bool = False) -> None:
        self.shown: list[tuple[str, str, str]] = []
        self.opened: list[str] = []
        self.fail = fail

    async def notify(self, title: str, message: str, urgency: str = "normal") -> None:
        if self.fail:
            raise CapabilityUnavailable("notifications_outbound", "no notification daemon", "start one")
        self.shown.append((title, message, urgency))

    async def open_target(self, target: str) -> None:
        self.opened.append(target)

    def capability(self, name: str) -> Capability:
        return Capability(name, available=True)


async def test_notify_alert_and_open_app_use_the_platform() -> None:
    desktop = RecordingDesktop()
    actions = DesktopActions(lambda: desktop)
    scope = ActionScope("act_t", "agent_t", "tr_t", "evt_t", [])
    await actions.notify(NotifyAction(action_type="notify", title="Hi", message="there"), scope)
    await actions.alert(AlertAction(action_type="alert", title="Disk", message="full"), scope)
    await actions.open_app(OpenAppAction(action_type="open_app", target="https://example.com"), scope)
    assert desktop.shown == [("Hi", "there", "normal"), ("Disk", "full", "critical")]
    assert desktop.opened == ["https://example.com"]
    broken = DesktopActions(lambda: RecordingDesktop(fail=True))
    with pytest.raises(ActionFailed, match="no notification daemon"):
        await broken.notify(NotifyAction(action_type="notify", title="Hi", message="there"), scope)


async def test_new_endpoints_are_in_openapi_with_their_errors(tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as d:
        paths = (await d.client.get("/openapi.json")).json()["paths"]
        assert {"404", "409", "403"} <= set(paths["/api/v1/actions/{action_id}/approve"]["post"]["responses"])
        assert {"404", "409"} <= set(paths["/api/v1/actions/{action_id}/deny"]["post"]["responses"])
        assert "/api/v1/actions/pending" in paths and "/api/v1/actions/history" in paths
        assert {"404", "409"} <= set(paths["/api/v1/backups/{backup_id}/restore"]["post"]["responses"])
        assert (await d.anonymous.get("/api/v1/actions/pending")).status_code == 401


async def test_results_without_an_admitted_response_meet_the_chain_limits(tmp_path: Path) -> None:
    async with running_daemon(tmp_path, {"bus": {"max_chain_depth": 1}}) as d:
        root = await d.daemon.bus.publish(EventIn(topic="user.ask", payload={}, source="user"))
        deep = await d.daemon.bus.publish(EventIn(topic="x.deep", payload={}, parent_event=root.id, source="user"))
        orphan = RunContext("agent_tester", deep, None, None, deep.trace_id, [])
        [outcome] = await d.daemon.executor.handle_proposals([{"action_type": "log", "message": "m"}], orphan)
        assert outcome.status == "executed"
        stored = (await d.client.get(f"/api/v1/actions/{outcome.action_id}")).json()
        assert stored["result_event_id"] is None
        topics = [e["topic"] for e in await trace_events(d, deep.trace_id)]
        assert "system.chain_limit" in topics and "action.log.executed" not in topics

        admitted = RunContext("agent_tester", root, None, deep.id, root.trace_id, [])
        [outcome] = await d.daemon.executor.handle_proposals([{"action_type": "log", "message": "m"}], admitted)
        stored = (await d.client.get(f"/api/v1/actions/{outcome.action_id}")).json()
        assert stored["result_event_id"] is not None

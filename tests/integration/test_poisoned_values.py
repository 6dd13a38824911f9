"""Poisoned values (lone surrogates, deep nesting, huge integers, non-finite numbers) against a real daemon: every
route refuses them with a 4xx naming the rule, in-process publishers meet the same rules, producers keep what they
saw escaped, rows an older version stored are shown escaped, and /ws keeps its clients."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, cast

import pytest
from websockets.asyncio.client import connect

from aiventbus.errors import PayloadTooLarge
from aiventbus.platform import Platform
from aiventbus.producers.clipboard import ClipboardProducer
from aiventbus.producers.outlet import Outlet
from aiventbus.producers.system_log import parse_log_line
from aiventbus.producers.terminal import FileTail
from aiventbus.producers.webhook import sign
from aiventbus.records.events import EventIn
from aiventbus.values import MAX_DEPTH, UnsafeValue
from tests.integration.test_agents_runs import ScriptedProvider, make_agent, publish, settled, use_provider
from tests.support.daemon import RunningDaemon, running_daemon
from tests.support.runs import run_context

# JSON text of each poison, and the rule that refuses it.
POISONS: dict[str, tuple[str, str]] = {
    "lone surrogate": ('"\\ud800"', "lone_surrogate"),
    "lone surrogate in a key": ('{"\\udc00x": 1}', "lone_surrogate"),
    "nesting 100 deep": ("[" * 100 + "]" * 100, "max_depth"),
    "nesting 10,000 deep": ("[" * 10_000 + "]" * 10_000, "max_depth"),
    "5,000-digit integer": ("7" * 5000, "integer_range"),
    "2^53 + 1": (str(2**53 + 1), "integer_range"),
    "-2^53 - 1": (str(-(2**53) - 1), "integer_range"),
    "NaN": ("NaN", "non_finite"),
    "Infinity": ("Infinity", "non_finite"),
    "-Infinity": ("-Infinity", "non_finite"),
    "1e400": ("1e400", "non_finite"),
}
RULE_WORDS = {
    "lone_surrogate": "lone surrogate",
    "max_depth": f"nesting deeper than {MAX_DEPTH}",
    "integer_range": "beyond ±2^53",
    "non_finite": "non-finite",
}
SECRET = "s3cret-for-tests"
CONFIG: dict[str, Any] = {"producers": {"webhooks": {"ci": {"secret": SECRET}}}}


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def nested_text(depth: int) -> str:
    return "[" * depth + '"leaf"' + "]" * depth


async def setup_targets(d: RunningDaemon) -> dict[str, str]:
    """An agent, a routing rule, a memory and a pending action for the routes that change them."""
    agent = await d.client.post("/api/v1/agents", json={"name": "Poison target"})
    assert agent.status_code == 201, agent.text
    rule = await d.client.post(
        "/api/v1/routing-rules", json={"name": "r", "topic_pattern": "x.*", "consumer_id": agent.json()["id"]}
    )
    assert rule.status_code == 201, rule.text
    memory = await d.client.post("/api/v1/memories", json={"kind": "semantic", "content": "a fact"})
    assert memory.status_code == 201, memory.text
    return {"agent": agent.json()["id"], "rule": rule.json()["id"], "memory": memory.json()["id"]}


# (method, path template, body template with {V} where the poison goes)
ROUTES: list[tuple[str, str, str]] = [
    ("POST", "/api/v1/events", '{"topic": "a.b", "payload": {"v": {V}}}'),
    ("POST", "/api/v1/events/batch", '{"events": [{"topic": "a.b", "payload": {}}, {"topic": "a.b", "payload": {V}}]}'),
    ("PUT", "/api/v1/knowledge/poison.key", '{"value": {V}}'),
    ("POST", "/api/v1/memories", '{"kind": "semantic", "content": "x", "importance": {V}}'),
    ("PATCH", "/api/v1/memories/{memory}", '{"importance": {V}}'),
    ("POST", "/api/v1/agents/global/memory/pinned", '{"fact": {V}}'),
    ("POST", "/api/v1/agents", '{"name": "Other", "description": {V}}'),
    ("PATCH", "/api/v1/agents/{agent}", '{"description": {V}}'),
    ("POST", "/api/v1/routing-rules", '{"name": "r2", "topic_pattern": "y.*", "consumer_id": {V}}'),
    ("PATCH", "/api/v1/routing-rules/{rule}", '{"topic_pattern": {V}}'),
    ("POST", "/api/v1/actions/act_missing/deny", '{"reason": {V}}'),
    ("POST", "/api/v1/webhooks/ci", '{"build": {V}}'),
]


async def test_every_route_refuses_every_poison_naming_the_rule(tmp_path: Path) -> None:
    async with running_daemon(tmp_path, CONFIG) as d:
        targets = await setup_targets(d)
        before_events = (await d.client.get("/api/v1/events", params={"limit": 1000})).json()["events"]
        for method, template, body_template in ROUTES:
            path = template.format(**targets)
            for name, (poison, rule) in POISONS.items():
                body = body_template.replace("{V}", poison).encode()
                headers = {"Content-Type": "application/json"}
                if "/webhooks/" in path:
                    headers["X-Aiventbus-Signature"] = sign(SECRET, body)
                response = await d.client.request(method, path, content=body, headers=headers)
                case = f"{method} {path} with {name}"
                assert response.status_code == 422, f"{case}: {response.status_code} {response.text[:300]}"
                answer = response.json()
                assert answer["rule"] == rule, case
                assert RULE_WORDS[rule] in answer["detail"], case
        # Nothing was stored, and every read still answers.
        after_events = (await d.client.get("/api/v1/events", params={"limit": 1000})).json()["events"]
        assert [e["id"] for e in after_events] == [e["id"] for e in before_events]
        assert (await d.client.get("/api/v1/knowledge/poison.key")).status_code == 404
        for read in ("/api/v1/knowledge", "/api/v1/memories", "/api/v1/agents", "/api/v1/routing-rules"):
            assert (await d.client.get(read)).status_code == 200, read


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"topic": "a.b", "payload": {"a": {"b": [1, 2, 3, "\\ud800"]}}}', "payload.a.b[3]"),
        ('{"topic": "a.b", "payload": {"deep": ' + nested_text(MAX_DEPTH) + "}}", "payload.deep"),
        ('{"topic": "a.b", "payload": {"n": [0, 1e400]}}', "payload.n[1]"),
    ],
)
async def test_detail_names_the_path_inside_the_value(daemon: RunningDaemon, body: str, field: str) -> None:
    response = await daemon.client.post(
        "/api/v1/events", content=body.encode(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"].startswith(field)
    assert response.json()["detail"].startswith(field)


async def test_the_depth_limit_is_64_exactly(daemon: RunningDaemon) -> None:
    # The payload object itself is the first level.
    ok = await daemon.client.post("/api/v1/events", json={"topic": "a.b", "payload": {"v": nested(MAX_DEPTH - 1)}})
    assert ok.status_code == 201, ok.text
    refused = await daemon.client.post("/api/v1/events", json={"topic": "a.b", "payload": {"v": nested(MAX_DEPTH)}})
    assert refused.status_code == 422 and refused.json()["rule"] == "max_depth"
    # A knowledge value is the first level itself.
    knowledge = await daemon.client.put("/api/v1/knowledge/deep.ok", json={"value": nested(MAX_DEPTH)})
    assert knowledge.status_code == 200, knowledge.text
    too_deep = await daemon.client.put("/api/v1/knowledge/deep.no", json={"value": nested(MAX_DEPTH + 1)})
    assert too_deep.status_code == 422 and too_deep.json()["rule"] == "max_depth"
    edge = await daemon.client.post("/api/v1/events", json={"topic": "a.b", "payload": {"n": 2**53, "m": -(2**53)}})
    assert edge.status_code == 201 and edge.json()["payload"] == {"n": 2**53, "m": -(2**53)}
    stored = (await daemon.client.get(f"/api/v1/events/{ok.json()['id']}")).json()
    assert stored["payload"] == {"v": nested(MAX_DEPTH - 1)}


async def test_in_process_publishers_meet_the_rules_and_the_cap(tmp_path: Path) -> None:
    async with running_daemon(tmp_path, {"bus": {"max_payload_bytes": 2048}}) as d:
        bus = d.daemon.bus
        for payload, rule in [
            ({"s": "\ud800"}, "lone_surrogate"),
            ({"d": nested(900)}, "max_depth"),
            ({"n": 2**70}, "integer_range"),
            ({"f": float("nan")}, "non_finite"),
        ]:
            with pytest.raises(UnsafeValue) as refused:
                await bus.publish(EventIn(topic="a.b", payload=payload, source="executor"))
            assert refused.value.rule == rule
        with pytest.raises(PayloadTooLarge) as too_big:
            await bus.publish(EventIn(topic="a.b", payload={"blob": "é" * 1500}, source="executor"))
        assert "max_payload_bytes" in too_big.value.detail
        good = EventIn(topic="a.b", payload={"ok": 1})
        with pytest.raises(UnsafeValue) as in_batch:
            await bus.publish_many([good, EventIn(topic="a.b", payload={"s": "\udcff"})])
        assert in_batch.value.field == "events[1].payload.s"
        with pytest.raises(PayloadTooLarge):
            await bus.publish_many([good, EventIn(topic="a.b", payload={"blob": "x" * 4096})])
        assert await bus.queries.count() == 0
        # A system report quoting a refused value is kept, escaped.
        report = await bus.publish_system("refused", {"value": "\ud800", "deep": nested(200)})
        assert report is not None
        shown = (await d.client.get(f"/api/v1/events/{report.id}")).json()["payload"]
        assert shown["value"] == "\\ud800"


async def test_producers_keep_what_they_saw_escaped(tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as d:
        published: list[str] = []
        outlet = Outlet("test_producer", d.daemon.bus.publish, rate=1000, burst=1000, capacity=100)
        outlet.on_published = lambda event: published.append(event.id)
        outlet.offer(
            "file.created",
            {"path": "/tmp/bad-\udcff", "deep": nested(300), "n": 2**64, "f": float("inf")},
        )
        clipboard = ClipboardProducer(cast(Platform, None), poll_interval=1.0, max_chars=1000)
        clipboard.observe("copied \ud83d lone half of an emoji", outlet)
        await outlet.flush()
        await outlet.close()
        assert outlet.failed == 0 and len(published) == 2
        first = (await d.client.get(f"/api/v1/events/{published[0]}")).json()["payload"]
        assert first["path"] == "/tmp/bad-\\udcff"
        assert first["n"] == str(2**64) and first["f"] == "Infinity"
        assert json.dumps(first).count("unrenderable") == 1
        second = (await d.client.get(f"/api/v1/events/{published[1]}")).json()["payload"]
        assert second["text"] == "copied \\ud83d lone half of an emoji"
        assert (await d.client.get("/api/v1/events")).status_code == 200


async def test_webhook_bodies_that_are_not_json_or_not_utf8_are_kept_as_text(tmp_path: Path) -> None:
    async with running_daemon(tmp_path, CONFIG) as d:
        for body in (b'{"a": "\xff\xfe"}', b"\xed\xa0\x80 raw surrogate bytes", b'{"unclosed": '):
            headers = {"content-type": "application/json", "X-Aiventbus-Signature": sign(SECRET, body)}
            response = await d.anonymous.post("/api/v1/webhooks/ci", content=body, headers=headers)
            assert response.status_code == 202, response.text
            event = await d.client.get(f"/api/v1/events/{response.json()['event_id']}")
            assert event.status_code == 200, event.text
        assert (await d.client.get("/api/v1/events")).status_code == 200


async def insert_old_rows(d: RunningDaemon) -> dict[str, str]:
    """Rows as an older version could have written them: JSON text that breaks the rules, straight into SQLite."""
    db = d.daemon.bus.db
    poisoned = {
        "surrogate": '{"s": "\\ud800", "key\\udc00": 1}',
        "deep": '{"d": ' + nested_text(900) + "}",
        "huge": '{"n": ' + "9" * 5000 + "}",
        "nan": '{"f": NaN, "g": Infinity}',
        "garbled": '{"cut": ',
    }
    for name, payload in poisoned.items():
        await db.execute(
            "INSERT INTO events (id, topic, payload, priority, trace_id, source, status, created_at)"
            " VALUES (?, ?, ?, 'normal', ?, 'api', 'completed', 1.0)",
            (f"evt_old{name}", f"old.{name}", payload, "tr_oldtrace"),
        )
        await db.execute(
            "INSERT INTO knowledge (key, value, set_by, updated_at) VALUES (?, ?, 'user', 1.0)",
            (f"old.{name}", payload),
        )
    await db.execute(
        "INSERT INTO actions (id, action_type, content, content_sha256, status, verdict, rule, reason, agent_id,"
        " event_id, trace_id, created_at, result) VALUES ('act_old', 'log', ?, 'x', 'executed', 'auto', 'r', 'r',"
        " 'agent_old', 'evt_oldsurrogate', 'tr_oldtrace', 1.0, ?)",
        ('{"action_type": "log", "message": "\\ud800"}', poisoned["deep"]),
    )
    await db.execute(
        "INSERT INTO agent_responses (id, event_id, agent_id, assignment_id, trace_id, model, raw_text, response,"
        " created_at) VALUES ('resp_old', 'evt_oldsurrogate', 'agent_old', 'asg_old', 'tr_oldtrace', 'm', 'raw', ?,"
        " 1.0)",
        ('{"proposed_actions": [' + nested_text(900) + '], "summary": "\\udfff"}',),
    )
    return poisoned


async def test_rows_stored_by_an_older_version_are_shown_escaped(daemon: RunningDaemon) -> None:
    await insert_old_rows(daemon)
    client = daemon.client
    agent = (await client.post("/api/v1/agents", json={"name": "Old agent"})).json()["id"]
    for event_id in ("evt_oldsurrogate", "evt_olddeep", "evt_oldgarbled"):
        await daemon.daemon.bus.db.execute(
            "INSERT INTO agent_responses (id, event_id, agent_id, assignment_id, trace_id, model, raw_text, response,"
            " created_at) VALUES (?, ?, ?, 'asg_x', 'tr_oldtrace', 'm', 'raw', NULL, 2.0)",
            (f"resp_{event_id}", event_id, agent),
        )
    transcript = await client.get(f"/api/v1/agents/{agent}/memory")
    assert transcript.status_code == 200, transcript.text
    assert {"s": "\\ud800", "key\\udc00": 1} in [turn["payload"] for turn in transcript.json()["transcript"]]
    page = await client.get("/api/v1/events")
    assert page.status_code == 200, page.text
    by_topic = {e["topic"]: e["payload"] for e in page.json()["events"]}
    assert by_topic["old.surrogate"] == {"s": "\\ud800", "key\\udc00": 1}
    assert "unrenderable" in json.dumps(by_topic["old.deep"])
    assert by_topic["old.huge"]["n"] == "[unrenderable: integer beyond ±2^53]"
    assert by_topic["old.nan"] == {"f": "NaN", "g": "Infinity"}
    assert by_topic["old.garbled"]["unrenderable"].startswith("stored text is not JSON")
    for path in (
        "/api/v1/events/evt_oldsurrogate",
        "/api/v1/events/evt_olddeep",
        "/api/v1/events/evt_oldsurrogate/chain",
        "/api/v1/events/trace/tr_oldtrace",
        "/api/v1/knowledge",
        "/api/v1/knowledge/old.surrogate",
        "/api/v1/knowledge/old.deep",
        "/api/v1/actions/history",
        "/api/v1/actions/act_old",
        "/api/v1/events/evt_oldsurrogate/responses",
        "/api/v1/topics",
    ):
        answer = await client.get(path)
        assert answer.status_code == 200, f"{path}: {answer.text[:300]}"
    knowledge = (await client.get("/api/v1/knowledge/old.surrogate")).json()
    assert knowledge["value"] == {"s": "\\ud800", "key\\udc00": 1}
    action = (await client.get("/api/v1/actions/act_old")).json()
    assert action["content"]["message"] == "\\ud800"
    responses = (await client.get("/api/v1/events/evt_oldsurrogate/responses")).json()["responses"]
    assert responses[0]["response"]["summary"] == "\\udfff"


async def test_ws_clients_stay_connected_while_unrenderable_messages_flow(daemon: RunningDaemon) -> None:
    url = daemon.base_url.replace("http://", "ws://") + "/ws"
    headers = {"Authorization": f"Bearer {daemon.token}"}
    async with connect(url, additional_headers=headers, max_size=None) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["channel"] == "hello"
        hub = daemon.daemon.hub
        hub.publish("token", {"text": "\ud800"}, topic="user.query")
        hub.publish("action", {"deep": nested(900)}, topic="action.log.executed")
        hub.publish("action", {"n": 2**70, "f": float("nan")}, topic="action.log.executed")
        await insert_old_rows(daemon)
        fine = await daemon.client.post("/api/v1/events", json={"topic": "user.note", "payload": {"after": True}})
        assert fine.status_code == 201
        received = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(4)]
        assert received[0]["data"] == {"text": "\\ud800"}
        assert "unrenderable" in json.dumps(received[1]["data"])
        assert received[2]["data"]["n"] == str(2**70)
        assert received[3]["channel"] == "event" and received[3]["data"]["payload"] == {"after": True}
        assert daemon.daemon.hub.client_count == 1


async def test_poisoned_proposals_end_as_invalid_action_events(tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as d:
        ctx = await run_context(d)
        proposals: list[Any] = [
            {"action_type": "log", "message": "\ud800"},
            {"action_type": "emit_event", "topic": "x.y", "payload": {"deep": nested(900)}},
            {"action_type": "set_knowledge", "key": "k", "value": 2**60},
            {"action_type": "log", "message": "x", "reason": float("nan")},
            {"action_type": "\udcff", "message": "x"},
            nested(900),
        ]
        outcomes = await d.daemon.executor.handle_proposals(proposals, ctx)
        assert [o.status for o in outcomes] == ["invalid"] * len(proposals)
        assert outcomes[0].reason == "message: lone surrogate in a string (not encodable as UTF-8)"
        assert outcomes[1].reason.startswith("payload.deep[0]") and "nesting deeper than 64" in outcomes[1].reason
        assert outcomes[2].reason == "value: integer beyond ±2^53"
        assert outcomes[3].reason == "reason: non-finite number (NaN or Infinity)"
        assert outcomes[4].action_type is None
        answer = await d.client.get(f"/api/v1/events/trace/{ctx.trace_id}")
        assert answer.status_code == 200, answer.text
        reports = [e for e in answer.json()["events"] if e["topic"] == "system.invalid_action"]
        assert len(reports) == len(proposals)
        assert reports[0]["payload"]["proposal"]["message"] == "\\ud800"
        assert (await d.client.get("/api/v1/actions/history")).json()["actions"] == []
        metrics = await d.client.get("/metrics")
        assert metrics.status_code == 200


async def test_a_poisoned_knowledge_value_from_an_agent_is_refused(tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as d:
        with pytest.raises(UnsafeValue) as refused:
            await d.daemon.knowledge.set("agent.note", {"v": "\ud800"}, "agent:agent_x")
        assert refused.value.field == "value.v"
        assert (await d.client.get("/api/v1/knowledge")).status_code == 200


def test_log_and_terminal_readers_survive_any_bytes(tmp_path: Path) -> None:
    assert parse_log_line("[" * 10_000 + "]" * 10_000) is None
    assert parse_log_line('{"MESSAGE": "\\ud800", "PRIORITY": "3"}') == (
        "log.err",
        {"unit": "", "identifier": "", "message": "\ud800", "pid": None, "priority": 3, "timestamp": None},
    )  # kept as read: the outlet escapes it on the way to the bus
    history = tmp_path / "history"
    history.write_bytes(b"")
    tail = FileTail(history)
    assert tail.read_new() == []
    history.write_bytes(b"ls \xff\xfe\x00 done\n")
    assert tail.read_new() == ["ls \ufffd\ufffd\x00 done"]


@pytest.mark.parametrize(
    ("proposal_text", "reason_start"),
    [
        ('{"action_type": "log", "message": "\\ud800"}', "message: lone surrogate"),
        ('{"action_type": "emit_event", "topic": "x.y", "payload": {"d": ' + nested_text(700) + "}}", "payload.d"),
        ('{"action_type": "log", "message": "x", "reason": NaN}', "reason: non-finite"),
    ],
)
async def test_a_model_proposing_a_poisoned_action_gets_an_invalid_action_record(
    tmp_path: Path, proposal_text: str, reason_start: str
) -> None:
    async with running_daemon(tmp_path, {"agents": {"retry_backoff_seconds": 0.0, "llm_retry_max_seconds": 0.2}}) as d:
        provider = ScriptedProvider()
        use_provider(d, provider)
        provider.replies.append(
            '{"type": "answer", "summary": "ok", "confidence": 0.9, "proposed_actions": [' + proposal_text + "]}"
        )
        await make_agent(d, "poisoned", "user.*")
        url = d.base_url.replace("http://", "ws://") + "/ws?channels=event,token"
        async with connect(url, additional_headers={"Authorization": f"Bearer {d.token}"}, max_size=None) as ws:
            event = await publish(d, "user.query", {"text": "go"}, source="user")
            # The client hears the whole run, the poisoned response included, up to the refusal.
            seen: list[str] = []
            while "system.invalid_action" not in seen:
                seen.append(json.loads(await asyncio.wait_for(ws.recv(), 10))["topic"])
            assert "agent.poisoned.response" in seen
            assert await settled(d, event["id"]) == "completed"
            trace = await d.client.get(f"/api/v1/events/trace/{event['trace_id']}")
            assert trace.status_code == 200, trace.text
            [report] = [e for e in trace.json()["events"] if e["topic"] == "system.invalid_action"]
            assert report["payload"]["reason"].startswith(reason_start)
            responses = await d.client.get(f"/api/v1/events/{event['id']}/responses")
            assert responses.status_code == 200, responses.text
            assert d.daemon.hub.client_count == 1

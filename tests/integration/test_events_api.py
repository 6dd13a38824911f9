"""Publish, list, get, chain and trace over a real uvicorn server."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.clock import FakeClock
from tests.support.daemon import RunningDaemon, running_daemon


async def publish(d: RunningDaemon, **event: object) -> dict:
    response = await d.client.post("/api/v1/events", json=event)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def test_publish_assigns_ids_and_defaults(daemon: RunningDaemon) -> None:
    event = await publish(daemon, topic="log.error", payload={"message": "401 Unauthorized"})
    assert event["id"].startswith("evt_")
    assert event["trace_id"].startswith("tr_")
    assert event["priority"] == "normal"
    assert event["source"] == "api"
    assert event["deduplicated"] is False

    fetched = (await daemon.client.get(f"/api/v1/events/{event['id']}")).json()
    assert fetched["payload"] == {"message": "401 Unauthorized"}
    assert fetched["seq"] == event["seq"]


async def test_full_schema_round_trips(daemon: RunningDaemon) -> None:
    root = await publish(daemon, topic="deploy.done", payload={})
    event = await publish(
        daemon,
        topic="log.error",
        payload={"message": "401 Unauthorized", "path": "/admin"},
        priority="high",
        semantic_type="security.auth_failure",
        dedupe_key="auth-401-/admin",
        output_topic="agent.security.response",
        context_refs=[root["id"]],
        memory_scope="security-agent",
    )
    got = (await daemon.client.get(f"/api/v1/events/{event['id']}")).json()
    for key in ("priority", "semantic_type", "dedupe_key", "output_topic", "context_refs", "memory_scope"):
        assert got[key] == event[key]
    assert got["context_refs"] == [root["id"]]


async def test_child_inherits_trace_and_chain_and_trace_views(daemon: RunningDaemon) -> None:
    root = await publish(daemon, topic="a.root", payload={"n": 0})
    child = await publish(daemon, topic="a.child", payload={"n": 1}, parent_event=root["id"])
    grandchild = await publish(daemon, topic="a.grand", payload={"n": 2}, parent_event=child["id"])
    unrelated = await publish(daemon, topic="b.other", payload={})
    assert child["trace_id"] == root["trace_id"] == grandchild["trace_id"]
    assert grandchild["depth"] == 2

    chain = (await daemon.client.get(f"/api/v1/events/{child['id']}/chain")).json()["events"]
    assert [e["id"] for e in chain] == [root["id"], child["id"], grandchild["id"]]

    trace = (await daemon.client.get(f"/api/v1/events/trace/{root['trace_id']}")).json()["events"]
    assert [e["id"] for e in trace] == [root["id"], child["id"], grandchild["id"]]
    assert unrelated["id"] not in {e["id"] for e in trace}
    assert (await daemon.client.get("/api/v1/events/trace/tr_nothing")).status_code == 404


async def test_list_filters_and_cursor(daemon: RunningDaemon) -> None:
    for i in range(7):
        await publish(daemon, topic=f"clipboard.text{'' if i % 2 else '.x'}", payload={"i": i})
    await publish(daemon, topic="file.created", payload={}, source="cli")

    newest = (await daemon.client.get("/api/v1/events", params={"limit": 3})).json()
    assert next(e["topic"] for e in newest["events"]) == "file.created"
    seen = [e["id"] for e in newest["events"]]
    cursor = newest["next_cursor"]
    while cursor:
        page = (await daemon.client.get("/api/v1/events", params={"limit": 3, "cursor": cursor})).json()
        seen += [e["id"] for e in page["events"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == 8

    globbed = (await daemon.client.get("/api/v1/events", params={"topic": "clipboard.*"})).json()["events"]
    assert len(globbed) == 7
    exact = (await daemon.client.get("/api/v1/events", params={"topic": "clipboard.text"})).json()["events"]
    assert len(exact) == 3
    by_source = (await daemon.client.get("/api/v1/events", params={"source": "cli"})).json()["events"]
    assert [e["topic"] for e in by_source] == ["file.created"]
    everything = (await daemon.client.get("/api/v1/events", params={"limit": 100})).json()["events"]
    status = everything[0]["status"]
    expected = sum(1 for e in everything if e["status"] == status)
    by_status = (await daemon.client.get("/api/v1/events", params={"status": status})).json()["events"]
    assert len(by_status) == expected and {e["status"] for e in by_status} == {status}


async def test_time_range_filter(tmp_path: Path, clock: FakeClock) -> None:
    async with running_daemon(tmp_path, clock=clock) as d:
        start = clock.now
        await publish(d, topic="t.one", payload={})
        clock.advance(100)
        await publish(d, topic="t.two", payload={})
        clock.advance(100)
        await publish(d, topic="t.three", payload={})
        got = (await d.client.get("/api/v1/events", params={"since": start + 50, "until": start + 150})).json()
        assert [e["topic"] for e in got["events"]] == ["t.two"]
        iso = (await d.client.get("/api/v1/events", params={"since": "2027-01-01T00:00:00Z"})).json()
        assert len(iso["events"]) == 3  # the fake clock stands in 2027
        bad = await d.client.get("/api/v1/events", params={"since": "yesterday"})
        assert bad.status_code == 422 and "since" in bad.json()["detail"]


async def test_dedupe_inside_and_outside_window(tmp_path: Path, clock: FakeClock) -> None:
    async with running_daemon(tmp_path, {"bus": {"dedupe_window_seconds": 60}}, clock=clock) as d:
        first = await d.client.post("/api/v1/events", json={"topic": "log.error", "payload": {}, "dedupe_key": "k"})
        assert first.status_code == 201
        clock.advance(59)
        again = await d.client.post("/api/v1/events", json={"topic": "log.error", "payload": {}, "dedupe_key": "k"})
        assert again.status_code == 200
        assert again.json()["deduplicated"] is True
        assert again.json()["id"] == first.json()["id"]
        clock.advance(2)
        later = await d.client.post("/api/v1/events", json={"topic": "log.error", "payload": {}, "dedupe_key": "k"})
        assert later.status_code == 201
        assert later.json()["id"] != first.json()["id"]
        stored = (await d.client.get("/api/v1/events", params={"topic": "log.error"})).json()["events"]
        assert len(stored) == 2
        metrics = (await d.anonymous.get("/metrics")).text
        assert 'aiventbus_events_deduped_total{topic="log.error"} 1.0' in metrics


async def test_chain_limits_each_refuse_with_system_event(tmp_path: Path) -> None:
    # Budget 8: six events and the two system.chain_limit reports of the refusals before it (system.* counts).
    limits = {"bus": {"max_chain_depth": 2, "max_chain_budget": 8, "max_fan_out": 2}}
    async with running_daemon(tmp_path, limits) as d:
        root = await publish(d, topic="c.root", payload={})
        a = await publish(d, topic="c.a", payload={}, parent_event=root["id"])
        await publish(d, topic="c.b", payload={}, parent_event=root["id"])
        fan = await d.client.post("/api/v1/events", json={"topic": "c.c", "payload": {}, "parent_event": root["id"]})
        assert fan.status_code == 429
        assert fan.json()["reason"] == "fan_out" and "fan_out" in fan.json()["detail"]

        deep = await publish(d, topic="c.deep", payload={}, parent_event=a["id"])
        too_deep = await d.client.post(
            "/api/v1/events", json={"topic": "c.deeper", "payload": {}, "parent_event": deep["id"]}
        )
        assert too_deep.status_code == 429 and too_deep.json()["reason"] == "depth"

        await publish(d, topic="c.more", payload={}, parent_event=a["id"])
        await publish(d, topic="c.more2", payload={}, trace_id=root["trace_id"])
        over = await d.client.post("/api/v1/events", json={"topic": "c.x", "payload": {}, "trace_id": root["trace_id"]})
        assert over.status_code == 429 and over.json()["reason"] == "budget"

        system = (await d.client.get("/api/v1/events", params={"topic": "system.chain_limit"})).json()["events"]
        assert sorted(e["payload"]["reason"] for e in system) == ["budget", "depth", "fan_out"]
        assert all(e["trace_id"] == root["trace_id"] for e in system)
        metrics = (await d.anonymous.get("/metrics")).text
        for reason in ("depth", "budget", "fan_out"):
            assert f'aiventbus_events_chain_limit_total{{reason="{reason}"}} 1.0' in metrics


async def test_batch_publish(daemon: RunningDaemon) -> None:
    body = {"events": [{"topic": f"batch.{i}", "payload": {"i": i}} for i in range(20)]}
    response = await daemon.client.post("/api/v1/events/batch", json=body)
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 20 and all(r["ok"] for r in results)
    bad = await daemon.client.post("/api/v1/events/batch", json={"events": [{"topic": "ok", "payload": {}}, {}]})
    assert bad.status_code == 422 and "events.1.topic" in bad.json()["detail"]
    assert len((await daemon.client.get("/api/v1/events", params={"topic": "ok"})).json()["events"]) == 0


async def test_topics_status_and_metrics(daemon: RunningDaemon) -> None:
    await asyncio.gather(*(publish(daemon, topic="x.y", payload={"i": i}) for i in range(5)))
    topics = (await daemon.client.get("/api/v1/topics")).json()["topics"]
    assert {k: topics[0][k] for k in ("topic", "count")} == {"topic": "x.y", "count": 5}
    status = (await daemon.anonymous.get("/api/v1/system/status")).json()
    assert status["status"] in {"ok", "degraded"}
    assert status["bus"]["events_stored"] == 5
    assert daemon.token not in str(status)
    metrics = await daemon.anonymous.get("/metrics")
    assert metrics.status_code == 200
    text = metrics.text
    assert daemon.token not in text
    assert 'aiventbus_events_published_total{source="api",topic="x.y"} 5.0' in text
    assert 'aiventbus_http_requests_total{method="POST",path="/api/v1/events",status="201"} 5.0' in text
    assert "aiventbus_event_publish_duration_seconds_bucket" in text
    await daemon.client.get("/api/v1/events/evt_doesnotexist")
    text = (await daemon.anonymous.get("/metrics")).text
    assert 'path="/api/v1/events/{event_id}"' in text and "evt_doesnotexist" not in text


async def test_subscriber_failure_does_not_break_bus(daemon: RunningDaemon) -> None:
    seen: list[str] = []

    def broken(_: object) -> None:
        raise RuntimeError("boom")

    async def good(event: object) -> None:
        seen.append(event.topic)  # type: ignore[attr-defined]

    unsubscribe_broken = daemon.daemon.bus.subscribe(broken)
    unsubscribe_good = daemon.daemon.bus.subscribe(good)
    await publish(daemon, topic="s.one", payload={})
    assert seen == ["s.one"]
    assert daemon.daemon.bus.subscriber_failures == 1
    unsubscribe_broken()
    unsubscribe_good()
    await publish(daemon, topic="s.two", payload={})
    assert seen == ["s.one"]


async def test_docs_are_served(daemon: RunningDaemon) -> None:
    assert (await daemon.anonymous.get("/docs")).status_code == 200
    schema = (await daemon.anonymous.get("/openapi.json")).json()
    assert "/api/v1/events" in schema["paths"]
    post = schema["paths"]["/api/v1/events"]["post"]
    assert {"401", "413", "415", "422", "429"} <= set(post["responses"])

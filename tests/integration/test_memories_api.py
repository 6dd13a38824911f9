"""Memories and an agent's memory view over HTTP, and `aibus memory` against a real daemon process."""

from __future__ import annotations

import json

import pytest

from tests.support.cli import aibus
from tests.support.daemon import (
    DaemonProcess,
    RunningDaemon,
)


async def create(d: RunningDaemon, **body: object) -> dict:
    response = await d.client.post("/api/v1/memories", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def test_create_get_patch_delete(daemon: RunningDaemon) -> None:
    made = await create(daemon, kind="semantic", scope="global", content="This machine runs Ollama locally")
    assert made["id"].startswith("mem_") and made["importance"] == 0.5 and made["created_by"] == "user"
    assert made["last_recalled_at"] is None and made["recall_count"] == 0 and made["superseded_by"] is None

    got = (await daemon.client.get(f"/api/v1/memories/{made['id']}")).json()
    assert got["content"] == "This machine runs Ollama locally"

    patched = await daemon.client.patch(f"/api/v1/memories/{made['id']}", json={"importance": 0.9})
    assert patched.status_code == 200 and patched.json()["importance"] == 0.9

    assert (await daemon.client.delete(f"/api/v1/memories/{made['id']}")).status_code == 204
    assert (await daemon.client.get(f"/api/v1/memories/{made['id']}")).status_code == 404
    assert (await daemon.client.delete(f"/api/v1/memories/{made['id']}")).status_code == 404
    missing = await daemon.client.patch("/api/v1/memories/mem_nope", json={"importance": 0.1})
    assert missing.status_code == 404 and "mem_nope" in missing.json()["detail"]


async def test_list_filters_and_search(daemon: RunningDaemon) -> None:
    await create(daemon, kind="semantic", scope="user", content="The user prefers dark themes", importance=0.3)
    await create(daemon, kind="procedural", scope="user", content="Restart nginx with systemctl", importance=0.8)
    await create(daemon, kind="episodic", scope="global", content="nginx crashed on Monday")

    user = (await daemon.client.get("/api/v1/memories", params={"scope": "user"})).json()["memories"]
    assert [m["content"] for m in user] == ["Restart nginx with systemctl", "The user prefers dark themes"]
    kinds = (await daemon.client.get("/api/v1/memories", params={"kind": "episodic"})).json()["memories"]
    assert [m["kind"] for m in kinds] == ["episodic"]

    found = (await daemon.client.get("/api/v1/memories", params={"q": "nginx"})).json()["memories"]
    assert {m["content"] for m in found} == {"Restart nginx with systemctl", "nginx crashed on Monday"}
    assert all(m["score"] > 0 for m in found)
    scoped = (await daemon.client.get("/api/v1/memories", params={"q": "nginx", "scope": "global"})).json()
    assert [m["content"] for m in scoped["memories"]] == ["nginx crashed on Monday"]
    # FTS syntax in user text is taken as words, never an error.
    for hostile in ['"', "nginx AND (", "NEAR(", "*", "scope:user"]:
        response = await daemon.client.get("/api/v1/memories", params={"q": hostile})
        assert response.status_code == 200, hostile


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "dream", "content": "x"}, "kind"),
        ({"kind": "semantic", "content": ""}, "content"),
        ({"kind": "semantic", "content": "x", "importance": 1.5}, "importance"),
        ({"kind": "semantic", "content": "x", "scope": "has space"}, "scope"),
        ({"kind": "semantic", "content": "x", "bogus": 1}, "bogus"),
        ({"content": "x"}, "kind"),
    ],
)
async def test_bad_memory_bodies(daemon: RunningDaemon, body: dict[str, object], field: str) -> None:
    response = await daemon.client.post("/api/v1/memories", json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]


async def test_bad_patch_and_query(daemon: RunningDaemon) -> None:
    made = await create(daemon, kind="semantic", content="x")
    for body, field in [({"importance": -0.1}, "importance"), ({"importance": 2}, "importance"), ({}, "importance")]:
        response = await daemon.client.patch(f"/api/v1/memories/{made['id']}", json=body)
        assert response.status_code == 422 and field in response.json()["detail"]
    for params, field in [({"limit": 0}, "limit"), ({"kind": "dream"}, "kind"), ({"scope": "a b"}, "scope")]:
        response = await daemon.client.get("/api/v1/memories", params=params)
        assert response.status_code == 422 and field in response.json()["detail"]
    docs = (await daemon.client.get("/openapi.json")).json()["paths"]
    assert {"404", "422"} <= set(docs["/api/v1/memories/{memory_id}"]["patch"]["responses"])
    assert "/api/v1/agents/{agent_id}/memory" in docs


async def test_agent_memory_view_and_pins(daemon: RunningDaemon) -> None:
    agent_id = "agent_ops"
    await daemon.daemon.db.execute(
        "INSERT INTO agents (id, name, spec, enabled, created_at, updated_at) VALUES (?, 'ops', '{}', 1, 0, 0)",
        (agent_id,),
    )
    assert (await daemon.client.get("/api/v1/agents/agent_nobody/memory")).status_code == 404

    pin = await daemon.client.post(f"/api/v1/agents/{agent_id}/memory/pinned", json={"fact": "Prod is db-1"})
    assert pin.status_code == 201, pin.text
    shared = await daemon.client.post("/api/v1/agents/global/memory/pinned", json={"fact": "Be brief"})
    assert shared.status_code == 201
    bad = await daemon.client.post(f"/api/v1/agents/{agent_id}/memory/pinned", json={"fact": ""})
    assert bad.status_code == 422 and "fact" in bad.json()["detail"]

    view = (await daemon.client.get(f"/api/v1/agents/{agent_id}/memory")).json()
    assert view["agent_id"] == agent_id and view["transcript"] == []
    assert {p["fact"] for p in view["pinned_facts"]} == {"Prod is db-1", "Be brief"}

    pin_id = pin.json()["id"]
    assert (await daemon.client.delete(f"/api/v1/agents/{agent_id}/memory/pinned/{pin_id}")).status_code == 204
    assert (await daemon.client.delete(f"/api/v1/agents/{agent_id}/memory/pinned/{pin_id}")).status_code == 404
    view = (await daemon.client.get(f"/api/v1/agents/{agent_id}/memory")).json()
    assert [p["fact"] for p in view["pinned_facts"]] == ["Be brief"]


async def test_status_reports_memory(daemon: RunningDaemon) -> None:
    status = (await daemon.client.get("/api/v1/system/status")).json()
    assert status["components"]["memory"]["hybrid_search"] is False
    assert status["components"]["knowledge"]["system_facts"] >= 5


def test_cli_round_trip(daemon_process: DaemonProcess) -> None:
    config = daemon_process.config_path
    added = aibus(
        config, "memory", "add", "--kind", "semantic", "--scope", "global", "--content", "This machine runs Ollama"
    )
    assert added.returncode == 0, added.stderr
    memory_id = added.stdout.split()[0]
    assert memory_id.startswith("mem_")
    assert (
        aibus(config, "memory", "add", "--kind", "episodic", "--scope", "user", "--content", "Ada fixed DNS").returncode
        == 0
    )

    listed = aibus(config, "memory", "list", "--scope", "global")
    assert listed.returncode == 0 and memory_id in listed.stdout and "Ada" not in listed.stdout
    found = aibus(config, "memory", "search", "ollama", "--json")
    assert [m["id"] for m in json.loads(found.stdout)] == [memory_id]

    assert aibus(config, "memory", "delete", memory_id).returncode == 0
    assert "no memories" in aibus(config, "memory", "list", "--scope", "global").stdout
    gone = aibus(config, "memory", "delete", memory_id)
    assert gone.returncode == 1 and "not found" in gone.stderr and "Traceback" not in gone.stderr

    bad = aibus(config, "memory", "add", "--kind", "dream", "--content", "x")
    assert bad.returncode == 1 and "kind" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1

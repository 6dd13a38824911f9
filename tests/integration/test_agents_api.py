"""Agents and routing rules through the real API: ids, validation, conflicts, updates, cascade, OpenAPI."""

from __future__ import annotations

from tests.support.daemon import RunningDaemon

AGENT = {
    "name": "general assistant",
    "model": "gemma4:latest",
    "description": "General-purpose AI assistant",
    "system_prompt": "You are a helpful AI assistant. Answer concisely.",
}


async def test_create_agent_as_in_the_spec(daemon: RunningDaemon) -> None:
    response = await daemon.client.post("/api/v1/agents", json=AGENT)
    assert response.status_code == 201, response.text
    agent = response.json()
    assert agent["id"] == "agent_general-assistant"
    assert agent["provider"] == "ollama"
    assert agent["enabled"] is True
    assert agent["base_url"] is None
    listed = (await daemon.client.get("/api/v1/agents")).json()["agents"]
    assert [a["id"] for a in listed] == ["agent_general-assistant"]
    fetched = (await daemon.client.get("/api/v1/agents/agent_general-assistant")).json()
    assert fetched["system_prompt"] == AGENT["system_prompt"]


async def test_model_defaults_to_the_configured_one(daemon: RunningDaemon) -> None:
    agent = (await daemon.client.post("/api/v1/agents", json={"name": "x"})).json()
    assert agent["model"] == daemon.daemon.config.ollama.default_model


async def test_duplicate_name_is_a_conflict(daemon: RunningDaemon) -> None:
    assert (await daemon.client.post("/api/v1/agents", json=AGENT)).status_code == 201
    again = await daemon.client.post("/api/v1/agents", json={**AGENT, "name": "General Assistant!"})
    assert again.status_code == 409
    assert "agent_general-assistant" in again.json()["detail"]


async def test_bad_fields_are_422_naming_the_field(daemon: RunningDaemon) -> None:
    cases = [
        ({**AGENT, "provider": "openrouter"}, "provider"),
        ({**AGENT, "temperature": 5}, "temperature"),
        ({**AGENT, "base_url": "not a url"}, "base_url"),
        ({"model": "m"}, "name"),
        ({**AGENT, "colour": "red"}, "colour"),
    ]
    for body, field in cases:
        response = await daemon.client.post("/api/v1/agents", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["detail"].startswith(field), response.text
    not_json = await daemon.client.post("/api/v1/agents", content=b"{", headers={"content-type": "application/json"})
    assert not_json.status_code == 400


async def test_update_enable_disable_delete(daemon: RunningDaemon) -> None:
    await daemon.client.post("/api/v1/agents", json=AGENT)
    path = "/api/v1/agents/agent_general-assistant"
    patched = await daemon.client.patch(path, json={"model": "llama3:8b", "allowed_actions": ["notify", "log"]})
    assert patched.status_code == 200, patched.text
    assert patched.json()["model"] == "llama3:8b"
    assert patched.json()["allowed_actions"] == ["log", "notify"]
    assert (await daemon.client.patch(path, json={"model": None})).status_code == 422
    assert (await daemon.client.patch(path, json={"name": "other"})).status_code == 422
    assert (await daemon.client.post(path + "/disable")).json()["enabled"] is False
    assert (await daemon.client.post(path + "/enable")).json()["enabled"] is True
    assert (await daemon.client.delete(path)).status_code == 204
    missing = await daemon.client.get(path)
    assert missing.status_code == 404
    assert "agent_general-assistant" in missing.json()["detail"]
    for method, suffix in (("POST", "/enable"), ("DELETE", ""), ("PATCH", "")):
        response = await daemon.client.request(method, path + suffix, json={})
        assert response.status_code == 404, (method, suffix)


async def test_agents_survive_a_restart(tmp_path: object) -> None:
    from pathlib import Path

    from tests.support.daemon import running_daemon

    assert isinstance(tmp_path, Path)
    async with running_daemon(tmp_path) as first:
        await first.client.post("/api/v1/agents", json=AGENT)
        await first.client.post(
            "/api/v1/routing-rules",
            json={"name": "user queries", "topic_pattern": "user.*", "consumer_id": "agent_general-assistant"},
        )
    async with running_daemon(tmp_path) as second:
        assert [a["id"] for a in (await second.client.get("/api/v1/agents")).json()["agents"]] == [
            "agent_general-assistant"
        ]
        assert len((await second.client.get("/api/v1/routing-rules")).json()["rules"]) == 1


async def test_routing_rules_crud_and_validation(daemon: RunningDaemon) -> None:
    await daemon.client.post("/api/v1/agents", json=AGENT)
    rule = {"name": "user queries", "topic_pattern": "user.*", "consumer_id": "agent_general-assistant"}
    unknown = await daemon.client.post("/api/v1/routing-rules", json={**rule, "consumer_id": "agent_nobody"})
    assert unknown.status_code == 422
    assert unknown.json()["detail"].startswith("consumer_id")
    bad_glob = await daemon.client.post("/api/v1/routing-rules", json={**rule, "topic_pattern": "user query"})
    assert bad_glob.status_code == 422
    assert bad_glob.json()["detail"].startswith("topic_pattern")

    first = (await daemon.client.post("/api/v1/routing-rules", json={**rule, "priority": 50})).json()
    second = (await daemon.client.post("/api/v1/routing-rules", json={**rule, "name": "early", "priority": 5})).json()
    assert first["id"].startswith("rule_")
    listed = (await daemon.client.get("/api/v1/routing-rules")).json()["rules"]
    assert [r["id"] for r in listed] == [second["id"], first["id"]]

    patched = await daemon.client.patch(f"/api/v1/routing-rules/{first['id']}", json={"priority": 1, "enabled": False})
    assert patched.status_code == 200
    assert patched.json()["enabled"] is False
    wrong_consumer = await daemon.client.patch(f"/api/v1/routing-rules/{first['id']}", json={"consumer_id": "agent_x"})
    assert wrong_consumer.status_code == 422
    assert (await daemon.client.delete(f"/api/v1/routing-rules/{first['id']}")).status_code == 204
    assert (await daemon.client.get(f"/api/v1/routing-rules/{first['id']}")).status_code == 404

    # Deleting the agent deletes the rules that feed it.
    await daemon.client.delete("/api/v1/agents/agent_general-assistant")
    assert (await daemon.client.get("/api/v1/routing-rules")).json()["rules"] == []


async def test_endpoints_need_the_token_and_are_in_openapi(daemon: RunningDaemon) -> None:
    assert (await daemon.anonymous.get("/api/v1/agents")).status_code == 401
    spec = (await daemon.anonymous.get("/openapi.json")).json()
    paths = spec["paths"]
    assert {"404", "409", "422"} <= set(paths["/api/v1/agents"]["post"]["responses"]) | {"404"}
    assert "422" in paths["/api/v1/routing-rules"]["post"]["responses"]
    assert "404" in paths["/api/v1/agents/{agent_id}/enable"]["post"]["responses"]
    assert "404" in paths["/api/v1/events/{event_id}/assignments"]["get"]["responses"]
    assert "404" in paths["/api/v1/events/{event_id}/responses"]["get"]["responses"]
    assert "requestBody" in paths["/api/v1/agents"]["post"]


async def test_cli_agents_and_rules(daemon: RunningDaemon, tmp_path: object) -> None:
    from pathlib import Path

    from tests.e2e.test_agent_flow import run_aibus
    from tests.support.daemon import write_config

    assert isinstance(tmp_path, Path)
    config = write_config(tmp_path, port=daemon.daemon.config.server.port)
    code, out, err = await run_aibus(config, "agents", "add", "general assistant", "--model", "m1", timeout=60)
    assert code == 0, err
    assert out.startswith("agent_general-assistant created")
    code, out, _ = await run_aibus(config, "rules", "add", "user queries", "user.*", "agent_general-assistant")
    assert code == 0 and "user.* -> agent_general-assistant" in out
    code, out, _ = await run_aibus(config, "agents", "disable", "agent_general-assistant")
    assert out.strip() == "agent_general-assistant disabled"
    code, out, _ = await run_aibus(config, "agents", "list")
    assert "agent_general-assistant" in out and "disabled" in out
    code, out, _ = await run_aibus(config, "rules", "list")
    assert "user.* -> agent_general-assistant" in out
    code, _, err = await run_aibus(config, "rules", "add", "bad", "user.*", "agent_nobody")
    assert code == 1 and err.startswith("aibus: 422: consumer_id") and err.count("\n") == 1
    code, _, err = await run_aibus(config, "agents", "delete", "agent_nobody")
    assert code == 1 and "agent agent_nobody not found" in err

"""Knowledge over HTTP and through `aibus knowledge` (a subprocess against a real daemon process)."""

from __future__ import annotations

import json
import socket

import pytest

from tests.support.cli import aibus
from tests.support.daemon import (
    DaemonProcess,
    RunningDaemon,
)


async def test_put_get_list_delete_round_trip(daemon: RunningDaemon) -> None:
    client = daemon.client
    put = await client.put("/api/v1/knowledge/user.pref.editor", json={"value": "vscode"})
    assert put.status_code == 200, put.text
    assert put.json()["set_by"] == "user"
    await client.put("/api/v1/knowledge/user.pref.theme", json={"value": {"dark": True, "size": 14}})

    got = (await client.get("/api/v1/knowledge/user.pref.theme")).json()
    assert got["value"] == {"dark": True, "size": 14}
    assert got["set_by"] == "user" and got["updated_at"] > 0

    listed = (await client.get("/api/v1/knowledge", params={"prefix": "user.pref."})).json()["entries"]
    assert [entry["key"] for entry in listed] == ["user.pref.editor", "user.pref.theme"]

    assert (await client.delete("/api/v1/knowledge/user.pref.editor")).status_code == 204
    missing = await client.get("/api/v1/knowledge/user.pref.editor")
    assert missing.status_code == 404 and "user.pref.editor" in missing.json()["detail"]
    assert (await client.delete("/api/v1/knowledge/user.pref.editor")).status_code == 404


async def test_system_facts_are_filled_in_at_start(daemon: RunningDaemon) -> None:
    facts = {
        entry["key"]: entry
        for entry in (await daemon.client.get("/api/v1/knowledge", params={"prefix": "system."})).json()["entries"]
    }
    for key in ("system.os", "system.hostname", "system.gpu", "system.cpu_count", "system.python"):
        assert facts[key]["set_by"] == "system", key
    assert facts["system.hostname"]["value"] == socket.gethostname()
    assert facts["system.cpu_count"]["value"] >= 1
    assert isinstance(facts["system.gpu"]["value"], str) and facts["system.gpu"]["value"]


async def test_prefix_is_literal_not_a_pattern(daemon: RunningDaemon) -> None:
    await daemon.client.put("/api/v1/knowledge/a_b.c", json={"value": 1})
    await daemon.client.put("/api/v1/knowledge/axb.c", json={"value": 2})
    listed = (await daemon.client.get("/api/v1/knowledge", params={"prefix": "a_b"})).json()["entries"]
    assert [entry["key"] for entry in listed] == ["a_b.c"]


@pytest.mark.parametrize(
    ("key", "body", "status", "field"),
    [
        ("bad key!", {"value": 1}, 422, "key"),
        ("a..b", {"value": 1}, 422, "key"),
        ("ok.key", {}, 422, "value"),
        ("ok.key", {"value": 1, "extra": 2}, 422, "extra"),
        ("ok.key", {"value": "x" * 70_000}, 422, "value"),
    ],
)
async def test_bad_input_is_refused_with_a_detail(
    daemon: RunningDaemon, key: str, body: dict[str, object], status: int, field: str
) -> None:
    response = await daemon.client.put(f"/api/v1/knowledge/{key}", json=body)
    assert response.status_code == status, response.text
    assert field in response.json()["detail"]


async def test_malformed_json_and_missing_token(daemon: RunningDaemon) -> None:
    response = await daemon.client.put(
        "/api/v1/knowledge/a.b", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400 and "JSON" in response.json()["detail"]
    assert (await daemon.anonymous.get("/api/v1/knowledge")).status_code == 401


async def test_endpoints_are_documented(daemon: RunningDaemon) -> None:
    paths = (await daemon.client.get("/openapi.json")).json()["paths"]
    assert {"404", "422"} <= set(paths["/api/v1/knowledge/{key}"]["get"]["responses"])
    assert "422" in paths["/api/v1/knowledge/{key}"]["put"]["responses"]


def test_cli_round_trip(daemon_process: DaemonProcess) -> None:
    config = daemon_process.config_path
    assert aibus(config, "knowledge", "set", "user.pref.editor", "vscode").returncode == 0
    assert aibus(config, "knowledge", "set", "user.limits", '{"cpu": 4}').returncode == 0

    got = aibus(config, "knowledge", "get", "user.pref.editor")
    assert got.returncode == 0 and got.stdout.strip() == "vscode"
    assert json.loads(aibus(config, "knowledge", "get", "user.limits").stdout) == {"cpu": 4}

    listed = aibus(config, "knowledge", "list", "--prefix", "user.")
    assert listed.returncode == 0
    assert "user.pref.editor = vscode" in listed.stdout and "user.limits" in listed.stdout
    system = aibus(config, "knowledge", "list", "--prefix", "system.", "--json")
    assert "system.gpu" in {entry["key"] for entry in json.loads(system.stdout)}

    assert aibus(config, "knowledge", "delete", "user.pref.editor").returncode == 0
    gone = aibus(config, "knowledge", "get", "user.pref.editor")
    assert gone.returncode == 1 and "not found" in gone.stderr
    assert "Traceback" not in gone.stderr and len(gone.stderr.strip().splitlines()) == 1

    bad = aibus(config, "knowledge", "set", "not a key", "1")
    assert bad.returncode == 1 and "key" in bad.stderr and "Traceback" not in bad.stderr

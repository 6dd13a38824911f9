"""Token, Host and Origin guards; bad input gets a 4xx whose detail names the problem."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx
import pytest

from tests.support.daemon import RunningDaemon, running_daemon


async def test_token_file_is_private(daemon: RunningDaemon) -> None:
    path = daemon.daemon.config.token_path
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(path.read_text().strip()) >= 32


async def test_state_change_needs_token(daemon: RunningDaemon) -> None:
    response = await daemon.anonymous.post("/api/v1/events", json={"topic": "a.b", "payload": {}})
    assert response.status_code == 401
    assert "token" in response.json()["detail"]
    wrong = await daemon.anonymous.post(
        "/api/v1/events", json={"topic": "a.b", "payload": {}}, headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401
    assert (await daemon.anonymous.get("/api/v1/events")).status_code == 401
    assert (await daemon.anonymous.get("/api/v1/system/status")).status_code == 200
    assert (await daemon.anonymous.get("/metrics")).status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/events", "/api/v1/system/status", "/metrics", "/docs"])
async def test_foreign_host_refused_everywhere(daemon: RunningDaemon, path: str) -> None:
    response = await daemon.client.get(path, headers={"Host": "evil.example"})
    assert response.status_code == 403
    assert "Host" in response.json()["detail"]


async def test_foreign_origin_refused(daemon: RunningDaemon) -> None:
    response = await daemon.client.post(
        "/api/v1/events", json={"topic": "a.b", "payload": {}}, headers={"Origin": "http://evil.example"}
    )
    assert response.status_code == 403 and "Origin" in response.json()["detail"]
    port = daemon.daemon.config.server.port
    other_port = await daemon.client.get("/api/v1/events", headers={"Origin": f"http://127.0.0.1:{port + 1}"})
    assert other_port.status_code == 403
    own = await daemon.client.get("/api/v1/events", headers={"Origin": f"http://127.0.0.1:{port}"})
    assert own.status_code == 200


async def test_loopback_host_names_accepted(daemon: RunningDaemon) -> None:
    port = daemon.daemon.config.server.port
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "localhost"):
        assert (await daemon.client.get("/api/v1/events", headers={"Host": host})).status_code == 200


@pytest.mark.parametrize(
    ("body", "headers", "status", "needle"),
    [
        (b'{"payload": {}}', {}, 422, "topic"),
        (b'{"topic": "a.b"}', {}, 422, "payload"),
        (b'{"topic": "a.b", "payload": []}', {}, 422, "payload"),
        (b'{"topic": "a b!", "payload": {}}', {}, 422, "topic"),
        (b'{"topic": "a.b", "payload": {}, "priority": "urgent"}', {}, 422, "priority"),
        (b'{"topic": "a.b", "payload": {}, "surprise": 1}', {}, 422, "surprise"),
        (b'{"topic": "a.b", "payload": {}, "parent_event": "evt_missing"}', {}, 422, "parent_event"),
        (b'{"topic": "a.b", "payload": {}, "context_refs": ["nope"]}', {}, 422, "context_refs"),
        (b'{"topic": "a.b", "payload": {', {}, 400, "malformed JSON"),
        (b"topic=a.b", {"Content-Type": "application/x-www-form-urlencoded"}, 415, "application/json"),
        (b'[{"topic": "a.b", "payload": {}}]', {}, 422, "batch"),
    ],
)
async def test_bad_input(daemon: RunningDaemon, body: bytes, headers: dict[str, str], status: int, needle: str) -> None:
    sent_headers = {"Content-Type": "application/json", **headers}
    response = await daemon.client.post("/api/v1/events", content=body, headers=sent_headers)
    assert response.status_code == status, response.text
    assert needle in response.json()["detail"]
    assert (await daemon.client.get("/api/v1/events")).json()["events"] == []


async def test_oversize_payload(tmp_path: Path) -> None:
    async with running_daemon(tmp_path, {"bus": {"max_payload_bytes": 2048}}) as d:
        big = {"topic": "a.b", "payload": {"blob": "x" * 4096}}
        response = await d.client.post("/api/v1/events", json=big)
        assert response.status_code == 413 and "max_payload_bytes" in response.json()["detail"]
        huge = await d.client.post("/api/v1/events", json={"topic": "a.b", "payload": {"blob": "x" * 200_000}})
        assert huge.status_code == 413
        assert (await d.client.get("/api/v1/events")).json()["events"] == []


async def test_default_payload_cap_is_one_mebibyte(daemon: RunningDaemon) -> None:
    ok = await daemon.client.post("/api/v1/events", json={"topic": "a.b", "payload": {"b": "x" * 1_000_000}})
    assert ok.status_code == 201
    too_big = await daemon.client.post("/api/v1/events", json={"topic": "a.b", "payload": {"b": "x" * 1_050_000}})
    assert too_big.status_code == 413


async def test_websocket_handshake_guarded(daemon: RunningDaemon) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    url = daemon.base_url.replace("http", "ws") + "/ws"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url):
            pass
    assert refused.value.response.status_code == 403
    with pytest.raises(InvalidStatus):
        async with connect(url, additional_headers={"Origin": "http://evil.example", **daemon.client.headers}):
            pass


def test_binds_loopback_by_default() -> None:
    from aiventbus.config import Config

    assert Config().server.host == "127.0.0.1"
    assert Config().server.port == 8420


async def test_cli_like_client_without_token(daemon: RunningDaemon) -> None:
    async with httpx.AsyncClient(base_url=daemon.base_url) as raw:
        response = await raw.put("/api/v1/knowledge/x", json={"value": 1})
        assert response.status_code == 401

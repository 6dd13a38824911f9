"""An acknowledged event survives kill -9; graceful shutdown commits and exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from pathlib import Path

import httpx

from tests.support.daemon import free_port, start_daemon_process, stop_process, write_config
from tests.support.waiting import eventually


async def _publish_concurrently(base_url: str, headers: dict[str, str], total: int, publishers: int) -> list[str]:
    acknowledged: list[str] = []
    counter = iter(range(total))

    async def publisher(client: httpx.AsyncClient) -> None:
        for n in counter:
            response = await client.post("/api/v1/events", json={"topic": "durable.test", "payload": {"n": n}})
            assert response.status_code == 201, response.text
            acknowledged.append(response.json()["id"])

    limits = httpx.Limits(max_connections=publishers)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=30) as client:
        await asyncio.gather(*(publisher(client) for _ in range(publishers)))
    return acknowledged


async def test_acknowledged_events_survive_sigkill(tmp_path: Path) -> None:
    config_path = write_config(tmp_path, port=free_port())
    daemon = start_daemon_process(config_path)
    try:
        acknowledged = await _publish_concurrently(daemon.base_url, daemon.headers(), 5000, 32)
        os.killpg(daemon.process.pid, signal.SIGKILL)
        daemon.process.wait(10)
    finally:
        stop_process(daemon.process)
    assert len(acknowledged) == 5000

    restarted = start_daemon_process(config_path)
    try:
        async with httpx.AsyncClient() as client:

            async def router_settled() -> dict[str, int] | None:
                status = (await client.get(restarted.base_url + "/api/v1/system/status")).json()
                assert status["bus"]["events_stored"] >= 5000
                router: dict[str, int] = status["components"]["router"]
                return router if router["queued"] == 0 and router["unrouted"] == 0 else None

            # Whatever the kill left unrouted is routed now.
            router = await eventually(router_settled, timeout=60)
    finally:
        assert stop_process(restarted.process) == 0
    db = sqlite3.connect(tmp_path / "data" / "aiventbus.db")
    try:
        stored = {row[0] for row in db.execute("SELECT id FROM events WHERE topic = 'durable.test'")}
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT COUNT(*) FROM events WHERE status = 'pending'").fetchone()[0] == 0
        [(through, highest)] = db.execute("SELECT routed_through, (SELECT MAX(seq) FROM events) FROM router_state")
    finally:
        db.close()
    assert set(acknowledged) <= stored
    assert through == highest >= router["routed_through_seq"] >= 5000


async def test_sigterm_drains_and_exits_zero(tmp_path: Path) -> None:
    config_path = write_config(tmp_path, port=free_port())
    daemon = start_daemon_process(config_path)
    acknowledged = await _publish_concurrently(daemon.base_url, daemon.headers(), 300, 8)
    assert stop_process(daemon.process) == 0
    db = sqlite3.connect(tmp_path / "data" / "aiventbus.db")
    try:
        assert db.execute("SELECT COUNT(*) FROM events WHERE topic = 'durable.test'").fetchone()[0] == len(acknowledged)
    finally:
        db.close()


def test_bad_config_stops_startup_with_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "bad.yaml"
    bad.write_text("bus:\n  max_fan_out: lots\n")
    result = subprocess.run(
        [sys.executable, "-m", "aiventbus", "--config", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "bus.max_fan_out" in lines[0] and "integer" in lines[0]

    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("server:\n  prot: 1\n")
    result = subprocess.run(
        [sys.executable, "-m", "aiventbus", "--config", str(unknown)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "server.prot: unknown key" in result.stderr

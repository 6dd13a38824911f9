"""GET /api/v1/producers and `aibus producers`: every unavailable path shows its reason while the daemon runs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.daemon import running_daemon, start_daemon_process, stop_process, write_config
from tests.support.waiting import eventually

AIBUS = [sys.executable, "-c", "from aiventbus.cli.app import main; main()"]
TERMINAL_STATES = {"unavailable", "failed", "disabled"}


async def producers_by_name(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    response = await client.get("/api/v1/producers")
    assert response.status_code == 200, response.text
    return {item["name"]: item for item in response.json()["producers"]}


async def wait_settled(client: httpx.AsyncClient, names: set[str], timeout: float = 30) -> dict[str, dict[str, Any]]:
    """The producers report once each named producer has left `running` for a final state."""

    async def final() -> dict[str, dict[str, Any]] | None:
        report = await producers_by_name(client)
        return report if all(report[name]["state"] in TERMINAL_STATES for name in names) else None

    report: dict[str, dict[str, Any]] = await eventually(final, timeout=timeout, what=f"a final state of {names}")
    return report


async def test_unavailable_paths_show_reasons_and_the_daemon_keeps_working(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    not_a_socket = tmp_path / "not-a-bus"
    not_a_socket.write_text("plain file")
    overrides = {
        "producers": {
            "clipboard_enabled": True,
            "file_watcher_enabled": True,
            "file_watcher_paths": [str(tmp_path / "missing-folder")],
            "system_log_enabled": True,
            "system_log_command": [str(tmp_path / "no-such-journalctl"), "-f"],
            "dbus_enabled": True,
            "dbus_system_bus_address": f"unix:path={tmp_path / 'no-system-bus'}",
            "dbus_session_bus_address": f"unix:path={not_a_socket}",
            "terminal_monitor_enabled": True,
            "terminal_history_files": [str(tmp_path / "history")],
        }
    }
    async with running_daemon(tmp_path, overrides) as running:
        report = await wait_settled(
            running.client, {"clipboard", "file_watcher", "system_log", "desktop", "notifications"}
        )
        expected = {
            "clipboard": "no graphical session ($DISPLAY and $WAYLAND_DISPLAY unset)",
            "file_watcher": f"none of the watched folders exist: {tmp_path / 'missing-folder'}",
            "system_log": "no-such-journalctl not found",
            "desktop": f"no DBus system bus ({tmp_path / 'no-system-bus'} does not exist)",
            "notifications": f"cannot connect to DBus at unix:path={not_a_socket}",
        }
        for name, reason in expected.items():
            item = report[name]
            assert item["state"] == "unavailable", (name, item)
            assert reason in item["last_error"], (name, item["last_error"])
            assert item["fix"], f"{name} says how to fix it"
        assert report["terminal"]["state"] == "running"
        assert report["webhook"]["state"] == "disabled" and report["cron"]["state"] == "disabled"

        status = (await running.client.get("/api/v1/system/status")).json()
        assert status["status"] == "degraded"
        components = {problem["component"] for problem in status["problems"]}
        assert {f"producers.{name}" for name in expected} <= components

        published = await running.client.post("/api/v1/events", json={"topic": "user.note", "payload": {"x": 1}})
        assert published.status_code == 201, "the daemon keeps working with every producer unavailable"

        capabilities = {c["name"]: c for c in (await running.client.get("/api/v1/producers")).json()["capabilities"]}
        assert capabilities["app_lifecycle"] == {
            "name": "app_lifecycle",
            "available": False,
            "reason": "app lifecycle: not exposed on Linux desktops",
            "fix": "none (macOS only)",
            "backend": "",
        }
        assert capabilities["file_watching"]["available"] is True
        assert set(capabilities) >= {"clipboard", "system_log", "session_lock", "notifications_inbound", "terminal"}


async def test_a_display_that_cannot_be_opened_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPLAY", ":987")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    async with running_daemon(tmp_path, {"producers": {"clipboard_enabled": True}}) as running:
        report = await wait_settled(running.client, {"clipboard"})
        assert report["clipboard"]["state"] == "unavailable"
        assert "cannot open display ':987'" in report["clipboard"]["last_error"]


async def test_disabled_producers_report_their_capability(tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as running:
        report = await producers_by_name(running.client)
        assert set(report) == {
            "clipboard",
            "file_watcher",
            "system_log",
            "desktop",
            "notifications",
            "terminal",
            "webhook",
            "cron",
        }
        assert {item["state"] for item in report.values()} == {"disabled"}
        assert report["clipboard"]["source"] == "clipboard" and report["file_watcher"]["source"] == "file"
        status = (await running.client.get("/api/v1/system/status")).json()
        assert not [p for p in status["problems"] if p["component"].startswith("producers.")]


def test_cli_prints_states_and_reasons(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        {
            "producers": {
                "system_log_enabled": True,
                "system_log_command": [str(tmp_path / "no-such-journalctl")],
            }
        },
    )
    env = {k: v for k, v in os.environ.items() if k not in {"DISPLAY", "WAYLAND_DISPLAY"}}
    daemon = start_daemon_process(config, env=env)
    try:
        result = subprocess.run(
            [*AIBUS, "--config", str(config), "producers"],
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
        )
        assert result.returncode == 0, result.stderr
        assert "platform: linux" in result.stdout
        lines = result.stdout.splitlines()
        log_line = next(i for i, line in enumerate(lines) if line.startswith("system_log"))
        assert "unavailable" in lines[log_line]
        assert "no-such-journalctl not found -> fix producers.system_log_command" in lines[log_line + 1]
        hook = subprocess.run(
            [*AIBUS, "--config", str(config), "hook", "bash"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert hook.returncode == 0 and "__aibus_spool=" in hook.stdout
        state_dir = yaml.safe_load(config.read_text())["paths"]["state_dir"]
        assert f"{state_dir}/terminal-spool.log" in hook.stdout
        assert daemon.token not in hook.stdout, "the hook never carries the API token"
        bad = subprocess.run(
            [*AIBUS, "--config", str(config), "hook", "fish"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert bad.returncode == 1 and bad.stderr.strip() == "aibus: shell: no hook for 'fish' (choose bash or zsh)"
    finally:
        stop_process(daemon.process)


async def test_an_unavailable_producer_recovers_when_its_folder_appears(tmp_path: Path) -> None:
    folder = tmp_path / "later"
    overrides = {
        "producers": {
            "file_watcher_enabled": True,
            "file_watcher_paths": [str(folder)],
            "unavailable_recheck_seconds": 0.2,
        }
    }
    async with running_daemon(tmp_path, overrides) as running:
        report = await wait_settled(running.client, {"file_watcher"})
        assert report["file_watcher"]["state"] == "unavailable"
        live = running.daemon.hub.subscribe(["producer"])
        folder.mkdir()
        deadline = time.monotonic() + 30
        while (await producers_by_name(running.client))["file_watcher"]["state"] != "running":
            assert time.monotonic() < deadline, "the watcher did not recover"
            await asyncio.sleep(0.05)
        status = (await running.client.get("/api/v1/system/status")).json()
        assert "producers.file_watcher" not in {p["component"] for p in status["problems"]}
        messages = [live.queue.get_nowait() for _ in range(live.queue.qsize())]
        assert {"file_watcher"} == {m["data"]["name"] for m in messages}
        assert "running" in [m["data"]["state"] for m in messages], "state changes go out on the producer channel"

"""The system log from journalctl's JSON format, replayed from a recorded stream (the command is configurable)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aiventbus.producers.system_log import parse_log_line
from tests.support.daemon import running_daemon
from tests.support.desktop import EventCollector
from tests.support.waiting import eventually


def journal_entry(priority: int, unit: str, message: Any, pid: int) -> str:
    """One line as `journalctl -o json` prints it (every value a string; binary messages as byte arrays)."""
    return json.dumps(
        {
            "__REALTIME_TIMESTAMP": "1764579600123456",
            "PRIORITY": str(priority),
            "_SYSTEMD_UNIT": unit,
            "SYSLOG_IDENTIFIER": unit.split(".")[0],
            "MESSAGE": message,
            "_PID": str(pid),
            "_HOSTNAME": "box",
        }
    )


RECORDED = [
    journal_entry(3, "nginx.service", "upstream timed out (110: Connection timed out)", 812),
    "this line is not JSON",
    journal_entry(6, "cron.service", "session opened for user root", 77),
    journal_entry(4, "sshd.service", list(b"Failed password for admin from 10.0.0.9"), 4242),
    journal_entry(2, "kernel", "Out of memory: Killed process 999 (db) password=hunter2hunter2", 1),
]


@pytest.mark.parametrize(
    ("priority", "topic"),
    [("0", "log.emerg"), ("3", "log.err"), ("4", "log.warning"), ("7", "log.debug"), ("x", "log.info")],
)
def test_priority_names_the_topic(priority: str, topic: str) -> None:
    parsed = parse_log_line(json.dumps({"PRIORITY": priority, "MESSAGE": "m"}))
    assert parsed is not None and parsed[0] == topic


def test_unified_log_lines_are_understood() -> None:
    line = json.dumps(
        {
            "eventMessage": "Connection reset",
            "messageType": "Error",
            "processID": 311,
            "subsystem": "com.example.sync",
            "processImagePath": "/usr/libexec/syncd",
        }
    )
    assert parse_log_line(line) == (
        "log.err",
        {
            "unit": "com.example.sync",
            "identifier": "syncd",
            "message": "Connection reset",
            "pid": 311,
            "priority": 3,
            "timestamp": None,
        },
    )


def test_non_objects_are_not_events() -> None:
    assert parse_log_line("not json") is None
    assert parse_log_line("[1, 2]") is None


async def test_recorded_stream_becomes_log_events(tmp_path: Path) -> None:
    recorded = tmp_path / "recorded.jsonl"
    recorded.write_text("\n".join(RECORDED) + "\n")
    overrides = {
        "producers": {
            "system_log_enabled": True,
            "system_log_command": ["tail", "-n", "+1", "-f", str(recorded)],
            "rate_limit_per_second": 100,
            "rate_limit_burst": 100,
        }
    }
    collectors: list[EventCollector] = []
    # Subscribe before start: the producer replays the recording as soon as it runs.
    async with running_daemon(tmp_path, overrides, setup=lambda d: collectors.append(EventCollector(d.bus))) as running:
        [collector] = collectors
        events = await collector.wait_for(lambda e: e.topic.startswith("log."), count=4)
        by_unit = {e.payload["unit"]: e for e in events}
        assert by_unit["nginx.service"].topic == "log.err"
        assert by_unit["nginx.service"].payload["message"] == "upstream timed out (110: Connection timed out)"
        assert by_unit["nginx.service"].payload["pid"] == 812
        assert by_unit["nginx.service"].payload["timestamp"] == pytest.approx(1764579600.123456)
        assert by_unit["cron.service"].topic == "log.info"
        assert by_unit["sshd.service"].payload["message"] == "Failed password for admin from 10.0.0.9"
        assert by_unit["kernel"].topic == "log.crit"
        assert "hunter2hunter2" not in by_unit["kernel"].payload["message"]
        assert all(e.source == "system_log" and e.taint == ["system_log"] for e in events)

        with recorded.open("a") as handle:
            handle.write(journal_entry(3, "late.service", "written while following", 5) + "\n")
        [late] = await collector.wait_for(lambda e: e.payload.get("unit") == "late.service")
        assert late.topic == "log.err"
        report = {p["name"]: p for p in (await running.client.get("/api/v1/producers")).json()["producers"]}
        assert report["system_log"]["state"] == "running"
        assert report["system_log"]["details"]["unparsed"] == 1


async def test_a_dying_command_is_restarted_with_backoff(tmp_path: Path) -> None:
    recorded = tmp_path / "one.jsonl"
    recorded.write_text(journal_entry(3, "flaky.service", "boom", 9) + "\n")
    overrides = {
        "producers": {
            "system_log_enabled": True,
            "system_log_command": ["cat", str(recorded)],
            "rate_limit_per_second": 100,
            "rate_limit_burst": 100,
        }
    }
    collectors: list[EventCollector] = []
    # Subscribe before start: the producer replays the recording as soon as it runs.
    async with running_daemon(tmp_path, overrides, setup=lambda d: collectors.append(EventCollector(d.bus))) as running:
        [collector] = collectors
        await collector.wait_for(lambda e: e.payload.get("unit") == "flaky.service", count=2)
        producer = running.daemon.producers.get("system_log")
        assert producer is not None
        await eventually(lambda: producer.details()["restarts"] >= 1, timeout=20, what="a restart")
        assert producer.details()["last_exit"] == "cat exited with status 0"

"""aibus status | events | publish against a real daemon process; one line and exit 1 when it is down."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import aibus
from tests.support.daemon import DaemonProcess, free_port, write_config


def test_status_publish_and_events(daemon_process: DaemonProcess) -> None:
    config = daemon_process.config_path
    status = aibus(config, "status")
    assert status.returncode == 0, status.stderr
    assert "aiventbus" in status.stdout and ("ok" in status.stdout or "degraded" in status.stdout)

    published = aibus(config, "publish", "note.taken", "--payload", '{"text": "hello"}')
    assert published.returncode == 0, published.stderr
    event_id = published.stdout.split()[0]
    assert event_id.startswith("evt_")

    listed = aibus(config, "events", "--topic", "note.*", "--limit", "5")
    assert listed.returncode == 0 and event_id in listed.stdout and "hello" in listed.stdout

    as_json = aibus(config, "events", "--topic", "note.taken", "--json")
    assert json.loads(as_json.stdout)[0]["payload"] == {"text": "hello"}


def test_bad_payload_is_one_line(daemon_process: DaemonProcess) -> None:
    result = aibus(daemon_process.config_path, "publish", "a.b", "--payload", "{nope")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "--payload" in result.stderr
    bad_topic = aibus(daemon_process.config_path, "publish", "bad topic!")
    assert bad_topic.returncode == 1 and "topic" in bad_topic.stderr and "Traceback" not in bad_topic.stderr


def test_daemon_not_running(tmp_path: Path) -> None:
    config = write_config(tmp_path, port=free_port())
    token = tmp_path / "data" / "api-token"
    token.parent.mkdir(parents=True)
    token.write_text("x")
    for args in (["status"], ["events"], ["publish", "a.b"]):
        result = aibus(config, *args)
        assert result.returncode == 1
        assert "not running" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr


def test_no_token_yet(tmp_path: Path) -> None:
    config = write_config(tmp_path, port=free_port())
    result = aibus(config, "events")
    assert result.returncode == 1 and "token" in result.stderr and "Traceback" not in result.stderr

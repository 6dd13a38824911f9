"""Real inotify sees a file whose name is not UTF-8: the event is kept, its path escaped, the watcher runs on."""

from __future__ import annotations

import os
from pathlib import Path

from aiventbus.producers.files import FileWatcherProducer
from tests.support.daemon import running_daemon
from tests.support.desktop import EventCollector, until


async def test_non_utf8_file_name_becomes_an_escaped_event(tmp_path: Path) -> None:
    watched = tmp_path / "watched"
    watched.mkdir()
    overrides = {
        "producers": {
            "file_watcher_enabled": True,
            "file_watcher_paths": [str(watched)],
            "rate_limit_per_second": 100,
            "rate_limit_burst": 100,
        }
    }
    async with running_daemon(tmp_path, overrides) as running:
        collector = EventCollector(running.daemon.bus)
        producer = running.daemon.producers.get("file_watcher")
        assert isinstance(producer, FileWatcherProducer)
        await until(lambda: producer.watching, "the watcher")
        probe = watched / "probe.txt"
        while not collector.matching(lambda e: e.payload.get("path") == str(probe)):
            probe.write_text("probe")
            try:
                await collector.wait_for(lambda e: e.payload.get("path") == str(probe), timeout=1)
            except TimeoutError:
                continue

        raw = os.fsencode(watched) + b"/bad-\xff\xfe name.txt"
        with open(raw, "wb") as handle:
            handle.write(b"12345")
        shown = str(watched) + "/bad-\\xff\\xfe name.txt"
        [created] = await collector.wait_for(lambda e: e.topic == "file.created" and e.payload["path"] == shown)
        assert created.payload["name"] == "bad-\\xff\\xfe name.txt"
        assert created.payload["size"] == 5 and created.payload["type"] == "file"

        # The watcher is still running: a later, ordinary file is seen too.
        after = watched / "after.txt"
        after.write_text("x")
        await collector.wait_for(lambda e: e.topic == "file.created" and e.payload["path"] == str(after))
        os.unlink(raw)
        await collector.wait_for(lambda e: e.topic == "file.deleted" and e.payload["path"] == shown)

        # Every read of the stored events answers, with the escaped path.
        page = await running.client.get("/api/v1/events", params={"topic": "file.*"})
        assert page.status_code == 200, page.text
        assert shown in {event["payload"]["path"] for event in page.json()["events"]}
        detail = await running.client.get(f"/api/v1/events/{created.id}")
        assert detail.status_code == 200 and detail.json()["payload"]["path"] == shown
        report = {p["name"]: p for p in (await running.client.get("/api/v1/producers")).json()["producers"]}
        assert report["file_watcher"]["state"] == "running" and report["file_watcher"]["restarts"] == 0

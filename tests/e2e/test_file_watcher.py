"""A temp folder under inotify: create, modify, delete -> file.* events with path, size and type; ignore globs."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aiventbus.producers.files import FileWatcherProducer, is_ignored
from tests.support.daemon import RunningDaemon, running_daemon
from tests.support.desktop import EventCollector
from tests.support.waiting import eventually


@pytest.mark.parametrize(
    ("relative", "ignored"),
    [
        ("notes.swp", True),
        ("sub/dir/notes.swp", True),
        ("draft.txt~", True),
        ("repo/.git/objects/ab", True),
        (".git/HEAD", True),
        (".git", True),
        ("movie.mkv.part", True),
        ("report.pdf", False),
        ("gitlog.txt", False),
    ],
)
def test_ignore_globs(relative: str, ignored: bool) -> None:
    assert is_ignored(relative, ["*.swp", "*~", ".git/*", "*.part"]) is ignored


@asynccontextmanager
async def live_watcher(tmp_path: Path, paths: list[Path], **producers: Any) -> AsyncIterator[Watching]:
    """A daemon whose file watcher watches `paths` and has been seen to report a change in the first one."""
    watched = paths[0]
    watched.mkdir()
    settings = {"file_watcher_enabled": True, "file_watcher_paths": [str(path) for path in paths]}
    overrides = {"producers": {**settings, "rate_limit_per_second": 100, "rate_limit_burst": 100, **producers}}
    async with running_daemon(tmp_path, overrides) as running:
        collector = EventCollector(running.daemon.bus)
        producer = running.daemon.producers.get("file_watcher")
        assert isinstance(producer, FileWatcherProducer)
        await eventually(lambda: producer.watching, timeout=20, what="the watcher")
        # inotify watches are set up inside the watcher thread: prove it is live before the real steps.
        probe = watched / "probe.txt"
        while not collector.matching(lambda e: e.payload.get("path") == str(probe)):
            probe.write_text("probe")
            try:
                await collector.wait_for(lambda e: e.payload.get("path") == str(probe), timeout=1)
            except TimeoutError:
                continue
        yield Watching(running, collector, watched)


@dataclass
class Watching:
    running: RunningDaemon
    collector: EventCollector
    watched: Path


async def test_create_modify_delete_and_ignored_files(tmp_path: Path) -> None:
    paths = [tmp_path / "watched", tmp_path / "not-there"]
    async with live_watcher(tmp_path, paths, file_watcher_ignore=["*.swp", ".git/*"]) as live:
        running, collector, watched = live.running, live.collector, live.watched
        target = watched / "report.txt"
        (watched / "scratch.swp").write_text("ignored")
        (watched / ".git").mkdir()
        (watched / ".git" / "HEAD").write_text("ref: ignored")
        target.write_text("hello")
        [created] = await collector.wait_for(lambda e: e.topic == "file.created" and e.payload["path"] == str(target))
        assert created.payload["size"] == 5 and created.payload["type"] == "file"
        assert created.payload["name"] == "report.txt" and created.payload["mime"] == "text/plain"
        assert created.source == "file" and created.taint == ["file"]

        with target.open("a") as handle:
            handle.write(" world, now longer")
        modified = await collector.wait_for(
            lambda e: e.topic == "file.modified" and e.payload["path"] == str(target) and e.payload["size"] == 23
        )
        assert modified[-1].payload["type"] == "file"

        target.unlink()
        [deleted] = await collector.wait_for(lambda e: e.topic == "file.deleted" and e.payload["path"] == str(target))
        assert deleted.payload["size"] is None

        paths = {e.payload["path"] for e in collector.events if e.topic.startswith("file.")}
        assert not [p for p in paths if p.endswith(".swp") or "/.git" in p], paths
        report = {p["name"]: p for p in (await running.client.get("/api/v1/producers")).json()["producers"]}
        assert report["file_watcher"]["state"] == "running"
        assert report["file_watcher"]["details"]["missing"] == [str(tmp_path / "not-there")]


async def test_non_utf8_file_name_becomes_an_escaped_event(tmp_path: Path) -> None:
    """The event is kept with its path escaped, and the watcher runs on."""
    async with live_watcher(tmp_path, [tmp_path / "watched"]) as live:
        running, collector, watched = live.running, live.collector, live.watched
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

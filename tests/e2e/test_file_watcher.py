"""A temp folder under inotify: create, modify, delete -> file.* events with path, size and type; ignore globs."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiventbus.producers.files import FileWatcherProducer, is_ignored
from tests.support.daemon import running_daemon
from tests.support.desktop import EventCollector, until


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


async def test_create_modify_delete_and_ignored_files(tmp_path: Path) -> None:
    watched = tmp_path / "watched"
    watched.mkdir()
    overrides = {
        "producers": {
            "file_watcher_enabled": True,
            "file_watcher_paths": [str(watched), str(tmp_path / "not-there")],
            "file_watcher_ignore": ["*.swp", ".git/*"],
            "rate_limit_per_second": 100,
            "rate_limit_burst": 100,
        }
    }
    async with running_daemon(tmp_path, overrides) as running:
        collector = EventCollector(running.daemon.bus)
        producer = running.daemon.producers.get("file_watcher")
        assert isinstance(producer, FileWatcherProducer)
        await until(lambda: producer.watching, "the watcher")
        # inotify watches are set up inside the watcher thread: prove it is live before the real steps.
        probe = watched / "probe.txt"
        while not collector.matching(lambda e: e.payload.get("path") == str(probe)):
            probe.write_text("probe")
            try:
                await collector.wait_for(lambda e: e.payload.get("path") == str(probe), timeout=1)
            except TimeoutError:
                continue

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

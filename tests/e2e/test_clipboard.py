"""Clipboard under a real Xvfb with real xclip: a copy becomes clipboard.text (redacted); a flood is coalesced."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiventbus.producers.clipboard import ClipboardProducer
from tests.support.daemon import running_daemon
from tests.support.desktop import Display, EventCollector, require, topic_is
from tests.support.desktop import xvfb as xvfb  # the fixture
from tests.support.waiting import eventually

CLIPBOARD_ON = {"producers": {"clipboard_enabled": True, "clipboard_poll_interval_seconds": 0.1}}


@pytest.fixture
def display(xvfb: Display, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    require("xclip")
    monkeypatch.setenv("DISPLAY", xvfb.display)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    yield xvfb.display


def copy(text: str) -> None:
    """What a user's copy does: an X client takes the CLIPBOARD selection (xclip keeps serving it)."""
    subprocess.run(["xclip", "-selection", "clipboard", "-i"], input=text.encode(), check=True, timeout=10)


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize(
    ("change_events", "mode", "backend"),
    [(True, "change events", "xclip read on XFixes owner change"), (False, "poll", "xclip polling")],
)
async def test_copy_becomes_a_redacted_clipboard_event(
    tmp_path: Path, display: str, change_events: bool, mode: str, backend: str
) -> None:
    copy("before the daemon started")
    overrides = {"producers": {**CLIPBOARD_ON["producers"], "clipboard_x11_change_events": change_events}}
    async with running_daemon(tmp_path, overrides) as running:
        collector = EventCollector(running.daemon.bus)
        producer = running.daemon.producers.get("clipboard")
        assert isinstance(producer, ClipboardProducer)
        await eventually(lambda: producer.watching, timeout=20, what="the clipboard poller")
        secret = "sk-proj-" + "Q" * 40
        await asyncio.to_thread(copy, f"my key is {secret} keep it safe")
        [event] = await collector.wait_for(topic_is("clipboard.text"))
        assert event.payload["text"] == "my key is [REDACTED:api_key] keep it safe"
        assert event.payload["redacted"] == ["api_key"]
        assert event.source == "clipboard" and event.taint == ["clipboard"]
        stored = (await running.client.get("/api/v1/events", params={"topic": "clipboard.*"})).json()["events"]
        assert [e["id"] for e in stored] == [event.id], "the pre-existing clipboard is not an event"
        assert secret not in (await running.client.get(f"/api/v1/events/{event.id}")).text
        metrics = (await running.anonymous.get("/metrics")).text
        assert 'aiventbus_producer_events_emitted_total{producer="clipboard"} 1.0' in metrics
        report = {p["name"]: p for p in (await running.client.get("/api/v1/producers")).json()["producers"]}
        assert report["clipboard"]["state"] == "running"
        assert report["clipboard"]["capability"]["backend"] == backend
        assert report["clipboard"]["details"]["mode"] == mode


async def test_a_flood_is_coalesced_with_bounded_memory_and_a_responsive_api(tmp_path: Path, display: str) -> None:
    overrides = {"producers": {**CLIPBOARD_ON["producers"], "rate_limit_per_second": 1, "rate_limit_burst": 3}}
    async with running_daemon(tmp_path, overrides) as running:
        collector = EventCollector(running.daemon.bus)
        producer = running.daemon.producers.get("clipboard")
        assert isinstance(producer, ClipboardProducer)
        await eventually(lambda: producer.watching, timeout=20, what="the clipboard poller")
        outlet = running.daemon.producers.outlet("clipboard")
        final = "final value " + "z" * 100
        await asyncio.to_thread(copy, final)
        await collector.wait_for(lambda e: e.topic == "clipboard.text" and e.payload["text"] == final)
        before = rss_bytes()
        answered = 0

        async def poke_api() -> None:
            nonlocal answered
            while True:
                response = await running.client.get("/api/v1/system/status")
                assert response.status_code == 200
                answered += 1
                await asyncio.sleep(0)

        poker = asyncio.create_task(poke_api())
        seen_before = len(collector.events)
        # 10,000 distinct 10 KB clipboard values (100 MB if kept), fed to the producer the way its poller does;
        # the last equals what X holds, so the poller agrees with the flood's end.
        for i in range(9_999):
            producer.observe(f"copy number {i} " + "x" * 10_000, outlet)
            if i % 500 == 0:
                await asyncio.sleep(0)
        producer.observe(final, outlet)
        growth = rss_bytes() - before
        await outlet.flush()
        await eventually(lambda: answered >= 3, timeout=20, what="status answers during the flood")
        poker.cancel()
        await asyncio.gather(poker, return_exceptions=True)

        events = [e for e in collector.events[seen_before:] if e.topic == "clipboard.text"]
        assert 1 <= len(events) <= 20, f"{len(events)} events for a 10,000-change burst"
        assert events[-1].payload["text"] == final
        assert len(events) + sum(e.payload.get("coalesced", 0) for e in events) >= 10_000
        assert outlet.coalesced >= 9_980
        assert growth < 40 * 1024 * 1024, f"RSS grew by {growth / 1e6:.1f} MB"
        report = {p["name"]: p for p in (await running.client.get("/api/v1/producers")).json()["producers"]}
        assert report["clipboard"]["coalesced"] == outlet.coalesced and report["clipboard"]["pending"] == 0

        # A realistic subset through real xclip: rapid copies, the last one always arrives.
        for i in range(15):
            await asyncio.to_thread(copy, f"rapid copy {i}")
        await collector.wait_for(lambda e: e.topic == "clipboard.text" and e.payload["text"] == "rapid copy 14")

"""ProducerManager: builds the configured producers, checks their capabilities, supervises and reports them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiventbus.config import ProducersConfig
from aiventbus.platform import Capability, CapabilityUnavailable, Platform
from aiventbus.producers.base import Producer
from aiventbus.producers.clipboard import ClipboardProducer
from aiventbus.producers.cron import CronProducer
from aiventbus.producers.desktop import SessionLockProducer
from aiventbus.producers.files import FileWatcherProducer
from aiventbus.producers.notifications import NotificationsProducer
from aiventbus.producers.outlet import Outlet
from aiventbus.producers.system_log import SystemLogProducer
from aiventbus.producers.terminal import TerminalProducer
from aiventbus.producers.webhook import WebhookProducer
from aiventbus.records.events import Event, EventIn
from aiventbus.service import LiveFeed, Problem
from aiventbus.telemetry import Metrics

log = logging.getLogger(__name__)
Publish = Callable[[EventIn], Awaitable[Event]]
MAX_RESTART_BACKOFF = 60.0
BUILT_IN = Capability("built_in", True, backend="needs nothing from the OS")


def spool_path(config: ProducersConfig, state_dir: Path) -> Path:
    """Where the preexec hook appends and the terminal producer reads."""
    return (
        Path(config.terminal_spool_file).expanduser()
        if config.terminal_spool_file
        else state_dir / "terminal-spool.log"
    )


def build_producers(
    config: ProducersConfig,
    platform: Platform,
    state_dir: Path,
    clock: Callable[[], float] = time.time,
) -> list[tuple[Producer, bool]]:
    """Every producer with whether the config switches it on."""
    system_bus, session_bus = platform.bus_addresses()
    return [
        (
            ClipboardProducer(platform, config.clipboard_poll_interval_seconds, config.clipboard_max_chars),
            config.clipboard_enabled,
        ),
        (FileWatcherProducer(config.file_watcher_paths, config.file_watcher_ignore), config.file_watcher_enabled),
        (SystemLogProducer(platform.system_log_command()), config.system_log_enabled),
        (SessionLockProducer(system_bus), config.dbus_enabled),
        (NotificationsProducer(session_bus), config.dbus_enabled and config.notifications_enabled),
        (
            TerminalProducer(
                config.terminal_history_files, spool_path(config, state_dir), config.terminal_poll_interval_seconds
            ),
            config.terminal_monitor_enabled,
        ),
        (WebhookProducer(config.webhooks, config.webhook_max_body_bytes), bool(config.webhooks)),
        (CronProducer(config.cron, clock=clock), bool(config.cron)),
    ]


@dataclass
class Runner:
    """One producer's supervision state."""

    producer: Producer
    enabled: bool
    outlet: Outlet
    state: str = "disabled"
    capability: Capability = BUILT_IN
    last_error: str = ""
    fix: str = ""
    restarts: int = 0
    task: asyncio.Task[None] | None = None


class ProducerManager:
    """Starts after every other service (producers feed a pipeline that must be ready) and stops first."""

    name = "producers"

    def __init__(
        self,
        config: ProducersConfig,
        publish: Publish,
        metrics: Metrics,
        platform: Platform,
        state_dir: Path,
        hub: LiveFeed | None = None,
        clock: Callable[[], float] = time.time,
        producers: list[tuple[Producer, bool]] | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.platform = platform
        self.hub = hub
        built = producers if producers is not None else build_producers(config, platform, state_dir, clock)
        self.runners: dict[str, Runner] = {}
        for producer, enabled in built:
            outlet = Outlet(
                producer.name,
                publish,
                config.rate_limit_per_second,
                config.rate_limit_burst,
                config.max_pending_per_producer,
                on_published=self._counter(producer.name),
            )
            outlet.source = producer.source
            self.runners[producer.name] = Runner(producer, enabled, outlet)

    def _counter(self, name: str) -> Callable[[Event], None]:
        counter = self.metrics.producer_events_emitted.labels(name)
        return lambda _event: counter.inc()

    def get(self, name: str) -> Producer | None:
        runner = self.runners.get(name)
        return runner.producer if runner is not None else None

    def outlet(self, name: str) -> Outlet:
        return self.runners[name].outlet

    async def start(self) -> None:
        for runner in self.runners.values():
            if not runner.enabled:
                runner.state = "disabled"
                continue
            if not self._check(runner):
                self._set(runner, "unavailable", runner.capability.reason, runner.capability.fix)
            runner.task = asyncio.create_task(self._supervise(runner), name=f"producer:{runner.producer.name}")

    def _check(self, runner: Runner) -> bool:
        name = runner.producer.capability
        runner.capability = self.platform.capability(name) if name else BUILT_IN
        return runner.capability.available

    async def stop(self) -> None:
        tasks = [runner.task for runner in self.runners.values() if runner.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for runner in self.runners.values():
            await runner.outlet.close()
            if runner.state == "running":
                runner.state = "stopped"

    async def _supervise(self, runner: Runner) -> None:
        """Run the producer; restart it with backoff when it fails, re-check it now and then when unavailable."""
        backoff = 1.0
        recheck = self.config.unavailable_recheck_seconds
        while True:
            if runner.state == "unavailable":
                await asyncio.sleep(recheck)
                if not self._check(runner):
                    self._set(runner, "unavailable", runner.capability.reason, runner.capability.fix)
                    continue
            self._set(runner, "running", runner.last_error, "")
            started = time.monotonic()
            try:
                await runner.producer.run(runner.outlet)
                error_text = "stopped on its own"
            except CapabilityUnavailable as error:
                self._set(runner, "unavailable", error.reason, error.fix)
                continue
            except asyncio.CancelledError:
                raise
            except Exception as error:
                error_text = f"{type(error).__name__}: {error}"
                log.warning("producer %s failed: %s", runner.producer.name, error_text)
            if time.monotonic() - started > 300:
                backoff = 1.0
            runner.restarts += 1
            self._set(runner, "failed", f"{error_text} (restart in {backoff:g}s)", "")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_RESTART_BACKOFF)

    def _set(self, runner: Runner, state: str, error: str, fix: str) -> None:
        changed = runner.state != state
        runner.state, runner.last_error, runner.fix = state, error, fix
        if changed and self.hub is not None:
            self.hub.publish("producer", self.describe(runner))

    # -- reports -------------------------------------------------------------------------------

    def describe(self, runner: Runner) -> dict[str, Any]:
        outlet = runner.outlet
        producer = runner.producer
        return {
            "name": producer.name,
            "source": producer.source,
            "enabled": runner.enabled,
            "state": runner.state,
            "capability": runner.capability.to_api()
            if runner.enabled or not producer.capability
            else self.platform.capability(producer.capability).to_api(),
            "events_emitted": outlet.emitted,
            "coalesced": outlet.coalesced,
            "pending": len(outlet.queue),
            "rate_limited": outlet.rejected,
            "publish_failures": outlet.failed,
            "last_event_at": outlet.last_event_at,
            "last_error": runner.last_error or outlet.last_error,
            "fix": runner.fix,
            "restarts": runner.restarts,
            "details": producer.details(),
        }

    def report(self) -> list[dict[str, Any]]:
        return [self.describe(runner) for runner in self.runners.values()]

    def capabilities(self) -> list[dict[str, str | bool]]:
        return [capability.to_api() for capability in self.platform.capabilities()]

    def problems(self) -> list[Problem]:

        return [
            Problem(f"producers.{runner.producer.name}", f"{runner.state}: {runner.last_error}", runner.fix)
            for runner in self.runners.values()
            if runner.enabled and runner.state in {"unavailable", "failed"}
        ]

    def status(self) -> dict[str, Any]:
        return {runner.producer.name: runner.state for runner in self.runners.values()}

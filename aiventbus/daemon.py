"""The daemon: builds every component, owns every background task, and runs start -> serve -> stop."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import os
import platform
import signal
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from fastapi import APIRouter
from starlette.types import ASGIApp

from aiventbus import __version__
from aiventbus.actions.mcp import McpService
from aiventbus.config import Config
from aiventbus.core.agent_registry import AgentRegistry
from aiventbus.core.agent_run import AgentRunner
from aiventbus.core.bus import EventBus
from aiventbus.core.executor import Executor
from aiventbus.core.hub import Hub
from aiventbus.core.router import Router
from aiventbus.core.scheduler import Scheduler
from aiventbus.core.wiring import build_distiller, build_recall
from aiventbus.errors import AiventbusError
from aiventbus.llm.registry import LLMRegistry, Target
from aiventbus.platform import current as current_platform
from aiventbus.platform.base import Platform
from aiventbus.platform.lock import DataDirLock
from aiventbus.producers.registry import ProducerManager
from aiventbus.records.events import Event
from aiventbus.service import Problem, Service
from aiventbus.store.agents import AgentTable
from aiventbus.store.assignments import AssignmentTable
from aiventbus.store.database import Database
from aiventbus.store.events import EventQueries
from aiventbus.store.token import load_or_create_token
from aiventbus.telemetry import Metrics

log = logging.getLogger(__name__)
SETTLED_TURNS = 3  # loop turns in a row the pipeline must be idle to count as settled
SETTLE_PAUSE_SECONDS = 0.005  # between checks while work is still moving


class ListenFailed(AiventbusError):
    """The configured address cannot be bound (port in use, no such host...)."""

    def __init__(self, host: str, port: int, reason: str, hint: str) -> None:
        super().__init__(f"cannot listen on {host}:{port}: {reason}; {hint}", host=host, port=port)


def port_hint(config_source: str | None) -> str:
    """How to pick another port, naming the config file in use when there is one."""
    where = config_source or "the config file (see the README's Configuration)"
    return f"choose another port with --port N, or server.port in {where}"


def bind_listener(host: str, port: int, config_source: str | None = None) -> socket.socket:
    """Bind the API's socket now, so a taken port is reported before anything starts (uvicorn serves on it)."""
    # As uvicorn binds: IPv6 for an address with a colon, else IPv4 (so "localhost" is 127.0.0.1).
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
    except socket.gaierror as error:
        sock.close()
        raise ListenFailed(host, port, f"unknown host ({error.strerror})", "fix server.host or --host") from None
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise ListenFailed(host, port, "the port is already in use", port_hint(config_source)) from None
        raise ListenFailed(host, port, error.strerror or str(error), port_hint(config_source)) from None
    sock.set_inheritable(False)
    return sock


class Daemon:
    def __init__(self, config: Config, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.metrics = Metrics()
        self.db = Database(config.db_path, config.bus.synchronous, config.bus.max_batch_events)
        trusted = frozenset(config.policy.trusted_sources)
        self.bus = EventBus(self.db, config.bus, self.metrics, clock=clock, trusted_sources=trusted)
        self.hub = Hub()
        self.token = ""
        self.services: list[Service] = []
        self.routers: list[APIRouter] = []
        self.started_at = 0.0
        self.server: uvicorn.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopped = False
        self._exit_requested = False
        self.lock = DataDirLock(config.data_dir)
        self._listener: socket.socket | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Lock the data dir, bind the port, open the store, create the token, build and start every component.
        The lock comes first: a second daemon on the same data dir is told so, not that the port is taken."""
        self.config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.lock.acquire()
        try:
            server = self.config.server
            self._listener = bind_listener(server.host, server.port, self.config.source_path)
        except BaseException:
            self.lock.release()
            raise
        self.token = load_or_create_token(self.config.token_path)
        await self.db.open()
        self._build()
        for service in self.services:
            await service.start()
        self.started_at = time.time()

    def _build(self) -> None:
        """Wire the pipeline in order, each part given what it calls through its constructor; each stage is kept as
        an attribute and, if it has a lifecycle, a service (started in this order, stopped in reverse)."""
        self.bus.subscribe(self._forward_to_hub)
        # LLM first: the memory distiller, the context engine and the agents all call models through it.
        self.llm = LLMRegistry(self.config, self.metrics, clock=self.clock, users=self._llm_targets_in_use)
        # Knowledge and long-term memory, and the context engine that reads them into prompts.
        secrets = lambda: (self.token,)  # noqa: E731 - the token is read when the daemon starts, after wiring
        recall = build_recall(self.config, self.db, self.clock, self.llm.provider, secrets)
        self.knowledge, self.memory, self.context = recall.knowledge, recall.memory, recall.context
        platform = current_platform(self.config.producers)
        self._build_executor(platform, secrets)
        self._build_agents()
        self.services += [
            self.llm,
            self.knowledge,
            self.memory,
            self.distiller,
            self.executor,
            self.mcp,
            self.agents,
            self.scheduler,
            self.router,
        ]
        # Producers last: they feed a pipeline that must be ready, start after every other service and stop first.
        self.producers = ProducerManager(
            self.config.producers,
            self.bus.publish,
            self.metrics,
            platform,  # the executor's: one sandbox probe serves both reports
            self.config.state_dir,
            hub=self.hub,
            clock=self.clock,
        )
        self.services.append(self.producers)

    def _build_executor(self, platform: Platform, secrets: Callable[[], tuple[str, ...]]) -> None:
        """Executor: policy-gated actions, approvals, backups, tool backends (+ the MCP servers as backends)."""
        self.executor = Executor(
            self.config,
            self.db,
            self.bus,
            self.hub,
            self.metrics,
            knowledge=self.knowledge,
            platform=lambda: platform,
            clock=self.clock,
            daemon_port=lambda: self.bound_port,
            secrets=secrets,
            sandbox=platform.sandbox,
        )
        self.mcp = McpService(self.config.tools.mcp_servers, self.executor.tool_registry)

    def _build_agents(self) -> None:
        """Agents, routing rules and lanes: event -> rules/classifier -> assignments -> scheduler -> agent run; and
        the distiller, which makes its model calls in the scheduler's ambient lane."""
        self.agents = AgentRegistry(
            AgentTable(self.db), self.config.ollama.default_model, clock=self.clock, checker=self.llm
        )
        assignments = AssignmentTable(self.db)
        runner = AgentRunner(
            registry=self.agents,
            bus=self.bus,
            table=assignments,
            llm=self.llm,
            context=self.context,
            executor=self.executor,
            hub=self.hub,
            metrics=self.metrics,
            ollama=self.config.ollama,
            clock=self.clock,
        )
        self.scheduler = Scheduler(
            assignments,
            self.config.lanes,
            self.config.agents,
            self.metrics,
            self.hub,
            runner=runner,
            clock=self.clock,
            depth_sample_interval_seconds=self.config.telemetry.queue_depth_sample_interval_seconds,
            report=self.bus.publish_system,
        )
        self.distiller = build_distiller(
            self.config, self.db, self.memory, self.clock, self.llm.provider, self.scheduler.run_ambient
        )
        self.bus.subscribe(self.distiller.on_event)
        self.router = Router(
            db=self.db,
            bus=self.bus,
            registry=self.agents,
            scheduler=self.scheduler,
            lanes=self.config.lanes,
            classifier=self.config.classifier,
            ollama=self.config.ollama,
            llm=self.llm,
            metrics=self.metrics,
            hub=self.hub,
            clock=self.clock,
        )

    def _forward_to_hub(self, event: Event) -> None:
        if self.hub.client_count:
            self.hub.publish("event", event.model_dump(mode="json"), topic=event.topic)

    def api_routers(self) -> list[APIRouter]:
        return list(self.routers)

    def idle(self) -> bool:
        """Nothing the pipeline was given is still moving: no publish in flight, nothing left to route, no work
        running, ready or waiting on a retry timer."""
        return self.bus.idle() and self.router.idle() and self.scheduler.idle()

    async def settled(self, timeout: float = 60.0) -> None:
        """Wait until everything triggered so far has settled, chain reactions included (like a worker's burst
        mode: tests await this instead of polling for each effect). Not waited for: what only the outside world
        can move on (work parked on an unreachable model server, producers, the distiller's periodic batches).
        Idle must hold across a few turns of the loop, so callbacks already scheduled (a commit's notice, a
        retry's release) have run and found nothing new."""
        async with asyncio.timeout(timeout):
            quiet_turns = 0
            while quiet_turns < SETTLED_TURNS:
                await asyncio.sleep(0 if quiet_turns else SETTLE_PAUSE_SECONDS)
                quiet_turns = quiet_turns + 1 if self.idle() else 0

    def spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        """A background task the daemon keeps and cancels on stop."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def serve(self, app: ASGIApp, install_signal_handlers: bool = False) -> None:
        """Serve `app` (the API the caller built on this daemon) on the socket bound at start."""
        assert self.started_at, "start() first"
        server_config = uvicorn.Config(
            app,
            host=self.config.server.host,
            port=self.config.server.port,
            loop="none",
            http="httptools",
            ws="websockets-sansio",
            lifespan="off",
            access_log=False,
            log_level="warning",
            timeout_graceful_shutdown=10,
        )
        self.server = _QuietServer(server_config)
        self.server.announce = self._announce
        if install_signal_handlers:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.request_exit)
        sockets = [self._listener] if self._listener is not None else None
        # Everything built so far (the pipeline and the app) lives as long as the daemon: keep it out of the
        # collector's full sweeps (tens of milliseconds of tail latency otherwise). stop() gives it back.
        gc.collect()
        gc.freeze()
        await self.server.serve(sockets=sockets)

    def _announce(self) -> None:
        host = self.config.server.host
        shown = f"[{host.strip('[]')}]" if ":" in host else host
        log.info("aiventbus %s listening on http://%s:%s", __version__, shown, self.bound_port)

    def request_exit(self) -> None:
        """The first SIGINT/SIGTERM stops gracefully (drain, commit, close); a second one exits at once: whatever the
        bus acknowledged is already committed, so nothing accepted is lost."""
        if self._exit_requested:
            log.warning("second stop signal: exiting now, without waiting for work in progress")
            logging.shutdown()
            os._exit(130)
        self._exit_requested = True
        if self.server is not None:
            self.server.should_exit = True

    @property
    def bound_port(self) -> int | None:
        if self.server is None or not self.server.servers:
            return None
        for server in self.server.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return None

    async def stop(self) -> None:
        """Stop intake, let components drain, commit what is pending, close the store."""
        if self._stopped:
            return
        self._stopped = True
        self.bus.stop_intake()
        for service in reversed(self.services):
            try:
                await service.stop()
            except Exception:
                log.exception("stopping %s failed", service.name)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.db.close()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self.lock.release()
        gc.unfreeze()

    def _llm_targets_in_use(self) -> list[Target]:
        """Enabled agents' models, the classifier's when on, and the distiller's while there are agents to distil."""
        found = [self.llm.target(a.provider, a.base_url, a.model) for a in self.agents.all() if a.enabled]
        if self.config.classifier.enabled:
            found.append(
                self.llm.target(
                    self.config.classifier.provider, self.config.classifier.base_url, self.config.classifier.model
                )
            )
        memory = self.config.memory
        if memory.distill_enabled and found:
            model = memory.distill_model or self.config.ollama.default_model
            found.append(self.llm.target(memory.llm_provider, memory.llm_base_url, model))
        return found

    # -- status --------------------------------------------------------------------------------

    def problems(self) -> list[Problem]:
        found: list[Problem] = []
        for service in self.services:
            report = getattr(service, "problems", None)
            if callable(report):
                found.extend(report())
        return found

    async def status(self) -> dict[str, Any]:
        problems = self.problems()
        components: dict[str, Any] = {}
        for service in self.services:
            describe = getattr(service, "status", None)
            if callable(describe):
                result = describe()
                components[service.name] = await result if asyncio.iscoroutine(result) else result
        last_seq = await EventQueries(self.db).highest_seq()
        return {
            "status": "degraded" if problems else "ok",
            "version": __version__,
            "platform": platform.system().lower(),
            "pid": os.getpid(),
            "uptime_seconds": round(time.time() - self.started_at, 3) if self.started_at else 0.0,
            "bus": {
                "events_stored": last_seq,
                "commits": self.db.commits,
                "subscriber_failures": self.bus.subscriber_failures,
            },
            "problems": [problem.to_api() for problem in problems],
            "components": components,
        }


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal capture (the daemon decides how to shut down), announcing once it serves."""

    announce: Callable[[], None] | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.announce is not None:
            self.announce()

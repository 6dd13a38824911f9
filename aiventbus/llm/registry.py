"""One provider per (kind, base_url), scheduled through the server's slots; health checks with a short cache;
outage tracking per (server, model)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiventbus.config import Config
from aiventbus.errors import ValidationFailed
from aiventbus.llm.base import ChatRequest, ChatResult, LLMProvider, ModelCheck, TokenCallback, count_tokens
from aiventbus.llm.ollama import OllamaProvider
from aiventbus.llm.openai_compat import OpenAICompatProvider, api_root
from aiventbus.llm.server_info import ServerInfo
from aiventbus.llm.slots import ServerSlots, slot_count
from aiventbus.service import Problem
from aiventbus.telemetry import Metrics

log = logging.getLogger(__name__)

KINDS: tuple[str, ...] = ("ollama", "openai")
CHECK_CACHE_SECONDS = 5.0
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0

Sleep = Callable[[float], Awaitable[Any]]
ProviderFactory = Callable[[str, str], LLMProvider]


@dataclass(frozen=True)
class Target:
    """A model on a server: what an agent, the classifier or the distiller calls."""

    kind: str
    base_url: str
    model: str

    def describe(self) -> str:
        return f"{self.model} at {self.base_url}"


@dataclass
class _Health:
    check: ModelCheck | None = None
    checked_at: float | None = None
    failing: bool = False
    problem: str = ""
    fix: str = ""


class _Scheduled:
    """A provider as one lane sees it: every request waits for a slot of its server."""

    def __init__(self, registry: LLMRegistry, key: tuple[str, str], lane: str) -> None:
        self._registry = registry
        self._key = key
        self.kind, self.base_url = key
        self.lane = lane

    async def chat(self, request: ChatRequest, on_token: TokenCallback | None = None) -> ChatResult:
        inner = self._registry._provider(self._key)
        async with self._registry.slots(*self._key).hold(self.lane):
            return await inner.chat(request, on_token)

    async def check(self, model: str) -> ModelCheck:
        return await self._registry.check(self.kind, self.base_url, model)

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        inner = self._registry._provider(self._key)
        async with self._registry.slots(*self._key).hold(self.lane):
            return await inner.embed(model, texts)

    async def count_tokens(self, model: str, text: str) -> int | None:
        inner = self._registry._provider(self._key)
        async with self._registry.slots(*self._key).hold(self.lane):
            return await count_tokens(inner, model, text)

    async def close(self) -> None:
        """Close the server's connections (shared by every lane; reopened on the next request)."""
        await self._registry._close_provider(self._key)


def server_info_of(provider: LLMProvider) -> ServerInfo | None:
    """What the provider learnt about its server (None for providers that do not probe, e.g. test stand-ins)."""
    info = getattr(provider, "server_info", None)
    return info if isinstance(info, ServerInfo) else None


def backoff_delays(first: float = BACKOFF_FIRST_SECONDS, cap: float = BACKOFF_MAX_SECONDS) -> Callable[[int], float]:
    """attempt -> delay: 1, 2, 4, ... capped at 30 s."""
    return lambda attempt: min(cap, first * (2**attempt))


class LLMRegistry:
    """The daemon's `llm` service: providers, model checks, and which (server, model) pairs are failing."""

    name = "llm"

    def __init__(
        self,
        config: Config,
        metrics: Metrics,
        clock: Callable[[], float] = time.monotonic,
        *,
        sleep: Sleep = asyncio.sleep,
        factory: ProviderFactory | None = None,
        users: Callable[[], Iterable[Target]] | None = None,
    ) -> None:
        """`users`: the targets something uses (enabled agents, the classifier...); None: every watched one."""
        self.config = config
        self.metrics = metrics
        self._clock = clock
        self._sleep = sleep
        self._factory = factory or self._make_provider
        self._providers: dict[tuple[str, str], LLMProvider] = {}
        self._views: dict[tuple[str, str, str], _Scheduled] = {}
        self._slots: dict[tuple[str, str], ServerSlots] = {}
        self.users = users
        self._health: dict[Target, _Health] = {}
        self._check_locks: dict[Target, asyncio.Lock] = {}
        self._startup: asyncio.Task[None] | None = None
        self._first_checks: dict[Target, asyncio.Task[Any]] = {}
        self._configured: set[Target] = set()

    # -- providers -----------------------------------------------------------------------------

    def provider(self, kind: str, base_url: str | None = None, lane: str = "ambient") -> LLMProvider:
        """The provider for `kind` ("ollama" | "openai") at `base_url` (None: ollama.base_url), its requests
        scheduled in `lane` (interactive, critical, ambient, background) through the server's slots."""
        key = self._key(kind, base_url)
        view = self._views.get((*key, lane))
        if view is None:
            view = self._views[(*key, lane)] = _Scheduled(self, key, lane)
        return view

    def _provider(self, key: tuple[str, str]) -> LLMProvider:
        found = self._providers.get(key)
        if found is None:
            found = self._providers[key] = self._factory(*key)
        return found

    async def _close_provider(self, key: tuple[str, str]) -> None:
        provider = self._providers.pop(key, None)
        if provider is not None:
            await provider.close()

    def slots(self, kind: str, base_url: str | None = None) -> ServerSlots:
        """The request slots of one server (`llm.server_slots`, or what the server reports)."""
        key = self._key(kind, base_url)
        found = self._slots.get(key)
        if found is None:
            found = self._slots[key] = ServerSlots(self._slot_count(key))
        return found

    def _slot_count(self, key: tuple[str, str]) -> int:
        info = server_info_of(self._providers[key]) if key in self._providers else None
        settings = self.config.llm
        return slot_count(key[1], settings.server_slots_by_url, info.slots if info else None, settings.server_slots)

    def target(self, kind: str, base_url: str | None, model: str) -> Target:
        return Target(*self._key(kind, base_url), model)

    def default_target(self) -> Target:
        return self.target("ollama", None, self.config.ollama.default_model)

    def _key(self, kind: str, base_url: str | None) -> tuple[str, str]:
        if kind not in KINDS:
            raise ValidationFailed("provider", f"must be one of {', '.join(KINDS)} (got {kind!r})")
        url = (base_url or self.config.ollama.base_url).rstrip("/")
        return kind, api_root(url) if kind == "openai" else url

    def _make_provider(self, kind: str, base_url: str) -> LLMProvider:
        timeout = self.config.ollama.request_timeout_seconds
        if kind == "ollama":
            return OllamaProvider(base_url, request_timeout_seconds=timeout, keep_alive=self.config.ollama.keep_alive)
        return OpenAICompatProvider(base_url, request_timeout_seconds=timeout)

    # -- health --------------------------------------------------------------------------------

    def watch(self, kind: str, base_url: str | None, model: str) -> Target:
        """Mark a (server, model) as in use, so its failures show in problems()."""
        target = self.target(kind, base_url, model)
        self._health.setdefault(target, _Health())
        return target

    async def check(self, kind: str, base_url: str | None, model: str, *, fresh: bool = False) -> ModelCheck:
        """The server's answer about `model`, cached for a few seconds (`fresh` skips the cache). A check never
        cuts a running answer: while every slot of the server is busy the last answer stands, else it waits."""
        target = self.watch(kind, base_url, model)
        health = self._health[target]
        lock = self._check_locks.setdefault(target, asyncio.Lock())
        slots = self.slots(target.kind, target.base_url)
        async with lock:
            now = self._clock()
            fresh_enough = health.checked_at is not None and now - health.checked_at < CHECK_CACHE_SECONDS
            if health.check is not None and ((not fresh and fresh_enough) or slots.full):
                return health.check
            key = (target.kind, target.base_url)
            async with slots.hold("check"):
                result = await self._provider(key).check(model)
            health.check, health.checked_at = result, self._clock()
            slots.resize(self._slot_count(key))
        if result.ok:
            self.note_success(kind, base_url, model)
        else:
            self.note_failure(kind, base_url, model, result.problem, result.fix)
        return result

    def note_failure(self, kind: str, base_url: str | None, model: str, problem: str, fix: str = "") -> bool:
        """Record a failed call or check; True when this starts an outage (publish system.llm_unavailable)."""
        target = self.target(kind, base_url, model)
        health = self._health.setdefault(target, _Health())
        started = not health.failing
        health.failing, health.problem, health.fix = True, problem, fix
        if started:
            # A default nothing uses yet (a fresh install without Ollama) is worth a note, not a warning.
            level = logging.WARNING if target in self._in_use() else logging.INFO
            log.log(level, "LLM unavailable: %s (%s)", problem, fix)
        return started

    def note_success(self, kind: str, base_url: str | None, model: str) -> bool:
        """Record a good call or check; True when this ends an outage (publish system.llm_recovered)."""
        health = self._health.setdefault(self.target(kind, base_url, model), _Health())
        ended = health.failing
        health.failing, health.problem, health.fix = False, "", ""
        if ended:
            log.info("LLM recovered: %s at %s", model, base_url or self.config.ollama.base_url)
        return ended

    def is_failing(self, kind: str, base_url: str | None, model: str) -> bool:
        health = self._health.get(self.target(kind, base_url, model))
        return bool(health and health.failing)

    def context_tokens(self, kind: str, base_url: str | None, model: str) -> int | None:
        """The context window the server reported at the last good check (or its probe), if any."""
        target = self.target(kind, base_url, model)
        health = self._health.get(target)
        if health and health.check and health.check.ok and health.check.context_tokens:
            return health.check.context_tokens
        provider = self._providers.get((target.kind, target.base_url))
        info = server_info_of(provider) if provider is not None else None
        return info.context_tokens if info is not None else None

    async def wait_until_available(self, kind: str, base_url: str | None, model: str) -> ModelCheck:
        """Re-check with backoff (1 s, 2 s, ... 30 s) until the server has the model; cancellable."""
        delay_for = backoff_delays()
        attempt = 0
        while True:
            result = await self.check(kind, base_url, model, fresh=True)
            if result.ok:
                return result
            await self._sleep(delay_for(attempt))
            attempt += 1

    def problems(self) -> list[Problem]:

        used = self._in_use()
        return [
            Problem("llm", health.problem or f"{target.describe()} is unavailable", health.fix)
            for target, health in sorted(self._health.items(), key=lambda item: repr(item[0]))
            if health.failing and target in used
        ]

    def _in_use(self) -> set[Target]:
        """Targets whose failure is a problem: those something uses (all watched ones until the daemon says)."""
        if self.users is None:
            return set(self._health)
        return {self.target(t.kind, t.base_url, t.model) for t in self.users()}

    def status(self) -> dict[str, Any]:
        """The targets in use now plus the configured defaults (all watched ones until the daemon says which), as
        of this call: an agent's old model is gone after the change, a new one shows (ok: null) while its first
        check runs."""
        used = self._in_use()
        shown = used | self._configured if self.users is not None else set(self._health)
        self._check_unchecked(shown)
        servers = []
        for key in sorted(set(self._providers) | set(self._slots)):
            info = server_info_of(self._providers[key]) if key in self._providers else None
            servers.append(
                {
                    "provider": key[0],
                    "base_url": key[1],
                    **(info.describe() if info else {"flavour": None, "dialect": None, "context_tokens": None}),
                    **self.slots(*key).status(),
                }
            )
        targets = []
        for target in sorted(shown, key=repr):
            health = self._health.get(target, _Health())
            targets.append(
                {
                    "provider": target.kind,
                    "base_url": target.base_url,
                    "model": target.model,
                    "ok": None if health.check is None and not health.failing else not health.failing,
                    "in_use": target in used,
                    "context_tokens": self.context_tokens(target.kind, target.base_url, target.model),
                }
            )
        return {"targets": targets, "servers": servers}

    def _check_unchecked(self, targets: Iterable[Target]) -> None:
        """Start a first check of each target nobody has asked the server about yet (a new agent's model, a
        rule that brought in one), so the status answers for it promptly instead of at its first use."""
        for target in targets:
            health = self._health.get(target)
            if (health is not None and (health.check is not None or health.failing)) or target in self._first_checks:
                continue
            task = asyncio.get_running_loop().create_task(
                self._check_all([target]), name=f"llm-first-check-{target.describe()}"
            )
            self._first_checks[target] = task
            task.add_done_callback(functools.partial(self._first_check_done, target))

    def _first_check_done(self, target: Target, _: asyncio.Task[Any]) -> None:
        self._first_checks.pop(target, None)

    # -- metrics -------------------------------------------------------------------------------

    def record_call(
        self, agent_id: str, model: str, result: str, chat: ChatResult | None = None, seconds: float | None = None
    ) -> None:
        """Count one LLM call in the aiventbus_llm_* families (`result`: ok, error, unavailable, cancelled...)."""
        self.metrics.llm_requests.labels(agent_id=agent_id, model=model, result=result).inc()
        elapsed = seconds if seconds is not None else (chat.duration_seconds if chat else None)
        if elapsed is not None:
            self.metrics.llm_request_duration.labels(agent_id=agent_id, model=model).observe(elapsed)
        if chat is not None:
            if chat.prompt_tokens:
                self.metrics.llm_tokens.labels(agent_id=agent_id, model=model, kind="prompt").inc(chat.prompt_tokens)
            if chat.eval_tokens:
                self.metrics.llm_tokens.labels(agent_id=agent_id, model=model, kind="eval").inc(chat.eval_tokens)

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Check the default (and classifier) model in the background; start-up does not wait for it."""
        targets = [self.default_target()]
        if self.config.classifier.enabled:
            targets.append(self.target("ollama", None, self.config.classifier.model))
        for target in targets:
            self._configured.add(self.watch(target.kind, target.base_url, target.model))
        self._startup = asyncio.create_task(self._check_all(targets), name="llm-startup-check")

    async def _check_all(self, targets: list[Target]) -> None:
        for target in targets:
            try:
                await self.check(target.kind, target.base_url, target.model, fresh=True)
            except Exception:
                log.exception("checking %s failed", target.describe())

    async def stop(self) -> None:
        if self._startup is not None:
            self._startup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._startup
            self._startup = None
        first_checks = list(self._first_checks.values())
        for task in first_checks:
            task.cancel()
        await asyncio.gather(*first_checks, return_exceptions=True)
        providers, self._providers = list(self._providers.values()), {}
        for provider in providers:
            try:
                await provider.close()
            except Exception:
                log.exception("closing the %s provider at %s failed", provider.kind, provider.base_url)

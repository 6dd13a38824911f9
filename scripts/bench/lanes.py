"""Lane figures: interactive dispatch latency (idle and under an ambient flood), and `aibus query` end to end
against a direct streaming call to the same model server with the same prompt.

Run: .venv/bin/python scripts/bench/lanes.py [--samples 500] [--rounds 5] [--skip-model]
Targets: flooded p99 <= 1.5x idle p99 and <= 20 ms; aibus query <= +10% wall time, first token <= +30 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# This folder holds other benches (e.g. http.py) that would shadow the standard library.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from aiventbus.api.app import create_app
from aiventbus.config import parse_config
from aiventbus.core.prompts import system_prompt
from aiventbus.core.scheduler import RunOutcome
from aiventbus.daemon import Daemon
from aiventbus.llm.base import ChatRequest, ChatResult, TokenCallback
from aiventbus.llm.registry import LLMRegistry
from aiventbus.llm.structured import agent_response_schema
from aiventbus.records.agents import AgentIn, RoutingRuleIn
from aiventbus.records.events import EventIn
from aiventbus.store.assignments import Assignment
from tests.support.providers import ChatOnlyProvider

ANSWER = json.dumps({"type": "answer", "summary": "ok", "confidence": 1.0, "proposed_actions": []})


async def poll_until(condition: Any, timeout: float = 120.0) -> None:
    """Poll a condition (sync or async) until true, with a deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.002)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def config_for(base: Path, port: int = 0, **extra: Any) -> Any:
    data = {
        "server": {"port": port},
        "paths": {"data_dir": str(base / "data"), "state_dir": str(base / "state")},
        "producers": {"clipboard_enabled": False},
        "memory": {"distill_enabled": False},
        "ollama": {"base_url": "http://127.0.0.1:9"},
        **extra,
    }
    return parse_config(data)


class TimedProvider(ChatOnlyProvider):
    """A stand-in model: ambient calls take `ambient_seconds` (cancellable); interactive ones answer at once."""

    kind = "ollama"

    def __init__(self, base_url: str, seconds: float) -> None:
        self.base_url = base_url
        self.seconds = seconds

    async def chat(self, request: ChatRequest, on_token: TokenCallback | None = None) -> ChatResult:
        await asyncio.sleep(self.seconds)
        return ChatResult(ANSWER)


class DispatchProbe:
    """Wraps the agent runner: notes when each interactive run starts."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.started: dict[str, float] = {}
        self.signal = asyncio.Event()

    def server_key(self, assignment: Assignment) -> str:
        return str(self.inner.server_key(assignment))

    async def run(self, assignment: Assignment, worker: str) -> RunOutcome:
        if assignment.lane == "interactive":
            self.started[assignment.event_id] = time.perf_counter()
            self.signal.set()
        outcome: RunOutcome = await self.inner.run(assignment, worker)
        return outcome


async def dispatch_latencies(daemon: Daemon, probe: DispatchProbe, samples: int) -> list[float]:
    latencies = []
    for n in range(samples):
        probe.signal.clear()
        started = time.perf_counter()
        event = await daemon.bus.publish(EventIn(topic="user.query", payload={"text": f"q{n}"}, source="user"))
        while event.id not in probe.started:
            await probe.signal.wait()
            probe.signal.clear()
        latencies.append(probe.started[event.id] - started)
        await poll_until(lambda: not daemon.scheduler.status()["running"]["interactive"])
    return latencies


async def bench_dispatch(samples: int, flood: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        daemon = Daemon(config_for(Path(tmp)))
        await daemon.start()
        try:
            providers = {"http://127.0.0.1:7": TimedProvider("http://127.0.0.1:7", 0.05)}
            registry = LLMRegistry(
                daemon.config,
                daemon.metrics,
                factory=lambda kind, url: providers.get(url) or TimedProvider(url, 0.0),
            )
            runner = daemon.scheduler.runner
            runner.llm = registry  # type: ignore[union-attr]
            probe = DispatchProbe(runner)
            daemon.scheduler.runner = probe
            await daemon.agents.create(AgentIn(name="ambient", model="m", base_url="http://127.0.0.1:7"))
            await daemon.agents.create(AgentIn(name="assistant", model="m", base_url="http://127.0.0.1:8"))
            await daemon.agents.create_rule(
                RoutingRuleIn(name="a", topic_pattern="clip.*", consumer_id="agent_ambient")
            )
            await daemon.agents.create_rule(
                RoutingRuleIn(name="u", topic_pattern="user.*", consumer_id="agent_assistant")
            )
            idle = await dispatch_latencies(daemon, probe, samples)
            await daemon.bus.publish_many([EventIn(topic="clip.text", payload={"n": n}) for n in range(flood)])

            async def flooded_enough() -> bool:
                return (await daemon.scheduler.sample_queue_depth()).get("ambient", 0) >= flood // 2

            await poll_until(flooded_enough)
            flooded = await dispatch_latencies(daemon, probe, samples)
            depth = (await daemon.scheduler.sample_queue_depth()).get("ambient", 0)
        finally:
            await daemon.stop()
    return {
        "idle_p50_ms": percentile(idle, 0.5) * 1000,
        "idle_p99_ms": percentile(idle, 0.99) * 1000,
        "flooded_p50_ms": percentile(flooded, 0.5) * 1000,
        "flooded_p99_ms": percentile(flooded, 0.99) * 1000,
        "ambient_still_queued": depth,
    }


async def bench_query(rounds: int) -> dict[str, float]:
    from websockets.asyncio.client import connect

    from tests.support.daemon import free_port, test_config_data
    from tests.support.llama_server import start_llama_server

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        llama = start_llama_server(base / "llama")
        port = free_port()
        daemon = Daemon(config_for(base, port=port))
        await daemon.start()
        serving = asyncio.create_task(daemon.serve(create_app(daemon)))
        try:
            await poll_until(lambda: daemon.server is not None and daemon.server.started)
            import yaml

            config_path = base / "config.yaml"
            config_path.write_text(yaml.safe_dump(test_config_data(base, port=port)))
            agent = await daemon.agents.create(
                AgentIn(
                    name="assistant",
                    model=llama.model,
                    provider="openai",
                    base_url=llama.base_url,
                    allowed_actions=[],
                    max_tokens=120,
                    temperature=0.0,
                    context_tokens=2048,
                )
            )
            await daemon.agents.create_rule(RoutingRuleIn(name="u", topic_pattern="user.*", consumer_id=agent.id))
            aibus = str(Path(sys.executable).parent / "aibus")
            ws_url = f"ws://127.0.0.1:{port}/ws?channels=token"
            results: dict[str, list[float]] = {"cli_wall": [], "cli_first": [], "direct_wall": [], "direct_first": []}
            async with connect(ws_url, additional_headers={"Authorization": f"Bearer {daemon.token}"}) as ws:
                await ws.recv()
                for n in range(rounds):
                    text = f"In one sentence, what is {n + 7} times {n + 3}? (run {time.time_ns()})"
                    first_token: list[float] = []

                    async def first(sink: list[float] = first_token) -> None:
                        async for _ in ws:
                            if not sink:
                                sink.append(time.perf_counter())

                    watcher = asyncio.create_task(first())
                    started = time.perf_counter()
                    process = await asyncio.create_subprocess_exec(
                        aibus, "--config", str(config_path), "query", text, stdout=asyncio.subprocess.DEVNULL
                    )
                    await process.wait()
                    results["cli_wall"].append(time.perf_counter() - started)
                    watcher.cancel()
                    results["cli_first"].append((first_token[0] if first_token else time.perf_counter()) - started)

                    # The same prompt, straight to the server: the context engine's messages, same schema.
                    direct_text = f"In one sentence, what is {n + 8} times {n + 4}? (run {time.time_ns()})"
                    event = await daemon.bus.publish(EventIn(topic="bench.direct", payload={"text": direct_text}))
                    prompt = system_prompt(agent, daemon.executor.prompt_section(agent.allowed_actions))
                    bundle = await daemon.context.build(agent, event, prompt)
                    request = ChatRequest(
                        model=agent.model,
                        messages=bundle.messages,
                        json_schema=agent_response_schema(daemon.executor.available_actions(agent.allowed_actions)),
                        temperature=0.0,
                        max_tokens=120,
                    )
                    direct_first: list[float] = []
                    started = time.perf_counter()
                    await daemon.llm.provider("openai", llama.base_url).chat(
                        request, lambda _t, sink=direct_first: sink.append(time.perf_counter()) if not sink else None
                    )
                    results["direct_wall"].append(time.perf_counter() - started)
                    results["direct_first"].append(direct_first[0] - started)
        finally:
            daemon.request_exit()
            await serving
            await daemon.stop()
            llama.stop()
    medians = {key: statistics.median(values) for key, values in results.items()}
    return {
        "cli_wall_s": medians["cli_wall"],
        "direct_wall_s": medians["direct_wall"],
        "wall_overhead_pct": (medians["cli_wall"] / medians["direct_wall"] - 1) * 100,
        "cli_first_token_ms": medians["cli_first"] * 1000,
        "direct_first_token_ms": medians["direct_first"] * 1000,
        "first_token_overhead_ms": (medians["cli_first"] - medians["direct_first"]) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--flood", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-model", action="store_true", help="only the dispatch figures")
    args = parser.parse_args()
    os.environ.setdefault("NO_PROXY", "*")
    dispatch = asyncio.run(bench_dispatch(args.samples, args.flood))
    print("interactive dispatch latency (publish -> run starts):")
    for key, value in dispatch.items():
        print(f"  {key:<24} {value:10.3f}")
    ratio = dispatch["flooded_p99_ms"] / dispatch["idle_p99_ms"]
    print(f"  flooded/idle p99 ratio   {ratio:10.2f}  (target <= 1.5, and flooded p99 <= 20 ms)")
    if args.skip_model:
        return
    query = asyncio.run(bench_query(args.rounds))
    print(f"aibus query vs direct streaming call (median of {args.rounds}, fresh prompt each):")
    for key, value in query.items():
        print(f"  {key:<24} {value:10.3f}")


if __name__ == "__main__":
    main()

"""Executor throughput: auto-run proposals (validate, policy, store, run, result event), approve round trips,
and what the kernel sandbox adds to each auto-run shell command.

Run: .venv/bin/python scripts/bench/executor.py [--actions N] [--rounds N]
Everything runs in a temporary directory against an in-process daemon; only loopback is used. The sandbox's cost is
the median of interleaved rounds of the same auto-run command, confined and not (the baseline swaps in a sandbox
that wraps nothing), through the whole executor path.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Keep this folder (which holds http.py) off sys.path so `import http` finds the standard library.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiventbus.actions.tool_registry import ToolBackend, ToolMethod
from aiventbus.core.executor import RunContext
from aiventbus.platform.sandbox import Bubblewrap
from aiventbus.records.events import EventIn
from tests.support.daemon import RunningDaemon, running_daemon

SHELL_COMMAND = "true"


class Nop(ToolBackend):
    @property
    def name(self) -> str:
        return "nop"

    @property
    def description(self) -> str:
        return "Does nothing"

    def methods(self) -> list[ToolMethod]:
        return [ToolMethod("run", "Return at once", {})]

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        return {"ok": True}


class Unconfined(Bubblewrap):
    """The baseline: the same executor path with a sandbox that wraps nothing."""

    def wrapper(self, cwd: str, hidden: Iterable[str]) -> Callable[[list[str]], list[str]]:
        return lambda argv: argv


async def auto_shell_ms(d: RunningDaemon) -> float:
    """One auto-run shell_exec through handle_proposals, in ms (its own event, so no fan-out limit is hit)."""
    event = await d.daemon.bus.publish(EventIn(topic="user.bench", payload={}, source="user"))
    ctx = RunContext("agent_bench", event, None, None, event.trace_id, [])
    begin = time.perf_counter()
    [outcome] = await d.daemon.executor.handle_proposals([{"action_type": "shell_exec", "command": SHELL_COMMAND}], ctx)
    elapsed = (time.perf_counter() - begin) * 1000
    assert outcome.status == "executed" and outcome.result is not None, outcome
    return elapsed


async def bench_sandbox(d: RunningDaemon, rounds: int) -> None:
    executor = d.daemon.executor
    confined, bare = executor.shell.sandbox, Unconfined()
    if not (await confined.probe()).available:
        print(f"sandbox: unavailable here ({confined.report().reason}); no sandbox figures")
        return
    await bare.probe()
    times: dict[str, list[float]] = {"confined": [], "bare": []}
    for i in range(rounds):
        order = [("confined", confined), ("bare", bare)]
        for name, sandbox in order if i % 2 else order[::-1]:
            executor.shell.sandbox = sandbox
            times[name].append(await auto_shell_ms(d))
    executor.shell.sandbox = confined
    with_ms, without_ms = statistics.median(times["confined"]), statistics.median(times["bare"])
    print(
        f"auto-run shell_exec {SHELL_COMMAND!r} ({rounds} interleaved rounds, medians): without sandbox"
        f" {without_ms:.2f} ms, with {executor.shell.sandbox.kind} {with_ms:.2f} ms: sandbox cost"
        f" {with_ms - without_ms:+.2f} ms per command ({with_ms / without_ms:.2f}x)"
    )


async def bench(actions: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        async with running_daemon(
            Path(folder), {"memory": {"distill_enabled": False}, "policy": {"allowlist": [SHELL_COMMAND]}}
        ) as d:
            executor = d.daemon.executor
            executor.tool_registry.register(Nop())
            event = await d.daemon.bus.publish(EventIn(topic="user.bench", payload={}, source="user"))
            ctx = RunContext("agent_bench", event, None, None, event.trace_id, [])

            started = time.perf_counter()
            for i in range(actions):
                await executor.handle_proposals([{"action_type": "log", "message": f"bench {i}"}], ctx)
            elapsed = time.perf_counter() - started
            print(f"auto-run log actions: {actions / elapsed:,.0f}/s ({elapsed / actions * 1000:.2f} ms each)")

            latencies = []
            for _ in range(max(1, actions // 5)):
                [parked] = await executor.handle_proposals(
                    [{"action_type": "tool_call", "tool": "nop", "method": "run", "params": {}}], ctx
                )
                begin = time.perf_counter()
                answer = await d.client.post(f"/api/v1/actions/{parked.action_id}/approve")
                latencies.append(time.perf_counter() - begin)
                assert answer.status_code == 200, answer.text
            ms = sorted(x * 1000 for x in latencies)
            print(
                f"approve over HTTP ({len(ms)}): median {statistics.median(ms):.2f} ms,"
                f" p95 {ms[int(len(ms) * 0.95) - 1]:.2f} ms"
            )
            await bench_sandbox(d, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--actions", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=100, help="interleaved rounds of the sandbox comparison")
    args = parser.parse_args()
    asyncio.run(bench(args.actions, args.rounds))


if __name__ == "__main__":
    main()

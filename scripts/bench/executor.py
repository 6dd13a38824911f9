"""Executor throughput: auto-run proposals (validate, policy, store, run, result event) and approve round trips.

Run: .venv/bin/python scripts/bench/executor.py [--actions N]
Everything runs in a temporary directory against an in-process daemon; only loopback is used.
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
from typing import Any

from aiventbus.core.events import EventIn
from aiventbus.core.executor import RunContext
from aiventbus.core.tools import ToolBackend, ToolMethod
from tests.support.daemon import running_daemon


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


async def bench(actions: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        async with running_daemon(Path(folder), {"memory": {"distill_enabled": False}}) as d:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--actions", type=int, default=500)
    asyncio.run(bench(parser.parse_args().actions))


if __name__ == "__main__":
    main()

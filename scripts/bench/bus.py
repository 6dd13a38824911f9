"""Durable publish rate and acknowledgement latency of the event bus, against a raw-sqlite ceiling and huey.

Run: .venv/bin/python scripts/bench/bus.py [--events N] [--rounds R]
Targets (2 cores): >= 20,000 events/s at 64 publishers with synchronous=NORMAL; at FULL >= 5x huey (fsync=True).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Keep this folder (which holds http.py) off sys.path so `import http` finds the standard library.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse
import asyncio
import gc
import json
import sqlite3
import statistics
import tempfile
import time

from aiventbus.config import BusConfig
from aiventbus.core.bus import EventBus
from aiventbus.records.events import EventIn
from aiventbus.store.database import Database
from aiventbus.telemetry import Metrics


def payload(n: int) -> dict[str, object]:
    return {"message": "401 Unauthorized", "path": "/admin", "n": n, "host": "10.0.0.1"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bench_bus(directory: Path, synchronous: str, publishers: int, total: int) -> dict[str, float]:
    db = Database(directory / f"bus-{synchronous}-{publishers}.db", synchronous=synchronous)
    await db.open()
    bus = EventBus(db, BusConfig(), Metrics())
    gc.collect()
    gc.freeze()  # as the daemon does once it has started
    latencies: list[float] = []
    counter = iter(range(total))

    async def publisher() -> None:
        for n in counter:
            started = time.perf_counter()
            await bus.publish(EventIn(topic="log.error", payload=payload(n), source="bench"))
            latencies.append(time.perf_counter() - started)

    commits_before = db.commits
    started = time.perf_counter()
    await asyncio.gather(*(publisher() for _ in range(publishers)))
    elapsed = time.perf_counter() - started
    commits = db.commits - commits_before
    await db.close()
    return {
        "rate": total / elapsed,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "per_commit": total / max(commits, 1),
    }


def bench_raw_sqlite(directory: Path, total: int, batch: int = 64) -> float:
    conn = sqlite3.connect(directory / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT UNIQUE, topic TEXT, payload TEXT, ts REAL)")
    started = time.perf_counter()
    for start in range(0, total, batch):
        rows = [
            (f"evt_{n:012x}", "log.error", json.dumps(payload(n)), time.time())
            for n in range(start, min(start + batch, total))
        ]
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO events (id, topic, payload, ts) VALUES (?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return total / elapsed


def bench_huey(directory: Path, total: int) -> float | None:
    try:
        from huey.storage import SqliteStorage
    except ImportError:
        return None
    storage = SqliteStorage(name="bench", filename=str(directory / "huey.db"), fsync=True)
    started = time.perf_counter()
    for n in range(total):
        storage.enqueue(json.dumps(payload(n)).encode())
    elapsed = time.perf_counter() - started
    return total / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--huey-events", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3, help="every case runs once per round; medians are shown")
    args = parser.parse_args()
    cases = [(synchronous, publishers) for synchronous in ("NORMAL", "FULL") for publishers in (1, 8, 64)]
    runs: dict[tuple[str, int], list[dict[str, float]]] = {case: [] for case in cases}
    ceilings: list[float] = []
    hueys: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        # Rounds interleave the cases, so a slow spell of a shared machine falls on all of them alike.
        for round_number in range(args.rounds):
            directory = Path(tmp) / f"round{round_number}"
            directory.mkdir()
            for synchronous, publishers in cases:
                total = args.events if publishers > 1 else max(args.events // 10, 1000)
                runs[(synchronous, publishers)].append(await bench_bus(directory, synchronous, publishers, total))
            ceilings.append(bench_raw_sqlite(directory, args.events))
            huey = bench_huey(directory, args.huey_events)
            if huey is not None:
                hueys.append(huey)
    print(f"bus publish, {args.events} events per run, same payloads, median of {args.rounds} rounds")
    print(f"{'sync':<7}{'pubs':>5}{'ev/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'ev/commit':>11}   ev/s per round")
    medians: dict[tuple[str, int], float] = {}
    for case in cases:
        results = runs[case]
        rate = medians[case] = statistics.median(r["rate"] for r in results)
        p50 = statistics.median(r["p50_ms"] for r in results)
        p99 = statistics.median(r["p99_ms"] for r in results)
        per_commit = statistics.median(r["per_commit"] for r in results)
        each = " ".join(f"{r['rate']:,.0f}" for r in results)
        print(f"{case[0]:<7}{case[1]:>5}{rate:>11,.0f}{p50:>9.2f}{p99:>9.2f}{per_commit:>11.1f}   {each}")
    normal64, full64 = medians[("NORMAL", 64)], medians[("FULL", 64)]
    ceiling = statistics.median(ceilings)
    print(f"raw sqlite3 batched inserts (64/commit, NORMAL): {ceiling:,.0f} ev/s", end="")
    print(f" (bus/ceiling {normal64 / ceiling:.2f})")
    if hueys:
        huey = statistics.median(hueys)
        print(f"huey SqliteStorage.enqueue fsync=True: {huey:,.0f} ev/s  (bus FULL@64 / huey {full64 / huey:.1f}x)")
    print(f"target NORMAL@64 >= 20,000 ev/s: {'met' if normal64 >= 20000 else 'MISSED'} ({normal64:,.0f})")
    if hueys:
        ratio = full64 / statistics.median(hueys)
        print(f"target FULL@64 >= 5x huey: {'met' if ratio >= 5 else 'MISSED'} ({ratio:.1f}x)")


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())

"""Memory search at 100,000 memories: FTS5 (BM25, weighted, scope-filtered) p50/p95 for rare, medium and common
terms, and hybrid (FTS5 + sqlite-vec KNN over 384-dim vectors, fused by RRF) p95.

Run: .venv/bin/python scripts/bench/memory.py [--memories N] [--queries Q]
Target (2 cores): FTS5 p95 <= 20 ms for terms matching <= 5% of rows. Vectors are random (no model in the loop),
so the hybrid figure is the store's cost, without the embedding call.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse
import asyncio
import random
import sqlite3
import tempfile
import time

from aiventbus.core.memory.store import MemoryStore
from aiventbus.records.events import new_id
from aiventbus.records.memory import Memory
from aiventbus.store.database import Database
from aiventbus.store.memories import insert_memory, upsert_vector

DIMENSIONS = 384
# term -> share of rows that contain it
TERMS = {"rare": ("kerberos", 0.001), "medium": ("firewall", 0.05), "common": ("system", 0.5)}
SCOPES = ["global"] * 7 + ["user"] * 2 + ["agent_ops"]
SEARCH_SCOPES = ["global", "user", "agent_ops", "agent_security"]


def filler_vocabulary(rng: random.Random, size: int = 5000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(4, 9))) for _ in range(size)]


def make_content(rng: random.Random, vocabulary: list[str]) -> str:
    words = [vocabulary[min(len(vocabulary) - 1, int(rng.paretovariate(1.2))) * 7 % len(vocabulary)] for _ in range(12)]
    for term, share in TERMS.values():
        if rng.random() < share:
            words.insert(rng.randrange(len(words)), term)
    return " ".join(words).capitalize()


def random_vector(rng: random.Random) -> list[float]:
    return [rng.gauss(0.0, 1.0) for _ in range(DIMENSIONS)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def fill(db: Database, count: int, rng: random.Random, with_vectors: bool) -> None:
    vocabulary = filler_vocabulary(rng)
    now = time.time()
    batch = 5000
    for start in range(0, count, batch):
        rows = []
        for _ in range(start, min(count, start + batch)):
            created = now - rng.uniform(0, 180 * 86_400)
            rows.append(
                (
                    Memory(
                        id=new_id("mem"),
                        kind=rng.choice(["semantic", "episodic", "procedural"]),
                        scope=rng.choice(SCOPES),
                        content=make_content(rng, vocabulary),
                        importance=round(rng.random(), 3),
                        created_by="bench",
                        created_at=created,
                        updated_at=created,
                    ),
                    random_vector(rng) if with_vectors else None,
                )
            )

        def job(conn: sqlite3.Connection, rows: list[tuple[Memory, list[float] | None]] = rows) -> None:
            for memory, vector in rows:
                seq = insert_memory(conn, memory)
                if vector is not None:
                    upsert_vector(conn, seq, vector)

        await db.write(job)


async def timed(call: object, queries: int) -> list[float]:
    durations = []
    for _ in range(queries):
        started = time.perf_counter()
        await call()  # type: ignore[operator]
        durations.append((time.perf_counter() - started) * 1000)
    return durations


async def main(count: int, queries: int) -> None:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "memory-bench.db")
        await db.open()
        if not db.extensions_loadable:
            print("sqlite-vec does not load here: hybrid figures are skipped")

        async def embed(texts: list[str]) -> list[list[float]]:
            return [random_vector(rng) for _ in texts]

        memory = MemoryStore(db, time.time, embedder=embed, embeddings_enabled=db.extensions_loadable)
        await memory.start()
        started = time.perf_counter()
        await fill(db, count, rng, with_vectors=memory.hybrid)
        vectors = " with vectors" if memory.hybrid else ""
        print(f"filled {count:,} memories{vectors} in {time.perf_counter() - started:.1f}s")
        total = await memory.table.count()

        print(f"{'search':<28}{'rows matching':>16}{'p50 ms':>10}{'p95 ms':>10}")
        lexical_only = MemoryStore(db, time.time)
        for label, (term, _) in TERMS.items():
            matching = await db.fetch_value(
                "SELECT COUNT(*) FROM memories_fts WHERE memories_fts MATCH ?", (f'"{term}"',)
            )
            share = f"{matching:,} ({100 * matching / total:.1f}%)"
            for name, store in (
                [("fts5", lexical_only), ("hybrid", memory)] if memory.hybrid else [("fts5", lexical_only)]
            ):
                durations = await timed(
                    lambda store=store, term=term: store.search(term, SEARCH_SCOPES, None, 10), queries
                )
                print(f"{name + ' ' + label + ' (' + term + ')':<28}{share:>16}{percentile(durations, 0.5):>10.2f}"
                      f"{percentile(durations, 0.95):>10.2f}")  # fmt: skip
        recall = await timed(lambda: lexical_only.recall(SEARCH_SCOPES, "firewall blocked kerberos login", 5), queries)
        print(
            f"{'recall (3 terms, 5 hits)':<28}{'':>16}{percentile(recall, 0.5):>10.2f}{percentile(recall, 0.95):>10.2f}"
        )
        await db.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.memories, args.queries))

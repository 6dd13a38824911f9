"""Jobs the loop may run itself while the writer thread is idle, and how they share the one connection."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from aiventbus.store.database import Database


async def open_db(path: Path, synchronous: str) -> Database:
    database = Database(path, synchronous=synchronous)
    await database.open()
    await database.execute("CREATE TABLE t (n INTEGER PRIMARY KEY, thread TEXT)")
    return database


@pytest.fixture
async def normal_db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await open_db(tmp_path / "normal.db", "NORMAL")
    yield database
    await database.close()


@pytest.fixture
async def full_db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await open_db(tmp_path / "full.db", "FULL")
    yield database
    await database.close()


def insert(n: int) -> Callable[[sqlite3.Connection], str]:
    def job(conn: sqlite3.Connection) -> str:
        name = threading.current_thread().name
        conn.execute("INSERT INTO t VALUES (?, ?)", (n, name))
        return name

    return job


async def rows(db: Database) -> list[tuple[int, str]]:
    return [(row[0], row[1]) for row in await db.fetch_all("SELECT n, thread FROM t ORDER BY n")]


async def test_idle_writer_lets_the_loop_commit_at_once(normal_db: Database) -> None:
    future = normal_db.submit(insert(1), on_loop=True)
    assert future.done()  # committed before submit returned: no fsync to wait for at NORMAL
    assert future.result() == threading.current_thread().name
    assert await rows(normal_db) == [(1, threading.current_thread().name)]


async def test_busy_writer_thread_takes_the_job_instead(normal_db: Database) -> None:
    release = threading.Event()

    def slow(conn: sqlite3.Connection) -> None:
        release.wait(10)

    slow_job = normal_db.submit(slow)
    loop_job = normal_db.submit(insert(2), on_loop=True)
    assert not loop_job.done()  # the thread holds the connection, so the loop did not touch it
    release.set()
    await slow_job
    assert await loop_job == "aiventbus-writer"


async def test_a_commit_that_waits_for_the_disk_goes_to_the_thread(full_db: Database) -> None:
    first = full_db.submit(insert(1), on_loop=True)
    assert not first.done()  # inserted on the loop, acknowledged only after the thread's COMMIT (fsync)
    held_plain = full_db.submit(insert(2))
    held_loop = full_db.submit(insert(3), on_loop=True)
    assert await first == threading.current_thread().name
    await asyncio.gather(held_plain, held_loop)
    assert [n for n, _ in await rows(full_db)] == [1, 2, 3]


async def test_another_process_holding_the_lock_never_blocks_the_loop(tmp_path: Path, normal_db: Database) -> None:
    other = sqlite3.connect(tmp_path / "normal.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES (100, 'other')")
    job = normal_db.submit(insert(5), on_loop=True)
    assert not job.done()  # the loop saw the lock taken and handed the job to the thread, which waits for it
    other.execute("COMMIT")
    other.close()
    assert await job == "aiventbus-writer"
    assert [n for n, _ in await rows(normal_db)] == [5, 100]


async def test_a_failing_loop_job_reports_its_error_and_writes_nothing(normal_db: Database) -> None:
    def half_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES (7, 'x')")
        raise ValueError("changed my mind")

    with pytest.raises(ValueError, match="changed my mind"):
        await normal_db.submit(half_then_fail, on_loop=True)
    await normal_db.submit(insert(8), on_loop=True)
    assert [n for n, _ in await rows(normal_db)] == [8]


async def test_close_waits_for_a_loop_commit_and_what_it_held(tmp_path: Path) -> None:
    db = await open_db(tmp_path / "closing.db", "FULL")
    jobs = [db.submit(insert(1), on_loop=True), db.submit(insert(2)), db.submit(insert(3), on_loop=True)]
    await db.close()
    assert all(job.done() and job.exception() is None for job in jobs)
    check = sqlite3.connect(tmp_path / "closing.db")
    assert [row[0] for row in check.execute("SELECT n FROM t ORDER BY n")] == [1, 2, 3]
    check.close()


async def test_a_caller_that_stops_waiting_for_a_held_job_breaks_nothing(full_db: Database) -> None:
    first = full_db.submit(insert(1), on_loop=True)
    abandoned = full_db.submit(insert(2), on_loop=True)  # held behind the first one's COMMIT
    abandoned.cancel()
    after = full_db.submit(insert(3), on_loop=True)
    await asyncio.gather(first, after)
    assert [n for n, _ in await rows(full_db)] == [1, 2, 3]  # the job still ran; only its caller left

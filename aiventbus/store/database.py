"""The only door to SQLite: one writer thread with group commit, and aiosqlite readers over WAL."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from aiventbus.errors import StoreClosed
from aiventbus.store.migrations import apply_migrations

T = TypeVar("T")
WriteJob = Callable[[sqlite3.Connection], Any]
log = logging.getLogger(__name__)

_STOP = object()


def connect(path: Path, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


class Database:
    """Writes are jobs run in one thread; jobs pending together share one transaction."""

    def __init__(self, path: Path, synchronous: str = "NORMAL", max_batch: int = 512) -> None:
        self.path = path
        self.synchronous = synchronous
        self.max_batch = max_batch
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._reader: aiosqlite.Connection | None = None
        self._checkpointer: Checkpointer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = True
        self.commits = 0
        self.jobs_committed = 0
        self.extensions_loadable = False

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._loop = asyncio.get_running_loop()
        conn = await asyncio.to_thread(self._open_writer)
        self._checkpointer = Checkpointer(self.path, self.synchronous)
        self._checkpointer.start()
        self._closed = False
        self._thread = threading.Thread(target=self._run_writer, args=(conn,), name="aiventbus-writer", daemon=True)
        self._thread.start()
        self._reader = await aiosqlite.connect(self.path, timeout=30)
        self._reader.row_factory = sqlite3.Row
        await self._reader.execute("PRAGMA query_only=ON")
        await self._reader.execute("PRAGMA busy_timeout=30000")
        self.extensions_loadable = await self._try_load_vec(self._reader)

    def _open_writer(self) -> sqlite3.Connection:
        conn = connect(self.path, self.synchronous)
        apply_migrations(conn)
        # The checkpointer copies the WAL back from its own thread; a commit never pays for it.
        conn.execute("PRAGMA wal_autocheckpoint=0")
        return conn

    @staticmethod
    async def _try_load_vec(conn: aiosqlite.Connection) -> bool:
        try:
            import sqlite_vec

            await conn.enable_load_extension(True)
            await conn.load_extension(sqlite_vec.loadable_path())
            await conn.enable_load_extension(False)
        except Exception:
            return False
        return True

    async def close(self) -> None:
        """Commit everything already submitted, then close."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._jobs.put(_STOP)
            await asyncio.to_thread(self._thread.join)
        if self._reader is not None:
            await self._reader.close()
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.stop)

    @property
    def is_open(self) -> bool:
        return not self._closed

    async def write(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run `job` in the writer thread; returns after the transaction holding it committed."""
        return await self.submit(job)

    def submit(self, job: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Queue `job` for the writer; the future resolves after its transaction committed."""
        if self._closed or self._loop is None:
            raise StoreClosed("the store is closed")
        future: asyncio.Future[T] = self._loop.create_future()
        self._jobs.put((job, future))
        return future

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One write statement; returns the rows it changed."""
        return await self.write(lambda conn: conn.execute(sql, params).rowcount)

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        if self._reader is None:
            raise StoreClosed("the store is closed")
        async with self._reader.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        if self._reader is None:
            raise StoreClosed("the store is closed")
        async with self._reader.execute(sql, params) as cursor:
            return await cursor.fetchone()

    async def fetch_value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = await self.fetch_one(sql, params)
        return None if row is None else row[0]

    # -- writer thread -------------------------------------------------------------------------

    def _run_writer(self, conn: sqlite3.Connection) -> None:
        try:
            stopping = False
            while not stopping:
                first = self._jobs.get()
                batch: list[tuple[WriteJob, asyncio.Future[Any]]] = []
                if first is _STOP:
                    stopping = True
                else:
                    batch.append(first)
                while len(batch) < self.max_batch:
                    try:
                        item = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stopping = True
                        break
                    batch.append(item)
                if batch:
                    self._commit_batch(conn, batch)
        finally:
            conn.close()

    def _commit_batch(self, conn: sqlite3.Connection, batch: list[tuple[WriteJob, asyncio.Future[Any]]]) -> None:
        try:
            outcomes = self._run_batch(conn, batch, isolate=False)
        except _JobFailed:
            # Some job raised: undo the whole batch and run it again with one savepoint per job, so the
            # failing job is rolled back alone and the others still commit.
            conn.execute("ROLLBACK")
            try:
                outcomes = self._run_batch(conn, batch, isolate=True)
            except Exception as error:
                outcomes = self._fail_all(conn, batch, error)
        except Exception as error:
            outcomes = self._fail_all(conn, batch, error)
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting any more
            self._loop.call_soon_threadsafe(_resolve_all, outcomes)

    def _run_batch(
        self, conn: sqlite3.Connection, batch: list[tuple[WriteJob, asyncio.Future[Any]]], isolate: bool
    ) -> list[tuple[asyncio.Future[Any], bool, Any]]:
        outcomes: list[tuple[asyncio.Future[Any], bool, Any]] = []
        conn.execute("BEGIN IMMEDIATE")
        for job, future in batch:
            if not isolate:
                try:
                    outcomes.append((future, True, job(conn)))
                except Exception as error:
                    raise _JobFailed from error
                continue
            conn.execute("SAVEPOINT job")
            try:
                result = job(conn)
            except Exception as error:
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                outcomes.append((future, False, error))
            else:
                conn.execute("RELEASE job")
                outcomes.append((future, True, result))
        conn.execute("COMMIT")
        self.commits += 1
        if self._checkpointer is not None:
            self._checkpointer.note_commit()
        self.jobs_committed += len(batch)
        return outcomes

    @staticmethod
    def _fail_all(
        conn: sqlite3.Connection, batch: list[tuple[WriteJob, asyncio.Future[Any]]], error: Exception
    ) -> list[tuple[asyncio.Future[Any], bool, Any]]:
        log.error("store commit failed: %s", error)
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        return [(future, False, error) for _, future in batch]


class Checkpointer:
    """Copies the WAL back into the database in its own thread. PASSIVE checkpoints never block the writer or
    readers; with SQLite's auto-checkpoint the commit that crosses the threshold would do this work itself."""

    def __init__(self, path: Path, synchronous: str, every_commits: int = 1000, every_seconds: float = 1.0) -> None:
        self.path = path
        self.synchronous = synchronous
        self.every_commits = every_commits
        self.every_seconds = every_seconds
        self.checkpoints = 0
        self._commits = 0
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="aiventbus-checkpointer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def note_commit(self) -> None:
        self._commits += 1
        if self._commits >= self.every_commits:
            self._wake.set()

    def stop(self) -> None:
        """Stop after a final checkpoint that also truncates the WAL."""
        self._stopping = True
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        conn = connect(self.path, self.synchronous)
        try:
            while not self._stopping:
                self._wake.wait(self.every_seconds)
                self._wake.clear()
                if self._commits and not self._stopping:
                    self._commits = 0
                    self._checkpoint(conn, "PASSIVE")
            self._checkpoint(conn, "TRUNCATE")
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection, mode: str) -> None:
        try:
            conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchall()
            self.checkpoints += 1
        except sqlite3.Error as error:
            log.warning("WAL checkpoint (%s) failed: %s", mode, error)


class _JobFailed(Exception):
    """A job raised during the fast (savepoint-free) pass of a batch."""


def _resolve_all(outcomes: Iterable[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in outcomes:
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

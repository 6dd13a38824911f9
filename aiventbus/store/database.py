"""The only door to SQLite: one writer thread with group commit, and aiosqlite readers over WAL."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import aiosqlite

from aiventbus.errors import StoreClosed
from aiventbus.store.migrations import apply_migrations
from aiventbus.store.wal import Checkpointer, connect

T = TypeVar("T")
WriteJob = Callable[[sqlite3.Connection], Any]
Params = Sequence[Any] | Mapping[str, Any]  # positional (?) or named (:name) parameters
log = logging.getLogger(__name__)

_STOP = object()


class _Job(NamedTuple):
    run: WriteJob
    future: asyncio.Future[Any]
    commits_itself: bool
    on_loop: bool = False


class Database:
    """Writes are jobs run in one thread; jobs pending together share one transaction.

    A small job may instead run on the event loop while the writer thread is idle (`submit(on_loop=True)`): the
    hand-off to the thread and back, and the cold caches of a core that was idle, cost more than the job itself.
    Only the COMMIT goes to the thread when it has to wait for fsync. One connection, one user at a time: the loop
    tracks what the thread holds, and jobs submitted while a loop-side transaction commits wait for it."""

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
        self._conn: sqlite3.Connection | None = None
        self._thread_jobs = 0  # queued for, or running in, the writer thread
        self._loop_commit: asyncio.Future[Any] | None = None  # a loop-side transaction's COMMIT, in the thread
        self._held: list[_Job] = []
        self._commit_waits_for_disk = synchronous.upper() in ("FULL", "EXTRA")
        self.commits = 0
        self.jobs_committed = 0
        self.extensions_loadable = False

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._loop = asyncio.get_running_loop()
        conn = self._conn = await asyncio.to_thread(self._open_writer)
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
        while self._loop_commit is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._loop_commit)
            await asyncio.sleep(0)  # let the commit's callback hand the held jobs on
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

    def submit(
        self, job: Callable[[sqlite3.Connection], T], *, commits_itself: bool = False, on_loop: bool = False
    ) -> asyncio.Future[T]:
        """Queue `job` for the writer; the future resolves after its transaction committed.

        A job that `commits_itself` runs outside a transaction when nothing else is pending with it, and must then
        make its own writes atomic (one statement, or its own BEGIN ... COMMIT). A job `on_loop` runs right here in
        its own transaction when the writer thread is idle; it must be quick and touch nothing but the database.

        Every job may run twice: when another job of its batch raises, the batch is rolled back and run again with
        one savepoint per job (so only the failing one is undone). A job therefore does its work through `conn`
        alone and changes no state outside the database; what it returns is taken from the run that committed.
        Two paths, one connection: the writer thread (batches) and the loop (`on_loop`, only while the thread has
        nothing queued or running, and jobs submitted meanwhile wait for its commit), so writes never interleave."""
        if self._closed or self._loop is None:
            raise StoreClosed("the store is closed")
        future: asyncio.Future[T] = self._loop.create_future()
        entry = _Job(job, future, commits_itself, on_loop)
        if self._loop_commit is not None:
            self._held.append(entry)
        elif not (on_loop and self._thread_jobs == 0 and self._run_on_loop([entry])):
            self._to_thread(entry)
        return future

    def _to_thread(self, entry: _Job) -> None:
        self._thread_jobs += 1
        self._jobs.put(entry)

    def _run_on_loop(self, entries: list[_Job]) -> bool:
        """Run `entries` in one transaction on the loop thread; False (nothing done) if that cannot be done now."""
        conn = self._conn
        assert conn is not None
        conn.execute("PRAGMA busy_timeout=0")  # never wait for another process's lock on the loop
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            return False
        finally:
            conn.execute("PRAGMA busy_timeout=30000")
        try:
            results = [entry.run(conn) for entry in entries]
        except Exception:
            conn.execute("ROLLBACK")
            return False  # the writer thread runs them again, each in its own savepoint, and reports the error
        except BaseException:
            conn.execute("ROLLBACK")  # never leave the shared connection inside a transaction
            raise
        if self._commit_waits_for_disk:
            commit = self._loop_commit = self._submit_commit()
            commit.add_done_callback(lambda done: self._loop_commit_done(done, entries, results))
            return True
        try:
            conn.execute("COMMIT")
        except Exception as error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            _resolve(entries, results, error)
            return True
        self._committed(len(entries))
        _resolve(entries, results, None)
        return True

    def _submit_commit(self) -> asyncio.Future[None]:
        """COMMIT the loop-side transaction in the writer thread, where waiting for the disk blocks nobody."""
        assert self._loop is not None
        future: asyncio.Future[None] = self._loop.create_future()
        self._to_thread(_Job(_commit_open_transaction, future, commits_itself=True))
        return future

    def _loop_commit_done(self, done: asyncio.Future[None], entries: list[_Job], results: list[Any]) -> None:
        self._loop_commit = None
        error = done.exception() if not done.cancelled() else StoreClosed("the store closed")
        _resolve(entries, results, error)
        if error is None:
            self.jobs_committed += len(entries) - 1  # the COMMIT job itself was counted once
        held, self._held = self._held, []
        on_loop = list(itertools.takewhile(lambda entry: entry.on_loop, held))
        if on_loop and self._thread_jobs == 0 and self._run_on_loop(on_loop):
            held = held[len(on_loop) :]
            if self._loop_commit is not None:
                self._held = held
                return
        for entry in held:
            self._to_thread(entry)

    async def execute(self, sql: str, params: Params = ()) -> int:
        """One write statement; returns the rows it changed."""
        return await self.submit(lambda conn: conn.execute(sql, params).rowcount, commits_itself=True)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        if self._reader is None:
            raise StoreClosed("the store is closed")
        async with self._reader.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def fetch_one(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        if self._reader is None:
            raise StoreClosed("the store is closed")
        async with self._reader.execute(sql, params) as cursor:
            return await cursor.fetchone()

    async def fetch_value(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetch_one(sql, params)
        return None if row is None else row[0]

    def _thread_batch_done(self, outcomes: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
        self._thread_jobs -= len(outcomes)
        for future, ok, value in outcomes:
            if future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    # -- writer thread -------------------------------------------------------------------------

    def _run_writer(self, conn: sqlite3.Connection) -> None:
        try:
            stopping = False
            while not stopping:
                first = self._jobs.get()
                batch: list[_Job] = []
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

    def _commit_batch(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        try:
            if len(batch) == 1 and batch[0].commits_itself:
                outcomes = self._run_alone(conn, batch[0])
            else:
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
            self._loop.call_soon_threadsafe(self._thread_batch_done, outcomes)

    def _run_alone(self, conn: sqlite3.Connection, job: _Job) -> list[tuple[asyncio.Future[Any], bool, Any]]:
        try:
            result = job.run(conn)
        except Exception as error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return [(job.future, False, error)]
        if conn.in_transaction:
            conn.execute("COMMIT")  # the job left its transaction open; what it wrote is kept, as promised
        self._committed(1)
        return [(job.future, True, result)]

    def _committed(self, jobs: int) -> None:
        self.commits += 1
        if self._checkpointer is not None:
            self._checkpointer.note_commit()
        self.jobs_committed += jobs

    def _run_batch(
        self, conn: sqlite3.Connection, batch: list[_Job], isolate: bool
    ) -> list[tuple[asyncio.Future[Any], bool, Any]]:
        outcomes: list[tuple[asyncio.Future[Any], bool, Any]] = []
        conn.execute("BEGIN IMMEDIATE")
        for job, future, *_ in batch:
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
        self._committed(len(batch))
        return outcomes

    @staticmethod
    def _fail_all(
        conn: sqlite3.Connection, batch: list[_Job], error: Exception
    ) -> list[tuple[asyncio.Future[Any], bool, Any]]:
        log.error("store commit failed: %s", error)
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        return [(job.future, False, error) for job in batch]


class _JobFailed(Exception):
    """A job raised during the fast (savepoint-free) pass of a batch."""


def _resolve(entries: list[_Job], results: list[Any], error: BaseException | None) -> None:
    """Answer each loop-side job with its result, or with the error that stopped their transaction."""
    for entry, result in zip(entries, results, strict=True):
        if entry.future.done():  # its caller stopped waiting
            continue
        if error is None:
            entry.future.set_result(result)
        else:
            entry.future.set_exception(error)


def _commit_open_transaction(conn: sqlite3.Connection) -> None:
    conn.execute("COMMIT")

"""SQLite in WAL mode: connections with the daemon's pragmas, and the checkpointer that copies the WAL back."""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)


def connect(path: Path, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


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

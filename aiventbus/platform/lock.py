"""One daemon per data dir: an exclusive flock on `<data_dir>/daemon.lock`, which holds the owner's pid.

flock belongs to the open file, so the kernel drops it when the process ends however it ends (kill -9 too): a
lock file left behind never blocks the next start. The file is never unlinked, because a process that opened the
old file could then lock an inode nobody else sees.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from aiventbus.errors import AiventbusError

LOCK_FILE_NAME = "daemon.lock"


class DataDirInUse(AiventbusError):
    """Another process holds the data dir's lock."""

    status_code = 409

    def __init__(self, data_dir: Path, pid: int | None) -> None:
        holder = f"another aiventbus daemon (pid {pid})" if pid else "another aiventbus daemon"
        super().__init__(
            f"{holder} is already running on the data dir {data_dir}; stop it first,"
            " or give this one another paths.data_dir",
            data_dir=str(data_dir),
            pid=pid,
        )
        self.pid = pid


def holder_pid(content: bytes) -> int | None:
    """The pid written in a lock file, or None when it is empty or not a pid (written half-way, or by hand)."""
    text = content.decode("ascii", "replace").strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


class DataDirLock:
    """acquire() before the database opens; release() after it is closed."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_FILE_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock and write our pid into it; DataDirInUse (naming the holder's pid) when it is taken."""
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = holder_pid(os.pread(fd, 32, 0))
            os.close(fd)
            raise DataDirInUse(self.data_dir, pid) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

"""file_read, file_write and file_delete with size caps, atomic writes, and a backup before every change."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import stat
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiventbus.errors import NotFound
from aiventbus.records.actions import (
    ActionFailed,
    ActionScope,
    FileDeleteAction,
    FileReadAction,
    FileWriteAction,
    HandlerResult,
)
from aiventbus.records.events import new_id
from aiventbus.store.actions import BackupIndex, BackupRecord


def resolve_path(raw: str) -> Path:
    """`~` expanded and made absolute; symlinks are followed so the real file is what gets backed up."""
    path = Path(raw).expanduser()
    if not path.is_absolute():
        raise ActionFailed(f"path: must be absolute (or start with ~), got {raw!r}")
    return path.resolve()


def atomic_write(path: Path, data: bytes, mode: int) -> None:
    """Write `data` to a temp file beside `path`, fsync, set `mode`, then rename over `path`."""
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".aibus-tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as temp:
            temp.write(data)
            temp.flush()
            os.fsync(temp.fileno())
        os.chmod(temp_name, mode)
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


@dataclass(frozen=True)
class _Snapshot:
    data: bytes
    mode: int


def _read_regular(path: Path, max_bytes: int) -> _Snapshot:
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise ActionFailed(f"path: {path} is not a regular file")
    if info.st_size > max_bytes:
        raise ActionFailed(f"path: {path} is {info.st_size} bytes, over policy.file_max_bytes ({max_bytes})")
    return _Snapshot(path.read_bytes(), stat.S_IMODE(info.st_mode))


def _current_content(path: Path) -> _Snapshot | None:
    """What is at `path` now (any size), or None when there is no regular file."""
    if not path.is_file():
        return None
    info = path.stat()
    return _Snapshot(path.read_bytes(), stat.S_IMODE(info.st_mode))


class BackupStore:
    """Old bytes and mode of a file, kept before it is overwritten or deleted, restorable byte for byte."""

    def __init__(self, directory: Path, index: BackupIndex, clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self.index = index
        self.clock = clock

    async def save(self, path: Path, snapshot: _Snapshot, reason: str, action_id: str | None) -> BackupRecord:
        backup_id = new_id("bak")
        stored = self.directory / f"{backup_id}.bin"

        def write() -> None:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            atomic_write(stored, snapshot.data, 0o600)

        await asyncio.to_thread(write)
        record = BackupRecord(
            id=backup_id,
            path=str(path),
            mode=snapshot.mode,
            size=len(snapshot.data),
            sha256=hashlib.sha256(snapshot.data).hexdigest(),
            stored_as=stored.name,
            reason=reason,
            action_id=action_id,
            created_at=self.clock(),
        )
        await self.index.add(record)
        return record

    async def restore(self, backup_id: str) -> BackupRecord:
        """Put the saved bytes and mode back at the original path (the current file is backed up first)."""
        record = await self.index.get(backup_id)
        if record is None:
            raise NotFound("backup", backup_id)
        data = await asyncio.to_thread((self.directory / record.stored_as).read_bytes)
        if hashlib.sha256(data).hexdigest() != record.sha256:
            raise ActionFailed(f"backup {backup_id} is damaged: its bytes no longer match the recorded SHA-256")
        path = Path(record.path)
        current = await asyncio.to_thread(_current_content, path)
        if current is not None:
            await self.save(path, current, f"before restoring {backup_id}", None)
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(atomic_write, path, data, record.mode)
        await self.index.mark_restored(backup_id, self.clock())
        return record


class FileActions:
    """The three file handlers; every change is preceded by a backup of what it replaces."""

    def __init__(self, backups: BackupStore, max_bytes: int) -> None:
        self.backups = backups
        self.max_bytes = max_bytes

    async def read(self, action: FileReadAction, scope: ActionScope) -> HandlerResult:
        path = resolve_path(action.path)
        snapshot = await self._existing(path)
        text = snapshot.data.decode("utf-8", errors="replace")
        return HandlerResult({"path": str(path), "size": len(snapshot.data), "content": text}, source="file")

    async def write(self, action: FileWriteAction, scope: ActionScope) -> HandlerResult:
        path = resolve_path(action.path)
        data = action.content.encode("utf-8")
        if len(data) > self.max_bytes:
            raise ActionFailed(f"content: {len(data)} bytes, over policy.file_max_bytes ({self.max_bytes})")
        if not path.parent.is_dir():
            raise ActionFailed(f"path: folder {path.parent} does not exist")
        mode = 0o644
        backup_id = None
        if path.exists():
            snapshot = await self._existing(path)
            backup = await self.backups.save(path, snapshot, "before file_write", scope.action_id)
            backup_id, mode = backup.id, snapshot.mode
        await asyncio.to_thread(atomic_write, path, data, mode)
        return HandlerResult({"path": str(path), "bytes_written": len(data), "backup_id": backup_id})

    async def delete(self, action: FileDeleteAction, scope: ActionScope) -> HandlerResult:
        path = resolve_path(action.path)
        snapshot = await self._existing(path)
        backup = await self.backups.save(path, snapshot, "before file_delete", scope.action_id)
        await asyncio.to_thread(path.unlink)
        return HandlerResult({"path": str(path), "deleted": True, "backup_id": backup.id})

    async def _existing(self, path: Path) -> _Snapshot:
        try:
            return await asyncio.to_thread(_read_regular, path, self.max_bytes)
        except FileNotFoundError:
            raise ActionFailed(f"path: {path} does not exist") from None
        except PermissionError:
            raise ActionFailed(f"path: permission denied for {path}") from None

"""Recursive inotify watching (through inotify_simple) that survives any file name, in watchfiles-style batches.

watchfiles turns each path into a Rust `String` and fails, for good, on a name that is not UTF-8 ("Unable to decode
path"): the watcher stops and the batch is lost. inotify_simple decodes names with `os.fsdecode`, which keeps the
bytes that are not UTF-8 as lone surrogates for the caller to escape.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import sys
from collections.abc import AsyncGenerator, Callable
from pathlib import Path

from watchfiles import Change

try:  # a Linux-only dependency
    from inotify_simple import INotify, flags
except ImportError:  # pragma: no cover - macOS
    INotify = None  # type: ignore[assignment,misc]

log = logging.getLogger(__name__)

QUIET_MS = 50  # a batch ends after this long without a new change, or after the debounce time at most

Accept = Callable[[Change, str], bool]


def available() -> bool:
    """Whether this system has inotify (Linux)."""
    return INotify is not None and sys.platform.startswith("linux")


def change_of(mask: int) -> Change | None:
    if mask & (flags.CREATE | flags.MOVED_TO):
        return Change.added
    if mask & (flags.MODIFY | flags.ATTRIB):
        return Change.modified
    if mask & (flags.DELETE | flags.MOVED_FROM):
        return Change.deleted
    return None


class InotifyWatch:
    """One inotify descriptor watching `roots` and every directory below them (new ones as they appear)."""

    def __init__(self, roots: list[Path]) -> None:
        self.mask = flags.MODIFY | flags.ATTRIB | flags.MOVED_FROM | flags.MOVED_TO | flags.CREATE | flags.DELETE
        self.inotify = INotify(nonblocking=True)
        self.fd = self.inotify.fileno()
        self.dirs: dict[int, str] = {}
        for root in roots:
            self.add_tree(str(root))

    def add_tree(self, top: str) -> None:
        self._add(top)
        for parent, subdirs, _files in os.walk(top):
            for name in subdirs:
                self._add(os.path.join(parent, name))

    def _add(self, directory: str) -> None:
        try:
            self.dirs[self.inotify.add_watch(directory, self.mask)] = directory
        except OSError as error:
            if error.errno == errno.ENOSPC:
                limit = "the inotify watch limit is reached: raise fs.inotify.max_user_watches"
                raise OSError(error.errno, limit) from None
            if error.errno not in (errno.ENOENT, errno.ENOTDIR, errno.EACCES):  # gone, or not ours to watch: skip it
                raise

    def read(self) -> set[tuple[Change, str]]:
        """The changes readable now (none when nothing is pending); names that are not UTF-8 keep their bytes as
        lone surrogates (os.fsdecode), for the caller to escape."""
        changes: set[tuple[Change, str]] = set()
        for event in self.inotify.read(timeout=0):
            if event.mask & flags.Q_OVERFLOW:
                log.warning("inotify queue overflowed: some file changes were lost")
                continue
            if event.mask & flags.IGNORED:
                self.dirs.pop(event.wd, None)
                continue
            directory = self.dirs.get(event.wd)
            change = change_of(event.mask)
            if directory is None or change is None:
                continue
            path = os.path.join(directory, event.name) if event.name else directory
            if event.mask & flags.ISDIR and change is Change.added:
                self.add_tree(path)
            changes.add((change, path))
        return changes

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.inotify.close()


async def watch_changes(
    roots: list[Path], accept: Accept, debounce_ms: int
) -> AsyncGenerator[set[tuple[Change, str]], None]:
    """Batches of (change, path) under `roots` that `accept` lets through, like watchfiles.awatch."""
    loop = asyncio.get_running_loop()
    watch = InotifyWatch(roots)
    ready = asyncio.Event()
    loop.add_reader(watch.fd, ready.set)
    try:
        while True:
            await ready.wait()
            batch: set[tuple[Change, str]] = set()
            deadline = loop.time() + debounce_ms / 1000
            while True:
                ready.clear()
                batch |= {item for item in watch.read() if accept(*item)}
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    await asyncio.wait_for(ready.wait(), min(QUIET_MS / 1000, remaining))
                except TimeoutError:
                    break
            if batch:
                yield batch
    finally:
        loop.remove_reader(watch.fd)
        watch.close()

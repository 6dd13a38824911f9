"""file.created|modified|deleted for the watched folders (inotify / FSEvents through watchfiles)."""

from __future__ import annotations

import contextlib
import mimetypes
import os
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from watchfiles import Change, awatch

from aiventbus.platform import CapabilityUnavailable, inotify
from aiventbus.platform.base import FILE_WATCHING
from aiventbus.producers.outlet import Outlet
from aiventbus.values import escape_text

TOPICS = {Change.added: "file.created", Change.modified: "file.modified", Change.deleted: "file.deleted"}


def is_ignored(relative: str, patterns: list[str]) -> bool:
    """A path (relative to its watched root) is ignored when it, any trailing part of it, or its name matches;
    `dir/*` also ignores `dir` itself."""
    parts = Path(relative).parts
    candidates = {"/".join(parts[i:]) for i in range(len(parts))}
    expanded = [*patterns, *(pattern[:-2] for pattern in patterns if pattern.endswith("/*"))]
    return any(fnmatch(candidate, pattern) for candidate in candidates for pattern in expanded)


def shown_name(name: str) -> str:
    """A file name as text: bytes that are not UTF-8 (which os.fsdecode turns into lone surrogates) as `\\xNN`."""
    try:
        return os.fsencode(name).decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate os.fsdecode would not have made
        return escape_text(name)


def describe_path(path: Path) -> dict[str, Any]:
    """size and type of a path now (a deleted one has neither)."""
    try:
        info = path.lstat()
    except OSError:
        return {"size": None, "type": "unknown"}
    if path.is_symlink():
        kind = "symlink"
    elif path.is_dir():
        kind = "directory"
    elif path.is_file():
        kind = "file"
    else:
        kind = "other"
    return {"size": info.st_size if kind == "file" else None, "type": kind}


class FileWatcherProducer:
    name = "file_watcher"
    source = "file"
    capability = FILE_WATCHING

    def __init__(self, paths: list[str], ignore: list[str], debounce_ms: int = 200) -> None:
        self.configured = paths
        self.ignore = ignore
        self.debounce_ms = debounce_ms
        self.roots: list[Path] = []
        self.missing: list[str] = []
        self.watching = False

    def details(self) -> dict[str, Any]:
        return {"watching": [str(p) for p in self.roots], "missing": self.missing, "active": self.watching}

    def _accept(self, _change: Change, raw: str) -> bool:
        path = Path(raw)
        for root in self.roots:
            if path == root or root in path.parents:
                return not is_ignored(str(path.relative_to(root)), self.ignore)
        return True

    def _resolve_roots(self) -> None:
        expanded = [Path(p).expanduser().resolve() for p in self.configured]
        self.roots = [p for p in expanded if p.is_dir()]
        self.missing = [str(p) for p in expanded if not p.is_dir()]

    async def run(self, outlet: Outlet) -> None:
        self._resolve_roots()
        if not self.roots:
            raise CapabilityUnavailable(
                FILE_WATCHING,
                "none of the watched folders exist: " + ", ".join(self.missing or ["(none configured)"]),
                "create them or fix producers.file_watcher_paths",
            )
        self.watching = True
        # inotify directly where there is one: watchfiles stops for good on a file name that is not UTF-8.
        changes_stream = (
            inotify.watch_changes(self.roots, self._accept, self.debounce_ms)
            if inotify.available()
            else awatch(*self.roots, watch_filter=self._accept, debounce=self.debounce_ms, rust_timeout=5000)
        )
        try:
            async with contextlib.aclosing(changes_stream):
                async for changes in changes_stream:
                    for change, raw in sorted(changes, key=lambda item: item[1]):
                        path = Path(raw)
                        topic = TOPICS[change]
                        shown = {"name": shown_name(path.name), "path": shown_name(str(path))}
                        payload: dict[str, Any] = {**shown, **describe_path(path)}
                        if change is Change.deleted:
                            payload = {**shown, "size": None, "type": "unknown"}
                        payload["mime"] = mimetypes.guess_type(shown["name"])[0]
                        outlet.offer(topic, payload, key=f"{topic}:{shown['path']}")
        finally:
            self.watching = False

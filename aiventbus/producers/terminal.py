"""terminal.command from shell history files and from the opt-in preexec hook's spool file."""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiventbus.platform.base import TERMINAL
from aiventbus.producers.outlet import Outlet

MAX_READ_BYTES = 1_048_576
MAX_COMMAND_CHARS = 4096
SPOOL_ROTATE_BYTES = 1_048_576


@dataclass
class FileTail:
    """New complete lines of a growing file; starts at its current end; survives truncation and replacement."""

    path: Path
    offset: int = -1
    inode: int = -1
    partial: bytes = b""

    def read_new(self) -> list[str]:
        try:
            info = self.path.stat()
        except OSError:
            self.offset, self.inode, self.partial = 0, -1, b""
            return []
        if self.offset < 0:
            self.offset, self.inode = info.st_size, info.st_ino
            return []
        if info.st_ino != self.inode or info.st_size < self.offset:
            self.offset, self.inode, self.partial = 0, info.st_ino, b""
        if info.st_size == self.offset:
            return []
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            data = handle.read(MAX_READ_BYTES)
        self.offset += len(data)
        data = self.partial + data
        *lines, self.partial = data.split(b"\n")
        if len(self.partial) > MAX_READ_BYTES:
            self.partial = b""
        return [line.decode("utf-8", "replace") for line in lines]


def parse_history_line(line: str) -> str | None:
    """A command from a bash (plain) or zsh (plain or `: <epoch>:<secs>;cmd` extended) history line."""
    line = line.rstrip("\r")
    if line.startswith(": ") and ";" in line:
        head, _, command = line.partition(";")
        if head[2:].split(":", 1)[0].strip().isdigit():
            line = command
    if line.startswith("#") and line[1:].isdigit():
        return None  # bash HISTTIMEFORMAT timestamp line
    return line.strip() or None


def parse_spool_line(line: str) -> dict[str, Any] | None:
    """`<epoch>\\t<exit status>\\t<base64 cwd>\\t<base64 command>` as written by the hook."""
    parts = line.strip().split("\t")
    if len(parts) != 4 or not parts[0].isdigit() or not parts[1].lstrip("-").isdigit():
        return None
    try:
        cwd = base64.b64decode(parts[2], validate=True).decode("utf-8", "replace")
        command = base64.b64decode(parts[3], validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return None
    if not command.strip():
        return None
    return {"command": command[:MAX_COMMAND_CHARS], "cwd": cwd, "exit_status": int(parts[1]), "at": int(parts[0])}


def hook_snippet(shell: str, spool: Path) -> str:
    """Shell code that appends one spool line per finished command (it carries no token)."""
    quoted = shlex.quote(str(spool))
    encode = "base64 | tr -d '\\n'"
    if shell == "bash":
        return f"""# aiventbus preexec hook (bash): add to ~/.bashrc with  eval "$(aibus hook bash)"
__aibus_spool={quoted}
__aibus_armed=
__aibus_cmd=
__aibus_preexec() {{
  [ -n "$COMP_LINE" ] && return
  [ -z "$__aibus_armed" ] && return
  case "$BASH_COMMAND" in __aibus_*) return ;; esac
  __aibus_armed=
  local _n
  read -r _n __aibus_cmd <<< "$(HISTTIMEFORMAT= builtin history 1)"
  [ -n "$__aibus_cmd" ] || __aibus_cmd=$BASH_COMMAND
  __aibus_cwd=$PWD
}}
__aibus_precmd() {{
  if [ -n "$__aibus_cmd" ] && [ -d "${{__aibus_spool%/*}}" ]; then
    (umask 077; printf '%(%s)T\\t%s\\t%s\\t%s\\n' -1 "$__aibus_status" \\
      "$(printf %s "$__aibus_cwd" | {encode})" "$(printf %s "$__aibus_cmd" | {encode})" >> "$__aibus_spool")
  fi
  __aibus_cmd=
  __aibus_armed=1
}}
trap '__aibus_preexec' DEBUG
PROMPT_COMMAND="__aibus_status=\\$? __aibus_armed=;${{PROMPT_COMMAND:+$PROMPT_COMMAND;}}__aibus_precmd"
"""
    if shell == "zsh":
        return f"""# aiventbus preexec hook (zsh): add to ~/.zshrc with  eval "$(aibus hook zsh)"
__aibus_spool={quoted}
__aibus_cmd=
__aibus_preexec() {{ __aibus_cmd=$1; __aibus_cwd=$PWD }}
__aibus_precmd() {{
  local s=$?
  if [[ -n $__aibus_cmd && -d ${{__aibus_spool:h}} ]]; then
    (umask 077; printf '%s\\t%s\\t%s\\t%s\\n' "$(date +%s)" "$s" \\
      "$(printf %s "$__aibus_cwd" | {encode})" "$(printf %s "$__aibus_cmd" | {encode})" >> "$__aibus_spool")
  fi
  __aibus_cmd=
}}
autoload -Uz add-zsh-hook
add-zsh-hook preexec __aibus_preexec
add-zsh-hook precmd __aibus_precmd
"""
    raise ValueError(f"no hook for shell {shell!r} (bash or zsh)")


class TerminalProducer:
    name = "terminal"
    source = "terminal"
    capability = TERMINAL

    def __init__(
        self,
        history_files: list[str],
        spool: Path,
        poll_interval: float,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.history = [FileTail(Path(p).expanduser()) for p in history_files]
        self.spool = FileTail(spool)
        self.poll_interval = poll_interval
        self.sleep = sleep
        self.polling = False
        self.spool_rotate_bytes = SPOOL_ROTATE_BYTES

    def details(self) -> dict[str, Any]:
        return {
            "history_files": [str(t.path) for t in self.history if t.path.exists()],
            "spool_file": str(self.spool.path),
            "polling": self.polling,
        }

    def poll_once(self, outlet: Outlet) -> None:
        for tail in self.history:
            for line in tail.read_new():
                command = parse_history_line(line)
                if command is not None:
                    outlet.offer("terminal.command", {"command": command[:MAX_COMMAND_CHARS], "via": "history"})
        lines = self.spool.read_new()
        if self.spool.offset > self.spool_rotate_bytes:
            lines += self._rotate_spool()
        for line in lines:
            entry = parse_spool_line(line)
            if entry is not None:
                outlet.offer("terminal.command", {**entry, "via": "hook"})

    def _rotate_spool(self) -> list[str]:
        """Move the read spool aside (the hook re-creates it on its next append) and read what raced in."""
        old = self.spool.path.with_name(self.spool.path.name + ".old")
        os.replace(self.spool.path, old)
        leftover = FileTail(old, self.spool.offset, self.spool.inode, self.spool.partial).read_new()
        self.spool = FileTail(self.spool.path, offset=0)
        return leftover

    async def run(self, outlet: Outlet) -> None:
        self.spool.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.spool.path.exists():
            fd = os.open(self.spool.path, os.O_WRONLY | os.O_CREAT, 0o600)
            os.close(fd)
        self.polling = True
        try:
            while True:
                self.poll_once(outlet)
                await self.sleep(self.poll_interval)
        finally:
            self.polling = False

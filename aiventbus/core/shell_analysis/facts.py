"""The data the shell analysis works on: its levels, the machine facts it is given, and the judgement."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Level = Literal["safe", "review", "capped", "blocked"]
LEVEL_RANK: dict[Level, int] = {"safe": 0, "review": 1, "capped": 2, "blocked": 3}
MAX_DEPTH = 3


@dataclass(frozen=True)
class ShellFacts:
    """What the analysis knows about this machine: home, protected and sensitive paths, user lists, limits."""

    home: str
    protected_paths: tuple[str, ...] = ()
    sensitive_paths: tuple[str, ...] = ()
    allowlist: tuple[tuple[str, ...], ...] = ()
    blocklist: tuple[tuple[str, ...], ...] = ()
    max_length: int = 2000
    max_commands: int = 12
    # Where a path's symlinks lead (os.path.realpath in the executor); None keeps the analysis free of I/O.
    resolve: Callable[[str], str] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ShellJudgement:
    """The worst finding over the whole command: its level, the rule that produced it, and why."""

    level: Level
    rule: str
    reason: str
    commands: tuple[str, ...] = field(default=())

"""Judge a shell command by its structure (bashlex AST): safe, review, capped or blocked, with the rule and why.

Levels, worst wins over every piece of the command (pipelines, lists, subshells, substitutions, -c strings):
- safe: every command is on the allowlist with harmless arguments -> may auto-run;
- review: plain structure, but a command is not on the allowlist or writes an ordinary file -> confirm by default
  (a `shell_exec: auto` trust override may auto-run it);
- capped: a shape the analysis cannot vouch for (substitution, expansion, interpreters, wrappers, env prefixes,
  binaries by path, here-documents, non-ASCII, control flow, unparsable, too long) or a sensitive path ->
  confirm at most, whatever the overrides say;
- blocked: a blocklisted piece anywhere (privilege escalation, power off, disk formatting, recursive deletes of
  / or home, writes onto system or daemon-protected paths, fork bombs) -> deny.
Pure: no I/O; paths are judged as the kernel would walk them (/proc/self/cwd, /proc/*/root, `..`), relative ones
against `facts.home`; `facts.resolve` (None by default) adds where symlinks lead. Allowlisted programs auto-run only
with options known to be read-only (allowlist.py, programs.py), matched by each program's own abbreviation rules.
"""

from __future__ import annotations

from aiventbus.core.shell_analysis.commands import split_entries
from aiventbus.core.shell_analysis.facts import Level, ShellFacts, ShellJudgement
from aiventbus.core.shell_analysis.paths import (
    judged_paths,
    normalize_path,
    path_contains,
    path_within,
    reads_sensitive,
    root_like,
    sensitive_targets,
    write_verdict,
)
from aiventbus.core.shell_analysis.walker import Analysis

__all__ = [
    "Level",
    "ShellFacts",
    "ShellJudgement",
    "analyze",
    "judged_paths",
    "normalize_path",
    "path_contains",
    "path_within",
    "reads_sensitive",
    "root_like",
    "sensitive_targets",
    "split_entries",
    "write_verdict",
]


def analyze(command: str, facts: ShellFacts) -> ShellJudgement:
    """Judge `command`; never raises."""
    analysis = Analysis(facts)
    analysis.run(command, depth=0)
    return analysis.judgement()

"""What one simple command's arguments do, judged from the words alone: blocklisted shapes, the files it writes
and reads, and git options that run programs. Relative paths are judged against `cwd`."""

from __future__ import annotations

from collections.abc import Sequence

from aiventbus.core.shell_analysis import allowlist
from aiventbus.core.shell_analysis.allowlist import Finding
from aiventbus.core.shell_analysis.commands import (
    GIT_CODE_OPTIONS,
    GIT_KNOWN,
    GIT_VALUE_OPTIONS,
    NO_CONTENT_READ,
    OUTPUT_OPTIONS,
    SYSTEMCTL_POWER,
    WRITERS,
    is_blocked_name,
    option_values,
    split_args,
)
from aiventbus.core.shell_analysis.facts import ShellFacts
from aiventbus.core.shell_analysis.paths import (
    endless,
    judged_paths,
    normalize_path,
    path_contains,
    path_within,
    reads_sensitive,
    root_like,
    write_verdict,
)

_GIT_CONFIG = "git reads the repository's config, which can run programs (core.fsmonitor, diff.external, hooks)"


def blocklist_findings(name: str, args: Sequence[str], facts: ShellFacts, cwd: str) -> list[Finding]:
    """Privilege, power and disk tools, signalling every process, and recursive wipes or raw writes of / or home."""
    findings: list[Finding] = []
    parsed = split_args(args)
    home = facts.home
    if is_blocked_name(name):
        findings.append(("blocked", "blocklist", f"{name} is blocked (privilege, power or disk tool)"))
    elif name == "init" and any(arg in ("0", "6") for arg in parsed.positional):
        findings.append(("blocked", "blocklist", "init 0/6 powers the machine off"))
    elif name == "systemctl" and SYSTEMCTL_POWER & set(parsed.positional):
        findings.append(("blocked", "blocklist", "systemctl would power the machine off"))
    elif name in ("kill", "pkill") and "-1" in args:
        findings.append(("blocked", "blocklist", "kill -1 signals every process"))
    if "--no-preserve-root" in parsed.long:
        findings.append(("blocked", "blocklist", "--no-preserve-root"))
    recursive = bool({"r", "R"} & parsed.short) or "--recursive" in parsed.long
    if name in ("rm", "shred", "mv") or (name in ("chmod", "chown", "chgrp") and recursive):
        if name == "rm" and not recursive:
            return findings
        for target in parsed.positional[:-1] if name == "mv" else parsed.positional:
            if root_like(normalize_path(target, home, cwd), home):
                findings.append(("blocked", "blocklist", f"{name} on {target} would destroy / or home"))
                return findings
    if name == "dd":
        for arg in args:
            key, _, value = arg.partition("=")
            if key == "of" and value:
                verdict = write_verdict(normalize_path(value, home, cwd), facts)
                if verdict:
                    findings.append(verdict)
    return findings


def write_findings(name: str, args: Sequence[str], facts: ShellFacts, cwd: str) -> list[Finding]:
    """The verdict on every file the command writes: its operands, output options and in-place edits."""
    parsed = split_args(args)
    mode = WRITERS.get(name)
    targets: list[str] = []
    if mode == "all":
        targets = list(parsed.positional)
        if name in ("chmod", "chown", "chgrp", "setfacl", "chattr") and targets:
            targets = targets[1:]
    elif mode == "last" and parsed.positional:
        targets = [parsed.positional[-1]]
    elif name in ("sed", "perl") and ("i" in parsed.short or "--in-place" in parsed.long):
        targets = list(parsed.positional[1:] if name == "sed" else parsed.positional)
    elif name in ("curl", "wget", "tar", "sort", "tree", "git", "uniq"):
        targets = option_values(allowlist.canonical_args(name, args), OUTPUT_OPTIONS[name])
        if name == "uniq" and len(parsed.positional) > 1:
            targets.append(parsed.positional[1])
    targets += option_values(args, frozenset({"-t", "--target-directory"})) if mode else []
    recursive = name in ("rm", "mv", "chmod", "chown", "chgrp") and (
        bool({"r", "R"} & parsed.short) or "--recursive" in parsed.long or name == "mv"
    )
    findings: list[Finding] = []
    for index, target in enumerate(targets):
        moved_into = name == "mv" and index == len(targets) - 1  # a move's destination keeps what it holds
        for path in judged_paths(normalize_path(target, facts.home, cwd), facts):
            verdict = write_verdict(path, facts, recursive and not moved_into)
            if verdict:
                findings.append(verdict)
    return findings


def read_finding(
    name: str, args: Sequence[str], facts: ShellFacts, cwd: str, outcome: allowlist.Outcome | None = None
) -> Finding | None:
    """Sensitive paths among the arguments cap the command; the daemon's own files deny any non-reader."""
    if name in NO_CONTENT_READ:
        return None
    parsed = split_args(args)
    recursive = name in ("grep", "egrep", "fgrep", "rg", "ag", "cp", "rsync", "tar", "zip", "scp", "diff") and (
        bool({"r", "R", "a"} & parsed.short) or bool({"--recursive", "--archive"} & parsed.long) or name == "tar"
    )
    candidates = [*parsed.positional, *parsed.values, *(arg for arg in args if arg.startswith("@"))]
    candidates += [arg.partition("=")[2] for arg in args if "=" in arg and not arg.startswith("-")]
    if outcome is not None:
        candidates += outcome.reads  # attached short values (-f/path) too
    if recursive and not parsed.positional:
        candidates.append(".")
    unique = dict.fromkeys(candidate.lstrip("@") for candidate in candidates)
    literal = [normalize_path(candidate, facts.home, cwd) for candidate in unique if candidate]
    paths = [path for each in literal for path in judged_paths(each, facts)]
    if not allowlist.on_allowlist(name):
        for path in paths:
            for own in facts.protected_paths:
                if path_within(path, own) or (recursive and path_contains(path, own)):
                    return ("blocked", "protected_path", f"{name} is handed the daemon's own file {own}")
    for path in paths:
        sensitive = reads_sensitive(path, facts, recursive)
        if sensitive:
            return ("capped", "sensitive_path", f"{name} would read {sensitive}")
    if outcome is not None and not outcome.bounded:
        for path in paths:
            if endless(path):
                return ("review", "blocking", f"{name} would read {path}, which may never end")
    return None


def git_finding(args: Sequence[str], user_allowed: bool) -> Finding | None:
    """Options that make git run a program, unknown subcommands (aliases), else the repository config's risk."""
    index = 0
    while index < len(args) and args[index].startswith("-"):
        option = args[index].split("=", 1)[0]
        if option in GIT_CODE_OPTIONS:
            return ("capped", "shell_structure", f"git {option} can run a program")
        index += 2 if option in GIT_VALUE_OPTIONS and "=" not in args[index] else 1
    sub = args[index] if index < len(args) else ""
    rest = args[index + 1 :]
    bad = [arg for arg in rest if arg.split("=", 1)[0] in GIT_CODE_OPTIONS and arg not in ("-p", "-u", "-c")]
    if bad:
        return ("capped", "shell_structure", f"git {sub} {bad[0]} can run a program")
    if sub and sub not in GIT_KNOWN:
        return ("capped", "shell_structure", f"git {sub} is not a known subcommand (could be an alias)")
    if user_allowed:
        return None
    return allowlist.review(f"git {sub or '(no subcommand)'}: {_GIT_CONFIG}", "repo_config")

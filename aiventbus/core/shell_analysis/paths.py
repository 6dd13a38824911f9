"""Pure path rules: normalising as the shell would, glob-aware containment, sensitive and protected targets."""

from __future__ import annotations

import fnmatch
import functools
import posixpath
import re

from aiventbus.core.shell_analysis.facts import Level, ShellFacts

SYSTEM_WRITE_PATHS = (
    "/etc", "/boot", "/dev", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/sys", "/proc",
    "/System", "/private/etc", "/var/lib/dpkg", "/var/lib/apt",
)  # fmt: skip
HARMLESS_DEVICES = frozenset({"/dev/null", "/dev/zero", "/dev/stdout", "/dev/stderr", "/dev/stdin", "/dev/tty"})
HOME_SENSITIVE = (
    ".ssh", ".gnupg", ".aws", ".azure", ".config/gcloud", ".kube", ".docker/config.json", ".netrc", ".pgpass",
    ".password-store", ".local/share/keyrings", ".git-credentials", ".npmrc", ".pypirc", ".vault-token",
    ".config/gh/hosts.yml", ".mozilla", ".config/google-chrome", ".config/chromium", ".bash_history",
    ".zsh_history", ".bashrc", ".zshrc", ".profile", ".bash_profile", ".config/autostart", ".config/systemd",
)  # fmt: skip
SYSTEM_SENSITIVE = (
    "/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/sudoers.d", "/etc/ssh", "/etc/security/opasswd",
    "/root", "/var/lib/sss", "/etc/krb5.keytab",
)  # fmt: skip
# What /proc shows of a process that is not the reader: its memory, environment, open files, command line, and
# the cwd/root links that normalize_path could not follow (another process's, or named by a glob).
PROC_SENSITIVE = (
    "/proc/*/environ", "/proc/*/mem", "/proc/*/fd", "/proc/*/map_files", "/proc/*/task", "/proc/*/cwd",
    "/proc/*/root", "/proc/[0-9]*/cmdline", "/dev/fd", "/proc/kcore",
)  # fmt: skip
# Files whose reads may never end: /dev/zero and friends, the kernel's message and trace pipes.
ENDLESS_EXCEPT = frozenset({"/dev/null", "/dev/stdin"})
_PROC_SELF = frozenset({"self", "thread-self"})


def normalize_path(raw: str, home: str, cwd: str | None = None) -> str:
    """`raw` as an absolute, normalised path: ~ expanded, relative paths against cwd (default home)."""
    path = re.sub(r"^(\$HOME|\$\{HOME\})(?=/|$)", "~", raw)
    if path == "~" or path.startswith("~/"):
        path = home + path[1:]
    elif path.startswith("~"):
        user, _, rest = path[1:].partition("/")
        path = posixpath.join("/root" if user == "root" else posixpath.join("/home", user), rest)
    base = cwd or home
    if not path.startswith("/"):
        path = posixpath.join(base, path)
    return _walk(path, base)


def _walk(path: str, cwd: str) -> str:
    """`path` resolved as the kernel walks it, with /proc's links followed where their target is known.

    /proc/self/cwd is the command's cwd, /proc/*/root is / (one mount namespace), /proc/*/task/* is the process;
    `..` applies after each link, as it does in the kernel. Other processes' cwd stays as written (sensitive).
    """
    stack: list[str] = []
    parts = path.split("/")
    for index, part in enumerate(parts):
        if part in ("", "."):
            continue
        if part == "..":
            if stack:
                stack.pop()
            continue
        stack.append(part)
        if len(stack) == 4 and stack[0] == "proc" and stack[2] == "task":
            stack = stack[:2]
        elif len(stack) == 3 and stack[0] == "proc" and stack[2] == "root":
            stack = []
        elif len(stack) == 3 and stack[0] == "proc" and stack[2] == "cwd":
            if stack[1] not in _PROC_SELF:
                rest = posixpath.normpath("/".join(part for part in parts[index + 1 :] if part) or ".")
                return "/" + "/".join(stack) + ("" if rest == "." else "/" + rest.lstrip("/"))
            stack = list(_components(cwd))
    return "/" + "/".join(stack)


@functools.lru_cache(maxsize=4096)
def _components(path: str) -> tuple[str, ...]:
    return tuple(part for part in path.split("/") if part)


def path_within(path: str, target: str) -> bool:
    """True if `path` (a glob pattern allowed) can name `target` or something under it."""
    mine, theirs = _components(path), _components(target)
    if len(mine) < len(theirs):
        return False
    return all(_component_match(a, b) for a, b in zip(mine, theirs, strict=False))


def path_contains(path: str, target: str) -> bool:
    """True if `path` (a glob pattern allowed) can name `target`, something under it, or a folder above it."""
    mine, theirs = _components(path), _components(target)
    return all(_component_match(a, b) for a, b in zip(mine, theirs, strict=False))


def _component_match(mine: str, theirs: str) -> bool:
    return mine == theirs or fnmatch.fnmatchcase(theirs, mine) or fnmatch.fnmatchcase(mine, theirs)


@functools.lru_cache(maxsize=16)
def sensitive_targets(facts: ShellFacts) -> tuple[str, ...]:
    """Every path whose content must not be read without the user: secrets, daemon files, user additions."""
    in_home = tuple(posixpath.join(facts.home, item) for item in HOME_SENSITIVE)
    other_homes = tuple(posixpath.join("/home/*", item) for item in HOME_SENSITIVE)
    return in_home + other_homes + SYSTEM_SENSITIVE + PROC_SENSITIVE + facts.protected_paths + facts.sensitive_paths


def write_verdict(path: str, facts: ShellFacts, recursive: bool = False) -> tuple[Level, str, str] | None:
    """Why writing/deleting `path` (absolute) is blocked or capped, or None for an ordinary file."""
    if path in HARMLESS_DEVICES or path.startswith("/dev/fd/"):
        return None
    for target in facts.protected_paths:
        if path_within(path, target) or (recursive and path_contains(path, target)):
            return "blocked", "protected_path", f"{path} would change the daemon's own files ({target})"
    for target in SYSTEM_WRITE_PATHS:
        if path_within(path, target):
            return "blocked", "protected_path", f"{path} is a system path ({target})"
    if not _components(path):
        return "blocked", "protected_path", "writing onto / itself"
    for target in sensitive_targets(facts):
        if path_within(path, target) or (recursive and path_contains(path, target)):
            return "capped", "sensitive_path", f"{path} is sensitive ({target})"
    return None


def reads_sensitive(path: str, facts: ShellFacts, recursive: bool = False) -> str | None:
    """The sensitive target `path` can reach, or None."""
    for target in sensitive_targets(facts):
        if path_within(path, target) or (recursive and path_contains(path, target)):
            return target
    return None


def endless(path: str) -> bool:
    """True for a device or kernel pipe whose reads may never end (or block): /dev/zero, /dev/urandom, /proc/kmsg."""
    if path in ENDLESS_EXCEPT or path.startswith("/dev/fd/"):
        return False
    return path.startswith("/dev/") or path == "/proc/kmsg" or path.endswith("/trace_pipe")


def judged_paths(path: str, facts: ShellFacts) -> tuple[str, ...]:
    """`path` and, when the facts carry a resolver, where its symlinks lead (both are judged; the worst wins)."""
    if facts.resolve is None:
        return (path,)
    try:
        resolved = normalize_path(facts.resolve(path), facts.home)
    except (OSError, ValueError):
        return (path,)
    return (path,) if resolved == path else (path, resolved)


def root_like(path: str, home: str) -> bool:
    """True for /, a top-level folder, home or a folder above it, or a glob over their contents."""
    parts, home_parts = _components(path), _components(home)
    if len(parts) <= 1:
        return True
    if len(parts) <= len(home_parts):
        return all(_component_match(a, b) for a, b in zip(parts, home_parts, strict=False))
    if len(parts) == len(home_parts) + 1 and any(char in parts[-1] for char in "*?["):
        return all(_component_match(a, b) for a, b in zip(parts, home_parts, strict=False))
    return False

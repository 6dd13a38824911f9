"""What the analysis knows about programs: blocklisted names, code runners, writers (the allowlist: allowlist.py)."""

from __future__ import annotations

import fnmatch
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from aiventbus.core.shell_analysis.allowlist import on_allowlist

BLOCKED_NAMES = frozenset(
    {
        "sudo", "su", "doas", "pkexec", "run0", "sudoedit", "runuser", "visudo", "shutdown", "reboot", "poweroff",
        "halt", "telinit", "mke2fs", "mkswap", "wipefs", "fdisk", "sfdisk", "cfdisk", "parted", "gdisk", "sgdisk",
        "kexec", "insmod", "rmmod", "chpasswd",
    }
)  # fmt: skip
BLOCKED_NAME_PATTERNS = ("mkfs*",)
SYSTEMCTL_POWER = frozenset(
    {"poweroff", "reboot", "halt", "kexec", "suspend", "hibernate", "hybrid-sleep", "suspend-then-hibernate"}
)
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "csh", "tcsh", "busybox", "rbash"})
# Programs that run code or commands given to them (or offer shell escapes): never vouched for.
CODE_RUNNERS = frozenset(
    {
        "python", "python2", "python3", "pypy", "pypy3", "perl", "ruby", "irb", "node", "nodejs", "deno", "bun",
        "php", "lua", "luajit", "tclsh", "wish", "expect", "awk", "gawk", "mawk", "nawk", "sed", "ed", "ex",
        "vi", "vim", "nvim", "view", "emacs", "nano", "less", "more", "most", "pg", "man", "info", "gdb", "lldb",
        "osascript", "pwsh", "powershell", "R", "Rscript", "julia", "java", "jshell", "groovy", "scala", "ghci",
        "runghc", "ocaml", "guile", "racket", "sbcl", "clisp", "erl", "escript", "elixir", "iex", "dotnet",
        "make", "gmake", "cmake", "ninja", "npm", "npx", "yarn", "pnpm", "pip", "pip3", "pipx", "uv", "cargo",
        "go", "ssh", "scp", "sftp", "rsync", "socat", "nc", "ncat", "netcat", "telnet", "ftp", "crontab", "at",
        "batch", "systemd-run", "script", "watch", "tmux", "screen", "eval", "source", ".", "exec", "xargs",
        "parallel", "env", "nice", "nohup", "timeout", "command", "builtin", "time", "stdbuf", "ionice",
        "setsid", "chrt", "taskset", "unbuffer", "flock", "chroot", "strace", "ltrace", "valgrind", "perf",
        "nsenter", "unshare", "firejail", "setpriv", "faketime", "proxychains", "torsocks", "trap", "alias",
        "enable", "coproc", "fc", "openssl", "docker", "podman", "kubectl", "git-shell", "xdg-open", "open", "gio",
        "kde-open", "exo-open", "gnome-open", "sensible-browser",
    }
)  # fmt: skip
# Builtins that change how later commands are found or run (variables, options, hashed paths, directory stack).
SHELL_STATE = frozenset(
    {"export", "declare", "typeset", "local", "readonly", "set", "unset", "shopt", "hash", "unalias", "pushd", "popd"}
)
WRAPPERS = frozenset(
    {
        "env", "nice", "nohup", "timeout", "command", "builtin", "exec", "time", "stdbuf", "ionice", "setsid",
        "chrt", "taskset", "unbuffer", "flock", "chroot", "strace", "ltrace", "valgrind", "perf", "nsenter",
        "unshare", "firejail", "setpriv", "faketime", "proxychains", "torsocks", "xargs", "parallel", "watch",
        "systemd-run", "busybox", "sudo", "doas", "caffeinate",
    }
)  # fmt: skip

# Commands that write or delete the files named by their arguments: "all" positionals, or the "last" one.
WRITERS: dict[str, str] = {
    "rm": "all", "rmdir": "all", "unlink": "all", "shred": "all", "truncate": "all", "touch": "all",
    "tee": "all", "mkdir": "all", "chmod": "all", "chown": "all", "chgrp": "all", "chattr": "all",
    "setfacl": "all", "mv": "all", "cp": "last", "install": "last", "ln": "last", "rsync": "last", "scp": "last",
    "mkfifo": "all", "mknod": "all",
}  # fmt: skip
# Commands that read no file content (names, metadata or their own arguments only): a sensitive path is harmless.
NO_CONTENT_READ = frozenset(
    {
        "ls", "find", "stat", "du", "tree", "file", "test", "lsof", "[", "realpath", "readlink", "echo", "printf",
        "basename", "dirname", "seq", "sleep", "true", "false", "pwd", "whoami", "cd", "which", "type",
        "whereis", ":", "df", "id", "groups", "lsblk", "findmnt", "mount", "vmstat", "ip", "ss", "netstat", "ps",
        "pgrep", "systemctl", "journalctl", "timedatectl", "hostnamectl", "uname", "w", "free", "uptime", "nproc",
        "tty", "hostname", "lscpu",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Args:
    short: frozenset[str]
    long: frozenset[str]
    positional: tuple[str, ...]
    values: tuple[str, ...]  # values of --opt=value, which may also be paths


def split_args(args: Sequence[str]) -> Args:
    short: set[str] = set()
    long: set[str] = set()
    positional: list[str] = []
    values: list[str] = []
    only_positional = False
    for arg in args:
        if only_positional or arg == "-" or not arg.startswith("-"):
            positional.append(arg)
        elif arg == "--":
            only_positional = True
        elif arg.startswith("--"):
            name, eq, value = arg.partition("=")
            long.add(name)
            if eq:
                values.append(value)
        else:
            short.update(arg[1:])
    return Args(frozenset(short), frozenset(long), tuple(positional), tuple(values))


def base_name(word: str) -> str:
    return word.rsplit("/", 1)[-1]


def is_blocked_name(name: str) -> bool:
    lowered = name.lower()
    return lowered in BLOCKED_NAMES or any(fnmatch.fnmatchcase(lowered, pattern) for pattern in BLOCKED_NAME_PATTERNS)


def matches_entry(words: Sequence[str], entry: Sequence[str]) -> bool:
    if not entry or len(words) < len(entry):
        return False
    head = [base_name(words[0]), *words[1 : len(entry)]]
    return all(fnmatch.fnmatchcase(word, pattern) for word, pattern in zip(head, entry, strict=False))


FIND_NAME_FILTERS = frozenset({"-name", "-iname", "-path", "-ipath", "-regex", "-iregex", "-wholename", "-iwholename"})
FIND_UNSAFE = ("-exec", "-execdir", "-ok", "-okdir", "-delete", "-fprint", "-fprint0", "-fprintf", "-fls")
GIT_KNOWN = frozenset(
    {
        "status", "log", "diff", "show", "rev-parse", "ls-files", "blame", "describe", "shortlog", "add", "commit",
        "push", "pull", "fetch", "checkout", "switch", "restore", "reset", "merge", "stash", "tag",
        "clone", "init", "cherry-pick", "revert", "apply", "clean", "remote", "worktree", "notes", "gc", "prune",
        "fsck", "reflog", "show-ref", "cat-file", "ls-tree", "rev-list", "for-each-ref", "branch", "mv", "rm",
        "am", "format-patch", "range-diff", "whatchanged", "count-objects", "version", "var", "check-ignore",
    }
)  # fmt: skip
GIT_CODE_OPTIONS = (
    "-c", "--config-env", "--exec-path", "--upload-pack", "-u", "--receive-pack", "--exec", "-x",
    "--ext-diff", "--open-files-in-pager", "-O", "--textconv", "--paginate", "-p",
)  # fmt: skip
GIT_VALUE_OPTIONS = frozenset({"-C", "--git-dir", "--work-tree", "--namespace"})
TAR_CODE_OPTIONS = ("-F", "--to-command", "--use-compress-program", "--checkpoint-action", "--info-script")
TAR_CODE_PREFIXES = ("-I", "--use-compress", "--to-com", "--checkpoint-a", "--info-s", "--new-vol", "--rsh", "--rmt")


GLOB_SUSPECTS = BLOCKED_NAMES | {"rm", "shred", "mv", "chmod", "chown", "chgrp", "dd", "mkfs", "tee", "cp"}


def is_known(name: str) -> bool:
    return (
        on_allowlist(name)
        or name in CODE_RUNNERS
        or name in SHELLS
        or name in WRITERS
        or is_blocked_name(name)
        or name in ("git", "tar", "find", "curl", "wget", "dd", "kill", "pkill", "systemctl", "init")
    )


OUTPUT_OPTIONS: dict[str, frozenset[str]] = {
    "curl": frozenset({"-o", "--output", "--dump-header", "-D", "-c", "--cookie-jar", "--trace", "--stderr"}),
    "wget": frozenset({"-O", "--output-document", "-o", "--output-file", "-a", "--append-output", "-P"}),
    "tar": frozenset({"-C", "--directory", "-f", "--file"}),
    "sort": frozenset({"-o", "--output"}),
    "tree": frozenset({"-o"}),
    "git": frozenset({"--output"}),
    "uniq": frozenset(),
}


def option_values(args: Sequence[str], options: frozenset[str]) -> list[str]:
    values: list[str] = []
    for index, arg in enumerate(args):
        name, eq, value = arg.partition("=")
        if name in options and eq:
            values.append(value)
        elif not arg.startswith("--") and len(arg) > 2 and arg[:2] in options:
            values.append(arg[2:])  # -oFILE
        elif arg in options and index + 1 < len(args):
            values.append(args[index + 1])
    return values


def split_entries(entries: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    """Config allowlist/blocklist entries ("git push", "mkfs.*") as word tuples; unsplittable ones by spaces."""
    result: list[tuple[str, ...]] = []
    for entry in entries:
        try:
            words = tuple(shlex.split(entry))
        except ValueError:
            words = tuple(entry.split())
        if words:
            result.append(words)
    return tuple(result)

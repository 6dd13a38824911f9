"""What the analysis knows about programs: blocklisted names, code runners, writers, the read-only allowlist."""

from __future__ import annotations

import fnmatch
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass

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
        "ls", "find", "stat", "du", "tree", "file", "wc", "test", "[", "realpath", "readlink", "echo", "printf",
        "basename", "dirname", "seq", "sleep", "true", "false", "pwd", "whoami", "cd", "which", "type",
        "whereis", ":", "df", "id", "groups",
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


# -- the allowlist: read-only commands and the arguments that keep them read-only -------------------------------

ArgCheck = Callable[[Args], str | None]


def _any_args(_: Args) -> str | None:
    return None


def _no_positional(args: Args) -> str | None:
    return "takes arguments that change the system" if args.positional else None


def _forbid(short: str = "", long: Sequence[str] = (), max_positional: int | None = None) -> ArgCheck:
    def check(args: Args) -> str | None:
        bad = sorted(set(short) & args.short) + sorted(set(long) & args.long)
        if bad:
            return f"option {bad[0]} changes the system or writes files"
        if max_positional is not None and len(args.positional) > max_positional:
            return f"more than {max_positional} file arguments (the extra one is written)"
        return None

    return check


def _subcommands(allowed: Sequence[str], when_empty: bool = True) -> ArgCheck:
    def check(args: Args) -> str | None:
        if not args.positional:
            return None if when_empty else "needs a subcommand"
        return None if args.positional[0] in allowed else f"subcommand {args.positional[0]} is not read-only"

    return check


FIND_NAME_FILTERS = frozenset({"-name", "-iname", "-path", "-ipath", "-regex", "-iregex", "-wholename", "-iwholename"})
FIND_UNSAFE = ("-exec", "-execdir", "-ok", "-okdir", "-delete", "-fprint", "-fprint0", "-fprintf", "-fls")
_JOURNAL_WRITES = (
    "--vacuum-size", "--vacuum-time", "--vacuum-files", "--rotate", "--flush", "--sync", "--relinquish-var",
    "--smart-relinquish-var", "--setup-keys", "--update-catalog",
)  # fmt: skip
_SYSTEMCTL_READ = (
    "status", "list-units", "list-timers", "list-sockets", "list-unit-files", "list-dependencies", "is-active",
    "is-enabled", "is-failed", "is-system-running", "show", "cat",
)  # fmt: skip
_READ_ONLY_COMMANDS = (
    "ls", "cat", "head", "tail", "wc", "grep", "egrep", "fgrep", "stat", "file", "du", "df", "ps", "echo",
    "printf", "pwd", "whoami", "id", "groups", "uptime", "uname", "free", "who", "w", "last", "lastlog",
    "users", "basename", "dirname", "realpath", "readlink", "cut", "tr", "nl", "tac", "rev", "comm",
    "diff", "cmp", "md5sum", "sha1sum", "sha256sum", "sha512sum", "b2sum", "cksum", "true", "false",
    "lsblk", "lscpu", "lsusb", "lspci", "lsmod", "nproc", "arch", "locale", "printenv", "test", "[",
    "seq", "sleep", "column", "fold", "expand", "unexpand", "paste", "join", "od", "hexdump", "strings",
    "base64", "jq", "which", "whereis", "type", "pgrep", "vmstat", "findmnt", "getent", "tty",
    "cd", "netstat", "lsof", "iostat", ":",
)  # fmt: skip


def _ip_check(args: Args) -> str | None:
    problem = _subcommands(("a", "addr", "address", "r", "route", "l", "link", "n", "neigh"))(args)
    if problem is None and args.positional[1:] not in ((), ("show",), ("list",)):
        problem = "ip only shows addresses, routes and links"
    return problem


SAFE_COMMANDS: dict[str, ArgCheck] = {
    **dict.fromkeys(_READ_ONLY_COMMANDS, _any_args),
    "uniq": _forbid(max_positional=1),
    "tree": _forbid("o"),
    "ss": _forbid("K", ("--kill",)),
    "sort": _forbid("o", ("--output", "--compress-program")),
    "date": _forbid("s", ("--set",)),
    "hostname": lambda args: _no_positional(args) or _forbid("F", ("--file",))(args),
    "dmesg": _forbid("cCDEn", ("--clear", "--read-clear", "--console-off", "--console-on", "--console-level")),
    "mount": lambda args: "mounts a filesystem" if args.positional or args.short or args.long else None,
    "env": lambda args: "runs a command" if args.positional or args.short or args.long else None,
    "journalctl": _forbid(long=_JOURNAL_WRITES),
    "systemctl": _subcommands(_SYSTEMCTL_READ, when_empty=True),
    "timedatectl": _subcommands(("status", "show")),
    "hostnamectl": _subcommands(("status",)),
    "ip": _ip_check,
}
GIT_READ = frozenset({"status", "log", "diff", "show", "rev-parse", "ls-files", "blame", "describe", "shortlog"})
GIT_KNOWN = frozenset(
    {
        "add", "commit", "push", "pull", "fetch", "checkout", "switch", "restore", "reset", "merge", "stash", "tag",
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
        name in SAFE_COMMANDS
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

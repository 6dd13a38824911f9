"""Judge one allowlisted command line: its options (positive lists), then the program's own rules for the rest."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiventbus.core.shell_analysis.facts import Level
from aiventbus.core.shell_analysis.options import Parsed, parse, resolve_long
from aiventbus.core.shell_analysis.programs import BOUNDED_BY, CODE, LITERAL_ARGS, OPTIONS

Finding = tuple[Level, str, str]
SLEEP_CAP_SECONDS = 10.0
SEQ_CAP = 100_000
# Variables printenv may show: names that never hold a secret (the environment may hold provider API keys).
PLAIN_VARIABLES = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TERM", "PWD", "TZ", "HOSTNAME",
        "DISPLAY", "WAYLAND_DISPLAY", "XDG_RUNTIME_DIR", "XDG_SESSION_TYPE", "XDG_CURRENT_DESKTOP", "EDITOR",
        "VISUAL", "PAGER", "SHLVL", "TMPDIR", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME",
    }
)  # fmt: skip
_SYSTEMCTL_READ = frozenset(
    {
        "status", "list-units", "list-timers", "list-sockets", "list-unit-files", "list-dependencies",
        "list-jobs", "list-automounts", "list-paths", "is-active", "is-enabled", "is-failed",
        "is-system-running", "show", "cat", "get-default",
    }
)  # fmt: skip
_TIMEDATECTL_READ = frozenset({"status", "show", "list-timezones", "timesync-status", "show-timesync"})
_IP_OBJECTS = frozenset({"a", "ad", "addr", "address", "r", "ro", "route", "l", "link", "n", "neigh", "neighbor",
                         "neighbour"})  # fmt: skip
# ip's own options (exact words only: ip matches prefixes in table order, so -b is -batch, not -brief).
_IP_OPTIONS = frozenset(
    {
        "-4", "-6", "-s", "-stats", "-statistics", "-d", "-details", "-h", "-human", "-human-readable", "-iec",
        "-j", "-json", "-p", "-pretty", "-br", "-brief", "-o", "-oneline", "-c", "-color", "-N", "-Numeric",
        "-r", "-resolve",
    }
)  # fmt: skip
# ps: BSD letters (no dash) and UNIX letters (one dash); e (BSD) shows every process's environment.
_PS_BSD_FLAGS = frozenset("axrTfjlsuvXHmcnSwLVZ")
_PS_BSD_VALUED = frozenset("OopqtUk")
_PS_UNIX_FLAGS = frozenset("AeadNfFHjlMcLmTywPV")
_PS_UNIX_VALUED = frozenset("CGgpqstuUoO")
_PS_LONG = frozenset({"--forest", "--no-headers", "--headers", "--deselect", "--cumulative", "--help", "--version"})
_PS_LONG_VALUED = frozenset(
    {"--sort", "--format", "--pid", "--ppid", "--user", "--User", "--group", "--Group", "--sid", "--tty",
     "--cols", "--columns", "--width", "--rows", "--lines", "--quick-pid"}
)  # fmt: skip
# find: tests and options that only select or print names (-exec, -delete, -fprint... are judged elsewhere).
_FIND_FLAGS = frozenset(
    {
        "-depth", "-d", "-mount", "-xdev", "-noleaf", "-ignore_readdir_race", "-noignore_readdir_race", "-daystart",
        "-follow", "-true", "-false", "-prune", "-quit", "-print", "-print0", "-ls", "-empty", "-readable",
        "-writable", "-executable", "-nouser", "-nogroup", "!", "-not", "-a", "-and", "-o", "-or", ",", "(", ")",
        "-H", "-L", "-P", "-help", "--help", "-version", "--version",
    }
)  # fmt: skip
_FIND_VALUED = frozenset(
    {
        "-name", "-iname", "-path", "-ipath", "-wholename", "-iwholename", "-regex", "-iregex", "-regextype",
        "-type", "-xtype", "-size", "-mtime", "-mmin", "-atime", "-amin", "-ctime", "-cmin", "-newer", "-anewer",
        "-cnewer", "-perm", "-user", "-group", "-uid", "-gid", "-links", "-inum", "-samefile", "-lname", "-ilname",
        "-maxdepth", "-mindepth", "-fstype", "-used", "-context", "-printf", "-D",
    }
)  # fmt: skip
FIND_ACTIONS = frozenset({"-exec", "-execdir", "-ok", "-okdir", "-delete", "-fprint", "-fprint0", "-fprintf", "-fls"})
_JQ_ENVIRONMENT = re.compile(r"\$ENV\b|(?<![\w$.])env\b")
_JQ_MODULES = re.compile(r"\b(import|include|modulemeta|get_search_list)\b")


@dataclass(frozen=True)
class Outcome:
    """What the allowlist says of one command: a finding (None: read-only), the words naming files it reads."""

    finding: Finding | None
    reads: tuple[str, ...] = ()
    bounded: bool = False  # an option limits how much it reads, so an endless device is harmless


def review(reason: str, rule: str = "option") -> Finding:
    return ("review", rule, reason)


def on_allowlist(name: str) -> bool:
    return name in OPTIONS or name in LITERAL_ARGS or name in _SPECIAL


def judge(name: str, args: Sequence[str]) -> Outcome | None:
    """The allowlist's view of `name args`, or None when `name` is not on it."""
    if name in LITERAL_ARGS:
        if name == "printf" and args[:1] and args[0].startswith("-v"):
            return Outcome(("capped", "shell_structure", "printf -v assigns a shell variable"))
        return Outcome(None)
    special = _SPECIAL.get(name)
    if special is not None:
        return special(args)
    options = OPTIONS.get(name)
    if options is None:
        return None
    parsed = parse(name, args, options)
    reads = (*parsed.positional, *(value for _, value in parsed.values))
    if parsed.problem:
        if parsed.refused is not None and options.why.get(parsed.refused) == CODE:
            return Outcome(("capped", "shell_structure", parsed.problem), reads)
        return Outcome(review(parsed.problem), reads)
    check = _CHECKS.get(name)
    finding = check(parsed) if check is not None else None
    bounded = bool(BOUNDED_BY.get(name, frozenset()) & set(parsed.options))
    return Outcome(finding, reads, bounded)


def canonical_args(name: str, args: Sequence[str]) -> list[str]:
    """`args` with long options spelt in full (--outp=x -> --output=x) and short clusters split (-nro -> -n -r -o).

    The hard rules (writes onto protected paths) read these, so a user allowlist entry cannot hide a write.
    """
    options = OPTIONS.get(name)
    if options is None:
        return list(args)
    result: list[str] = []
    for index, arg in enumerate(args):
        if arg == "--":
            return [*result, *args[index:]]
        if arg.startswith("--"):
            written, eq, value = arg[2:].partition("=")
            resolved = resolve_long(written, options)
            result.append(arg if isinstance(resolved, tuple) else f"--{resolved}{eq}{value}")
        elif arg.startswith("-") and len(arg) > 2:
            for position, letter in enumerate(arg[1:], start=1):
                if f"-{letter}" not in options.flags:
                    result.append(f"-{arg[position:]}")
                    break
                result.append(f"-{letter}")
        else:
            result.append(arg)
    return result


# -- rules over the positionals ---------------------------------------------------------------------------------


def _no_positional(what: str) -> Callable[[Parsed], Finding | None]:
    def check(parsed: Parsed) -> Finding | None:
        return review(f"{what}: {parsed.positional[0]}", "not_allowlisted") if parsed.positional else None

    return check


def _max_positional(count: int, what: str) -> Callable[[Parsed], Finding | None]:
    def check(parsed: Parsed) -> Finding | None:
        return review(what, "writes_file") if len(parsed.positional) > count else None

    return check


def _date(parsed: Parsed) -> Finding | None:
    for word in parsed.positional:
        if not word.startswith("+"):
            return review(f"date {word} sets the clock", "not_allowlisted")
    return None


def _seconds(word: str) -> float | None:
    match = re.fullmatch(r"([0-9]*\.?[0-9]+)([smhd]?)", word)
    if not match:
        return None
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


def _sleep(parsed: Parsed) -> Finding | None:
    durations = [_seconds(word) for word in parsed.positional]
    if None in durations or sum(d or 0 for d in durations) > SLEEP_CAP_SECONDS:
        return review(f"sleep longer than {SLEEP_CAP_SECONDS:g} s holds a worker", "blocking")
    return None


def _vmstat(parsed: Parsed) -> Finding | None:
    if not parsed.positional:
        return None
    delay = _seconds(parsed.positional[0])
    count = parsed.positional[1] if len(parsed.positional) > 1 else ""
    if delay is None or not count.isdigit() or delay * int(count) > SLEEP_CAP_SECONDS:
        return review(f"vmstat with a delay runs longer than {SLEEP_CAP_SECONDS:g} s (or forever)", "blocking")
    return None


def _subcommand(allowed: frozenset[str], program: str) -> Callable[[Parsed], Finding | None]:
    def check(parsed: Parsed) -> Finding | None:
        if parsed.positional and parsed.positional[0] not in allowed:
            return review(f"{program} {parsed.positional[0]} is not a read-only subcommand", "not_allowlisted")
        return None

    return check


def _hostnamectl(parsed: Parsed) -> Finding | None:
    words = parsed.positional
    if not words or words == ("status",) or (words[0] in ("hostname", "chassis", "icon-name") and len(words) == 1):
        return None
    return review(f"hostnamectl {' '.join(words)} is not read-only", "not_allowlisted")


def _getent(parsed: Parsed) -> Finding | None:
    if parsed.positional and parsed.positional[0] in ("shadow", "gshadow"):
        return ("capped", "sensitive_path", f"getent {parsed.positional[0]} reads password hashes")
    return None


def _seq(parsed: Parsed) -> Finding | None:
    numbers = [_number(word) for word in parsed.positional]
    if None in numbers or not numbers:
        return None
    first, step, last = (1.0, 1.0, numbers[0]) if len(numbers) == 1 else (numbers[0], 1.0, numbers[-1])
    if len(numbers) == 3:
        step = numbers[1] or 1.0
    count = (float(last or 0) - float(first or 0)) / float(step)
    return review(f"seq prints more than {SEQ_CAP:,} lines", "blocking") if count > SEQ_CAP else None


def _number(word: str) -> float | None:
    try:
        return float(word)
    except ValueError:
        return None


def _lsof(parsed: Parsed) -> Finding | None:
    plus = [word for word in parsed.positional if word.startswith("+")]
    return review(f"lsof {plus[0]} is not an option known to be read-only") if plus else None


def _printenv(parsed: Parsed) -> Finding | None:
    hidden = [word for word in parsed.positional if word not in PLAIN_VARIABLES]
    if not parsed.positional or hidden:
        what = f"printenv {hidden[0]}" if hidden else "printenv"
        return ("capped", "environment", f"{what} shows the daemon's environment, which may hold API keys")
    return None


def _jq(parsed: Parsed) -> Finding | None:
    program = parsed.positional[0] if parsed.positional else ""
    if _JQ_ENVIRONMENT.search(program):
        return ("capped", "environment", "jq reads the daemon's environment ($ENV, env)")
    if _JQ_MODULES.search(program):
        return review("jq loads modules or data files named in the program", "option")
    return None


_CHECKS: dict[str, Callable[[Parsed], Finding | None]] = {
    "date": _date,
    "sleep": _sleep,
    "vmstat": _vmstat,
    "hostname": _no_positional("hostname NAME sets the host name"),
    "mount": _no_positional("mount with an argument mounts a file system"),
    "uniq": _max_positional(1, "uniq writes its second file argument"),
    "systemctl": _subcommand(_SYSTEMCTL_READ, "systemctl"),
    "timedatectl": _subcommand(_TIMEDATECTL_READ, "timedatectl"),
    "hostnamectl": _hostnamectl,
    "printenv": _printenv,
    "jq": _jq,
    "lsof": _lsof,
    "getent": _getent,
    "seq": _seq,
}


# -- programs with their own grammar ----------------------------------------------------------------------------


def _ps(args: Sequence[str]) -> Outcome:
    index = 0
    while index < len(args):
        word = args[index]
        index += 1
        if word.startswith("--"):
            name, eq, _ = word.partition("=")
            if name in _PS_LONG_VALUED:
                index += 0 if eq else 1
            elif name not in _PS_LONG:
                return Outcome(review(f"ps {name} is not an option known to be read-only"))
            continue
        unix = word.startswith("-")
        letters = word[1:] if unix else word
        flags, valued = (_PS_UNIX_FLAGS, _PS_UNIX_VALUED) if unix else (_PS_BSD_FLAGS, _PS_BSD_VALUED)
        if not unix and word.isdigit():
            continue  # ps 1234: a process id
        for position, letter in enumerate(letters):
            if not unix and letter == "e":
                return Outcome(("capped", "environment", f"ps {word}: e shows every process's environment"))
            if letter in flags:
                continue
            if letter not in valued:
                return Outcome(review(f"ps {word}: {letter} is not an option known to be read-only"))
            value = letters[position + 1 :] or (args[index] if index < len(args) else "")
            index += 0 if letters[position + 1 :] else 1
            # ps -auxe: with no user "xe", procps reads the word again as BSD letters (aux + e)
            if unix and letter in "uU" and value and set(value) <= _PS_BSD_FLAGS | {"e"} and "e" in value:
                return Outcome(("capped", "environment", f"ps {word} can be read as BSD letters with e"))
            break
    return Outcome(None)


def _find(args: Sequence[str]) -> Outcome:
    index = 0
    while index < len(args):
        word = args[index]
        index += 1
        if word in FIND_ACTIONS:
            return Outcome(None)  # judged (capped) by the walker, with what they run
        if word in _FIND_VALUED:
            index += 1
        elif word.startswith("-newer") and len(word) == 8:
            index += 1  # -newerXY reference
        elif re.fullmatch(r"-O[0-9]", word):
            continue
        elif word.startswith("-") and word not in _FIND_FLAGS:
            return Outcome(review(f"find {word} is not a predicate known to be read-only"))
    return Outcome(None)


def _ip(args: Sequence[str]) -> Outcome:
    words = list(args)
    while words and words[0].startswith("-"):
        option = words[0][1:] if words[0].startswith("--") else words[0]
        if option not in _IP_OPTIONS:
            return Outcome(review(f"ip {words[0]} is not an option known to be read-only"))
        words.pop(0)
    if not words:
        return Outcome(None)
    if words[0] not in _IP_OBJECTS:
        return Outcome(review(f"ip {words[0]} is not an object ip only shows", "not_allowlisted"))
    rest = words[1:]
    if rest and rest[0] not in ("show", "list", "ls", "lst"):
        return Outcome(review(f"ip {words[0]} {rest[0]} is not read-only", "not_allowlisted"))
    if any(word.startswith("-") for word in rest):
        return Outcome(review("ip options after the object are not judged", "not_allowlisted"))
    return Outcome(None)


def _env(args: Sequence[str]) -> Outcome:
    if not args or all(arg in ("-0", "--null") for arg in args):
        return Outcome(("capped", "environment", "env shows the daemon's environment, which may hold API keys"))
    return Outcome(("capped", "shell_structure", "env: wrapper runs another command"))


_SPECIAL: dict[str, Callable[[Sequence[str]], Outcome]] = {
    "ps": _ps,
    "find": _find,
    "ip": _ip,
    "env": _env,
}

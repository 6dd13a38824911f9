"""Positive option grammars: which options of a program are known to be read-only, matched by its own rules.

A spec is written as one string of tokens, as a program's --help shows them:
    -abc      short flags without a value (a cluster like -nr is several of them)
    -k:       a short option with a value (-k2, -k 2)
    -I::      a short option whose value can only be attached (-I, -Iseconds)
    --all     a long option without a value
    --key=    a long option with a value (--key=2, --key 2)
    --color[=]  a long option whose value can only follow "=" (--color, --color=never)
    --arg==   a long option with two values (jq --arg NAME VALUE)
Everything else the program accepts is refused; `known` lists the program's other long options (the dangerous
ones included) so that an abbreviation is resolved against the program's full list, as getopt_long does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

_NEGATIVE_NUMBER = re.compile(r"-[0-9]+")


@dataclass(frozen=True)
class OptionSpec:
    """The read-only options of one program, and the program's full list of long options."""

    flags: frozenset[str] = frozenset()  # "-n", "--all"
    valued: Mapping[str, int] = field(default_factory=dict)  # option -> how many values it takes
    attached: frozenset[str] = frozenset()  # options whose value may only be attached ("-I", "--color")
    known_long: tuple[str, ...] = ()  # every long option the program has, allowed or not, without "--"
    why: Mapping[str, str] = field(default_factory=dict)  # what a refused option does, for the reason
    numeric: bool = False  # -5 is an option (head/tail lines, journalctl boot offsets)
    abbreviations: bool = True  # GNU getopt_long: any unambiguous prefix of a long option matches it


@dataclass(frozen=True)
class Parsed:
    """A command line split the way the program reads it, or the first option that keeps it from auto-running."""

    options: tuple[str, ...] = ()  # canonical names, in order ("--output" for "--outp")
    values: tuple[tuple[str, str], ...] = ()  # (option, value) pairs
    positional: tuple[str, ...] = ()
    problem: str | None = None
    refused: str | None = None  # the canonical name of the refused option, when one was


def spec(
    allowed: str,
    known: str = "",
    why: Mapping[str, str] | None = None,
    numeric: bool = False,
    abbreviations: bool = True,
) -> OptionSpec:
    """An OptionSpec from the token string described in the module docstring."""
    flags: set[str] = set()
    valued: dict[str, int] = {}
    attached: set[str] = set()
    long_names: list[str] = []
    for token in allowed.split():
        if token.startswith("--"):
            name = re.sub(r"(\[=\]|==|=)$", "", token)
            long_names.append(name[2:])
            if token.endswith("[=]"):
                attached.add(name)
            elif token.endswith("=="):
                valued[name] = 2
            elif token.endswith("="):
                valued[name] = 1
            else:
                flags.add(name)
        elif token.endswith(":"):
            if len(token.rstrip(":")) != 2 or len(token) > 4:
                raise ValueError(f"one short option per valued token: {token}")
            if token.endswith("::"):
                attached.add(token[:2])
            else:
                valued[token[:2]] = 1
        else:
            flags.update(f"-{letter}" for letter in token[1:])
    refused = [name[2:] for name in (why or {}) if name.startswith("--")]
    every = dict.fromkeys([*long_names, *refused, *known.split()])
    return OptionSpec(
        flags=frozenset(flags),
        valued=MappingProxyType(valued),
        attached=frozenset(attached),
        known_long=tuple(every),
        why=MappingProxyType(dict(why or {})),
        numeric=numeric,
        abbreviations=abbreviations,
    )


def resolve_long(name: str, options: OptionSpec) -> str | tuple[str, ...]:
    """The long option `name` (without "--") stands for, or every candidate when it is unknown or ambiguous."""
    if name in options.known_long or not options.abbreviations:
        return name
    candidates = tuple(known for known in options.known_long if known.startswith(name))
    return candidates[0] if len(candidates) == 1 else candidates


def _refusal(program: str, written: str, canonical: str, options: OptionSpec) -> str:
    shown = written if written == canonical else f"{written} (= {canonical})"
    return f"{program} {shown}: {options.why.get(canonical, 'is not an option known to be read-only')}"


@dataclass
class _Reader:
    """One pass over a program's arguments: the options seen so far (canonical names), their values, the operands."""

    program: str
    args: Sequence[str]
    options: OptionSpec
    index: int = 0  # the next argument to read
    seen: list[str] = field(default_factory=list)
    values: list[tuple[str, str]] = field(default_factory=list)
    positional: list[str] = field(default_factory=list)

    def result(self, problem: str | None = None, refused: str | None = None) -> Parsed:
        return Parsed(tuple(self.seen), tuple(self.values), tuple(self.positional), problem, refused)

    def take(self, option: str, count: int) -> str | None:
        """Read `count` values of `option` from the following arguments; the problem when they are not there."""
        taken = self.args[self.index : self.index + count]
        if len(taken) < count:
            return f"{self.program} {option} needs a value"
        # a value that looks like an option: if the spec were wrong about the value, it would be an option
        for value in taken:
            if value.startswith("-") and value != "-" and not _NEGATIVE_NUMBER.fullmatch(value):
                return f"{self.program} {option} is followed by {value}, which could be read as an option"
        self.values.extend((option, value) for value in taken)
        self.index += count
        return None

    def long_option(self, arg: str) -> Parsed | None:
        """Read one "--name[=value]"; the refusal when it is not known to be read-only."""
        program, options = self.program, self.options
        name, eq, value = arg[2:].partition("=")
        resolved = resolve_long(name, options)
        if isinstance(resolved, tuple):
            if resolved:
                shown = ", ".join(f"--{candidate}" for candidate in resolved[:4])
                return self.result(f"{program} --{name} is ambiguous ({shown}...)")
            return self.result(f"{program} --{name} is not an option known to be read-only")
        canonical = f"--{resolved}"
        self.seen.append(canonical)
        if canonical in options.flags and not eq:
            return None
        if canonical in options.attached:
            if eq:
                self.values.append((canonical, value))
            return None
        count = options.valued.get(canonical)
        if count is None:
            return self.result(_refusal(program, f"--{name}", canonical, options), canonical)
        if eq:
            self.values.append((canonical, value))
            count -= 1
        problem = self.take(canonical, count) if count else None
        return self.result(problem) if problem else None

    def short_options(self, arg: str) -> Parsed | None:
        """Read one "-abc" cluster (its last option may carry a value); the refusal when one is not read-only."""
        options = self.options
        cluster = arg[1:]
        if options.numeric and cluster.isdigit():
            self.seen.append(arg)
            return None
        for position, letter in enumerate(cluster):
            option = f"-{letter}"
            self.seen.append(option)
            rest = cluster[position + 1 :]
            if option in options.flags:
                continue
            if option in options.attached:
                if rest:
                    self.values.append((option, rest))
                return None
            if option not in options.valued:
                return self.result(_refusal(self.program, option, option, options), option)
            if rest:
                self.values.append((option, rest))
                return None
            problem = self.take(option, options.valued[option])
            return self.result(problem) if problem else None
        return None


def parse(program: str, args: Sequence[str], options: OptionSpec) -> Parsed:
    """Split `args` as `program` would; `problem` names the first option that is not known to be read-only."""
    reader = _Reader(program, args, options)
    only_positional = False
    while reader.index < len(args):
        arg = args[reader.index]
        reader.index += 1
        if only_positional or arg == "-" or not arg.startswith("-"):
            reader.positional.append(arg)
        elif arg == "--":
            only_positional = True
        else:
            refusal = reader.long_option(arg) if arg.startswith("--") else reader.short_options(arg)
            if refusal is not None:
                return refusal
    return reader.result()


def abbreviations(option: str, known: Sequence[str]) -> list[str]:
    """Every prefix of the long `option` ("--output") that getopt_long would resolve to it, shortest last."""
    name = option[2:]
    prefixes = []
    for length in range(len(name), 0, -1):
        prefix = name[:length]
        if length == len(name) or [other for other in known if other.startswith(prefix)] == [name]:
            prefixes.append(f"--{prefix}")
        else:
            break
    return prefixes

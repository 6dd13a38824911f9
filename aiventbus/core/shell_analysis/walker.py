"""The walk over one command's bashlex tree (and the strings nested in it), collecting findings."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from typing import Any

import bashlex

from aiventbus.core.shell_analysis import allowlist
from aiventbus.core.shell_analysis.argument_checks import blocklist_findings, git_finding, read_finding, write_findings
from aiventbus.core.shell_analysis.command_text import has_brace_expansion, normalize_text
from aiventbus.core.shell_analysis.commands import (
    CODE_RUNNERS,
    FIND_NAME_FILTERS,
    FIND_UNSAFE,
    GLOB_SUSPECTS,
    SHELL_STATE,
    SHELLS,
    TAR_CODE_OPTIONS,
    TAR_CODE_PREFIXES,
    WRAPPERS,
    base_name,
    is_blocked_name,
    is_known,
    matches_entry,
)
from aiventbus.core.shell_analysis.facts import LEVEL_RANK, MAX_DEPTH, Level, ShellFacts, ShellJudgement
from aiventbus.core.shell_analysis.paths import (
    HARMLESS_DEVICES,
    endless,
    judged_paths,
    normalize_path,
    reads_sensitive,
    root_like,
    write_verdict,
)


class Analysis:
    """Walks one command (and the strings nested in it), collecting findings; the worst one is the judgement."""

    def __init__(self, facts: ShellFacts, cwd: str | None = None) -> None:
        self.facts = facts
        self.findings: list[tuple[Level, str, str]] = []
        self.commands: list[str] = []
        self.cwd = cwd or facts.home  # followed through cd/pushd so later relative paths are judged where they land

    def path(self, raw: str) -> str:
        return normalize_path(raw, self.facts.home, self.cwd)

    def change_directory(self, name: str, args: Sequence[str]) -> None:
        positional = [arg for arg in args if not arg.startswith("-") or arg == "-"]
        if name == "popd" or positional[:1] == ["-"]:
            self.cwd = "/"  # unknown: assume the worst place for what follows
        else:
            self.cwd = self.path(positional[0]) if positional else self.facts.home

    def add(self, level: Level, rule: str, reason: str) -> None:
        self.findings.append((level, rule, reason))

    def judgement(self) -> ShellJudgement:
        names = tuple(self.commands)
        if not self.findings:
            shown = ", ".join(dict.fromkeys(names)) or "nothing"
            return ShellJudgement("safe", "allowlist", f"every command is on the allowlist ({shown})", names)
        worst = max(self.findings, key=lambda finding: LEVEL_RANK[finding[0]])
        return ShellJudgement(worst[0], worst[1], worst[2], names)

    # -- whole strings -----------------------------------------------------------------------------------------

    def run(self, command: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            self.add("capped", "shell_structure", "shells nested too deep to judge")
            return
        if not command.strip():
            self.add("capped", "parse", "empty command")
            return
        if "((" in command or "$[" in command:
            self.add("capped", "shell_structure", "arithmetic evaluation can run substitutions")
        if has_brace_expansion(command):
            self.add("capped", "shell_structure", "brace expansion makes words the text does not show")
        if len(command) > self.facts.max_length:
            self.add("capped", "length", f"command longer than {self.facts.max_length} characters")
        odd = [char for char in command if not (char.isascii() and (char.isprintable() or char in "\n\t"))]
        if odd:
            self.add("capped", "shell_structure", f"non-ASCII or control character {odd[0]!r} in the command")
            normalized = normalize_text(command)
            if normalized != command:
                self._blocklist_only(normalized, depth)
        try:
            nodes = bashlex.parse(command)
        except Exception as error:  # bashlex raises several types, NotImplementedError among them
            self.add("capped", "parse", f"the shell parser cannot judge it ({type(error).__name__})")
            self._scan_tokens(command)
            return
        for node in nodes:
            self.node(node, depth)
        if len(self.commands) > self.facts.max_commands:
            self.add("capped", "length", f"more than {self.facts.max_commands} commands in one line")

    def _blocklist_only(self, command: str, depth: int) -> None:
        inner = Analysis(self.facts, self.cwd)
        inner.run(command, depth + 1)
        for level, rule, reason in inner.findings:
            if level == "blocked":
                self.add(level, rule, f"{reason} (once spaces and look-alike characters are normalised)")

    def _scan_tokens(self, command: str) -> None:
        """Unparsable text: still deny it when a blocklisted program name appears as a token."""
        for token in re.split(r"[\s;&|()`$<>{}'\"\\]+", command):
            if token and is_blocked_name(base_name(token)):
                self.add("blocked", "blocklist", f"{base_name(token)} appears in a command the parser cannot read")
                return

    # -- the tree ----------------------------------------------------------------------------------------------

    def node(self, node: Any, depth: int) -> None:
        kind = getattr(node, "kind", "")
        if kind == "command":
            self.command(node, depth)
        elif kind in ("list", "pipeline"):
            for part in node.parts:
                self.node(part, depth)
        elif kind == "compound":
            for part in node.list:
                self.node(part, depth)
            for part in getattr(node, "redirects", []):
                self.node(part, depth)
        elif kind in ("if", "for", "while", "until"):
            self.add("capped", "shell_structure", f"a {kind} block")
            for part in node.parts:
                self.node(part, depth)
        elif kind == "function":
            self.function(node, depth)
        elif kind == "word":
            self.word(node, depth)
        elif kind == "redirect":
            self.redirect(node, None, depth)
        elif kind in ("reservedword", "operator", "pipe"):
            return
        else:
            self.add("capped", "parse", f"shell construct {kind or type(node).__name__} is not judged")

    def function(self, node: Any, depth: int) -> None:
        name = node.name.word if getattr(node, "name", None) is not None else ""
        self.add("capped", "shell_structure", f"defines a shell function {name}")
        inner = Analysis(self.facts, self.cwd)
        inner.node(node.body, depth)
        self.findings.extend(inner.findings)
        if name and name in inner.commands:
            self.add("blocked", "blocklist", f"function {name} calls itself (fork bomb shape)")
        self.commands.extend(inner.commands)

    def word(self, node: Any, depth: int) -> bool:
        """Walk a word's expansions; True if its value is only known at run time."""
        dynamic = False
        for part in getattr(node, "parts", []) or []:
            kind = part.kind
            if kind in ("commandsubstitution", "processsubstitution"):
                self.add("capped", "shell_structure", f"{kind.replace('substitution', ' substitution')} runs a command")
                self.node(part.command, depth)
                dynamic = True
            elif kind == "parameter":
                self.add("capped", "shell_structure", f"expansion of ${part.value} is only known at run time")
                dynamic = True
            elif kind == "tilde":
                continue
            else:
                self.add("capped", "parse", f"word part {kind} is not judged")
                dynamic = True
        return dynamic

    def redirect(self, node: Any, command_name: str | None, depth: int) -> None:
        kind = node.type
        target = node.output
        if kind in ("<<", "<<-"):
            self.add("capped", "shell_structure", "here-document")
            heredoc = getattr(node, "heredoc", None)
            if heredoc is not None and command_name in SHELLS:
                body = heredoc.value.rsplit("\n", 1)[0]
                self.run(body, depth + 1)
            return
        if isinstance(target, int) or target is None:
            return
        if self.word(target, depth):
            return
        if kind == "<<<":
            self.add("capped", "shell_structure", "here-string")
            if command_name in SHELLS:
                self.run(target.word, depth + 1)
            return
        if kind == ">&" and target.word.isdigit():
            return
        literal = self.path(target.word)
        if literal in HARMLESS_DEVICES or literal.startswith("/dev/fd/"):
            if kind == "<" and endless(literal):
                self.add("review", "blocking", f"reads {literal}, which may never end")
            return
        for path in judged_paths(literal, self.facts):
            if kind == "<":
                if reads_sensitive(path, self.facts):
                    self.add("capped", "sensitive_path", f"reads {path}, a sensitive path")
                elif endless(path):
                    self.add("review", "blocking", f"reads {path}, which may never end")
                continue
            verdict = write_verdict(path, self.facts)
            if verdict is not None:
                self.add(*verdict)
            else:
                self.add("review", "writes_file", f"redirect writes {path}")

    def command(self, node: Any, depth: int) -> None:
        words: list[str] = []
        first_dynamic = False
        redirects = []
        for part in node.parts:
            if part.kind == "assignment":
                self.add("capped", "shell_structure", f"environment prefix {part.word.split('=', 1)[0]}=")
                self.word(part, depth)
            elif part.kind == "word":
                dynamic = self.word(part, depth)
                if not words:
                    first_dynamic = dynamic
                words.append(part.word)
            elif part.kind == "redirect":
                redirects.append(part)
            else:
                self.node(part, depth)
        name = base_name(words[0]) if words else None
        for redirect in redirects:
            self.redirect(redirect, name, depth)
        if not words:
            return
        if first_dynamic:
            self.add("capped", "shell_structure", "the command name is only known at run time")
        self.simple(words, depth)

    # -- one simple command --------------------------------------------------------------------------------------

    def simple(self, words: Sequence[str], depth: int) -> None:
        raw, args = words[0], list(words[1:])
        name = base_name(raw)
        self.commands.append(name)
        if name in ("cd", "pushd", "popd"):
            self.change_directory(name, args)
        if "/" in raw:
            self.add("capped", "shell_structure", f"runs a program by path ({raw}), judged as {name}")
        if not re.fullmatch(r"[A-Za-z0-9_.+:\[-]+", name):
            self.add("capped", "shell_structure", f"unusual command name {name!r}")
            self._brace_names(name)
        if any(char in raw for char in "*?[") and name != "[":
            for candidate in sorted(GLOB_SUSPECTS):
                if fnmatch.fnmatchcase(candidate, name):  # /???/r? can run rm: judge it as each program it matches
                    self.findings += blocklist_findings(candidate, args, self.facts, self.cwd)
                    self.findings += write_findings(candidate, args, self.facts, self.cwd)
        for entry in self.facts.blocklist:
            if matches_entry(words, entry):
                self.add("blocked", "blocklist", f"matches the blocklist entry {' '.join(entry)!r}")
        outcome = allowlist.judge(name, args)
        self.findings += blocklist_findings(name, args, self.facts, self.cwd)
        self.findings += write_findings(name, args, self.facts, self.cwd)
        read = read_finding(name, args, self.facts, self.cwd, outcome)
        if read is not None:
            self.add(*read)
        user_allowed = any(matches_entry(words, entry) for entry in self.facts.allowlist)
        if name in SHELL_STATE:
            self.add("capped", "shell_structure", f"{name} changes how later commands are found or run")
            return
        finding = outcome.finding if outcome is not None else None
        if finding is not None and finding[0] == "review" and user_allowed:
            finding = None  # the user's allowlist entry lifts the allowlist rule, never a capped shape
        if name == "env" and finding is not None and finding[1] == "environment":
            self.add(*finding)
            return
        if name in SHELLS or name in CODE_RUNNERS or name in WRAPPERS or name in ("git", "tar", "find"):
            self.runner(name, args, depth, user_allowed)
            if name == "find" and finding is not None:
                self.add(*finding)
            return
        if outcome is None and not user_allowed:
            self.add("review", "not_allowlisted", f"{name} is not on the allowlist")
        elif finding is not None:
            self.add(*finding)

    def _brace_names(self, word: str) -> None:
        for token in re.split(r"[{},]+", word):
            if token and is_blocked_name(base_name(token)):
                self.add("blocked", "blocklist", f"{token} hidden in a brace expansion")

    def runner(self, name: str, args: Sequence[str], depth: int, user_allowed: bool) -> None:
        """Shells, interpreters, wrappers and exec-capable tools: recurse into what they run, cap the rest."""
        if name == "git":
            finding = git_finding(args, user_allowed)
            if finding is not None:
                self.add(*finding)
            return
        if name == "find":
            self._find(args, depth)
            return
        if name == "tar":
            bad = [arg for arg in args if arg.startswith(TAR_CODE_PREFIXES) or arg in TAR_CODE_OPTIONS]
            if bad:
                self.add("capped", "shell_structure", f"tar {bad[0]} runs a program")
            elif not user_allowed:
                self.add("review", "not_allowlisted", "tar is not on the allowlist")
            return
        if not user_allowed:
            what = "wrapper runs another command" if name in WRAPPERS else "runs code it is given"
            self.add("capped", "shell_structure", f"{name}: {what}")
        if name in SHELLS or name in ("eval", "source", "."):
            self._nested_script(name, args, depth)
        elif name in CODE_RUNNERS and name not in WRAPPERS:
            for arg in args:
                for literal in re.findall(r"'([^']*)'|\"([^\"]*)\"", arg):
                    text = literal[0] or literal[1]
                    if text.strip():
                        self._blocklist_only(text, depth)
        if name in WRAPPERS:
            self._wrapped(name, args, depth)

    def _nested_script(self, name: str, args: Sequence[str], depth: int) -> None:
        if name == "eval":
            self.run(" ".join(args), depth + 1)
            return
        for index, arg in enumerate(args):
            if arg.startswith("-") and not arg.startswith("--") and "c" in arg[1:]:
                rest = [a for a in args[index + 1 :] if not a.startswith("-")]
                if rest:
                    self.run(rest[0], depth + 1)
                return

    def _wrapped(self, name: str, args: Sequence[str], depth: int) -> None:
        """The command a wrapper runs, found by trying each non-option word until a known program turns up."""
        if name == "env":
            for index, arg in enumerate(args):
                if arg in ("-S", "--split-string") and index + 1 < len(args):
                    self.run(args[index + 1], depth + 1)
                elif arg.startswith("--split-string="):
                    self.run(arg.partition("=")[2], depth + 1)
        for arg in args:
            if any(char.isspace() for char in arg):  # watch, ssh, parallel... hand such words to a shell
                self._blocklist_only(arg, depth)
        for index, arg in enumerate(args):
            if arg.startswith("-") or "=" in arg or re.fullmatch(r"[0-9.]+[smhd]?", arg):
                continue
            inner = Analysis(self.facts, self.cwd)
            inner.simple(args[index:], depth + 1)
            for finding in inner.findings:
                if finding[0] == "blocked":
                    self.add(*finding)
            self.commands.extend(inner.commands)
            if is_known(base_name(arg)):
                return

    def _find(self, args: Sequence[str], depth: int) -> None:
        starts = [arg for arg in args if not arg.startswith("-")][:1] or ["."]
        filtered = any(  # a named selection is not a wipe-out; -name '*' is no selection
            arg in FIND_NAME_FILTERS and args[index + 1 : index + 2] not in (["*"], [".*"], ["*.*"])
            for index, arg in enumerate(args)
        )
        from_root = not filtered and root_like(self.path(starts[0]), self.facts.home)
        for index, arg in enumerate(args):
            if arg not in FIND_UNSAFE:
                continue
            self.add("capped", "shell_structure", f"find {arg} runs or writes")
            inner = list(args[index + 1 :]) if arg in ("-exec", "-execdir", "-ok", "-okdir") else []
            for end, word in enumerate(inner):
                if word in (";", "+"):
                    inner = inner[:end]
                    break
            if inner:
                self.simple(inner, depth + 1)
            deletes = arg == "-delete" or (inner and base_name(inner[0]) in ("rm", "shred", "unlink"))
            if deletes and from_root:
                self.add("blocked", "blocklist", f"find {starts[0]} {arg} deletes under / or home")

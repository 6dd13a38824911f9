"""The option grammar on its own: GNU abbreviations, clusters, values, and the allowlist's per-program rules."""

from __future__ import annotations

import pytest

from aiventbus.core.shell_analysis import ShellFacts, analyze
from aiventbus.core.shell_analysis.allowlist import canonical_args, judge
from aiventbus.core.shell_analysis.options import abbreviations, parse, resolve_long, spec
from aiventbus.core.shell_analysis.programs import OPTIONS

SORTISH = spec("-nr -k: -S: -I:: --numeric-sort --key= --color[=] --arg==", why={"-o": "writes", "--output": "writes"},
               known="outline")  # fmt: skip
HOME = "/home/alice"
FACTS = ShellFacts(home=HOME, protected_paths=(f"{HOME}/.local/share/aiventbus",))


@pytest.mark.parametrize(
    ("name", "expected"),
    [("numeric-sort", "numeric-sort"), ("num", "numeric-sort"), ("n", "numeric-sort"), ("outp", "output"),
     ("out", ("output", "outline")), ("o", ("output", "outline")), ("frob", ())],
)  # fmt: skip
def test_resolve_long_follows_getopt(name: str, expected: str | tuple[str, ...]) -> None:
    assert resolve_long(name, SORTISH) == expected


@pytest.mark.parametrize(
    ("args", "positional", "values", "problem"),
    [
        (["-nr", "f"], ("f",), (), None),
        (["-S1K", "f"], ("f",), (("-S", "1K"),), None),
        (["-S", "1K", "f"], ("f",), (("-S", "1K"),), None),
        (["-nrk2", "f"], ("f",), (("-k", "2"),), None),
        (["--key=2", "--key", "3"], (), (("--key", "2"), ("--key", "3")), None),
        (["--ke", "3"], (), (("--key", "3"),), None),
        (["-I", "f"], ("f",), (), None),
        (["-Ix", "f"], ("f",), (("-I", "x"),), None),
        (["--color", "f"], ("f",), (), None),
        (["--color=never"], (), (("--color", "never"),), None),
        (["--arg", "a", "b", "f"], ("f",), (("--arg", "a"), ("--arg", "b")), None),
        (["--", "-o", "--output"], ("-o", "--output"), (), None),
        (["-", "f"], ("-", "f"), (), None),
        (["-k", "-2"], (), (("-k", "-2"),), None),
        (["-no", "x"], (), (), "t -o: writes"),
        (["--outp=x"], (), (), "t --outp (= --output): writes"),
        (["--out=x"], (), (), "t --out is ambiguous (--output, --outline...)"),
        (["--frob"], (), (), "t --frob is not an option known to be read-only"),
        (["-x"], (), (), "t -x: is not an option known to be read-only"),
        (["-k"], (), (), "t -k needs a value"),
        (["-k", "-o"], (), (), "t -k is followed by -o, which could be read as an option"),
        (["--numeric-sort=1"], (), (), "t --numeric-sort: is not an option known to be read-only"),
    ],
)
def test_parse(args: list[str], positional: tuple[str, ...], values: tuple[tuple[str, str], ...],
               problem: str | None) -> None:  # fmt: skip
    parsed = parse("t", args, SORTISH)
    assert parsed.problem == problem
    if problem is None:
        assert (parsed.positional, parsed.values) == (positional, values)


def test_a_malformed_spec_token_is_refused() -> None:
    with pytest.raises(ValueError, match="-nrk:"):
        spec("-nrk:")


def test_abbreviations_stop_at_the_shortest_unambiguous_prefix() -> None:
    known = OPTIONS["sort"].known_long
    assert abbreviations("--output", known) == ["--output", "--outpu", "--outp", "--out", "--ou", "--o"]
    assert abbreviations("--compress-program", known)[-1] == "--co"
    assert abbreviations("--check", known)[-1] == "--ch"


def test_canonical_args_spell_out_what_a_user_allowlist_entry_would_hide() -> None:
    assert canonical_args("sort", ["--outp=/etc/x", "-nro", "/etc/y", "--", "--outp"]) == [
        "--output=/etc/x", "-n", "-r", "-o", "/etc/y", "--", "--outp"
    ]  # fmt: skip
    allowing = ShellFacts(home=HOME, protected_paths=FACTS.protected_paths, allowlist=(("sort",),))
    assert analyze("sort --outp=/etc/passwd x", allowing).level == "blocked"
    assert analyze("sort -nro/etc/passwd x", allowing).level == "blocked"
    assert analyze("sort -nr x", allowing).level == "safe"
    assert analyze("sort --compress-prog=sh x", allowing).level == "capped"
    assert analyze("sort --frob x", allowing).level == "safe"  # the user's entry lifts the allowlist rule
    environment = ShellFacts(home=HOME, allowlist=(("printenv",), ("ps",)))
    assert analyze("printenv OPENAI_API_KEY", environment).rule == "environment"
    assert analyze("ps auxe", environment).rule == "environment"


@pytest.mark.parametrize(
    ("command", "level", "rule"),
    [
        ("ps aux", "safe", "allowlist"), ("ps -ef", "safe", "allowlist"), ("ps axo pid,user", "safe", "allowlist"),
        ("ps -u alice", "safe", "allowlist"), ("ps 1234", "safe", "allowlist"),
        ("ps e", "capped", "environment"), ("ps auxeww", "capped", "environment"),
        ("ps -auxe", "capped", "environment"), ("ps --frob", "review", "option"), ("ps -Q", "review", "option"),
        ("find . -name x -type f", "safe", "allowlist"), ("find . -newermt 2020-01-01", "safe", "allowlist"),
        ("find . -fls x", "capped", "shell_structure"), ("find . -frob", "review", "option"),
        ("ip -br a", "safe", "allowlist"), ("ip -b x", "review", "option"), ("ip netns exec x id", "review",
                                                                             "not_allowlisted"),
        ("ip addr flush dev eth0", "review", "not_allowlisted"), ("date +%F", "safe", "allowlist"),
        ("date 0101", "review", "not_allowlisted"), ("sleep 10", "safe", "allowlist"),
        ("sleep 10.5", "review", "blocking"), ("sleep 1x", "review", "blocking"), ("vmstat 2 5", "safe", "allowlist"),
        ("vmstat 1 11", "review", "blocking"), ("seq 10", "safe", "allowlist"), ("seq 1 1000000", "review",
                                                                                 "blocking"),
        ("printenv PATH", "safe", "allowlist"), ("printenv OPENAI_API_KEY", "capped", "environment"),
        ("printf -v PATH x", "capped", "shell_structure"), ("getent passwd alice", "safe", "allowlist"),
        ("getent shadow", "capped", "sensitive_path"), ("jq --rawfile k ~/.ssh/id_rsa -n '$k'", "capped",
                                                         "sensitive_path"),
        ("jq -n 'import \"x\" as $x; $x'", "review", "option"), ("lsof +r 1", "review", "option"),
        ("systemctl show ssh", "safe", "allowlist"), ("systemctl set-property x", "review", "not_allowlisted"),
        ("hostnamectl hostname", "safe", "allowlist"), ("hostnamectl hostname x", "review", "not_allowlisted"),
        ("git status", "review", "repo_config"), ("head -c 8 /dev/zero", "safe", "allowlist"),
        ("head /dev/zero", "review", "blocking"), ("od -N 8 /dev/urandom", "safe", "allowlist"),
        ("cat < /dev/zero", "review", "blocking"), ("cat < /dev/null", "safe", "allowlist"),
        ("wc -c /dev/zero", "review", "blocking"),
        ("who ~/.ssh/id_rsa", "capped", "sensitive_path"), ("users /proc/self/cwd/.netrc", "capped", "sensitive_path"),
        ("ls ~/.local/share/aiventbus", "safe", "allowlist"), ("wc -c ~/.local/share/aiventbus/api-token", "capped",
                                                                 "sensitive_path"),
    ],
)  # fmt: skip
def test_program_rules(command: str, level: str, rule: str) -> None:
    judgement = analyze(command, FACTS)
    assert (judgement.level, judgement.rule) == (level, rule), judgement


def test_judge_is_none_off_the_allowlist() -> None:
    assert judge("frobnicate", ["-x"]) is None
    outcome = judge("grep", ["-f/tmp/patterns", "x", "file"])
    assert outcome is not None and outcome.finding is None
    assert "/tmp/patterns" in outcome.reads


def test_every_spec_parses_its_own_long_options() -> None:
    for program, options in OPTIONS.items():
        for name in options.known_long:
            assert resolve_long(name, options) == name, (program, name)

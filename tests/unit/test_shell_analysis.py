"""The shell analysis on its own: path rules, user allow/blocklist entries, limits, directory tracking."""

from __future__ import annotations

import random

import pytest

from aiventbus.core.shell_analysis import (
    ShellFacts,
    analyze,
    normalize_path,
    path_contains,
    path_within,
    root_like,
    split_entries,
)

HOME = "/home/alice"
DATA = f"{HOME}/.local/share/aiventbus"
FACTS = ShellFacts(home=HOME, protected_paths=(DATA, f"{HOME}/.config/aiventbus"))
NBSP = "\u00a0"


def facts(**changes: object) -> ShellFacts:
    values: dict[str, object] = {"home": HOME, "protected_paths": FACTS.protected_paths, **changes}
    return ShellFacts(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "cwd", "expected"),
    [
        ("~", None, HOME),
        ("~/.ssh/id_rsa", None, f"{HOME}/.ssh/id_rsa"),
        ("$HOME/.ssh", None, f"{HOME}/.ssh"),
        ("${HOME}", None, HOME),
        ("~root/x", None, "/root/x"),
        ("~bob/.ssh", None, "/home/bob/.ssh"),
        ("notes.txt", None, f"{HOME}/notes.txt"),
        ("notes.txt", "/tmp", "/tmp/notes.txt"),
        ("../../etc/./passwd", None, "/etc/passwd"),
        ("//etc//shadow", None, "/etc/shadow"),
        ("/", None, "/"),
    ],
)
def test_normalize_path(raw: str, cwd: str | None, expected: str) -> None:
    assert normalize_path(raw, HOME, cwd) == expected


@pytest.mark.parametrize(
    ("path", "target", "within", "contains"),
    [
        ("/home/alice/.ssh/id_rsa", "/home/alice/.ssh", True, True),
        ("/home/alice/.ssh", "/home/alice/.ssh", True, True),
        ("/home/alice", "/home/alice/.ssh", False, True),
        ("/home/alice/.ss*/id_rsa", "/home/alice/.ssh", True, True),
        ("/*/shadow", "/etc/shadow", True, True),
        ("/home/alice/docs", "/home/alice/.ssh", False, False),
        ("/proc/1/environ", "/proc/*/environ", True, True),
    ],
)
def test_path_within_and_contains(path: str, target: str, within: bool, contains: bool) -> None:
    assert path_within(path, target) is within
    assert path_contains(path, target) is contains


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/", True), ("/etc", True), ("/*", True), (HOME, True), ("/home", True), (f"{HOME}/*", True),
     (f"{HOME}/.*", True), (f"{HOME}/project", False), ("/tmp/build", False), (f"{HOME}/a/*", False)],
)  # fmt: skip
def test_root_like(path: str, expected: bool) -> None:
    assert root_like(path, HOME) is expected


def test_user_allowlist_entries_lift_only_the_allowlist_rule() -> None:
    allowing = facts(allowlist=split_entries(["make", "git push", "docker ps"]))
    assert analyze("make test", allowing).level == "safe"
    assert analyze("git push origin main", allowing).level == "safe"
    assert analyze("docker ps -a", allowing).level == "safe"
    assert analyze("docker run x", allowing).level == "capped"
    assert analyze("make $(id)", allowing).level == "capped"
    assert analyze("make > /etc/x", allowing).level == "blocked"
    assert analyze("git push", FACTS).level == "review"


def test_an_allowlist_entry_never_beats_the_blocklist() -> None:
    allowing = facts(allowlist=split_entries(["sudo", "rm"]))
    assert analyze("sudo ls", allowing).level == "blocked"
    assert analyze("rm -rf /", allowing).level == "blocked"
    assert analyze("rm notes.txt", allowing).level == "safe"


@pytest.mark.parametrize(
    ("command", "level"),
    [("git push", "blocked"), ("git push origin main", "blocked"), ("/usr/bin/git push", "blocked"),
     ("bash -c 'git push'", "blocked"), ("ls && git push", "blocked"), ("git status", "safe"),
     ("systemctl status", "safe"), ("systemctl restart nginx", "blocked"), ("mytool", "blocked"),
     ("mytool-2 run", "review")],
)  # fmt: skip
def test_user_blocklist_entries_match_word_prefixes_anywhere(command: str, level: str) -> None:
    blocking = facts(blocklist=split_entries(["git push", "systemctl restart*", "mytool"]))
    judgement = analyze(command, blocking)
    assert judgement.level == level, judgement
    if level == "blocked":
        assert judgement.rule == "blocklist"


def test_limits_come_from_the_facts() -> None:
    strict = facts(max_length=20, max_commands=2)
    assert analyze("echo " + "a" * 30, strict).rule == "length"
    assert analyze("ls; pwd; id", strict).rule == "length"
    assert analyze("ls; pwd", strict).level == "safe"


def test_extra_sensitive_and_protected_paths() -> None:
    custom = facts(sensitive_paths=("/srv/secrets",), protected_paths=(*FACTS.protected_paths, "/srv/app"))
    assert analyze("cat /srv/secrets/db.txt", custom).rule == "sensitive_path"
    assert analyze("rm /srv/app/main.py", custom).rule == "protected_path"
    assert analyze("cat /srv/other.txt", custom).level == "safe"


def test_the_working_directory_is_followed() -> None:
    assert analyze("cd ~/.ssh && cat id_rsa", FACTS).rule == "sensitive_path"
    assert analyze("cd /tmp; cat id_rsa", FACTS).level == "safe"
    assert analyze("cd / && rm -rf etc", FACTS).level == "blocked"
    assert analyze("cd /tmp/build && rm -rf etc", FACTS).level == "review"
    assert analyze(f"cd {DATA} && rm api-token", FACTS).rule == "protected_path"


def test_the_judgement_names_every_command_it_saw() -> None:
    judgement = analyze("ps aux | grep python | head -3", FACTS)
    assert judgement.level == "safe"
    assert judgement.commands == ("ps", "grep", "head")
    assert "ps, grep, head" in judgement.reason


@pytest.mark.parametrize(
    "command",
    ["", "   ", "ls (", "echo 'open", "cat <<", "\x00ls", "ls " + "x" * 5000],
)
def test_garbage_is_never_safe_and_never_raises(command: str) -> None:
    assert analyze(command, FACTS).level in ("capped", "blocked")


def test_split_entries() -> None:
    assert split_entries(["git push", "  ", "echo 'a b'", "broken 'quote"]) == (
        ("git", "push"),
        ("echo", "a b"),
        ("broken", "'quote"),
    )


def test_random_shell_noise_never_raises_and_never_auto_runs_hidden_characters() -> None:
    rng = random.Random(4)
    alphabet = [*"ab /-$(){}[]|&;<>`'\"\\*?~=#!\n\t", "sudo", "rm", "ls", "$(", "${", "<<", NBSP]
    for _ in range(400):
        command = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))
        judgement = analyze(command, FACTS)
        assert judgement.level in ("safe", "review", "capped", "blocked")
        if NBSP in command:
            assert judgement.level in ("capped", "blocked"), command


@pytest.mark.parametrize("seed", range(5))
def test_substitutions_around_safe_commands_never_auto_run(seed: int) -> None:
    rng = random.Random(seed)
    safe = ["ls", "cat notes.txt", "echo hi", "grep x f", "wc -l f", "ps aux"]
    shapes = ["{a} $({b})", "{a} `{b}`", "$({b}) {a}", "{a} | {a} <({b})", '{a} && echo "$({b})"', "{a}; X=$({b})"]
    for _ in range(40):
        command = rng.choice(shapes).format(a=rng.choice(safe), b=rng.choice(safe))
        assert analyze(command, FACTS).level == "capped", command

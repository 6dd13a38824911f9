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
    reads_sensitive,
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
        ("/proc/self/cwd/.ssh/id_rsa", None, f"{HOME}/.ssh/id_rsa"),
        ("/proc/self/cwd/.ssh", "/tmp", "/tmp/.ssh"),
        ("/proc/thread-self/cwd/x", None, f"{HOME}/x"),
        ("/proc/self/task/12/cwd/x", None, f"{HOME}/x"),
        ("/proc/self/cwd/../bob/x", None, "/home/bob/x"),
        ("/proc/self/root/etc/shadow", None, "/etc/shadow"),
        ("/proc/1/root/etc/shadow", None, "/etc/shadow"),
        ("/proc/*/root/etc/shadow", None, "/etc/shadow"),
        ("/proc/self/root/proc/self/cwd/.netrc", None, f"{HOME}/.netrc"),
        ("/proc/self/root/..", None, "/"),
        ("/proc/1/task/1/environ", None, "/proc/1/environ"),
        ("/proc/1/cwd/.ssh/../x", None, "/proc/1/cwd/x"),
        ("/proc/1/cwd", None, "/proc/1/cwd"),
        ("/proc/self/cwd/x/.", None, f"{HOME}/x"),
        ("/tmp/../proc/self/cwd//x", None, f"{HOME}/x"),
        ("../../proc/self/root/etc/passwd", "/tmp", "/etc/passwd"),
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
     ("bash -c 'git push'", "blocked"), ("ls && git push", "blocked"), ("git status", "review"),
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


@pytest.mark.parametrize(
    "path",
    ["/proc/1/environ", "/proc/self/environ", "/proc/1/mem", "/proc/self/fd/3", "/proc/1/map_files/x",
     "/proc/1/cmdline", "/proc/1/cwd/notes.txt", "/proc/*/cwd/x", "/proc/self/c*/x", "/proc/self/r??t/etc/x",
     "/dev/fd/3", f"{DATA}/api-token", f"{HOME}/.config/aiventbus/config.yaml"],
)  # fmt: skip
def test_reads_of_proc_aliases_and_daemon_files_are_sensitive(path: str) -> None:
    assert reads_sensitive(path, FACTS), path


@pytest.mark.parametrize("path", ["/proc/self/cmdline", "/proc/cpuinfo", "/proc/self/status", f"{HOME}/notes.txt"])
def test_ordinary_proc_reads_are_not_sensitive(path: str) -> None:
    assert reads_sensitive(path, FACTS) is None


def test_a_resolver_judges_where_symlinks_lead() -> None:
    links = {f"{HOME}/notes": f"{HOME}/.ssh/id_rsa", f"{HOME}/out": f"{DATA}/api-token", "/tmp/x": "/etc/passwd"}
    resolving = facts(resolve=lambda path: links.get(path, path))
    assert analyze("cat notes", FACTS).level == "safe"
    assert analyze("cat notes", resolving).rule == "sensitive_path"
    assert analyze("cat < notes", resolving).rule == "sensitive_path"
    assert analyze("echo x > out", resolving).rule == "protected_path"
    assert analyze("cp a /tmp/x", resolving).level == "blocked"
    assert analyze("cat other", resolving).level == "safe"
    broken = facts(resolve=lambda path: (_ for _ in ()).throw(OSError("loop")))
    assert analyze("cat notes", broken).level == "safe"

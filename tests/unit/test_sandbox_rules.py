"""The sandbox's pure builders: what is hidden, the bubblewrap argv, the macOS profile, probe failure advice."""

from __future__ import annotations

import pytest

from aiventbus.platform.sandbox import (
    Confinement,
    bwrap_argv,
    confined,
    explain_bwrap_failure,
    mask_plan,
    sandbox_exec_argv,
    sbpl_profile,
    within,
)

BASE = [
    "/usr/bin/bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
    "--tmpfs", "/run", "--remount-ro", "/run",
    "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "top", "inside"),
    [
        ("/home/u/.ssh", "/home/u/.ssh", True),
        ("/home/u/.ssh/id_rsa", "/home/u/.ssh", True),
        ("/home/u/.sshx", "/home/u/.ssh", False),
        ("/home/u", "/home/u/.ssh", False),
        ("/tmp/x", "/tmp", True),
        ("/anything", "/", True),
    ],
)
def test_within(path: str, top: str, inside: bool) -> None:
    assert within(path, top) is inside


@pytest.mark.parametrize(
    ("found", "dirs", "files"),
    [
        ([], (), ()),
        ([("/home/u/.ssh", True), ("/home/u/.bashrc", False)], ("/home/u/.ssh",), ("/home/u/.bashrc",)),
        # Nested in a hidden folder: already gone, and bwrap could not mount onto it.
        ([("/home/u/.ssh/id_rsa", False), ("/home/u/.ssh", True)], ("/home/u/.ssh",), ()),
        ([("/root", True), ("/root/.ssh", True), ("/root/.bashrc", False)], ("/root",), ()),
        # Under the private /tmp, /run or the fresh /dev and /proc: not the host's, nothing to hide.
        ([("/tmp/t/data", True), ("/proc/1/environ", False), ("/dev/shm/x", False), ("/run/user/1000", True)], (), ()),
        # A sibling whose name shares a prefix is not nested.
        ([("/a/b", True), ("/a/b-c", True), ("/a/b/c", True)], ("/a/b", "/a/b-c"), ()),
        ([("/", True), ("/etc/shadow", False)], (), ("/etc/shadow",)),
        ([("/etc/shadow", False), ("/etc/shadow", False)], (), ("/etc/shadow",)),
    ],
)
def test_mask_plan(found: list[tuple[str, bool]], dirs: tuple[str, ...], files: tuple[str, ...]) -> None:
    plan = mask_plan(found)
    assert (plan.hidden_dirs, plan.hidden_files) == (dirs, files)


def test_confined_keeps_the_cwd_and_uses_its_tmp() -> None:
    plan = confined("/home/u", [("/private/t/x", True), ("/home/u/.ssh", True)], tmp_dir="/private/t", fresh=())
    assert plan == Confinement("/home/u", "/private/t", ("/home/u/.ssh",), ())


def test_program_links_survive_the_private_run() -> None:
    links = (("/run/current-system", "/nix/store/abc-system"),)
    argv = bwrap_argv("bwrap", Confinement("/", run_links=links), ["ls"])
    start = argv.index("/run")
    assert argv[start - 1 : start + 6] == [
        "--tmpfs", "/run", "--symlink", "/nix/store/abc-system", "/run/current-system", "--remount-ro", "/run",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("confinement", "tail"),
    [
        (Confinement("/home/u"), ["--chdir", "/home/u", "--setenv", "TMPDIR", "/tmp", "--", "ls", "-la"]),
        (
            Confinement("/home/u", hidden_dirs=("/home/u/.local/share/aiventbus",), hidden_files=("/etc/shadow",)),
            [
                "--tmpfs", "/home/u/.local/share/aiventbus", "--remount-ro", "/home/u/.local/share/aiventbus",
                "--ro-bind", "/dev/null", "/etc/shadow",
                "--chdir", "/home/u", "--setenv", "TMPDIR", "/tmp", "--", "ls", "-la",
            ],
        ),
        # A cwd under the private tmpfs is made there, empty.
        (
            Confinement("/tmp/work"),
            ["--dir", "/tmp/work", "--chdir", "/tmp/work", "--setenv", "TMPDIR", "/tmp", "--", "ls", "-la"],
        ),
        # A cwd inside a hidden folder starts in that (empty) folder.
        (
            Confinement("/root/src", hidden_dirs=("/root",)),
            [
                "--tmpfs", "/root", "--remount-ro", "/root",
                "--chdir", "/root", "--setenv", "TMPDIR", "/tmp", "--", "ls", "-la",
            ],
        ),
    ],
)  # fmt: skip
def test_bwrap_argv(confinement: Confinement, tail: list[str]) -> None:
    assert bwrap_argv("/usr/bin/bwrap", confinement, ["ls", "-la"]) == BASE + tail


def test_bwrap_argv_keeps_the_command_words_after_the_separator() -> None:
    argv = bwrap_argv("bwrap", Confinement("/"), ["/bin/sh", "-c", "--ro-bind / / echo"])
    assert argv[-4:] == ["--", "/bin/sh", "-c", "--ro-bind / / echo"]


def test_sbpl_profile_denies_network_writes_and_hidden_reads() -> None:
    profile = sbpl_profile(
        Confinement(
            "/Users/u",
            "/private/var/folders/x/aiventbus-sandbox-1",
            hidden_dirs=("/Users/u/.ssh", '/Users/u/we"ird'),
            hidden_files=("/Users/u/.netrc",),
        )
    )
    assert profile.splitlines() == [
        "(version 1)",
        "(allow default)",
        "(deny network*)",
        "(deny file-write*)",
        '(allow file-write* (subpath "/private/var/folders/x/aiventbus-sandbox-1")'
        ' (literal "/dev/null") (literal "/dev/zero") (literal "/dev/tty"))',
        '(deny file-read* file-write* (subpath "/Users/u/.ssh") (subpath "/Users/u/we\\"ird")'
        ' (literal "/Users/u/.netrc"))',
    ]


def test_sbpl_profile_without_hidden_paths_has_no_read_rule() -> None:
    assert "file-read" not in sbpl_profile(Confinement("/", "/t"))


def test_sandbox_exec_argv() -> None:
    argv = sandbox_exec_argv("/usr/bin/sandbox-exec", Confinement("/Users/u", "/t"), ["ls", "-la"])
    assert argv[:2] == ["/usr/bin/sandbox-exec", "-p"]
    assert argv[3:] == ["--", "/usr/bin/env", "TMPDIR=/t", "ls", "-la"]
    assert "(deny network*)" in argv[2]


@pytest.mark.parametrize(
    ("sysctls", "reason", "fix"),
    [
        ({"kernel.unprivileged_userns_clone": "0"}, "unprivileged_userns_clone=0", "unprivileged_userns_clone=1"),
        ({"user.max_user_namespaces": "0"}, "max_user_namespaces=0", "user.max_user_namespaces=15000"),
        ({"kernel.apparmor_restrict_unprivileged_userns": "1"}, "AppArmor", "apparmor_restrict_unprivileged_userns=0"),
        ({"kernel.unprivileged_userns_clone": "1", "user.max_user_namespaces": "100"}, "No permissions", "seccomp"),
        ({}, "No permissions", "bwrap --ro-bind / / --unshare-all true"),
    ],
)
def test_explain_bwrap_failure(sysctls: dict[str, str], reason: str, fix: str) -> None:
    stderr = "\nbwrap: No permissions to creating new namespace, likely because the kernel does not allow it\n"
    got_reason, got_fix = explain_bwrap_failure(stderr, sysctls)
    assert reason in got_reason
    assert fix in got_fix

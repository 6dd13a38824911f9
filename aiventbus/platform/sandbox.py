"""Kernel sandboxes for commands that run without the user's approval: bubblewrap (Linux), sandbox-exec (macOS).

Pure builders turn a `Confinement` (plain data) into the argv, or the macOS profile; the thin shell below finds which
hidden paths exist, probes once (cached, in a thread) whether the sandbox works here, and wraps a command's argv.
Inside: the file system read-only but for a private temp dir, no network, no new privileges, no host sockets (a
private /run and /tmp), and the daemon's files and the sensitive paths not there at all.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import subprocess
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aiventbus.platform.capabilities import SANDBOX, Capability, CapabilityUnavailable, Which

PROBE_TIMEOUT_SECONDS = 10.0
PRIVATE_TMP = "/tmp"
PRIVATE_RUN = "/run"
# bwrap mounts fresh ones: the host's entries under them (/proc/<daemon pid>/environ) are not there to hide.
# /run goes because of its sockets: a read-only mount does not stop connect(), and the DBus buses, systemd's
# private socket, docker's or postgres's would each run commands outside the sandbox.
FRESH_MOUNTS = (PRIVATE_RUN, "/dev", "/proc")
# Symlinks in /run that hold programs rather than sockets (NixOS puts every program behind them): kept.
RUN_PROGRAM_LINKS = ("/run/current-system", "/run/booted-system", "/run/opengl-driver")
PROBE_PATH = "/usr/local/bin:/usr/bin:/bin"
_GLOB_CHARS = frozenset("*?[")
USERNS_SYSCTLS = {
    "kernel.unprivileged_userns_clone": "/proc/sys/kernel/unprivileged_userns_clone",
    "user.max_user_namespaces": "/proc/sys/user/max_user_namespaces",
    "kernel.apparmor_restrict_unprivileged_userns": "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
}


@dataclass(frozen=True)
class Confinement:
    """What one sandboxed command sees: where it starts, its private temp dir, and what is hidden from it."""

    cwd: str
    tmp_dir: str = PRIVATE_TMP
    hidden_dirs: tuple[str, ...] = ()
    hidden_files: tuple[str, ...] = ()
    run_links: tuple[tuple[str, str], ...] = ()  # (path, target) recreated in the private /run


# -- pure: what to hide, and the argv / profile that hides it ----------------------------------------------------


def within(path: str, top: str) -> bool:
    """True if `path` is `top` or under it (both absolute and normalised)."""
    return path == top or path.startswith(top.rstrip("/") + "/")


def mask_plan(found: Iterable[tuple[str, bool]], private: Sequence[str] = (PRIVATE_TMP, *FRESH_MOUNTS)) -> Confinement:
    """Hidden (dirs, files) from (real path, is_dir) pairs: each once, none under another hidden dir or a private
    mount (bwrap cannot mount onto a path that an earlier mount removed), never / itself."""
    dirs: list[str] = []
    files: list[str] = []
    for path, is_dir in sorted(set(found)):  # a folder sorts before what it holds
        if path == "/" or any(within(path, top) for top in (*private, *dirs)):
            continue
        (dirs if is_dir else files).append(path)
    return Confinement(cwd="/", hidden_dirs=tuple(dirs), hidden_files=tuple(files))


def confined(
    cwd: str,
    found: Iterable[tuple[str, bool]],
    tmp_dir: str = PRIVATE_TMP,
    fresh: Sequence[str] = FRESH_MOUNTS,
    run_links: Sequence[tuple[str, str]] = (),
) -> Confinement:
    """The confinement of a command started in `cwd` with the hidden paths `found` (see mask_plan)."""
    plan = mask_plan(found, (tmp_dir, *fresh))
    return Confinement(cwd, tmp_dir, plan.hidden_dirs, plan.hidden_files, tuple(run_links))


def bwrap_argv(program: str, confinement: Confinement, argv: Sequence[str]) -> list[str]:
    """bubblewrap around `argv`: read-only /, fresh /dev and /proc, a private tmpfs, every namespace unshared."""
    tmp = confinement.tmp_dir
    wrapped = [program, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", tmp]
    wrapped += ["--tmpfs", PRIVATE_RUN]
    for path, target in confinement.run_links:
        wrapped += ["--symlink", target, path]
    wrapped += ["--remount-ro", PRIVATE_RUN]
    # --unshare-all leaves only a loopback of its own; --new-session stops TIOCSTI typing into the daemon's tty.
    wrapped += ["--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    for folder in confinement.hidden_dirs:
        wrapped += ["--tmpfs", folder, "--remount-ro", folder]
    for file in confinement.hidden_files:
        wrapped += ["--ro-bind", "/dev/null", file]
    cwd = confinement.cwd
    if within(cwd, tmp):
        wrapped += ["--dir", cwd]  # the private tmpfs starts empty
    else:
        cwd = next((folder for folder in confinement.hidden_dirs if within(cwd, folder)), cwd)
    wrapped += ["--chdir", cwd, "--setenv", "TMPDIR", tmp, "--", *argv]
    return wrapped


def _sbpl_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sbpl_profile(confinement: Confinement) -> str:
    """A sandbox-exec profile with the bubblewrap sandbox's promises: no network, writes only in the temp dir,
    hidden paths unreadable. Later rules win in SBPL, so the exceptions follow the denials."""
    lines = ["(version 1)", "(allow default)", "(deny network*)", "(deny file-write*)"]
    writable = [f"(subpath {_sbpl_string(confinement.tmp_dir)})"]
    writable += [f"(literal {_sbpl_string(device)})" for device in ("/dev/null", "/dev/zero", "/dev/tty")]
    lines.append(f"(allow file-write* {' '.join(writable)})")
    hidden = [f"(subpath {_sbpl_string(folder)})" for folder in confinement.hidden_dirs]
    hidden += [f"(literal {_sbpl_string(file)})" for file in confinement.hidden_files]
    if hidden:
        lines.append(f"(deny file-read* file-write* {' '.join(hidden)})")
    return "\n".join(lines) + "\n"


def sandbox_exec_argv(program: str, confinement: Confinement, argv: Sequence[str]) -> list[str]:
    """sandbox-exec around `argv`, started through env(1) so TMPDIR names the writable temp dir."""
    return [program, "-p", sbpl_profile(confinement), "--", "/usr/bin/env", f"TMPDIR={confinement.tmp_dir}", *argv]


def explain_bwrap_failure(stderr: str, sysctls: Mapping[str, str]) -> tuple[str, str]:
    """(reason, fix) for a bwrap probe that failed, from its stderr and the user-namespace sysctls."""
    first = next((line.strip() for line in stderr.splitlines() if line.strip()), "no output")
    if sysctls.get("kernel.unprivileged_userns_clone") == "0":
        return (
            "user namespaces are disabled for unprivileged users (kernel.unprivileged_userns_clone=0)",
            "sysctl -w kernel.unprivileged_userns_clone=1 (and add it to /etc/sysctl.d/ to keep it)",
        )
    if sysctls.get("user.max_user_namespaces") == "0":
        return (
            "user namespaces are disabled (user.max_user_namespaces=0)",
            "sysctl -w user.max_user_namespaces=15000 (and add it to /etc/sysctl.d/ to keep it)",
        )
    if sysctls.get("kernel.apparmor_restrict_unprivileged_userns") == "1":
        return (
            f"AppArmor restricts unprivileged user namespaces (bwrap: {first})",
            "install an AppArmor profile allowing userns for /usr/bin/bwrap (Ubuntu ships bwrap-userns-restrict),"
            " or sysctl -w kernel.apparmor_restrict_unprivileged_userns=0",
        )
    return (
        f"bwrap cannot create its sandbox: {first}",
        "run `bwrap --ro-bind / / --unshare-all true` to see why; in a container, allow user namespaces"
        " (e.g. docker run --security-opt seccomp=unconfined --security-opt apparmor=unconfined)",
    )


# -- the thin shell: existing paths, the cached probe, wrapping ---------------------------------------------------


def existing_paths(patterns: Iterable[str], skip: Sequence[str] = FRESH_MOUNTS) -> list[tuple[str, bool]]:
    """(real path, is_dir) for every existing path the patterns name (globs expanded), none under `skip`."""
    found: list[tuple[str, bool]] = []
    for pattern in patterns:
        if any(within(pattern, top) for top in skip):
            continue
        names = sorted(glob.glob(pattern)) if _GLOB_CHARS & set(pattern) else [pattern]
        for name in names:
            if not os.path.exists(name):  # also drops dangling symlinks: bwrap cannot mount onto them
                continue
            real = os.path.realpath(name)
            if not any(within(real, top) for top in skip):
                found.append((real, os.path.isdir(real)))
    return found


class Sandbox(ABC):
    """An OS sandbox: probed once (cached), then wraps each command's argv; `kind` names it."""

    kind = "none"
    program_name = ""
    fresh_mounts: tuple[str, ...] = ()  # besides the temp dir: where the host's paths are not there to hide

    def __init__(self, which: Which = shutil.which, probe: Callable[[], Capability] | None = None) -> None:
        self.which = which
        self._probe = probe or self.run_probe
        self._report: Capability | None = None
        self._lock = threading.Lock()

    @abstractmethod
    def run_probe(self) -> Capability:
        """Try the sandbox once; blocking."""

    @abstractmethod
    def build(self, program: str, confinement: Confinement, argv: Sequence[str]) -> list[str]:
        """The argv that runs `argv` confined."""

    def tmp_dir(self) -> str:
        return PRIVATE_TMP

    def report(self) -> Capability:
        """The probe's answer, cached; the first call runs it (blocking: on the event loop use `probe()`)."""
        with self._lock:
            if self._report is None:
                self._report = self._probe()
            return self._report

    async def probe(self) -> Capability:
        """report(), run in a thread the first time."""
        return self._report if self._report is not None else await asyncio.to_thread(self.report)

    def wrapper(self, cwd: str, hidden: Iterable[str]) -> Callable[[list[str]], list[str]]:
        """argv -> the same argv inside the sandbox, started in `cwd`, with the `hidden` paths (globs allowed)
        not there; raises CapabilityUnavailable when the sandbox does not work here."""
        report = self.report()
        if not report.available:
            raise CapabilityUnavailable(SANDBOX, report.reason, report.fix)
        program = self.which(self.program_name) or self.program_name
        tmp = self.tmp_dir()
        found = existing_paths(hidden, (tmp, *self.fresh_mounts))
        confinement = confined(cwd, found, tmp, self.fresh_mounts, self.run_links())
        return lambda argv: self.build(program, confinement, argv)

    def run_links(self) -> list[tuple[str, str]]:
        return []


class Bubblewrap(Sandbox):
    """Linux: bubblewrap over user namespaces (or as root)."""

    kind = "bubblewrap"
    program_name = "bwrap"
    fresh_mounts = FRESH_MOUNTS

    def run_links(self) -> list[tuple[str, str]]:
        return [(path, os.readlink(path)) for path in RUN_PROGRAM_LINKS if os.path.islink(path)]

    def build(self, program: str, confinement: Confinement, argv: Sequence[str]) -> list[str]:
        return bwrap_argv(program, confinement, argv)

    def run_probe(self) -> Capability:
        program = self.which(self.program_name)
        if program is None:
            return Capability(SANDBOX, False, "bubblewrap (bwrap) is not installed", "apt-get install bubblewrap")
        argv = bwrap_argv(program, Confinement(cwd="/"), ["true"])
        failure = _run_probe(argv)
        if failure is None:
            return Capability(SANDBOX, True, backend=f"{program} (bubblewrap)")
        reason, fix = explain_bwrap_failure(failure, _read_sysctls())
        return Capability(SANDBOX, False, reason, fix)


class SandboxExec(Sandbox):
    """macOS: sandbox-exec with an SBPL profile; the writable temp dir is private to this daemon."""

    kind = "sandbox-exec"
    program_name = "sandbox-exec"

    def __init__(self, which: Which = shutil.which, probe: Callable[[], Capability] | None = None) -> None:
        super().__init__(which, probe)
        self._tmp: str | None = None

    def tmp_dir(self) -> str:
        if self._tmp is None:
            self._tmp = os.path.realpath(tempfile.mkdtemp(prefix="aiventbus-sandbox-"))
        return self._tmp

    def build(self, program: str, confinement: Confinement, argv: Sequence[str]) -> list[str]:
        return sandbox_exec_argv(program, confinement, argv)

    def run_probe(self) -> Capability:
        program = self.which(self.program_name)
        if program is None:
            return Capability(SANDBOX, False, "sandbox-exec not found", "it ships with macOS in /usr/bin: check PATH")
        failure = _run_probe([program, "-p", "(version 1)\n(allow default)\n", "--", "/usr/bin/true"])
        if failure is None:
            return Capability(SANDBOX, True, backend=f"{program} (SBPL profile)")
        return Capability(SANDBOX, False, f"sandbox-exec fails: {failure.strip()[:300]}", "")


class NoSandbox(Sandbox):
    """Where no sandbox is known: always unavailable, with the given reason and fix."""

    def __init__(self, reason: str = "no kernel sandbox is known on this OS", fix: str = "") -> None:
        super().__init__()
        self.reason, self.fix = reason, fix

    def build(self, program: str, confinement: Confinement, argv: Sequence[str]) -> list[str]:
        raise CapabilityUnavailable(SANDBOX, self.reason, self.fix)

    def run_probe(self) -> Capability:
        return Capability(SANDBOX, False, self.reason, self.fix)


def _run_probe(argv: list[str]) -> str | None:
    """None when `argv` ran and exited 0, else what went wrong."""
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=PROBE_TIMEOUT_SECONDS,
            env={"PATH": PROBE_PATH, "LANG": "C.UTF-8"},
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"did not finish within {PROBE_TIMEOUT_SECONDS:g}s"
    except OSError as error:
        return f"{argv[0]}: {error.strerror or error}"
    if done.returncode == 0:
        return None
    return done.stderr.decode("utf-8", "replace") or f"exit status {done.returncode}"


def _read_sysctls() -> dict[str, str]:
    values: dict[str, str] = {}
    for name, path in USERNS_SYSCTLS.items():
        try:
            values[name] = Path(path).read_text().strip()
        except OSError:
            continue
    return values

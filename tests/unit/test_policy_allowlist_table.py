"""A generated table of at least 1,000 commands no default policy may auto-run, and a control list that must.

The data below is independent of the allowlist tables (aiventbus/core/shell_analysis/programs.py): the dangerous
options come from each program's --help/man page on Debian; only the abbreviation universe (the program's full
list of long options, as its getopt_long reports it) is taken from the tables, and a test checks it holds every
dangerous option listed here.
"""

from __future__ import annotations

import pytest

from aiventbus.config import parse_config
from aiventbus.core.policy import PolicyRules, decide
from aiventbus.core.shell_analysis.options import abbreviations
from aiventbus.core.shell_analysis.programs import OPTIONS

HOME = "/home/alice"
DATA = f"{HOME}/.local/share/aiventbus"

# program -> dangerous long options taking a value (written with X), dangerous long flags, dangerous short options
DANGEROUS_LONG_VALUED: dict[str, list[str]] = {
    "sort": ["--output", "--compress-program", "--temporary-directory", "--files0-from", "--random-source"],
    "journalctl": ["--vacuum-size", "--vacuum-time", "--vacuum-files", "--cursor-file", "--machine", "--directory",
                   "--file", "--root"],
    "date": ["--set"],
    "dmesg": ["--console-level", "--file"],
    "tail": ["--pid", "--sleep-interval", "--max-unchanged-stats"],
    "file": ["--magic-file", "--files-from"],
    "du": ["--files0-from"],
    "wc": ["--files0-from"],
    "ss": ["--diag", "--filter"],
    "findmnt": ["--tab-file", "--task"],
    "lsblk": ["--sysroot"],
    "lscpu": ["--sysroot"],
    "free": ["--seconds", "--count"],
    "lastlog": ["--root"],
    "grep": ["--devices"],
    "systemctl": ["--host", "--machine", "--root", "--kill-whom", "--signal"],
    "timedatectl": ["--host", "--machine", "--adjust-system-clock"],
    "hostnamectl": ["--host", "--machine"],
    "md5sum": [], "cksum": [],
}  # fmt: skip
DANGEROUS_LONG_FLAGS: dict[str, list[str]] = {
    "journalctl": ["--rotate", "--flush", "--sync", "--relinquish-var", "--smart-relinquish-var", "--setup-keys",
                   "--update-catalog", "--follow", "--force", "--pager-end"],
    "dmesg": ["--clear", "--read-clear", "--console-off", "--console-on", "--follow", "--follow-new"],
    "tail": ["--follow", "--retry"],
    "file": ["--compile", "--preserve-date", "--uncompress", "--uncompress-noreport", "--no-sandbox"],
    "ss": ["--kill", "--events", "--net"],
    "netstat": ["--continuous"],
    "findmnt": ["--poll"],
    "df": ["--sync"],
    "diff": ["--paginate"],
    "md5sum": ["--check"],
    "sha256sum": ["--check"],
    "cksum": ["--check"],
    "b2sum": ["--check"],
    "hostname": ["--boot", "--file"],
    "lastlog": ["--clear", "--set"],
    "systemctl": ["--now", "--force", "--firmware-setup", "--global", "--runtime", "--mkdir", "--dry-run",
                  "--wait", "--no-block", "--irreversible"],
    "timedatectl": ["--monitor"],
}  # fmt: skip
DANGEROUS_SHORT: dict[str, list[str]] = {
    "sort": ["-o x", "-ox", "-nro x", "-T /tmp", "-T/tmp"],
    "date": ["-s 2020-01-01", "-s2020-01-01", "-us 2020-01-01"],
    "dmesg": ["-C", "-c", "-D", "-E", "-n 1", "-w", "-W", "-HC", "-F x"],
    "journalctl": ["-f", "-rf", "-M x", "-D /tmp", "-e"],
    "tail": ["-f", "-F", "-qf", "-n 5 -f", "-s 1", "-vF"],
    "file": ["-C", "-m x", "-C -m x", "-bC", "-p", "-z", "-Z", "-S", "-f list"],
    "ss": ["-K", "-E", "-D x", "-F x", "-N x", "-tK"],
    "netstat": ["-c", "-tc"],
    "free": ["-s 1", "-c 3"],
    "lsof": ["-r", "-r 1", "-D b", "+r"],
    "hostname": ["-b", "-F x", "-F/etc/hostname"],
    "findmnt": ["-p", "-F x", "-N 1"],
    "diff": ["-l"],
    "grep": ["-D read"],
    "md5sum": ["-c sums"],
    "lastlog": ["-C", "-S", "-R /x"],
    "systemctl": ["-H host", "-M x", "-i", "-f"],
    "uniq": ["a b"],
}  # fmt: skip
FILE_ARG = {"date": "", "journalctl": "", "dmesg": "", "ss": "", "netstat": "", "free": "", "lsof": "", "findmnt": "",
            "hostname": "", "systemctl": "status", "timedatectl": "", "hostnamectl": "", "lsblk": "", "lscpu": "",
            "lastlog": "", "df": ""}  # fmt: skip


def _option_commands() -> list[str]:
    commands: list[str] = []
    for program, options in DANGEROUS_LONG_VALUED.items():
        known = OPTIONS[program].known_long
        tail = FILE_ARG.get(program, "notes.txt")
        for option in options:
            for form in abbreviations(option, known):
                commands += [f"{program} {form}=x {tail}".strip(), f"{program} {form} x {tail}".strip()]
    for program, options in DANGEROUS_LONG_FLAGS.items():
        known = OPTIONS[program].known_long
        tail = FILE_ARG.get(program, "notes.txt")
        for option in options:
            commands += [f"{program} {form} {tail}".strip() for form in abbreviations(option, known)]
    for program, shorts in DANGEROUS_SHORT.items():
        tail = FILE_ARG.get(program, "notes.txt")
        commands += [f"{program} {short} {tail}".strip() for short in shorts]
    return commands


def _ambiguous_commands() -> list[str]:
    """Prefixes of a dangerous option shared with another option: ambiguous, never auto (nor an error we trust)."""
    commands: list[str] = []
    for table in (DANGEROUS_LONG_VALUED, DANGEROUS_LONG_FLAGS):
        for program, options in table.items():
            known = OPTIONS[program].known_long
            for option in options:
                shortest = abbreviations(option, known)[-1]
                prefixes = (option[:length] for length in range(3, len(shortest)))
                commands += [f"{program} {prefix}=x" for prefix in prefixes if prefix[2:] not in known]
    return commands


SECRETS = [".ssh/id_rsa", ".aws/credentials", ".local/share/aiventbus/api-token", ".config/aiventbus/config.yaml",
           ".netrc", ".gnupg/secring.gpg", ".bash_history", ".local/share/aiventbus/aiventbus.db"]  # fmt: skip
ALIASES = ["/proc/self/cwd/{rel}", "/proc/thread-self/cwd/{rel}", "/proc/self/task/1/cwd/{rel}",
           "/proc/self/root{abs}", "/proc/1/root{abs}", "/proc/*/root{abs}", "/proc/self/root/proc/self/cwd/{rel}",
           "/proc/self/cwd/../alice/{rel}", "/proc/self/cwd/./{rel}", "/proc//self//cwd//{rel}",
           "/proc/self/cwd/{rel}/.", "/proc/1/cwd/{rel}", "/proc/*/cwd/{rel}", "/proc/self/c*/{rel}",
           "/proc/self/r??t{abs}", "/tmp/../proc/self/cwd/{rel}", "//proc/self/root//{abs}"]  # fmt: skip
READERS = ["cat", "head", "tail -n 5", "grep x", "base64", "od -c", "strings", "sort", "md5sum", "diff x"]


def _alias_commands() -> list[str]:
    commands: list[str] = []
    for rel in SECRETS:
        for alias in ALIASES:
            path = alias.format(rel=rel, abs=f"{HOME}/{rel}")
            commands += [f"{reader} {path}" for reader in READERS[:4]]
    for target in ["/etc/shadow", "/etc/sudoers", "/root/.bashrc", "/etc/ssh/ssh_host_ed25519_key"]:
        for alias in ["/proc/self/root{abs}", "/proc/1/root{abs}", "/proc/self/task/9/root{abs}", "/proc/*/root{abs}"]:
            commands += [f"{reader} {alias.format(abs=target)}" for reader in READERS]
    for pid in ["1", "self", "thread-self", "*", "[0-9]*", "1/task/1"]:
        for leaf in ["environ", "mem", "fd/3", "map_files/x", "fd/0"]:
            commands += [f"{reader} /proc/{pid}/{leaf}" for reader in READERS[:3]]
    commands += [f"{reader} /proc/1/cmdline" for reader in READERS]
    commands += [f"cat /dev/fd/{fd}" for fd in range(3, 10)]
    return commands


ENV_DUMPS = [
    "env", "env -0", "printenv", "printenv -0", "printenv OPENAI_API_KEY", "printenv AIVENTBUS_TOKEN", "ps e",
    "ps auxe", "ps auxeww", "ps eww", "ps axe", "ps -auxe", "ps ae", "ps ex", "ps aeux", "ps e -o pid",
    "cat /proc/1/environ", "cat /proc/self/environ", "strings /proc/1/environ", "jq -n env", "jq -n '$ENV'",
    "jq -n '$ENV.OPENAI_API_KEY'", "jq -rn 'env | keys'", "xargs -0 < /proc/1/environ",
    "tr '\\0' '\\n' < /proc/1/environ",
    "od -c /proc/self/environ", "grep -a KEY /proc/*/environ", "head /proc/thread-self/environ",
]  # fmt: skip
GIT_SUBCOMMANDS = ["status", "diff", "log", "show", "blame", "ls-files", "describe", "shortlog", "rev-parse", "grep x",
                   "log -p", "diff --stat", "status --short"]  # fmt: skip
GIT_PREFIXES = ["git", "git -C /tmp/untrusted", "git -C ~/Downloads/repo", "git --git-dir=/tmp/x/.git",
                "git --work-tree=/tmp/x", "git --no-pager", "git -p", "git -c core.pager=cat", "/usr/bin/git",
                "cd /tmp/untrusted && git"]  # fmt: skip
PAGERS_AND_EDITORS = [
    "less notes.txt", "more notes.txt", "most notes.txt", "pg notes.txt", "vim notes.txt", "vi notes.txt",
    "view notes.txt", "nvim notes.txt", "nano notes.txt", "emacs notes.txt", "ed notes.txt", "ex notes.txt",
    "man ls", "man -P sh ls", "info ls", "git -p log", "git --paginate log", "journalctl -e", "journalctl --pager-end",
    "diff -l a b", "diff --paginate a b", "systemctl edit ssh", "systemctl --user edit x", "systemctl help ssh",
    "sensible-pager notes.txt", "pager notes.txt", "editor notes.txt", "sensible-editor notes.txt", "w3m x.html",
    "lynx x.html", "links x.html", "mc", "ranger", "crontab -e", "visudo", "vipw", "journalctl -f | less",
    "ls | less", "dmesg | more", "cat notes.txt | vim -",
]  # fmt: skip
ENDLESS = ["/dev/zero", "/dev/urandom", "/dev/random", "/dev/tty", "/dev/console", "/dev/kmsg", "/proc/kmsg",
           "/dev/input/event0", "/dev/ttyS0", "/dev/full"]  # fmt: skip
BLOCKING = [
    "tail -f /var/log/syslog", "tail -F /var/log/syslog", "tail --follow=name x", "tail --retry x", "tail -f -n 0 x",
    "journalctl -f", "journalctl --follow", "journalctl -fu ssh", "dmesg -w", "dmesg --follow", "dmesg -W",
    "ss -E", "netstat -c", "free -s 1", "vmstat 1", "vmstat 5", "vmstat 1 100", "lsof -r 1", "findmnt --poll",
    "timedatectl --monitor", "sleep 60", "sleep 11", "sleep 1m", "sleep 1h", "sleep infinity", "sleep 5 6",
    "sleep inf", "cat < /dev/zero", "head < /dev/urandom", "wc -l < /dev/zero",
]  # fmt: skip
BLOCKING += [
    f"{reader} {device}"
    for device in ENDLESS
    for reader in ["cat", "head", "tail", "wc -l", "grep x", "sort", "od", "base64", "md5sum"]
]


def _git_commands() -> list[str]:
    return [f"{prefix} {sub}" for prefix in GIT_PREFIXES for sub in GIT_SUBCOMMANDS]


NEVER_AUTO = list(
    dict.fromkeys(
        [*_option_commands(), *_ambiguous_commands(), *_alias_commands(), *ENV_DUMPS, *_git_commands(),
         *PAGERS_AND_EDITORS, *BLOCKING]
    )
)  # fmt: skip

CONTROLS = [
    "ls -la", "ls -la /tmp", "ls --color=never -lh", "ps aux", "ps -ef", "ps axjf", "ps -eo pid,comm --sort=-%cpu",
    "ps -u alice", "ps aux --forest", "df -h", "df -hT", "du -sh ~/Downloads", "du -h --max-depth=1 /tmp",
    "sort -nr notes.txt", "sort -k2,2n -t, data.csv", "sort -S 1K notes.txt", "sort -S1K -u notes.txt",
    "sort --numeric-sort --rev notes.txt", "head -n 5 notes.txt", "head -5 notes.txt", "head -c 16 /dev/urandom",
    "tail -n 20 /var/log/syslog", "tail -20 notes.txt", "grep -rn foo src", "cd /tmp/project && grep -rn foo .",
    "grep -i --color=never error /var/log/syslog", "grep -c x notes.txt", "journalctl -n 50 --no-pager",
    "journalctl -u ssh --since today", "journalctl -b -1 -p err", "journalctl -k -n 20", "dmesg | tail",
    "dmesg -T --level=err", "date", "date +%s", "date -u +%Y-%m-%d", "date -d yesterday", "date --iso-8601=seconds",
    "uptime", "free -m", "free -h", "cat notes.txt", "cat -n notes.txt", "wc -l notes.txt", "stat notes.txt",
    "file notes.txt", "file -b --mime-type notes.txt", "uniq -c counts.txt", "cut -d: -f1 /etc/passwd",
    "md5sum notes.txt", "sha256sum notes.txt", "base64 notes.txt", "od -c notes.txt | head", "hexdump -C x.bin",
    "strings a.out", "column -t data.txt", "jq . data.json", "jq -r '.items[].name' data.json", "lsof -i :8080",
    "ss -tlnp", "netstat -tlnp", "ip addr", "ip -br a", "ip route show", "systemctl status ssh",
    "systemctl list-units --failed", "systemctl cat ssh", "systemctl show ssh -p ActiveState", "hostname",
    "hostname -I", "printenv PATH", "printenv HOME USER", "find . -name '*.py'", "find /tmp -type f -mtime -1",
    "sleep 1", "sleep 0.5", "vmstat 1 3", "vmstat", "lsblk", "lscpu", "findmnt", "pgrep -a python", "who", "w",
    "last -n 5", "id", "uname -a", "timedatectl", "timedatectl status", "hostnamectl", "nproc", "tty", "echo hi",
    "printf '%s\\n' a", "cat /proc/cpuinfo", "cat /proc/self/status", "cat /proc/loadavg", "cat /proc/self/cmdline",
    "ls /proc/self/cwd", "readlink /proc/self/cwd", "cat /proc/self/cwd/notes.txt", "diff a.txt b.txt",
    "comm -12 a b", "tr a-z A-Z < notes.txt", "nl notes.txt", "seq 1 10", "cat < /dev/null",
]  # fmt: skip


def _rules() -> PolicyRules:
    config = parse_config({"paths": {"data_dir": DATA}})
    return PolicyRules.from_config(config, daemon_port=8420, home=HOME)


RULES = _rules()


def test_the_table_holds_at_least_1000_distinct_commands() -> None:
    assert len(NEVER_AUTO) >= 1000, len(NEVER_AUTO)
    assert not set(NEVER_AUTO) & set(CONTROLS)


def test_every_dangerous_option_is_in_its_programs_known_list() -> None:
    for table in (DANGEROUS_LONG_VALUED, DANGEROUS_LONG_FLAGS):
        for program, options in table.items():
            for option in options:
                assert option[2:] in OPTIONS[program].known_long, (program, option)


@pytest.mark.parametrize("command", NEVER_AUTO)
def test_never_auto(command: str) -> None:
    decision = decide("shell_exec", {"command": command}, [], RULES)
    assert decision.verdict != "auto", decision


@pytest.mark.parametrize("command", CONTROLS)
def test_ordinary_read_only_commands_still_auto_run(command: str) -> None:
    decision = decide("shell_exec", {"command": command}, [], RULES)
    assert decision.verdict == "auto", decision

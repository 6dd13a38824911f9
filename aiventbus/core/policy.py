"""Pure policy decisions: (action type, action, taint, rules) -> auto | confirm | deny, with the rule and a reason.

Interface (the executor's contract):
    rules = PolicyRules.from_config(config, daemon_port=daemon.bound_port)
    decision = decide("shell_exec", {"command": "ls -la"}, taint=["clipboard"], rules=rules)
    decision.verdict in ("auto", "confirm", "deny"); decision.rule names the rule; decision.reason explains it.

The action mapping uses the action model's field names (`command`, `path`, `url`, `method`, ...). Two optional
keys carry facts only the executor knows: `_resolved` (list of IP address strings the http_request host resolved
to) and `_resolved_path` (the file action's path with symlinks resolved); both are judged besides the literal.
Relative paths (file actions and shell arguments) are taken relative to `rules.home`, so the executor should run
shell commands with `cwd` = home.

Order: hard rules (blocklist, protected paths, daemon/private targets) deny first; then the allowlist / default
trust mode of the action type; `policy.trust_overrides` may lower any verdict, and may raise one to auto only where
the judgement is not capped (shell shapes the parser cannot vouch for, sensitive paths are capped at confirm);
finally the taint rule caps shell_exec, file_write, file_delete, open_app, tool_call and non-GET http_request at
confirm. Nothing turns a deny into anything else.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from aiventbus import labels
from aiventbus.config import Config, config_search_path
from aiventbus.core.shell_analysis import (
    ShellFacts,
    analyze,
    judged_paths,
    normalize_path,
    reads_sensitive,
    split_entries,
    write_verdict,
)

Verdict = Literal["auto", "confirm", "deny"]
_RANK: dict[Verdict, int] = {"deny": 0, "confirm": 1, "auto": 2}

# Action types an agent run that saw untrusted content may never auto-run (non-GET http_request too).
TAINT_CAPPED = frozenset({"shell_exec", "file_write", "file_delete", "open_app", "tool_call"})
# Default trust of the action types whose judgement needs no inspection of the action.
DEFAULT_MODES: dict[str, Verdict] = {
    "emit_event": "auto",  # re-enters the bus under its chain limits
    "log": "auto",
    "alert": "auto",
    "notify": "auto",
    "get_knowledge": "auto",
    "set_knowledge": "auto",  # the daemon's own key-value store, no effect outside it
    "open_app": "confirm",
    "tool_call": "confirm",
}
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa", ".localdomain", ".intranet", ".corp")
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


@dataclass(frozen=True)
class Decision:
    """The policy's answer for one action: what to do, which rule decided, and why (shown to the user)."""

    verdict: Verdict
    rule: str
    reason: str


@dataclass(frozen=True)
class PolicyRules:
    """Everything the policy needs, as plain data: config rules plus facts about the running daemon."""

    shell: ShellFacts
    trust_overrides: Mapping[str, Verdict] = field(default_factory=dict)
    trusted_sources: frozenset[str] = frozenset()
    daemon_host: str = "127.0.0.1"
    daemon_port: int | None = None  # None: not known yet, so every loopback port counts as the daemon's
    allow_private_http: bool = False

    @property
    def home(self) -> str:
        return self.shell.home

    @classmethod
    def from_config(
        cls,
        config: Config,
        daemon_port: int | None = None,
        home: str | None = None,
        extra_protected: Sequence[str] = (),
        resolve: Callable[[str], str] | None = None,
    ) -> PolicyRules:
        """Rules from the config: protected = data dir (token, DB, backups), token, config files, user additions.

        `resolve` (e.g. os.path.realpath) lets every judged path also be judged where its symlinks lead.
        """
        home_dir = home or str(Path.home())
        policy = config.policy
        protected = [str(config.data_dir), str(config.token_path), str(config.db_path)]
        if config.source_path:
            protected.append(config.source_path)
        # Every file the daemon would load its config (and so its policy) from on the next start.
        protected += [str(path) for path in config_search_path(None)]
        protected += [str(path.parent) for path in config_search_path(None)[1:]]  # the XDG config folder
        protected.append(posixpath.join(home_dir, ".config", "aiventbus"))
        protected += [*policy.protected_paths, *extra_protected]
        port = daemon_port or config.server.port or None  # 0 means "a free one": unknown until bound
        shell = ShellFacts(
            home=home_dir,
            protected_paths=tuple(dict.fromkeys(normalize_path(path, home_dir, "/") for path in protected)),
            sensitive_paths=tuple(normalize_path(path, home_dir, "/") for path in policy.sensitive_paths),
            allowlist=split_entries(policy.allowlist),
            blocklist=split_entries(policy.blocklist),
            max_length=policy.max_command_length,
            max_commands=policy.max_chain_commands,
            resolve=resolve,
        )
        return cls(
            shell=shell,
            trust_overrides=dict(policy.trust_overrides),
            trusted_sources=frozenset(policy.trusted_sources),
            daemon_host=config.server.host,
            daemon_port=port,
            allow_private_http=config.tools.http_request_allow_private,
        )


@dataclass(frozen=True)
class _Judged:
    """A verdict before overrides and taint; `ceiling` is the most an override may raise it to."""

    verdict: Verdict
    rule: str
    reason: str
    ceiling: Verdict


def decide(action_type: str, action: Mapping[str, Any], taint: Sequence[str], rules: PolicyRules) -> Decision:
    """Judge one proposed action: hard rules, then the trust mode (and its override), then the taint cap."""
    judged = _judge(action_type, action, rules)
    verdict, rule, reason = judged.verdict, judged.rule, judged.reason
    override = rules.trust_overrides.get(action_type)
    if override is not None and override != verdict:
        wanted = override if _RANK[override] < _RANK[verdict] else _lowest(override, judged.ceiling)
        if wanted != verdict:
            verdict, rule = wanted, "trust_mode"
            reason = f"policy.trust_overrides.{action_type} is {override} ({judged.reason})"
        elif _RANK[override] > _RANK[verdict]:
            reason = f"{reason}; policy.trust_overrides.{action_type}={override} cannot raise it"
    untrusted = labels.untrusted(taint, rules.trusted_sources)
    if untrusted and verdict == "auto" and _taint_capped(action_type, action):
        families = ", ".join(untrusted)
        return Decision("confirm", "taint", f"the agent saw untrusted content ({families}); {reason}")
    return Decision(verdict, rule, reason)


def _lowest(a: Verdict, b: Verdict) -> Verdict:
    return a if _RANK[a] <= _RANK[b] else b


def _taint_capped(action_type: str, action: Mapping[str, Any]) -> bool:
    if action_type == "http_request":
        return _method(action) != "GET"
    return action_type in TAINT_CAPPED


def _judge(action_type: str, action: Mapping[str, Any], rules: PolicyRules) -> _Judged:
    if action_type == "shell_exec":
        return _judge_shell(action, rules)
    if action_type in ("file_read", "file_write", "file_delete"):
        return _judge_file(action_type, action, rules)
    if action_type == "http_request":
        return _judge_http(action, rules)
    mode = DEFAULT_MODES.get(action_type)
    if mode is None:
        return _Judged("confirm", "unknown_type", f"{action_type} has no default trust mode", "auto")
    return _Judged(mode, "trust_mode", f"{action_type} defaults to {mode}", "auto")


def _judge_shell(action: Mapping[str, Any], rules: PolicyRules) -> _Judged:
    command = action.get("command")
    if not isinstance(command, str):
        return _Judged("deny", "invalid", "command: must be a string", "deny")
    judgement = analyze(command, rules.shell)
    if judgement.level == "blocked":
        return _Judged("deny", judgement.rule, judgement.reason, "deny")
    if judgement.level == "capped":
        return _Judged("confirm", judgement.rule, judgement.reason, "confirm")
    if judgement.level == "review":
        return _Judged("confirm", judgement.rule, judgement.reason, "auto")
    return _Judged("auto", "allowlist", judgement.reason, "auto")


def _judge_file(action_type: str, action: Mapping[str, Any], rules: PolicyRules) -> _Judged:
    paths = [action.get("path"), *([action["_resolved_path"]] if action.get("_resolved_path") else [])]
    if not all(isinstance(path, str) and path and "\x00" not in path for path in paths):
        return _Judged("deny", "invalid", "path: must be a non-empty string without NUL", "deny")
    literal = [normalize_path(str(path), rules.home) for path in paths]
    normalized = [judged for path in literal for judged in judged_paths(path, rules.shell)]
    if action_type == "file_read":
        for path in normalized:
            target = reads_sensitive(path, rules.shell)
            if target:
                return _Judged("confirm", "sensitive_path", f"{path} is sensitive ({target})", "confirm")
        return _Judged("auto", "trust_mode", "file_read of an ordinary path defaults to auto", "auto")
    capped: _Judged | None = None
    for path in normalized:
        verdict = write_verdict(path, rules.shell, recursive=action_type == "file_delete")
        if verdict is None:
            continue
        level, rule, reason = verdict
        if level == "blocked":
            return _Judged("deny", rule, reason, "deny")
        capped = _Judged("confirm", rule, reason, "confirm")
    return capped or _Judged("confirm", "trust_mode", f"{action_type} defaults to confirm", "auto")


def _method(action: Mapping[str, Any]) -> str:
    return str(action.get("method") or "GET").upper()


def _judge_http(action: Mapping[str, Any], rules: PolicyRules) -> _Judged:
    url = action.get("url")
    if not isinstance(url, str):
        return _Judged("deny", "invalid", "url: must be a string", "deny")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        return _Judged("deny", "invalid", f"url: {error}", "deny")
    if parts.scheme not in ("http", "https"):
        return _Judged("deny", "scheme", f"url: scheme {parts.scheme or '(none)'} is not http or https", "deny")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        return _Judged("deny", "invalid", "url: has no host", "deny")
    port = port or (443 if parts.scheme == "https" else 80)
    resolved = action.get("_resolved") or []
    addresses = [address for address in (_literal_address(host), *map(_literal_address, map(str, resolved))) if address]
    loopback_name = host in LOOPBACK_NAMES or host.endswith(".localhost")
    if _is_daemon(host, port, addresses, loopback_name, rules):
        return _Judged("deny", "daemon_target", f"{host}:{port} is the daemon itself", "deny")
    private = loopback_name or host.endswith(LOCAL_SUFFIXES) or any(not _is_public(a) for a in addresses)
    if private and not rules.allow_private_http:
        reason = f"{host} is a loopback/private target (tools.http_request_allow_private is off)"
        return _Judged("deny", "private_target", reason, "deny")
    method = _method(action)
    if method == "GET":
        return _Judged("auto", "trust_mode", f"GET {host} defaults to auto", "auto")
    return _Judged("confirm", "trust_mode", f"{method} requests default to confirm", "auto")


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _literal_address(host: str) -> IPAddress | None:
    """The IP address a host literal denotes, including legacy forms like 2130706433 or 0x7f.1."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if re.fullmatch(r"[0-9a-fx.]+", host) and any(char.isdigit() for char in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _plain(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_public(address: IPAddress) -> bool:
    plain = _plain(address)
    return plain.is_global and not plain.is_multicast


def _is_daemon(host: str, port: int, addresses: list[IPAddress], loopback_name: bool, rules: PolicyRules) -> bool:
    if rules.daemon_port is not None and port != rules.daemon_port:
        return False
    daemon_host = rules.daemon_host.strip("[]").lower()
    if host == daemon_host or loopback_name:
        return True
    for address in map(_plain, addresses):
        if address.is_loopback or address.is_unspecified or str(address) == daemon_host:
            return True
        if daemon_host in WILDCARD_HOSTS and not _is_public(address):
            return True  # bound to every interface: any local address reaches it
    return False

"""Policy decisions for every action type: defaults, protected paths, HTTP targets, overrides and taint."""

from __future__ import annotations

from typing import Any

import pytest

from aiventbus.config import parse_config
from aiventbus.core.policy import PolicyRules, decide

HOME = "/home/alice"
DATA = f"{HOME}/.local/share/aiventbus"


def rules(
    overrides: dict[str, str] | None = None,
    allow_private: bool = False,
    **policy: Any,
) -> PolicyRules:
    config = parse_config(
        {
            "server": {"host": "127.0.0.1", "port": 8420},
            "paths": {"data_dir": DATA},
            "tools": {"http_request_allow_private": allow_private},
            "policy": {"trust_overrides": overrides or {}, **policy},
        },
        source=f"{HOME}/.config/aiventbus/config.yaml",
    )
    return PolicyRules.from_config(config, daemon_port=8420, home=HOME)


DEFAULT = rules()


@pytest.mark.parametrize(
    ("action_type", "action", "verdict"),
    [
        ("emit_event", {"topic": "user.note", "payload": {}}, "auto"),
        ("log", {"message": "hi"}, "auto"),
        ("alert", {"title": "t", "message": "m"}, "auto"),
        ("notify", {"title": "t", "message": "m"}, "auto"),
        ("get_knowledge", {"key": "k"}, "auto"),
        ("set_knowledge", {"key": "k", "value": 1}, "auto"),
        ("file_read", {"path": "~/notes.txt"}, "auto"),
        ("file_write", {"path": "~/notes.txt", "content": "x"}, "confirm"),
        ("file_delete", {"path": "~/notes.txt"}, "confirm"),
        ("open_app", {"target": "firefox"}, "confirm"),
        ("tool_call", {"tool": "time", "method": "now", "params": {}}, "confirm"),
        ("http_request", {"url": "https://example.com/"}, "auto"),
        ("http_request", {"url": "https://example.com/", "method": "POST"}, "confirm"),
        ("shell_exec", {"command": "ls"}, "auto"),
        ("shell_exec", {"command": "rm notes.txt"}, "confirm"),
        ("shell_exec", {"command": "sudo ls"}, "deny"),
        ("teleport", {}, "confirm"),
    ],
)
def test_defaults(action_type: str, action: dict[str, Any], verdict: str) -> None:
    decision = decide(action_type, action, [], DEFAULT)
    assert decision.verdict == verdict, decision
    assert decision.rule and decision.reason


@pytest.mark.parametrize(
    ("action_type", "path", "verdict", "rule"),
    [
        ("file_write", f"{DATA}/api-token", "deny", "protected_path"),
        ("file_write", f"{DATA}/aiventbus.db", "deny", "protected_path"),
        ("file_write", f"{DATA}/backups/x", "deny", "protected_path"),
        ("file_write", "~/.local/share/aiventbus/api-token", "deny", "protected_path"),
        ("file_write", ".local/share/aiventbus/api-token", "deny", "protected_path"),
        ("file_write", f"{HOME}/.config/aiventbus/config.yaml", "deny", "protected_path"),
        ("file_write", f"{HOME}/.config/aiventbus/policy.yaml", "deny", "protected_path"),
        ("file_write", f"{DATA}/../aiventbus/api-token", "deny", "protected_path"),
        ("file_write", "/etc/hosts", "deny", "protected_path"),
        ("file_write", "/boot/grub/grub.cfg", "deny", "protected_path"),
        ("file_write", "/dev/sda", "deny", "protected_path"),
        ("file_write", "/usr/bin/ls", "deny", "protected_path"),
        ("file_delete", f"{DATA}/aiventbus.db", "deny", "protected_path"),
        ("file_delete", f"{HOME}/.local", "deny", "protected_path"),
        ("file_delete", "/etc/passwd", "deny", "protected_path"),
        ("file_write", "~/.ssh/authorized_keys", "confirm", "sensitive_path"),
        ("file_write", "~/.bashrc", "confirm", "sensitive_path"),
        ("file_write", "/tmp/out.txt", "confirm", "trust_mode"),
        ("file_read", "~/.ssh/id_rsa", "confirm", "sensitive_path"),
        ("file_read", "/etc/shadow", "confirm", "sensitive_path"),
        ("file_read", f"{DATA}/api-token", "confirm", "sensitive_path"),
        ("file_read", "~/.aws/credentials", "confirm", "sensitive_path"),
        ("file_read", "/proc/self/environ", "confirm", "sensitive_path"),
        ("file_read", "/proc/self/cwd/.ssh/id_rsa", "confirm", "sensitive_path"),
        ("file_read", "/proc/self/root/etc/shadow", "confirm", "sensitive_path"),
        ("file_read", "/proc/1/root/home/alice/.local/share/aiventbus/api-token", "confirm", "sensitive_path"),
        ("file_read", "/proc/self/cwd/.local/share/aiventbus/api-token", "confirm", "sensitive_path"),
        ("file_read", "/proc/thread-self/cwd/../alice/.aws/credentials", "confirm", "sensitive_path"),
        ("file_read", "/proc/1/cwd/notes.txt", "confirm", "sensitive_path"),
        ("file_read", "/proc/1/fd/3", "confirm", "sensitive_path"),
        ("file_read", "/proc/self/cwd/notes.txt", "auto", "trust_mode"),
        ("file_write", "/proc/self/cwd/.local/share/aiventbus/api-token", "deny", "protected_path"),
        ("file_write", "/proc/self/root/etc/passwd", "deny", "protected_path"),
        ("file_read", "/etc/hostname", "auto", "trust_mode"),
        ("file_read", "notes.txt", "auto", "trust_mode"),
        ("file_read", "bad\x00path", "deny", "invalid"),
        ("file_write", "", "deny", "invalid"),
    ],
)
def test_file_paths(action_type: str, path: str, verdict: str, rule: str) -> None:
    decision = decide(action_type, {"path": path, "content": "x"}, [], DEFAULT)
    assert (decision.verdict, decision.rule) == (verdict, rule), decision


def test_the_resolved_path_is_judged_too() -> None:
    link = {"path": "~/innocent.txt", "_resolved_path": f"{DATA}/api-token", "content": "x"}
    assert decide("file_write", link, [], DEFAULT).verdict == "deny"
    assert decide("file_read", {"path": "~/x", "_resolved_path": f"{HOME}/.ssh/id_rsa"}, [], DEFAULT).verdict == (
        "confirm"
    )


def test_a_resolver_from_the_config_judges_symlinks_for_file_and_shell_actions() -> None:
    config = parse_config({"paths": {"data_dir": DATA}})
    links = {f"{HOME}/innocent.txt": f"{DATA}/api-token"}
    resolving = PolicyRules.from_config(config, daemon_port=8420, home=HOME, resolve=lambda p: links.get(p, p))
    assert decide("file_read", {"path": "~/innocent.txt"}, [], DEFAULT).verdict == "auto"
    assert decide("file_read", {"path": "~/innocent.txt"}, [], resolving).rule == "sensitive_path"
    assert decide("file_write", {"path": "~/innocent.txt", "content": ""}, [], resolving).verdict == "deny"
    assert decide("shell_exec", {"command": "cat innocent.txt"}, [], resolving).rule == "sensitive_path"
    assert decide("shell_exec", {"command": "cat innocent.txt"}, [], DEFAULT).verdict == "auto"


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://127.0.0.1:8420/api/v1/events", "daemon_target"),
        ("http://localhost:8420/", "daemon_target"),
        ("http://LOCALHOST:8420/", "daemon_target"),
        ("http://localhost.:8420/", "daemon_target"),
        ("http://api.localhost:8420/", "daemon_target"),
        ("http://[::1]:8420/", "daemon_target"),
        ("http://[::ffff:127.0.0.1]:8420/", "daemon_target"),
        ("http://2130706433:8420/", "daemon_target"),
        ("http://0x7f000001:8420/", "daemon_target"),
        ("http://127.1:8420/", "daemon_target"),
        ("http://0.0.0.0:8420/", "daemon_target"),
        ("http://127.0.0.2:8420/", "daemon_target"),
        ("http://localhost:9999/", "private_target"),
        ("http://10.0.0.1/", "private_target"),
        ("http://192.168.1.1/admin", "private_target"),
        ("http://172.16.0.1/", "private_target"),
        ("http://169.254.169.254/latest/meta-data/", "private_target"),
        ("http://100.64.0.1/", "private_target"),
        ("http://[fc00::1]/", "private_target"),
        ("http://[fe80::1]/", "private_target"),
        ("http://[::ffff:10.0.0.1]/", "private_target"),
        ("http://printer.local/", "private_target"),
        ("http://db.internal/", "private_target"),
        ("http://224.0.0.1/", "private_target"),
        ("file:///etc/passwd", "scheme"),
        ("ftp://example.com/x", "scheme"),
        ("gopher://example.com/", "scheme"),
        ("javascript:alert(1)", "scheme"),
        ("http:///nohost", "invalid"),
        ("http://example.com:99999/", "invalid"),
    ],
)
def test_http_targets_that_are_denied(url: str, rule: str) -> None:
    for method in ("GET", "POST"):
        decision = decide("http_request", {"url": url, "method": method}, [], rules({"http_request": "auto"}))
        assert (decision.verdict, decision.rule) == ("deny", rule), decision


def test_resolved_addresses_count_like_literals() -> None:
    looks_public = {"url": "https://rebind.example/", "_resolved": ["93.184.216.34", "10.1.2.3"]}
    assert decide("http_request", looks_public, [], DEFAULT).rule == "private_target"
    to_daemon = {"url": "http://rebind.example:8420/", "_resolved": ["127.0.0.1"]}
    assert decide("http_request", to_daemon, [], rules(allow_private=True)).rule == "daemon_target"
    public = {"url": "https://example.com/", "_resolved": ["93.184.216.34", "2606:2800:220:1::1"]}
    assert decide("http_request", public, [], DEFAULT).verdict == "auto"


def test_allow_private_opens_private_hosts_but_never_the_daemon() -> None:
    private = rules(allow_private=True)
    assert decide("http_request", {"url": "http://10.0.0.1/"}, [], private).verdict == "auto"
    assert decide("http_request", {"url": "http://localhost:9999/"}, [], private).verdict == "auto"
    assert decide("http_request", {"url": "http://localhost:8420/"}, [], private).rule == "daemon_target"


def test_an_unknown_daemon_port_makes_every_loopback_port_the_daemon() -> None:
    config = parse_config(
        {"server": {"port": 0}, "paths": {"data_dir": DATA}, "tools": {"http_request_allow_private": True}}
    )
    unknown = PolicyRules.from_config(config, home=HOME)
    assert unknown.daemon_port is None
    assert decide("http_request", {"url": "http://127.0.0.1:5555/"}, [], unknown).rule == "daemon_target"
    assert decide("http_request", {"url": "http://10.0.0.1:5555/"}, [], unknown).verdict == "auto"


def test_overrides_lower_any_verdict() -> None:
    lowered = rules({"shell_exec": "deny", "notify": "confirm", "http_request": "deny", "file_read": "confirm"})
    assert decide("shell_exec", {"command": "ls"}, [], lowered).verdict == "deny"
    assert decide("shell_exec", {"command": "ls"}, [], lowered).rule == "trust_mode"
    assert decide("notify", {"title": "t", "message": "m"}, [], lowered).verdict == "confirm"
    assert decide("http_request", {"url": "https://example.com/"}, [], lowered).verdict == "deny"
    assert decide("file_read", {"path": "notes.txt"}, [], lowered).verdict == "confirm"
    confirming = rules({"shell_exec": "confirm"})
    assert decide("shell_exec", {"command": "ls"}, [], confirming).verdict == "confirm"


def test_overrides_raise_only_up_to_the_ceiling() -> None:
    raised = rules({"tool_call": "auto", "file_write": "auto", "file_delete": "auto", "http_request": "auto"})
    assert decide("tool_call", {"tool": "time", "method": "now"}, [], raised).verdict == "auto"
    assert decide("file_write", {"path": "/tmp/x", "content": ""}, [], raised).verdict == "auto"
    assert decide("http_request", {"url": "https://example.com/", "method": "PUT"}, [], raised).verdict == "auto"
    sensitive = decide("file_write", {"path": "~/.ssh/authorized_keys", "content": ""}, [], raised)
    assert (sensitive.verdict, sensitive.rule) == ("confirm", "sensitive_path")
    assert "cannot raise" in sensitive.reason
    protected = decide("file_delete", {"path": f"{DATA}/api-token"}, [], raised)
    assert (protected.verdict, protected.rule) == ("deny", "protected_path")


TAINT_CAPPED = [
    ("shell_exec", {"command": "ls"}),
    ("file_write", {"path": "/tmp/x", "content": ""}),
    ("file_delete", {"path": "/tmp/x"}),
    ("open_app", {"target": "firefox"}),
    ("tool_call", {"tool": "time", "method": "now"}),
    ("http_request", {"url": "https://example.com/", "method": "POST"}),
    ("http_request", {"url": "https://example.com/", "method": "delete"}),
]


@pytest.mark.parametrize(("action_type", "action"), TAINT_CAPPED)
@pytest.mark.parametrize("source", ["clipboard", "notification", "webhook", "file", "system_log", "terminal",
                                    "http_response", "tool_output"])  # fmt: skip
def test_taint_caps_acting_types_at_confirm_whatever_the_override(
    action_type: str, action: dict[str, Any], source: str
) -> None:
    everything_auto = rules({name: "auto" for name, _ in TAINT_CAPPED})
    assert decide(action_type, action, [], everything_auto).verdict == "auto"
    decision = decide(action_type, action, [source], everything_auto)
    assert (decision.verdict, decision.rule) == ("confirm", "taint"), decision
    assert source in decision.reason


def test_taint_leaves_reading_and_telling_types_alone() -> None:
    for action_type, action in [
        ("http_request", {"url": "https://example.com/"}),
        ("notify", {"title": "t", "message": "m"}),
        ("log", {"message": "m"}),
        ("file_read", {"path": "notes.txt"}),
        ("set_knowledge", {"key": "k", "value": "v"}),
    ]:
        assert decide(action_type, action, ["clipboard"], DEFAULT).verdict == "auto", action_type


def test_trusted_sources_are_not_taint() -> None:
    trusting = rules({"shell_exec": "auto"}, trusted_sources=["terminal"])
    assert decide("shell_exec", {"command": "make"}, ["terminal"], trusting).verdict == "confirm"  # capped shape
    assert decide("shell_exec", {"command": "rm x"}, ["terminal"], trusting).verdict == "auto"
    assert decide("shell_exec", {"command": "rm x"}, ["terminal", "clipboard"], trusting).verdict == "confirm"


def test_extra_protected_paths_from_config_and_caller() -> None:
    config = parse_config({"paths": {"data_dir": DATA}, "policy": {"protected_paths": ["/srv/app"]}})
    extra = PolicyRules.from_config(config, daemon_port=8420, home=HOME, extra_protected=["/opt/policy.yaml"])
    assert decide("file_write", {"path": "/srv/app/x", "content": ""}, [], extra).verdict == "deny"
    assert decide("file_write", {"path": "/opt/policy.yaml", "content": ""}, [], extra).verdict == "deny"
    assert decide("shell_exec", {"command": "echo x > /opt/policy.yaml"}, [], extra).verdict == "deny"


@pytest.mark.parametrize(
    ("action_type", "action"),
    [("shell_exec", {}), ("shell_exec", {"command": 3}), ("http_request", {}), ("file_read", {"path": None})],
)
def test_malformed_actions_are_denied(action_type: str, action: dict[str, Any]) -> None:
    decision = decide(action_type, action, [], DEFAULT)
    assert (decision.verdict, decision.rule) == ("deny", "invalid")

"""Masking obvious secrets in producer content before it is published (pure)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, TypeVar, cast

T = TypeVar("T")
# Shorter "secrets" would mask ordinary words; the daemon's own (the API token) are long random strings.
MIN_SECRET_CHARS = 16
LOOSE_RULES = frozenset({"password"})

# (kind, pattern, group kept in front of the mask); order matters: whole blocks before fragments.
_RULES: tuple[tuple[str, re.Pattern[str], int], ...] = (
    (
        "private_key",
        re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:.*?-----END [A-Z0-9 ]*PRIVATE KEY-----|.*\Z)", re.S),
        0,
    ),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}"), 0),
    ("bearer_token", re.compile(r"(\b[Bb]earer\s+)[A-Za-z0-9._~+/=-]{8,}"), 1),
    ("api_key", re.compile(r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}"), 0),
    ("github_token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})"), 0),
    ("aws_access_key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), 0),
    ("slack_token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), 0),
    ("google_api_key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), 0),
    ("url_password", re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+(?=@)"), 1),
    (
        "password",
        re.compile(
            r"""((?:\b|_)(?:password|passwd|passphrase|pwd|secret|api[_-]?key|access[_-]?key|auth[_-]?token|"""
            r"""aws_secret_access_key|client[_-]?secret|token)["']?\s*[:=]\s*["']?)[^\s"',;&]+""",
            re.I,
        ),
        1,
    ),
)


def redact_text(text: str, skip: frozenset[str] = frozenset()) -> tuple[str, list[str]]:
    """The text with each secret replaced by `[REDACTED:<kind>]`, and the kinds found (sorted, unique); the rules
    of the kinds in `skip` are not applied."""
    found: set[str] = set()
    for kind, pattern, keep in _RULES:
        if kind in skip:
            continue

        def mask(match: re.Match[str], kind: str = kind, keep: int = keep) -> str:
            found.add(kind)
            prefix = match.group(keep) if keep else ""
            return f"{prefix}[REDACTED:{kind}]"

        text = pattern.sub(mask, text)
    return text, sorted(found)


def redact_value(value: Any) -> tuple[Any, list[str]]:
    """Redact every string inside a JSON-like value (dict keys are left alone)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        found: set[str] = set()
        out: dict[str, Any] = {}
        for key, item in value.items():
            out[key], kinds = redact_value(item)
            found.update(kinds)
        return out, sorted(found)
    if isinstance(value, list | tuple):
        found_list: set[str] = set()
        items = []
        for item in value:
            clean, kinds = redact_value(item)
            items.append(clean)
            found_list.update(kinds)
        return items, sorted(found_list)
    return value, []


def redact_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload with secrets masked; when any were, `redacted` lists their kinds."""
    clean, kinds = redact_value(payload)
    if kinds:
        clean["redacted"] = kinds
    return dict(clean)


def mask_secrets(value: T, secrets: Sequence[str]) -> T:
    """`value` with every occurrence of the given secrets (e.g. the API token) and well-known secret shapes masked,
    in every string of a JSON-like value, keys included. The loose `name: value` rule is left out: command output
    is full of `path/api-token: No such file` lines it would mangle."""
    known = [secret for secret in secrets if len(secret) >= MIN_SECRET_CHARS]

    def clean(text: str) -> str:
        for secret in known:
            text = text.replace(secret, "[REDACTED:daemon_secret]")
        return redact_text(text, skip=LOOSE_RULES)[0]

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return clean(item)
        if isinstance(item, dict):
            return {clean(key) if isinstance(key, str) else key: walk(inner) for key, inner in item.items()}
        if isinstance(item, list | tuple):
            return [walk(inner) for inner in item]
        return item

    return cast(T, walk(value))

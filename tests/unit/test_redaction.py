"""Secrets are masked before a producer publishes anything."""

from __future__ import annotations

import pytest

from aiventbus.redaction import mask_secrets, redact_payload, redact_text

GITHUB = "ghp_" + "A1b2C3d4E5" * 4
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
PEM = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nAAAA\n-----END OPENSSH PRIVATE KEY-----"


@pytest.mark.parametrize(
    ("text", "secret", "kind"),
    [
        ("key: sk-proj-Abcdefghijklmnopqrstuvwx0123", "sk-proj-Abcdefghijklmnopqrstuvwx0123", "api_key"),
        ("sk-ant-api03-abcdefghijklmnopqrstuvwxyz", "sk-ant-api03-abcdefghijklmnopqrstuvwxyz", "api_key"),
        (f"token {GITHUB} here", GITHUB, "github_token"),
        ("AKIAIOSFODNN7EXAMPLE is the id", "AKIAIOSFODNN7EXAMPLE", "aws_access_key"),
        (f"cookie={JWT}", JWT, "jwt"),
        ("login password=hunter2hunter2 now", "hunter2hunter2", "password"),
        ('{"api_key": "abc123secret"}', "abc123secret", "password"),
        ("Authorization: Bearer abcdefgh.ijklmnop-qrs", "abcdefgh.ijklmnop-qrs", "bearer_token"),
        (f"here:\n{PEM}\nthanks", "b3BlbnNzaC1rZXktdjEAAAAA", "private_key"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA cut off", "MIIEpAIBAAKCAQEA", "private_key"),
        ("postgres://app:s3cr3tpass@db:5432/x", "s3cr3tpass", "url_password"),
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCY", "wJalrXUtnFEMI/K7MDENG", "password"),
    ],
)
def test_secret_is_masked(text: str, secret: str, kind: str) -> None:
    clean, kinds = redact_text(text)
    assert secret not in clean
    assert f"[REDACTED:{kind}]" in clean
    assert kind in kinds


@pytest.mark.parametrize(
    "text",
    [
        "nothing secret here, just words",
        "the sk- prefix alone is fine",
        "ls -la ~/Downloads && git status",
        "password reset instructions were sent",
    ],
)
def test_plain_text_is_untouched(text: str) -> None:
    assert redact_text(text) == (text, [])


def test_context_around_a_secret_is_kept() -> None:
    clean, _ = redact_text("before password=hunter2hunter2 after")
    assert clean == "before password=[REDACTED:password] after"


def test_payload_is_redacted_deeply_and_marked() -> None:
    payload = {"text": f"use {GITHUB}", "nested": {"list": ["ok", "password: letmein99"]}, "n": 3}
    clean = redact_payload(payload)
    assert GITHUB not in str(clean) and "letmein99" not in str(clean)
    assert clean["n"] == 3
    assert clean["redacted"] == ["github_token", "password"]
    assert payload["text"] == f"use {GITHUB}", "the input is not modified"


def test_payload_without_secrets_has_no_marker() -> None:
    assert redact_payload({"text": "hello"}) == {"text": "hello"}


TOKEN = "Zq3v8Hk1_pL0x-9sYt2RmW4nB6cD7eF5gH0jK1lM2nO"


def test_mask_secrets_hides_a_known_secret_everywhere_in_a_value() -> None:
    value = {"stdout": f"token={TOKEN}\n", "lines": [TOKEN, {"k": f"a{TOKEN}b"}], TOKEN: 1, "n": 3}
    masked = mask_secrets(value, [TOKEN])
    assert TOKEN not in repr(masked)
    assert masked["n"] == 3
    assert masked["lines"][1]["k"] == "a[REDACTED:daemon_secret]b"


def test_mask_secrets_ignores_short_strings_and_keeps_plain_text() -> None:
    assert mask_secrets("the cat sat", ["cat", ""]) == "the cat sat"
    assert mask_secrets(None, [TOKEN]) is None


def test_mask_secrets_keeps_ordinary_error_lines() -> None:
    line = "cat: /home/u/.local/share/aiventbus/api-token: No such file or directory"
    assert mask_secrets(line, [TOKEN]) == line
    assert mask_secrets("key AKIAABCDEFGHIJKLMNOP", []) == "key [REDACTED:aws_access_key]"

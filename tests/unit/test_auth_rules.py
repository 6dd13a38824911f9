"""Host/Origin/token decisions, as pure functions."""

from __future__ import annotations

import pytest

from aiventbus.api.auth import bearer_matches, host_allowed, host_name, needs_token, origin_allowed


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1:8420", "127.0.0.1"),
        ("localhost", "localhost"),
        ("[::1]:8420", "[::1]"),
        ("LOCALHOST:1", "localhost"),
    ],
)
def test_host_name(header: str, name: str) -> None:
    assert host_name(header) == name


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("127.0.0.1:8420", True),
        ("localhost:8420", True),
        ("[::1]:8420", True),
        ("evil.example", False),
        ("evil.example:8420", False),
        ("127.0.0.1.evil.example", False),
        ("localhost.evil", False),
        ("", False),
        (None, False),
    ],
)
def test_host_allowed(host: str | None, ok: bool) -> None:
    assert host_allowed(host, []) is ok


def test_extra_hosts() -> None:
    assert host_allowed("box.lan:8420", ["box.lan"])


@pytest.mark.parametrize(
    ("origin", "host", "ok"),
    [
        (None, "127.0.0.1:8420", True),
        ("http://127.0.0.1:8420", "127.0.0.1:8420", True),
        ("http://localhost:8420", "localhost:8420", True),
        ("http://localhost:8421", "localhost:8420", False),
        ("http://evil.example", "127.0.0.1:8420", False),
        ("null", "127.0.0.1:8420", False),
        ("file://", "127.0.0.1:8420", False),
        ("http://127.0.0.1:8420", "localhost:8420", False),
    ],
)
def test_origin_allowed(origin: str | None, host: str, ok: bool) -> None:
    assert origin_allowed(origin, host, []) is ok


def test_bearer() -> None:
    assert bearer_matches("Bearer abc", "abc")
    assert not bearer_matches("Bearer abd", "abc")
    assert not bearer_matches("abc", "abc")
    assert not bearer_matches(None, "abc")


@pytest.mark.parametrize(
    ("method", "path", "needed"),
    [
        ("GET", "/metrics", False),
        ("GET", "/api/v1/system/status", False),
        ("POST", "/api/v1/system/status", True),
        ("GET", "/api/v1/events", True),
        ("POST", "/api/v1/events", True),
        ("GET", "/ws", True),
        ("GET", "/", False),
        ("GET", "/index.html", False),
        ("DELETE", "/anything", True),
        ("POST", "/api/v1/webhooks/github", False),
        ("GET", "/api/v1/webhooks/github", True),
    ],
)
def test_needs_token(method: str, path: str, needed: bool) -> None:
    assert needs_token(method, path) is needed

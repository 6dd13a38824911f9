"""http_request: vet the resolved addresses, pin the connection to a vetted IP, stream with a size cap."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from aiventbus.config import ToolsConfig
from aiventbus.records.actions import ActionFailed, ActionScope, HandlerResult, HttpRequestAction

Resolver = Callable[[str, int], Awaitable[list[str]]]
MAX_REDIRECTS = 5
KEPT_HEADERS = ("content-type", "content-length", "location", "date", "last-modified", "etag")


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host`, IPv4 first (the pinned connection uses the first)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos}, key=lambda address: (":" in address, address))


def address_problem(address: str) -> str | None:
    """Why connecting to `address` could reach this machine or its network, or None for a public address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for flag, label in (
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_private", "private"),
        ("is_multicast", "multicast"),
        ("is_reserved", "reserved"),
        ("is_unspecified", "unspecified"),
    ):
        if getattr(ip, flag):
            return f"{address} is a {label} address"
    return None


class HttpActions:
    """Runs http_request actions; a target is refused unless every address it resolves to is allowed."""

    def __init__(self, config: ToolsConfig, resolver: Resolver = system_resolver) -> None:
        self.config = config
        self.resolver = resolver

    async def request(self, action: HttpRequestAction, scope: ActionScope) -> HandlerResult:
        method = action.method
        url = action.url
        content, headers = _body(action)
        async with httpx.AsyncClient(timeout=self.config.http_request_timeout, follow_redirects=False) as client:
            for _ in range(MAX_REDIRECTS + 1):
                request = await self._pinned_request(client, method, url, headers, content)
                try:
                    response = await client.send(request, stream=True)
                except httpx.TimeoutException:
                    raise ActionFailed(
                        f"url: no answer from {url} within {self.config.http_request_timeout:g}s"
                    ) from None
                except httpx.HTTPError as error:
                    raise ActionFailed(f"url: request to {url} failed: {error}") from None
                try:
                    location = response.headers.get("location")
                    if response.is_redirect and location:
                        url = urljoin(url, location)
                        if response.status_code in (301, 302, 303) and method not in ("GET", "HEAD"):
                            method, content = "GET", None
                        continue
                    body, truncated = await self._read_capped(response)
                finally:
                    await response.aclose()
                return HandlerResult(
                    {
                        "url": url,
                        "status_code": response.status_code,
                        "headers": {k: v for k, v in response.headers.items() if k.lower() in KEPT_HEADERS},
                        "body": body.decode(response.encoding or "utf-8", errors="replace"),
                        "truncated": truncated,
                    },
                    source="http_response",
                )
        raise ActionFailed(f"url: more than {MAX_REDIRECTS} redirects")

    async def _pinned_request(
        self, client: httpx.AsyncClient, method: str, url: str, headers: dict[str, str], content: bytes | None
    ) -> httpx.Request:
        """A request that connects to one vetted address of the URL's host, keeping Host and SNI."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ActionFailed(f"url: {url!r} is not an http(s) URL with a host")
        host = parts.hostname
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = await self.resolver(host, port)
        except OSError as error:
            raise ActionFailed(f"url: cannot resolve {host}: {error}") from None
        if not addresses:
            raise ActionFailed(f"url: {host} resolves to no address")
        if not self.config.http_request_allow_private:
            for address in addresses:
                problem = address_problem(address)
                if problem is not None:
                    raise ActionFailed(
                        f"url: {host} refused: {problem} (set tools.http_request_allow_private to allow)"
                    )
        pinned = addresses[0]
        netloc_host = f"[{pinned}]" if ":" in pinned else pinned
        netloc = f"{netloc_host}:{parts.port}" if parts.port else netloc_host
        pinned_url = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        host_header = host if parts.port is None else f"{host}:{parts.port}"
        if ":" in host and not host.startswith("["):
            host_header = f"[{host}]" if parts.port is None else f"[{host}]:{parts.port}"
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        return client.build_request(
            method, pinned_url, headers={**headers, "Host": host_header}, content=content, extensions=extensions
        )

    async def _read_capped(self, response: httpx.Response) -> tuple[bytes, bool]:
        cap = self.config.http_request_max_size
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body.extend(chunk)
            if len(body) > cap:
                return bytes(body[:cap]), True
        return bytes(body), False


def _body(action: HttpRequestAction) -> tuple[bytes | None, dict[str, str]]:
    headers = {k: v for k, v in action.headers.items() if k.lower() not in ("host", "content-length")}
    if action.body is None:
        return None, headers
    if isinstance(action.body, str):
        return action.body.encode("utf-8"), headers
    if not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "application/json"
    return json.dumps(action.body).encode("utf-8"), headers

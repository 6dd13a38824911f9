"""The CLI's HTTP client: finds the daemon and its token from the same config the daemon uses."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import typer

from aiventbus.config import Config, load_config
from aiventbus.errors import ConfigError


class CliError(Exception):
    """Ends the command with one readable line and exit code 1."""


class DaemonClient:
    def __init__(self, config: Config, timeout: float = 30.0) -> None:
        host = config.server.host
        if host in {"0.0.0.0", "::", ""}:
            host = "127.0.0.1"
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        self.base_url = os.environ.get("AIBUS_URL") or f"http://{host}:{config.server.port}"
        self.token_path = config.token_path
        self.timeout = timeout
        self._token: str | None = None

    @property
    def token(self) -> str:
        if self._token is None:
            try:
                self._token = self.token_path.read_text(encoding="utf-8").strip()
            except FileNotFoundError:
                raise CliError(
                    f"no API token at {self.token_path}: start the daemon once (python -m aiventbus)"
                ) from None
            except PermissionError:
                raise CliError(f"cannot read the API token at {self.token_path}: permission denied") from None
        return self._token

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = httpx.request(
                method, self.base_url + path, headers=self.headers(), timeout=self.timeout, **kwargs
            )
        except httpx.ConnectError:
            raise CliError(f"the daemon is not running at {self.base_url} (start it: python -m aiventbus)") from None
        except httpx.TimeoutException:
            raise CliError(f"the daemon at {self.base_url} did not answer within {self.timeout:g}s") from None
        except httpx.HTTPError as error:
            raise CliError(f"request to {self.base_url} failed: {error}") from None
        if response.status_code >= 400:
            raise CliError(f"{response.status_code}: {error_detail(response)}")
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return response.text

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json=body if body is not None else {})

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, json=body)

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, json=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)


def error_detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, str):
        return detail
    return response.text.strip().splitlines()[0] if response.text.strip() else response.reason_phrase


_config_path: str | None = None


def set_config_path(path: str | None) -> None:
    global _config_path
    _config_path = path


def client(timeout: float = 30.0) -> DaemonClient:
    try:
        return DaemonClient(load_config(_config_path), timeout=timeout)
    except ConfigError as error:
        raise CliError(f"config error: {error.detail}") from None


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Turn any expected failure into one line on stderr and exit 1."""
    try:
        yield
    except CliError as error:
        typer.echo(f"aibus: {error}", err=True)
        raise typer.Exit(1) from None

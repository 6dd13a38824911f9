"""The CLI's HTTP client: finds the daemon and its token from the same config the daemon uses."""

from __future__ import annotations

import os
import shutil
import sys
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    import httpx

    from aiventbus.config import Config

# httpx, the config (pydantic, yaml) and websockets are imported inside the functions that use them, so that
# `aibus --help` and argument errors start in a fraction of the time (tests/unit/test_cli_imports.py).


class CliError(Exception):
    """Ends the command with one readable line and exit code 1."""


def start_hint() -> str:
    """A command that starts the daemon from where the user is: the checkout's script, the service, or this Python."""
    checkout_script = Path(__file__).resolve().parents[2] / "scripts" / "run"
    if checkout_script.is_file():
        return str(checkout_script)
    unit = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "systemd/user/aiventbus.service"
    if unit.is_file():
        return "systemctl --user start aiventbus"
    if shutil.which("aiventbus"):
        return "aiventbus"
    return f"{sys.executable} -m aiventbus"


def token_refused(token_path: Path, detail: str) -> CliError:
    """The one wording for a token the daemon does not accept, whichever command met it."""
    return CliError(
        f"the daemon refused the API token in {token_path} (it changed or belongs to another data dir): {detail}"
    )


def not_running(base_url: str) -> CliError:
    return CliError(f"the daemon is not running at {base_url} (start it: {start_hint()})")


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
        self._http: httpx.Client | None = None

    def http(self) -> httpx.Client:
        """One connection pool for the command's lifetime. A client per request loaded the CA bundle each time
        (~50 ms of CPU apiece: half a second per `aibus query`, taken from the model on a 2-core machine)."""
        if self._http is None:
            import httpx

            # Plain http to the local daemon verifies no certificate; the environment's proxies are not for it.
            secure = self.base_url.startswith("https:")
            self._http = httpx.Client(timeout=self.timeout, verify=secure, trust_env=False)
            weakref.finalize(self, self._http.close)
        return self._http

    @property
    def token(self) -> str:
        if self._token is None:
            try:
                self._token = self.token_path.read_text(encoding="utf-8").strip()
            except FileNotFoundError:
                raise CliError(f"no API token at {self.token_path}: start the daemon once ({start_hint()})") from None
            except PermissionError:
                raise CliError(f"cannot read the API token at {self.token_path}: permission denied") from None
        return self._token

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self.http().request(method, self.base_url + path, headers=self.headers(), **kwargs)
        except httpx.ConnectError:
            raise not_running(self.base_url) from None
        except httpx.TimeoutException:
            raise CliError(f"the daemon at {self.base_url} did not answer within {self.timeout:g}s") from None
        except httpx.HTTPError as error:
            raise CliError(f"request to {self.base_url} failed: {error}") from None
        if response.status_code == 401:
            raise token_refused(self.token_path, error_detail(response))
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
    from aiventbus.config import load_config
    from aiventbus.errors import ConfigError

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

"""Run a real daemon (store, bus, uvicorn) on a free loopback port, in-process or as a subprocess."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from aiventbus.api.app import create_app
from aiventbus.config import Config, parse_config
from aiventbus.daemon import Daemon

# uvicorn closes a connection idle for 5 s; httpx would keep it 5 s too and could send on it as it closes
# (ReadError). Dropping idle connections sooner leaves no such race, whatever a test does in between.
_POOL = httpx.Limits(keepalive_expiry=2.0)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def test_config_data(
    tmp_path: Path, overrides: dict[str, Any] | None = None, port: int | None = None
) -> dict[str, Any]:
    """A config that touches nothing outside tmp_path and starts no producer."""
    base: dict[str, Any] = {
        "server": {"port": port or free_port()},
        "paths": {"data_dir": str(tmp_path / "data"), "state_dir": str(tmp_path / "state")},
        "producers": {"clipboard_enabled": False},
        "memory": {"distill_enabled": False},
        "ollama": {"base_url": "http://127.0.0.1:9"},
    }
    return deep_merge(base, overrides or {})


def make_config(tmp_path: Path, overrides: dict[str, Any] | None = None) -> Config:
    return parse_config(test_config_data(tmp_path, overrides))


@dataclass
class RunningDaemon:
    daemon: Daemon
    base_url: str
    client: httpx.AsyncClient
    anonymous: httpx.AsyncClient

    @property
    def token(self) -> str:
        return self.daemon.token


@asynccontextmanager
async def running_daemon(
    tmp_path: Path,
    overrides: dict[str, Any] | None = None,
    clock: Callable[[], float] = time.time,
    setup: Callable[[Daemon], None] | None = None,
) -> AsyncIterator[RunningDaemon]:
    config = make_config(tmp_path, overrides)
    daemon = Daemon(config, clock=clock)
    if setup is not None:
        setup(daemon)
    await daemon.start()
    serving = asyncio.create_task(daemon.serve(create_app(daemon)))
    try:
        deadline = time.monotonic() + 15
        while not (daemon.server and daemon.server.started):
            if serving.done():
                serving.result()
            if time.monotonic() > deadline:
                raise TimeoutError("daemon did not start serving")
            await asyncio.sleep(0.01)
        base_url = f"http://127.0.0.1:{config.server.port}"
        headers = {"Authorization": f"Bearer {daemon.token}"}
        async with (
            httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30, limits=_POOL) as client,
            httpx.AsyncClient(base_url=base_url, timeout=30, limits=_POOL) as anonymous,
        ):
            yield RunningDaemon(daemon, base_url, client, anonymous)
    finally:
        daemon.request_exit()
        try:
            await asyncio.wait_for(serving, 15)
        finally:
            await daemon.stop()


@dataclass
class DaemonProcess:
    process: subprocess.Popen[bytes]
    config_path: Path
    base_url: str
    token_path: Path
    log_path: Path

    @property
    def token(self) -> str:
        return self.token_path.read_text().strip()

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def write_config(tmp_path: Path, overrides: dict[str, Any] | None = None, port: int | None = None) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(test_config_data(tmp_path, overrides, port)))
    return path


def start_daemon_process(
    config_path: Path, env: dict[str, str] | None = None, timeout: float = 30, extra_args: list[str] | None = None
) -> DaemonProcess:
    """`python -m aiventbus --config PATH [extra_args]`, waited on until its status answers (`--port N` is honoured)."""
    data = yaml.safe_load(config_path.read_text())
    args = extra_args or []
    port = args[args.index("--port") + 1] if "--port" in args else data["server"]["port"]
    base_url = f"http://127.0.0.1:{port}"
    log_path = config_path.parent / f"daemon-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "aiventbus", "--config", str(config_path), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daemon exited with {process.returncode}: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(base_url + "/api/v1/system/status", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    else:
        process.kill()
        raise TimeoutError(f"daemon did not answer: {log_path.read_text()[-2000:]}")
    token_path = Path(data["paths"]["data_dir"]) / "api-token"
    return DaemonProcess(process, config_path, base_url, token_path, log_path)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15) -> int:
    if process.poll() is None:
        process.terminate()
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait(timeout)

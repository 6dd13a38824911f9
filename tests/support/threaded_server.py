"""A uvicorn server on a background thread, for stand-ins and proxies that blocking test or bench code drives."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import uvicorn

STARTUP_TIMEOUT_SECONDS = 15.0


@dataclass
class ThreadedServer:
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self, timeout: float = 15.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=timeout)


def serve_in_thread(app: Any, port: int, name: str, **settings: Any) -> ThreadedServer:
    """Serve `app` on 127.0.0.1:`port` (h11, no websockets, quiet; `settings` override) and return once it listens."""
    config = uvicorn.Config(
        app,
        **{
            "host": "127.0.0.1",
            "port": port,
            "loop": "asyncio",
            "http": "h11",
            "ws": "none",
            "lifespan": "on",
            "access_log": False,
            "log_level": "warning",
            **settings,
        },
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start on port {port}")
        time.sleep(0.01)  # waiting for another thread's event loop
    return ThreadedServer(server, thread)

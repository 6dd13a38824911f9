"""create_app(daemon): the FastAPI application, its guards, error mapping and metrics."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aiventbus import __version__
from aiventbus.api import actions, backups, events, knowledge, memories, system
from aiventbus.api import agents as agents_api
from aiventbus.api import assignments as assignments_api
from aiventbus.api import producers as producers_api
from aiventbus.api import routing as routing_api
from aiventbus.api import webhooks as webhooks_api
from aiventbus.api import ws as ws_api
from aiventbus.api.auth import GuardMiddleware, needs_token
from aiventbus.api.body import describe
from aiventbus.config import Config
from aiventbus.daemon import Daemon
from aiventbus.errors import AiventbusError

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or wrong API token"},
    403: {"description": "Foreign Host or Origin, or refused by policy"},
}


BEARER_SCHEME = "bearerToken"
DOCS_ASSETS_URL = "/docs-assets"


def create_app(daemon: Daemon) -> FastAPI:
    # /docs and /redoc load Swagger UI and ReDoc from files in the fastapi-offline package: nothing leaves the machine.
    app = FastAPIOffline(
        title="aiventbus",
        version=__version__,
        description="Local-first AI control plane: events, agents, policy-gated actions.",
        responses=ERROR_RESPONSES,
        static_url=DOCS_ASSETS_URL,
    )
    app.state.daemon = daemon
    app.openapi = lambda: _openapi_with_bearer(app)  # type: ignore[method-assign]

    @app.exception_handler(AiventbusError)
    async def _known_error(_: Request, error: AiventbusError) -> JSONResponse:
        return JSONResponse({"detail": error.detail, **_jsonable(error.data)}, status_code=error.status_code)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        lines = []
        for item in error.errors()[:5]:
            loc = ".".join(str(part) for part in item["loc"] if part not in {"body", "query", "path"})
            lines.append(f"{loc or 'body'}: {item['msg']}")
        return JSONResponse({"detail": "; ".join(lines)}, status_code=422)

    app.include_router(events.router)
    app.include_router(system.router)
    app.include_router(knowledge.router)
    app.include_router(memories.router)
    app.include_router(actions.router)
    app.include_router(backups.router)
    app.include_router(producers_api.router)
    app.include_router(webhooks_api.router)
    app.include_router(agents_api.router)
    app.include_router(routing_api.router)
    app.include_router(assignments_api.router)
    app.include_router(ws_api.router)
    for extra in daemon.api_routers():
        app.include_router(extra)

    dashboard = Path(__file__).resolve().parent.parent / "dashboard"
    if (dashboard / "index.html").exists():
        app.mount("/", StaticFiles(directory=dashboard, html=True), name="dashboard")

    # Added last = outermost: refused requests are counted too.
    app.add_middleware(GuardMiddleware, token=daemon.token, extra_hosts=daemon.config.server.allowed_hosts)
    app.add_middleware(MetricsMiddleware, daemon=daemon)
    return app


def _openapi_with_bearer(app: FastAPI) -> dict[str, Any]:
    """The schema with the bearer token declared on the operations that need it (Swagger UI's Authorize button)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = FastAPI.openapi(app)
    schema.setdefault("components", {})["securitySchemes"] = {
        BEARER_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": "The token in the daemon's token file (data dir/api-token, or server.token_file)",
        }
    }
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if isinstance(operation, dict) and needs_token(method.upper(), path):
                operation["security"] = [{BEARER_SCHEME: []}]
    app.openapi_schema = schema
    return schema


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if isinstance(v, str | int | float | bool | list | dict | type(None))}


__all__ = ["create_app", "describe"]


class MetricsMiddleware:
    """Counts requests and latency by route template, never by raw path."""

    def __init__(self, app: ASGIApp, daemon: Daemon) -> None:
        self.app = app
        self.daemon = daemon

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            path = self._template(scope)
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            metrics = self.daemon.metrics
            metrics.http_requests.labels(method, path, str(status)).inc()
            metrics.http_request_duration.labels(method, path).observe(time.perf_counter() - started)

    def _template(self, scope: Scope) -> str:
        route = scope.get("route")
        template = getattr(route, "path", None)
        if isinstance(template, str):
            return template
        app = scope.get("app")
        for candidate in getattr(getattr(app, "router", None), "routes", []):
            match, _ = candidate.matches(scope)
            if match == Match.FULL:
                path = getattr(candidate, "path", "")
                return str(path) if path else "/"
        return "unmatched"


_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


async def run_daemon(config: Config) -> None:
    """Start the daemon, serve its API until a stop signal, then stop it."""
    daemon = Daemon(config)
    try:
        await daemon.start()
        await daemon.serve(create_app(daemon), install_signal_handlers=True)
    finally:
        await daemon.stop()

"""A recording HTTP proxy between the daemon and a model server, for benches.

Every request is forwarded unchanged and streamed back as it arrives; each chat call (OpenAI `/chat/completions`
SSE or Ollama `/api/chat` NDJSON) is recorded with its exact request body, when its first content token passed,
how it ended (`finish_reason` / `done_reason`) and the token counts the server reported. It runs uvicorn in a
background thread, so a bench can read `calls` while the daemon (another process) talks through it.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.support.daemon import free_port
from tests.support.threaded_server import ThreadedServer, serve_in_thread

CHAT_PATHS = ("/chat/completions", "/api/chat")
HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "accept-encoding"}


@dataclass
class ChatCall:
    """One chat request as the server saw it and what came back."""

    path: str
    body: dict[str, Any]
    started: float
    first_token: float | None = None
    ended: float | None = None
    status: int | None = None
    finish_reason: str | None = None
    completion_tokens: int | None = None
    prompt_tokens: int | None = None
    text: str = ""
    content_chunks: int = 0  # streamed pieces with text: about one token each where the server reports no count
    error: str | None = None

    @property
    def max_tokens(self) -> int | None:
        """The output cap the client asked for (OpenAI `max_tokens`, Ollama `options.num_predict`)."""
        value = self.body.get("max_tokens")
        if value is None:
            value = (self.body.get("options") or {}).get("num_predict")
        return int(value) if isinstance(value, int) else None

    @property
    def hit_cap(self) -> bool:
        return self.finish_reason == "length"

    @property
    def answer_tokens(self) -> int:
        return self.completion_tokens if self.completion_tokens is not None else self.content_chunks

    @property
    def past_cap(self) -> bool:
        cap = self.max_tokens
        return cap is not None and self.answer_tokens > cap

    def note_line(self, line: str, now: float) -> None:
        """Read one SSE (`data: {...}`) or NDJSON line of the streamed answer."""
        text = line.strip()
        if text.startswith("data:"):
            text = text[5:].strip()
        if not text or text == "[DONE]":
            return
        try:
            chunk = json.loads(text)
        except ValueError:
            return
        if not isinstance(chunk, dict):
            return
        if "choices" in chunk:  # OpenAI-compatible
            for choice in chunk.get("choices") or []:
                content = (choice.get("delta") or {}).get("content") or (choice.get("message") or {}).get("content")
                self._content(content, now)
                if choice.get("finish_reason"):
                    self.finish_reason = str(choice["finish_reason"])
            usage = chunk.get("usage") or {}
            if usage:
                self.completion_tokens = usage.get("completion_tokens", self.completion_tokens)
                self.prompt_tokens = usage.get("prompt_tokens", self.prompt_tokens)
        elif "message" in chunk or "done" in chunk:  # Ollama
            self._content((chunk.get("message") or {}).get("content"), now)
            if chunk.get("done"):
                self.finish_reason = str(chunk.get("done_reason") or "stop")
                self.completion_tokens = chunk.get("eval_count", self.completion_tokens)
                self.prompt_tokens = chunk.get("prompt_eval_count", self.prompt_tokens)
        if "error" in chunk:
            self.error = str(chunk["error"])[:500]

    def _content(self, content: Any, now: float) -> None:
        if isinstance(content, str) and content:
            if self.first_token is None:
                self.first_token = now
            self.text += content
            self.content_chunks += 1


@dataclass
class RecordingProxy:
    """Forwards everything to `upstream` (scheme://host:port); `calls` holds the chat calls in arrival order."""

    upstream: str
    port: int = field(default_factory=free_port)
    calls: list[ChatCall] = field(default_factory=list)
    in_flight: int = 0
    _served: ThreadedServer | None = None
    _client: httpx.AsyncClient | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RecordingProxy:
        self._served = serve_in_thread(self._app(), self.port, f"model-proxy-{self.port}")
        return self

    def stop(self) -> None:
        if self._served is not None:
            self._served.stop()
            self._served = None

    def _app(self) -> Starlette:
        @asynccontextmanager
        async def lifespan(_app: Starlette) -> AsyncIterator[None]:
            self._client = httpx.AsyncClient(base_url=self.upstream, timeout=httpx.Timeout(900.0, connect=5.0))
            try:
                yield
            finally:
                await self._client.aclose()

        methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
        return Starlette(routes=[Route("/{path:path}", self._forward, methods=methods)], lifespan=lifespan)

    async def _forward(self, request: Request) -> Response:
        assert self._client is not None
        raw = await request.body()
        path = request.url.path
        call: ChatCall | None = None
        if request.method == "POST" and path.endswith(CHAT_PATHS):
            try:
                body = json.loads(raw)
            except ValueError:
                body = {}
            call = ChatCall(path, body if isinstance(body, dict) else {}, time.perf_counter())
            self.calls.append(call)
            self.in_flight += 1
        headers = {key: value for key, value in request.headers.items() if key.lower() not in HOP_HEADERS}
        upstream_request = self._client.build_request(
            request.method, path, params=request.query_params, content=raw, headers=headers
        )
        try:
            upstream = await self._client.send(upstream_request, stream=True)
        except httpx.HTTPError as error:
            if call is not None:
                call.error, call.ended = f"{type(error).__name__}: {error}", time.perf_counter()
                self.in_flight -= 1
            return Response(f"proxy: upstream unreachable: {error}", status_code=502)
        if call is not None:
            call.status = upstream.status_code
        out_headers = {key: value for key, value in upstream.headers.items() if key.lower() not in HOP_HEADERS}
        return StreamingResponse(
            self._relay(upstream, call),
            status_code=upstream.status_code,
            headers=out_headers,
            background=BackgroundTask(upstream.aclose),
        )

    async def _relay(self, upstream: httpx.Response, call: ChatCall | None) -> AsyncIterator[bytes]:
        pending = b""
        try:
            async for chunk in upstream.aiter_raw():
                if call is not None:
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    now = time.perf_counter()
                    for line in lines:
                        call.note_line(line.decode("utf-8", "replace"), now)
                yield chunk
            if call is not None and pending:
                call.note_line(pending.decode("utf-8", "replace"), time.perf_counter())
        except httpx.HTTPError as error:
            if call is not None:
                call.error = f"{type(error).__name__}: {error}"
            raise
        finally:
            if call is not None:
                call.ended = time.perf_counter()
                self.in_flight -= 1

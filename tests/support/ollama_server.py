"""A test server speaking Ollama's documented HTTP API, taking its tokens from a real llama.cpp server.

Endpoints: `GET /api/tags`, `POST /api/show`, `POST /api/chat` (NDJSON streaming or one object), `POST /api/embed`,
`GET /api/version`, `GET /`. Unknown models answer 404 `{"error": "model 'x' not found"}` as Ollama does.
It runs uvicorn in a background thread; `start()` / `stop()` may be called repeatedly on the same port, which
lets tests take the "LLM server" down and bring it back.
"""

from __future__ import annotations

import asyncio
import collections
import json
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support.daemon import free_port
from tests.support.threaded_server import ThreadedServer, serve_in_thread

OLLAMA_MODEL = "smollm2:135m"
CHATML_TOKENS_PER_MESSAGE = 5  # <|im_start|> role \n ... <|im_end|> \n
CHATML_GENERATION_PROMPT_TOKENS = 3  # <|im_start|> assistant \n


@dataclass(frozen=True)
class ScriptedReply:
    """A canned answer streamed instead of the model's (for garbage-output tests); `token_delay` paces chunks,
    `done_reason` is what the final message says (None: left out, as Ollama before 0.1.33 did)."""

    text: str
    token_delay: float = 0.0
    done_reason: str | None = "stop"


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _mean_pooled(vectors: list[Any]) -> list[float]:
    """One L2-normalised vector from llama.cpp's per-token embeddings (or a single pooled one)."""
    rows: list[list[float]] = vectors if vectors and isinstance(vectors[0], list) else [vectors]
    width = len(rows[0])
    mean = [sum(row[i] for row in rows) / len(rows) for i in range(width)]
    norm = math.sqrt(sum(value * value for value in mean)) or 1.0
    return [value / norm for value in mean]


class OllamaServer:
    """Ollama's API in front of an OpenAI-compatible llama.cpp server (`upstream_url`, model `upstream_model`)."""

    def __init__(
        self,
        upstream_url: str,
        upstream_model: str,
        *,
        model: str = OLLAMA_MODEL,
        context_tokens: int = 2048,
        port: int | None = None,
    ) -> None:
        self.upstream_url = upstream_url.rstrip("/")
        self.upstream_model = upstream_model
        self.model = model
        self.context_tokens = context_tokens
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.requests: list[dict[str, Any]] = []
        self.scripted: collections.deque[ScriptedReply] = collections.deque()
        self.active_streams = 0
        self._served: ThreadedServer | None = None
        self._client: httpx.AsyncClient | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Serve in a background thread; returns once the port accepts connections."""
        if self._served is not None:
            return
        self._served = serve_in_thread(self._app(), self.port, f"ollama-test-{self.port}", timeout_graceful_shutdown=2)

    def stop(self) -> None:
        """Stop serving and free the port (open streams are cut after a short grace period)."""
        if self._served is not None:
            self._served.stop()
            self._served = None

    @property
    def running(self) -> bool:
        return self._served is not None

    def queue_reply(self, text: str, token_delay: float = 0.0, done_reason: str | None = "stop") -> None:
        """Make the next /api/chat stream `text` instead of asking the model; `done_reason="length"` scripts an
        answer cut at num_predict."""
        self.scripted.append(ScriptedReply(text, token_delay, done_reason))

    def __enter__(self) -> OllamaServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- app -----------------------------------------------------------------------------------

    def _app(self) -> Starlette:
        @asynccontextmanager
        async def lifespan(_app: Starlette) -> AsyncIterator[None]:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(300.0, connect=5.0))
            try:
                yield
            finally:
                await self._client.aclose()
                self._client = None

        return Starlette(
            routes=[
                Route("/", self._root, methods=["GET", "HEAD"]),
                Route("/api/version", self._version, methods=["GET"]),
                Route("/api/tags", self._tags, methods=["GET"]),
                Route("/api/show", self._show, methods=["POST"]),
                Route("/api/chat", self._chat, methods=["POST"]),
                Route("/api/embed", self._embed, methods=["POST"]),
            ],
            lifespan=lifespan,
        )

    @property
    def client(self) -> httpx.AsyncClient:
        assert self._client is not None, "server not started"
        return self._client

    async def _root(self, _request: Request) -> Response:
        return PlainTextResponse("Ollama is running")

    async def _version(self, _request: Request) -> Response:
        return JSONResponse({"version": "0.6.0"})

    def _details(self) -> dict[str, Any]:
        return {
            "parent_model": "",
            "format": "gguf",
            "family": "llama",
            "families": ["llama"],
            "parameter_size": "135M",
            "quantization_level": "Q4_1",
        }

    async def _tags(self, _request: Request) -> Response:
        entry = {
            "name": self.model,
            "model": self.model,
            "modified_at": "2025-01-01T00:00:00Z",
            "size": 98_000_000,
            "digest": "0" * 64,
            "details": self._details(),
        }
        return JSONResponse({"models": [entry]})

    async def _body(self, request: Request) -> dict[str, Any] | Response:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "invalid JSON body"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
        self.requests.append({"path": request.url.path, **body})
        return body

    def _unknown_model(self, body: dict[str, Any]) -> Response | None:
        name = body.get("model") or body.get("name")
        if not isinstance(name, str) or not name:
            return JSONResponse({"error": "model is required"}, status_code=400)
        if name != self.model:
            return JSONResponse({"error": f"model '{name}' not found"}, status_code=404)
        return None

    async def _show(self, request: Request) -> Response:
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        if (error := self._unknown_model(body)) is not None:
            return error
        return JSONResponse(
            {
                "modelfile": f"FROM {self.model}",
                "parameters": "",
                "template": "{{ .Prompt }}",
                "details": self._details(),
                "model_info": {
                    "general.architecture": "llama",
                    "general.parameter_count": 134_515_008,
                    "llama.context_length": self.context_tokens,
                    "llama.embedding_length": 576,
                },
                "capabilities": ["completion", "embedding"],
            }
        )

    # -- chat ----------------------------------------------------------------------------------

    async def _chat(self, request: Request) -> Response:
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        if (error := self._unknown_model(body)) is not None:
            return error
        messages = body.get("messages")
        if not isinstance(messages, list) or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in messages
        ):
            return JSONResponse({"error": "messages must be a list of {role, content}"}, status_code=400)
        chunks = self._chunks(body, messages)
        if body.get("stream", True):
            return StreamingResponse(self._ndjson(chunks), media_type="application/x-ndjson")
        text_parts: list[str] = []
        final: dict[str, Any] = {}
        async for chunk in chunks:
            if "error" in chunk:
                return JSONResponse(chunk, status_code=500)
            if chunk["done"]:
                final = chunk
            else:
                text_parts.append(chunk["message"]["content"])
        final["message"] = {"role": "assistant", "content": "".join(text_parts)}
        return JSONResponse(final)

    async def _ndjson(self, chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
        """NDJSON lines; `active_streams` counts streams in flight (a client that disconnects ends its stream)."""
        self.active_streams += 1
        try:
            async for chunk in chunks:
                yield (json.dumps(chunk) + "\n").encode()
        finally:
            self.active_streams -= 1

    def _upstream_payload(self, body: dict[str, Any], messages: list[dict[str, Any]]) -> dict[str, Any]:
        options = body.get("options") or {}
        payload: dict[str, Any] = {
            "model": self.upstream_model,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "stream": True,
            "temperature": float(options.get("temperature", 0.8)),
        }
        num_predict = options.get("num_predict")
        if isinstance(num_predict, int) and num_predict > 0:
            payload["max_tokens"] = num_predict
        if isinstance(options.get("seed"), int):
            payload["seed"] = options["seed"]
        if isinstance(options.get("top_p"), int | float):
            payload["top_p"] = float(options["top_p"])
        if isinstance(options.get("stop"), list):
            payload["stop"] = options["stop"]
        schema = body.get("format")
        if schema == "json":
            payload["response_format"] = {"type": "json_object"}
        elif isinstance(schema, dict):
            payload["response_format"] = {"type": "json_object", "schema": schema}
        return payload

    async def _chunks(self, body: dict[str, Any], messages: list[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
        started = time.monotonic_ns()
        prompt_tokens = await self._count_prompt_tokens(messages)
        prompt_done = time.monotonic_ns()
        eval_count = 0
        done_reason: str | None = "stop"
        if self.scripted:
            reply = self.scripted.popleft()
            done_reason = reply.done_reason
            for piece in _split_tokens(reply.text):
                if reply.token_delay:
                    await asyncio.sleep(reply.token_delay)
                eval_count += 1
                yield self._message_chunk(piece)
        else:
            try:
                upstream_reason: str | None = None
                async for piece, reason in self._upstream_tokens(body, messages):
                    if piece:
                        eval_count += 1
                        yield self._message_chunk(piece)
                    upstream_reason = reason or upstream_reason
            except (httpx.TransportError, LookupError, ValueError) as error:
                yield {"error": f"llama.cpp stream failed: {error}"}
                return
            if upstream_reason is None:
                # llama.cpp cut the stream (another request interrupted it); Ollama itself never cuts, it reports.
                yield {"error": "llama.cpp stream ended without a finish reason (interrupted)"}
                return
            done_reason = upstream_reason
        finished = time.monotonic_ns()
        final: dict[str, Any] = {
            "model": self.model,
            "created_at": _now(),
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "total_duration": finished - started,
            "load_duration": 0,
            "prompt_eval_count": prompt_tokens,
            "prompt_eval_duration": prompt_done - started,
            "eval_count": eval_count,
            "eval_duration": finished - prompt_done,
        }
        if done_reason is not None:
            final["done_reason"] = done_reason
        yield final

    async def _upstream_tokens(
        self, body: dict[str, Any], messages: list[dict[str, Any]]
    ) -> AsyncIterator[tuple[str, str | None]]:
        """(text, done_reason) pairs from llama.cpp's SSE stream; raises ValueError on an error answer."""
        payload = self._upstream_payload(body, messages)
        async with self.client.stream("POST", f"{self.upstream_url}/v1/chat/completions", json=payload) as answer:
            if answer.status_code != 200:
                detail = (await answer.aread()).decode(errors="replace")[:500]
                raise ValueError(f"answered {answer.status_code}: {detail}")
            async for line in answer.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                choice = json.loads(data)["choices"][0]
                reason = choice.get("finish_reason")
                yield (
                    choice.get("delta", {}).get("content") or "",
                    ("length" if reason == "length" else "stop") if reason else None,
                )

    def _message_chunk(self, content: str) -> dict[str, Any]:
        return {
            "model": self.model,
            "created_at": _now(),
            "message": {"role": "assistant", "content": content},
            "done": False,
        }

    async def _count_prompt_tokens(self, messages: list[dict[str, Any]]) -> int:
        """Tokens of the messages by the real tokenizer plus the ChatML framing around each."""
        text = "\n".join(m["content"] for m in messages)
        answer = await self.client.post(f"{self.upstream_url}/extras/tokenize/count", json={"input": text})
        answer.raise_for_status()
        return int(answer.json()["count"]) + CHATML_TOKENS_PER_MESSAGE * len(messages) + CHATML_GENERATION_PROMPT_TOKENS

    # -- embeddings ----------------------------------------------------------------------------

    async def _embed(self, request: Request) -> Response:
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        if (error := self._unknown_model(body)) is not None:
            return error
        given = body.get("input")
        texts = [given] if isinstance(given, str) else given
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return JSONResponse({"error": "input must be a string or a list of strings"}, status_code=400)
        started = time.monotonic_ns()
        answer = await self.client.post(
            f"{self.upstream_url}/v1/embeddings", json={"model": self.upstream_model, "input": texts}
        )
        if answer.status_code != 200:
            return JSONResponse({"error": f"llama.cpp answered {answer.status_code}"}, status_code=500)
        data = answer.json()
        rows = sorted(data["data"], key=lambda row: row["index"])
        return JSONResponse(
            {
                "model": self.model,
                "embeddings": [_mean_pooled(row["embedding"]) for row in rows],
                "total_duration": time.monotonic_ns() - started,
                "load_duration": 0,
                "prompt_eval_count": int(data.get("usage", {}).get("prompt_tokens", 0)),
            }
        )


def _split_tokens(text: str) -> list[str]:
    """Word-sized chunks that join back to `text`, like a model's token stream."""
    pieces: list[str] = []
    current = ""
    for char in text:
        if char.isspace() and current and not current.isspace():
            pieces.append(current)
            current = ""
        current += char
    if current:
        pieces.append(current)
    return pieces

"""Ollama's native API: `/api/chat` streamed as NDJSON, `/api/tags` + `/api/show` for checks, `/api/embed`."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from aiventbus.errors import LLMError, LLMUnavailable
from aiventbus.llm import emit_token, error_text, http_timeout
from aiventbus.llm.base import ChatRequest, ChatResult, ModelCheck, TokenCallback, truncation_problem
from aiventbus.llm.server_info import Dialect, ServerInfo, ollama_context_tokens


def same_model(wanted: str, listed: str) -> bool:
    """Ollama treats `gemma4` and `gemma4:latest` as one model."""
    return _with_tag(wanted) == _with_tag(listed)


def _with_tag(name: str) -> str:
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


class OllamaProvider:
    """One Ollama server at `base_url`."""

    kind = "ollama"

    def __init__(
        self,
        base_url: str,
        *,
        request_timeout_seconds: float = 300.0,
        keep_alive: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.request_timeout_seconds = request_timeout_seconds
        self.keep_alive = keep_alive
        self._clock = clock
        self._client = httpx.AsyncClient(
            base_url=self.base_url, timeout=http_timeout(request_timeout_seconds), transport=transport
        )
        self.server_info = ServerInfo("ollama", "format")

    @property
    def dialect(self) -> Dialect:
        """Ollama takes the JSON schema as `format`; nothing to probe."""
        return "format"

    async def probe(self) -> ServerInfo:
        return self.server_info

    async def count_tokens(self, model: str, text: str) -> int | None:
        """Ollama has no tokenize endpoint: the caller estimates (and learns from `prompt_eval_count`)."""
        return None

    # -- chat ----------------------------------------------------------------------------------

    def _chat_body(self, request: ChatRequest) -> dict[str, Any]:
        options: dict[str, Any] = {"temperature": request.temperature}
        if request.max_tokens is not None:
            options["num_predict"] = request.max_tokens
        if request.seed is not None:
            options["seed"] = request.seed
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "stream": True,
            "options": options,
        }
        if request.json_schema is not None:
            body["format"] = request.json_schema
        keep_alive = request.keep_alive or self.keep_alive
        if keep_alive:
            body["keep_alive"] = keep_alive
        return body

    async def chat(self, request: ChatRequest, on_token: TokenCallback | None = None) -> ChatResult:
        """Stream one chat; LLMUnavailable when Ollama or the model is missing, LLMError on a bad stream."""
        started = self._clock()
        try:
            async with asyncio.timeout(self.request_timeout_seconds):
                return await self._stream_chat(request, on_token, started)
        except TimeoutError:
            raise LLMError(
                f"Ollama at {self.base_url} gave no complete answer within {self.request_timeout_seconds:g}s "
                f"(ollama.request_timeout_seconds)"
            ) from None
        except httpx.TransportError as error:  # refused, reset, or silent past the read timeout
            raise self._unreachable(error) from None

    async def _stream_chat(self, request: ChatRequest, on_token: TokenCallback | None, started: float) -> ChatResult:
        parts: list[str] = []
        first_token: float | None = None
        async with self._client.stream("POST", "/api/chat", json=self._chat_body(request)) as response:
            await self._raise_for_status(response, request.model)
            async for line in response.aiter_lines():
                if not line.strip():
                    continue
                chunk = _decode_chunk(line)
                content = chunk["message"]["content"] if isinstance(chunk.get("message"), dict) else ""
                if content:
                    if first_token is None:
                        first_token = self._clock() - started
                    parts.append(content)
                    await emit_token(on_token, content)
                if chunk.get("done") is True:
                    reason = chunk.get("done_reason") if isinstance(chunk.get("done_reason"), str) else None
                    # Ollama before 0.1.33 sends no done_reason: its final message alone means a whole answer.
                    if reason is not None and (problem := _cut(reason, request.max_tokens)) is not None:
                        raise LLMError(
                            f"{problem} from Ollama at {self.base_url}",
                            prompt_tokens=_count(chunk, "prompt_eval_count"),
                        )
                    return ChatResult(
                        text="".join(parts),
                        prompt_tokens=_count(chunk, "prompt_eval_count"),
                        eval_tokens=_count(chunk, "eval_count"),
                        duration_seconds=self._clock() - started,
                        first_token_seconds=first_token,
                        finish_reason=reason,
                    )
        raise LLMError(f"the stream from Ollama at {self.base_url} ended without its final done message")

    async def _raise_for_status(self, response: httpx.Response, model: str) -> None:
        if response.status_code < 400:
            return
        detail = await error_text(response)
        if response.status_code == 404:
            raise self._missing_model(model)
        raise LLMError(f"Ollama at {self.base_url} answered {response.status_code}: {detail}")

    def _missing_model(self, model: str) -> LLMUnavailable:
        return LLMUnavailable(f"model {model} not found at {self.base_url}", fix=f"ollama pull {model}")

    def _unreachable(self, error: Exception) -> LLMUnavailable:
        reason = str(error) or type(error).__name__
        return LLMUnavailable(
            f"cannot reach Ollama at {self.base_url}: {reason}",
            fix=f"start it with `ollama serve` (or set ollama.base_url; now {self.base_url})",
        )

    # -- check ---------------------------------------------------------------------------------

    async def check(self, model: str) -> ModelCheck:
        """Is the server up and the model pulled? Also reads the model's context length from /api/show."""
        try:
            tags = await self._client.get("/api/tags", timeout=http_timeout(10.0))
            if tags.status_code >= 400:
                return ModelCheck(False, f"Ollama at {self.base_url} answered {tags.status_code} to /api/tags")
            listed = [str(m.get("name") or m.get("model")) for m in tags.json().get("models", [])]
            if not any(same_model(model, name) for name in listed):
                missing = self._missing_model(model)
                return ModelCheck(False, missing.detail, missing.fix, models=listed)
            show = await self._client.post("/api/show", json={"model": model}, timeout=http_timeout(10.0))
            context = ollama_context_tokens(show.json()) if show.status_code == 200 else None
            return ModelCheck(True, context_tokens=context, models=listed)
        except httpx.TransportError as error:
            unreachable = self._unreachable(error)
            return ModelCheck(False, unreachable.detail, unreachable.fix)
        except (ValueError, AttributeError) as error:
            return ModelCheck(False, f"Ollama at {self.base_url} sent an unreadable model list: {error}")

    # -- embeddings ----------------------------------------------------------------------------

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        """One vector per text from /api/embed."""
        if not texts:
            return []
        try:
            response = await self._client.post("/api/embed", json={"model": model, "input": texts})
        except httpx.TransportError as error:
            raise self._unreachable(error) from None
        await self._raise_for_status(response, model)
        try:
            vectors = response.json()["embeddings"]
            result = [[float(value) for value in vector] for vector in vectors]
        except (ValueError, KeyError, TypeError) as error:
            raise LLMError(f"Ollama at {self.base_url} sent unreadable embeddings: {error}") from None
        if len(result) != len(texts):
            raise LLMError(f"Ollama at {self.base_url} sent {len(result)} embeddings for {len(texts)} texts")
        return result

    async def close(self) -> None:
        await self._client.aclose()


def _decode_chunk(line: str) -> dict[str, Any]:
    try:
        chunk = json.loads(line)
    except ValueError:
        raise LLMError(f"malformed stream from Ollama: {line[:120]!r} is not JSON") from None
    if not isinstance(chunk, dict):
        raise LLMError(f"malformed stream from Ollama: {line[:120]!r} is not an object")
    if "error" in chunk:
        raise LLMError(f"Ollama reported an error mid-answer: {chunk['error']}")
    message = chunk.get("message")
    if message is not None and not (isinstance(message, dict) and isinstance(message.get("content", ""), str)):
        raise LLMError(f"malformed stream from Ollama: unexpected message {message!r:.120}")
    if isinstance(message, dict):
        message.setdefault("content", "")
    return chunk


def _cut(done_reason: str, max_tokens: int | None) -> str | None:
    """Only `length` cuts an answer; `stop` ends it, and `load`/`unload` answer requests without messages."""
    if done_reason in ("load", "unload"):
        return None
    return truncation_problem(done_reason, max_tokens, field="done_reason")


def _count(chunk: dict[str, Any], key: str) -> int:
    value = chunk.get(key, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

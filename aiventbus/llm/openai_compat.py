"""OpenAI-compatible servers (llama.cpp, vLLM, LM Studio): `/v1/chat/completions` streamed as SSE, `/v1/models`."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal

import httpx

from aiventbus.errors import LLMError, LLMUnavailable
from aiventbus.llm import emit_token, error_text, http_timeout
from aiventbus.llm.base import ChatRequest, ChatResult, ModelCheck, TokenCallback, truncation_problem
from aiventbus.llm.server_info import Dialect, ServerInfo, openai_server_info

# How the JSON schema is sent, best first: the OpenAI shape (vLLM, LM Studio, llama.cpp's C++ server), then the
# `json_object` + `schema` shape that llama-cpp-python's server (which rejects `json_schema`) understands.
SCHEMA_STYLES: tuple[Dialect, ...] = ("json_schema", "json_object")
SCHEMA_NAME = "agent_response"

# Where a server counts tokens with the model's tokenizer: llama-cpp-python's `/extras/tokenize/count`, llama.cpp's
# C++ server's `/tokenize`; "none" when it offers neither (vLLM, LM Studio).
Tokenizer = Literal["extras", "tokenize", "none"]


def api_root(base_url: str) -> str:
    """`http://host:1234/v1` and `http://host:1234` both mean the server at `http://host:1234`."""
    root = base_url.rstrip("/")
    return root.removesuffix("/v1")


class OpenAICompatProvider:
    """One OpenAI-compatible server; `base_url` with or without the trailing /v1."""

    kind = "openai"

    def __init__(
        self,
        base_url: str,
        *,
        request_timeout_seconds: float = 300.0,
        api_key: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = api_root(base_url)
        self.request_timeout_seconds = request_timeout_seconds
        self._clock = clock
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=f"{self.base_url}/v1",
            timeout=http_timeout(request_timeout_seconds),
            headers=headers,
            transport=transport,
        )
        self.schema_style: Dialect = SCHEMA_STYLES[0]
        self.usage_in_stream = True
        self.server_info: ServerInfo | None = None
        self._probe_lock = asyncio.Lock()
        self.tokenizer: Tokenizer | None = None  # found on the first count, then remembered

    @property
    def dialect(self) -> Dialect:
        """How the JSON schema is sent now: as probed, or as the server's refusal taught."""
        return self.schema_style

    # -- what the server is ----------------------------------------------------------------------

    async def probe(self) -> ServerInfo:
        """Ask once what the server is (`/props`, `/openapi.json`; neither touches a running generation) and
        adopt its dialect; an unreachable server is asked again next time."""
        async with self._probe_lock:
            if self.server_info is not None:
                return self.server_info
            try:
                props = await self._json_or_none(f"{self.base_url}/props")
                openapi = None if props is not None else await self._json_or_none(f"{self.base_url}/openapi.json")
            except httpx.TransportError:
                return ServerInfo("openai-compatible", self.schema_style)
            self.server_info = openai_server_info(props, openapi)
            self.schema_style = self.server_info.dialect
            return self.server_info

    # -- tokens --------------------------------------------------------------------------------

    async def count_tokens(self, model: str, text: str) -> int | None:
        """Tokens of `text` by the server's own tokenizer; None when it has none or cannot be reached now."""
        try:
            if self.tokenizer is None:
                return await self._find_tokenizer(model, text)
            return await self._count_with(self.tokenizer, model, text)
        except (httpx.TransportError, ValueError, KeyError, TypeError):
            return None

    async def _find_tokenizer(self, model: str, text: str) -> int | None:
        """Try the endpoints the probed flavour suggests first; remember the one that answers (or that none does)."""
        flavour = self.server_info.flavour if self.server_info is not None else None
        candidates: tuple[Tokenizer, ...] = ("tokenize", "extras") if flavour == "llama.cpp" else ("extras", "tokenize")
        for candidate in candidates:
            count = await self._count_with(candidate, model, text)
            if count is not None:
                self.tokenizer = candidate
                return count
        self.tokenizer = "none"
        return None

    async def _count_with(self, tokenizer: Tokenizer, model: str, text: str) -> int | None:
        if tokenizer == "none":
            return None
        if tokenizer == "extras":
            url, body = f"{self.base_url}/extras/tokenize/count", {"input": text, "model": model}
        else:
            url, body = f"{self.base_url}/tokenize", {"content": text}
        response = await self._client.post(url, json=body, timeout=http_timeout(30.0))
        if response.status_code != 200:
            return None
        data = response.json()
        count = data["count"] if tokenizer == "extras" else len(data["tokens"])
        return count if isinstance(count, int) and not isinstance(count, bool) and count >= 0 else None

    async def _json_or_none(self, url: str) -> Any:
        response = await self._client.get(url, timeout=http_timeout(10.0))
        if response.status_code != 200:
            return None
        try:
            return response.json()
        except ValueError:
            return None

    # -- chat ----------------------------------------------------------------------------------

    def _chat_body(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "stream": True,
            "temperature": request.temperature,
        }
        if self.usage_in_stream:
            body["stream_options"] = {"include_usage": True}
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if request.seed is not None:
            body["seed"] = request.seed
        if request.json_schema is not None:
            if self.schema_style == "json_schema":
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": SCHEMA_NAME, "schema": request.json_schema},
                }
            else:
                body["response_format"] = {"type": "json_object", "schema": request.json_schema}
        return body

    async def chat(self, request: ChatRequest, on_token: TokenCallback | None = None) -> ChatResult:
        """Stream one chat; LLMUnavailable when the server or model is missing, LLMError on a bad stream."""
        started = self._clock()
        try:
            async with asyncio.timeout(self.request_timeout_seconds):
                if self.server_info is None and request.json_schema is not None:
                    await self.probe()  # the dialect is known before the first call, not learnt from a refusal
                while True:
                    try:
                        return await self._stream_chat(request, on_token, started)
                    except _Rejected as rejected:
                        if not self._fall_back(rejected.detail, request):
                            raise LLMError(rejected.message) from None
        except TimeoutError:
            raise LLMError(
                f"the server at {self.base_url} gave no complete answer within {self.request_timeout_seconds:g}s"
            ) from None
        except httpx.TransportError as error:
            raise self._unreachable(error) from None

    def _fall_back(self, detail: str, request: ChatRequest) -> bool:
        """Drop the feature the server refused (schema shape, usage in stream); False when nothing is left."""
        lowered = detail.lower()
        if request.json_schema is not None and self.schema_style == "json_schema" and "response_format" in lowered:
            self.schema_style = "json_object"
            if self.server_info is not None:
                self.server_info = replace(self.server_info, dialect="json_object")
            return True
        if self.usage_in_stream and ("stream_options" in lowered or "include_usage" in lowered):
            self.usage_in_stream = False
            return True
        return False

    async def _stream_chat(self, request: ChatRequest, on_token: TokenCallback | None, started: float) -> ChatResult:
        parts: list[str] = []
        first_token: float | None = None
        usage: dict[str, Any] = {}
        chunks = 0
        finish_reason: str | None = None
        async with self._client.stream("POST", "/chat/completions", json=self._chat_body(request)) as response:
            if response.status_code >= 400:
                detail = await error_text(response)
                if response.status_code == 404:
                    raise self._missing_model(request.model)
                raise _Rejected(detail, f"the server at {self.base_url} answered {response.status_code}: {detail}")
            async for line in response.aiter_lines():
                data = _sse_data(line)
                if data is None:
                    continue
                if data == "[DONE]":
                    break
                chunk = _decode_chunk(data)
                if isinstance(chunk.get("usage"), dict):
                    usage = chunk["usage"]
                finish_reason = _finish_reason(chunk) or finish_reason
                content = _delta_content(chunk)
                if content:
                    if first_token is None:
                        first_token = self._clock() - started
                    chunks += 1
                    parts.append(content)
                    await emit_token(on_token, content)
            else:
                raise LLMError(f"the stream from {self.base_url} ended without its [DONE] line")
        if (problem := truncation_problem(finish_reason, request.max_tokens)) is not None:
            raise LLMError(f"{problem} from {self.base_url}", prompt_tokens=_count(usage, "prompt_tokens"))
        return ChatResult(
            text="".join(parts),
            prompt_tokens=_count(usage, "prompt_tokens"),
            # Servers without usage in streams (llama-cpp-python) send one token per chunk.
            eval_tokens=_count(usage, "completion_tokens") or chunks,
            duration_seconds=self._clock() - started,
            first_token_seconds=first_token,
            finish_reason=finish_reason,
        )

    def _missing_model(self, model: str) -> LLMUnavailable:
        return LLMUnavailable(
            f"model {model} not found at {self.base_url}",
            fix=f"load {model} on the server, or use a model listed at {self.base_url}/v1/models",
        )

    def _unreachable(self, error: Exception) -> LLMUnavailable:
        reason = str(error) or type(error).__name__
        return LLMUnavailable(
            f"cannot reach the OpenAI-compatible server at {self.base_url}: {reason}",
            fix=f"start it (e.g. `python -m llama_cpp.server --model MODEL.gguf`) or fix the agent's base_url "
            f"(now {self.base_url})",
        )

    # -- check ---------------------------------------------------------------------------------

    async def check(self, model: str) -> ModelCheck:
        """Is the server up and does /v1/models list the model?"""
        try:
            response = await self._client.get("/models", timeout=http_timeout(10.0))
            if response.status_code >= 400:
                return ModelCheck(False, f"the server at {self.base_url} answered {response.status_code} to /v1/models")
            entries = response.json().get("data", [])
            listed = [str(entry.get("id")) for entry in entries if isinstance(entry, dict)]
        except httpx.TransportError as error:
            unreachable = self._unreachable(error)
            return ModelCheck(False, unreachable.detail, unreachable.fix)
        except (ValueError, AttributeError) as error:
            return ModelCheck(False, f"the server at {self.base_url} sent an unreadable model list: {error}")
        if model not in listed:
            missing = self._missing_model(model)
            return ModelCheck(False, missing.detail, missing.fix, models=listed)
        context = next((_context_of(entry) for entry in entries if entry.get("id") == model), None)
        return ModelCheck(True, context_tokens=context or (await self.probe()).context_tokens, models=listed)

    # -- embeddings ----------------------------------------------------------------------------

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        """One vector per text from /v1/embeddings (per-token vectors are mean-pooled)."""
        if not texts:
            return []
        try:
            response = await self._client.post("/embeddings", json={"model": model, "input": texts})
        except httpx.TransportError as error:
            raise self._unreachable(error) from None
        if response.status_code == 404:
            raise self._missing_model(model)
        if response.status_code >= 400:
            detail = await error_text(response)
            raise LLMError(f"the server at {self.base_url} answered {response.status_code} to embeddings: {detail}")
        try:
            rows = sorted(response.json()["data"], key=lambda row: int(row.get("index", 0)))
            result = [_pooled(row["embedding"]) for row in rows]
        except (ValueError, KeyError, TypeError, ZeroDivisionError) as error:
            raise LLMError(f"the server at {self.base_url} sent unreadable embeddings: {error}") from None
        if len(result) != len(texts):
            raise LLMError(f"the server at {self.base_url} sent {len(result)} embeddings for {len(texts)} texts")
        return result

    async def close(self) -> None:
        await self._client.aclose()


class _Rejected(Exception):
    """The server refused the request; `detail` is its message, used to decide on a fallback."""

    def __init__(self, detail: str, message: str) -> None:
        super().__init__(message)
        self.detail = detail
        self.message = message


def _sse_data(line: str) -> str | None:
    """The payload of a `data:` line; None for comments, event names, ids and blank lines."""
    if not line.startswith("data:"):
        return None
    return line[5:].strip()


def _decode_chunk(data: str) -> dict[str, Any]:
    try:
        chunk = json.loads(data)
    except ValueError:
        raise LLMError(f"malformed stream: {data[:120]!r} is not JSON") from None
    if not isinstance(chunk, dict):
        raise LLMError(f"malformed stream: {data[:120]!r} is not an object")
    if "error" in chunk:
        error = chunk["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        raise LLMError(f"the server reported an error mid-answer: {message}")
    choices = chunk.get("choices", [])
    if not isinstance(choices, list):
        raise LLMError("malformed stream: choices is not a list")
    return chunk


def _delta_content(chunk: dict[str, Any]) -> str:
    for choice in chunk.get("choices", []):
        delta = choice.get("delta") if isinstance(choice, dict) else None
        content = delta.get("content") if isinstance(delta, dict) else None
        if content is not None and not isinstance(content, str):
            raise LLMError("malformed stream: delta.content is not text")
        if content:
            return content
    return ""


def _finish_reason(chunk: dict[str, Any]) -> str | None:
    for choice in chunk.get("choices", []):
        reason = choice.get("finish_reason") if isinstance(choice, dict) else None
        if isinstance(reason, str) and reason:
            return reason
    return None


def _count(usage: dict[str, Any], key: str) -> int:
    value = usage.get(key, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _context_of(entry: dict[str, Any]) -> int | None:
    """Context size where the server lists one (vLLM: max_model_len, LM Studio: max_context_length)."""
    for key in ("max_model_len", "max_context_length", "context_length"):
        value = entry.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _pooled(embedding: Any) -> list[float]:
    """A flat vector as is; llama-cpp-python without pooling sends one vector per token: mean-pool them."""
    if embedding and isinstance(embedding[0], list):
        width = len(embedding[0])
        return [sum(float(row[i]) for row in embedding) / len(embedding) for i in range(width)]
    return [float(value) for value in embedding]

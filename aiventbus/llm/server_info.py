"""What a model server is and accepts, read from its own answers: context window, structured-output dialect, slots.

Pure functions over the JSON the server sent; the providers fetch it (`/props`, `/openapi.json`, `/api/show`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

# How the JSON schema is sent: OpenAI's `response_format: json_schema` (vLLM, LM Studio, llama.cpp's C++ server),
# `response_format: json_object` + `schema` (llama-cpp-python's server, which rejects `json_schema`), Ollama's `format`.
Dialect = Literal["json_schema", "json_object", "format"]
Flavour = Literal["llama.cpp", "llama-cpp-python", "ollama", "openai-compatible"]

# Ollama runs a model with num_ctx 2048 unless the model or the request sets one (newer releases may give more);
# the smaller figure is the one that never overflows.
OLLAMA_DEFAULT_NUM_CTX = 2048


@dataclass(frozen=True)
class ServerInfo:
    """A server as probed once: `context_tokens`/`slots` are None when the server does not say."""

    flavour: Flavour
    dialect: Dialect
    context_tokens: int | None = None
    slots: int | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "flavour": self.flavour,
            "dialect": self.dialect,
            "context_tokens": self.context_tokens,
            "reported_slots": self.slots,
        }


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def openai_server_info(props: Any, openapi: Any) -> ServerInfo:
    """llama.cpp answers `/props` (n_ctx, total_slots); llama-cpp-python names itself in `/openapi.json`."""
    if isinstance(props, dict):
        settings = props.get("default_generation_settings")
        n_ctx = _positive(settings.get("n_ctx")) if isinstance(settings, dict) else None
        return ServerInfo(
            "llama.cpp",
            "json_schema",
            context_tokens=n_ctx or _positive(props.get("n_ctx")),
            slots=_positive(props.get("total_slots")),
        )
    info = openapi.get("info") if isinstance(openapi, dict) else None
    title = info.get("title") if isinstance(info, dict) else None
    if isinstance(title, str) and "llama.cpp python" in title.lower():
        return ServerInfo("llama-cpp-python", "json_object")
    return ServerInfo("openai-compatible", "json_schema")


def ollama_context_tokens(show: Any) -> int | None:
    """The window Ollama runs the model with: `num_ctx` from /api/show's parameters, else its default capped by
    the model's `<architecture>.context_length`."""
    if not isinstance(show, dict):
        return None
    parameters = show.get("parameters")
    if isinstance(parameters, str):
        for line in parameters.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == "num_ctx" and parts[1].isdigit() and int(parts[1]) > 0:
                return int(parts[1])
    info = show.get("model_info")
    trained = None
    if isinstance(info, dict):
        trained = next(
            (found for key, value in info.items() if key.endswith(".context_length") and (found := _positive(value))),
            None,
        )
    return min(trained, OLLAMA_DEFAULT_NUM_CTX) if trained else None

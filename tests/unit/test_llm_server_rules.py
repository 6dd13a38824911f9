"""What a model server is (context window, dialect, slots) and who goes next for one of its slots: pure tables."""

from __future__ import annotations

from typing import Any

import pytest

from aiventbus.llm.server_info import ServerInfo, ollama_context_tokens, openai_server_info
from aiventbus.llm.slots import Ticket, next_ticket, rank_of, slot_count

LLAMA_CPP_PYTHON = {"info": {"title": "🦙 llama.cpp Python API", "version": "0.3.36"}}


@pytest.mark.parametrize(
    ("props", "openapi", "expected"),
    [
        # llama.cpp's C++ server: /props carries the window and the slots.
        (
            {"default_generation_settings": {"n_ctx": 4096}, "total_slots": 4},
            None,
            ServerInfo("llama.cpp", "json_schema", 4096, 4),
        ),
        ({"n_ctx": 8192}, None, ServerInfo("llama.cpp", "json_schema", 8192, None)),
        ({"default_generation_settings": {"n_ctx": 0}}, None, ServerInfo("llama.cpp", "json_schema")),
        # llama-cpp-python's server: /props is 404; /openapi.json names it; it reports no window.
        (None, LLAMA_CPP_PYTHON, ServerInfo("llama-cpp-python", "json_object")),
        # vLLM, LM Studio, anything else: the OpenAI shape.
        (None, {"info": {"title": "FastAPI"}}, ServerInfo("openai-compatible", "json_schema")),
        (None, None, ServerInfo("openai-compatible", "json_schema")),
        (None, ["not", "an", "object"], ServerInfo("openai-compatible", "json_schema")),
    ],
)
def test_openai_server_info(props: Any, openapi: Any, expected: ServerInfo) -> None:
    assert openai_server_info(props, openapi) == expected


@pytest.mark.parametrize(
    ("show", "expected"),
    [
        ({"parameters": "", "model_info": {"llama.context_length": 2048}}, 2048),
        # The model was trained for 128k; Ollama runs it with its default num_ctx unless the model sets one.
        ({"parameters": "", "model_info": {"gemma3.context_length": 131072}}, 2048),
        ({"parameters": "num_ctx 8192\nstop <eos>", "model_info": {"gemma3.context_length": 131072}}, 8192),
        ({"parameters": "temperature 0.7", "model_info": {}}, None),
        ({"model_info": {"llama.context_length": True}}, None),
        ("not an object", None),
    ],
)
def test_ollama_context_tokens(show: Any, expected: int | None) -> None:
    assert ollama_context_tokens(show) == expected


@pytest.mark.parametrize(
    ("lanes", "served_first"),
    [
        (["ambient", "critical", "interactive"], "interactive"),
        (["critical", "ambient"], "critical"),
        (["interactive", "check"], "check"),
        (["background", "ambient"], "ambient"),
        (["mystery", "background"], "mystery"),  # an unknown lane waits like ambient work
    ],
)
def test_next_ticket_by_rank(lanes: list[str], served_first: str) -> None:
    waiting = [Ticket(rank_of(lane), seq, lane) for seq, lane in enumerate(lanes)]
    found = next_ticket(waiting)
    assert found is not None and found.lane == served_first


def test_next_ticket_is_first_come_within_a_rank() -> None:
    waiting = [Ticket(rank_of("critical"), 5, "critical"), Ticket(rank_of("critical"), 2, "critical")]
    assert next_ticket(waiting) == waiting[1] and next_ticket([]) is None


@pytest.mark.parametrize(
    ("base_url", "by_url", "detected", "default", "expected"),
    [
        ("http://127.0.0.1:8080", {}, None, 1, 1),
        ("http://127.0.0.1:8080", {}, 4, 1, 4),  # llama.cpp reports total_slots
        ("http://127.0.0.1:8080", {"http://127.0.0.1:8080/v1": 2}, 4, 1, 2),  # configured beats reported
        ("http://127.0.0.1:11434", {"http://127.0.0.1:8080": 2}, None, 3, 3),
        ("http://127.0.0.1:11434", {"http://127.0.0.1:11434/": 4}, 0, 1, 4),
    ],
)
def test_slot_count(base_url: str, by_url: dict[str, int], detected: int | None, default: int, expected: int) -> None:
    assert slot_count(base_url, by_url, detected, default) == expected

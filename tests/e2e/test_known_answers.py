"""Questions with known answers, asked of the real SmolLM2-135M (llama.cpp's server) through a real daemon, checked
on what the answer says: arithmetic in one conversation, a fact placed in knowledge, the file the file watcher just
reported, and which of two events is a security problem. Temperature 0 (greedy decoding), yet one answer can turn
on a small difference (a temporary path in the prompt, another CPU's floating point): each check asks several
questions and wants more right than chance or copying could give."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import RunningDaemon, running_daemon
from tests.support.llama_server import LlamaServer
from tests.support.waiting import eventually

# Every question is a generation on a 2-core machine shared with other work: minutes, not the default 120 s.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

ASSISTANT = {
    "name": "assistant",
    "provider": "openai",
    "description": "Answers the user's questions about this machine and what happens on it",
    "system_prompt": "You are a helpful assistant on the user's computer. Answer the question in one short sentence.",
    "allowed_actions": [],
    "max_tokens": 96,
    "temperature": 0.0,
}


@dataclass
class Asking:
    d: RunningDaemon
    agent_id: str


async def add_assistant(d: RunningDaemon, server: LlamaServer, patterns: list[str]) -> str:
    created = await d.client.post(
        "/api/v1/agents", json={**ASSISTANT, "model": server.model, "base_url": server.base_url}
    )
    assert created.status_code == 201, created.text
    agent_id = str(created.json()["id"])
    for index, pattern in enumerate(patterns):
        rule = {"name": f"assistant-{index}", "topic_pattern": pattern, "consumer_id": agent_id}
        assert (await d.client.post("/api/v1/routing-rules", json=rule)).status_code == 201
    return agent_id


@asynccontextmanager
async def assistant(
    tmp_path: Path,
    server: LlamaServer,
    overrides: dict[str, Any] | None = None,
    patterns: tuple[str, ...] = ("user.*",),
) -> AsyncIterator[Asking]:
    async with running_daemon(tmp_path, overrides) as d:
        yield Asking(d, await add_assistant(d, server, list(patterns)))


async def publish(d: RunningDaemon, topic: str, payload: dict[str, Any], **fields: Any) -> dict[str, Any]:
    answer = await d.client.post("/api/v1/events", json={"topic": topic, "payload": payload, **fields})
    assert answer.status_code == 201, answer.text
    event: dict[str, Any] = answer.json()
    return event


async def answer_of(d: RunningDaemon, event_id: str) -> dict[str, Any]:
    """The agent's stored response to the event, once there is one (a parse failure fails the test)."""

    async def stored() -> dict[str, Any] | None:
        listed = (await d.client.get(f"/api/v1/events/{event_id}/responses")).json()["responses"]
        return listed[0] if listed else None

    response: dict[str, Any] = await eventually(stored, timeout=180, interval=0.1)
    assert response["response"] is not None, f"no valid answer: {response['raw_text']!r}"
    return response


async def ask(d: RunningDaemon, text: str, **fields: Any) -> str:
    """The summary the assistant answers the user's question with."""
    query = await publish(d, "user.query", {"text": text}, source="user", **fields)
    summary: str = (await answer_of(d, query["id"]))["response"]["summary"]
    return summary


def says(answer: str, *words: str) -> bool:
    """Whether the answer contains every word (case-insensitive, whole words or numbers)."""
    return all(re.search(rf"(?<![\w.]){re.escape(word)}(?![\w])", answer, re.IGNORECASE) for word in words)


# Two of each operation, asked one after another in one conversation (the transcript replays the earlier ones).
ARITHMETIC = [
    ("What is 2 plus 2?", 4),
    ("What is 10 minus 3?", 7),
    ("What is 5 times 3?", 15),
    ("What is 8 minus 5?", 3),
    ("What is 6 plus 7?", 13),
    ("What is 9 times 2?", 18),
]
# SmolLM2-135M's own arithmetic is the limit here, not the prompt: it gets subtraction wrong more often than not
# (measured over 12 questions with the best prompt: 7 right). What the daemon must ensure is that each answer is to
# its own question (no copy of the previous answer, the "every answer repeats the previous one") and that
# the model's ability is not wasted: at least four of six right.
ARITHMETIC_RIGHT_AT_LEAST = 4


async def arithmetic(tmp_path: Path, server: LlamaServer) -> list[tuple[str, str, bool]]:
    results = []
    async with assistant(tmp_path, server) as asking:
        for question, expected in ARITHMETIC:
            answer = await ask(asking.d, question)
            results.append((question, answer, says(answer, str(expected))))
    return results


async def fact_from_knowledge(tmp_path: Path, server: LlamaServer) -> tuple[str, bool]:
    async with assistant(tmp_path, server) as asking:
        stored = await asking.d.client.put("/api/v1/knowledge/user.dog_name", json={"value": "Biscuit"})
        assert stored.status_code in (200, 201), stored.text
        answer = await ask(asking.d, "What is my dog's name?")
    return answer, says(answer, "Biscuit")


async def file_just_reported(tmp_path: Path, server: LlamaServer, name: str) -> tuple[str, bool]:
    watched = tmp_path / "inbox"
    watched.mkdir(parents=True)
    producers = {
        "file_watcher_enabled": True,
        "file_watcher_paths": [str(watched)],
        "rate_limit_per_second": 100,
        "rate_limit_burst": 100,
    }
    async with assistant(tmp_path, server, {"producers": producers}, ("user.*", "file.created")) as asking:
        d = asking.d

        async def reported() -> dict[str, Any] | None:
            listed = (await d.client.get("/api/v1/events", params={"topic": "file.created"})).json()["events"]
            return next((e for e in listed if e["payload"].get("name") == name), None)

        # inotify is set up in the watcher's thread: write until the watcher reports the file.
        target = watched / name

        async def written_and_reported() -> dict[str, Any] | None:
            target.write_bytes(b"some content")
            return await reported()

        event = await eventually(written_and_reported, timeout=30, interval=0.5)
        await answer_of(d, event["id"])  # the assistant has seen the file event: it is part of the conversation
        answer = await ask(d, "Which file was just created?")
    return answer, says(answer, name)


# Each file in a daemon of its own. The name can only come from the watcher's event; a single greedy answer of a
# 135M model turns on small differences (the temporary path in the event, the CPU's floating point), so the test
# asks about three files and wants two named.
CREATED_FILES = ("invoice_march.pdf", "holiday_photo.jpg", "budget_2027.xlsx")
FILES_NAMED_AT_LEAST = 2

ATTACK = ("log.auth", {"message": "50 failed ssh password logins for root from 203.0.113.9"})
HARMLESS = {
    "backup": ("log.info", {"message": "nightly backup finished, 12 GB copied"}),
    "wifi": ("log.info", {"message": "wifi connected to HomeNet"}),
    "dentist": ("calendar.reminder", {"message": "dentist appointment at 15:00"}),
}
# Six cases, the attack first and last beside each harmless event: naming whichever event comes first (or last)
# scores three, so four is more than position can explain.
SECURITY_RIGHT_AT_LEAST = 4


async def security_of_two(tmp_path: Path, server: LlamaServer) -> list[tuple[str, str, bool]]:
    """Two events as context refs of the question, in both orders; the attack must be named, the other not."""
    results = []
    for word, harmless in HARMLESS.items():
        for order, pair in (("attack first", (ATTACK, harmless)), ("attack last", (harmless, ATTACK))):
            async with assistant(tmp_path / f"{word}-{order.split()[1]}", server) as asking:
                refs = [(await publish(asking.d, topic, payload))["id"] for topic, payload in pair]
                answer = await ask(asking.d, "Which of these two events is a security problem?", context_refs=refs)
            named = says(answer, "ssh") or says(answer, "203.0.113.9") or says(answer, "root")
            results.append((f"{word}, {order}", answer, named and not says(answer, word)))
    return results


async def test_arithmetic_in_one_conversation(tmp_path: Path, llama_server: LlamaServer) -> None:
    results = await arithmetic(tmp_path, llama_server)
    answers = [answer for _, answer, _ in results]
    assert len(set(answers)) == len(answers), f"an answer repeats an earlier one: {results}"
    for question, answer, _ in results:
        operands = re.findall(r"\d+", question)
        assert says(answer, *operands), f"the answer to {question!r} is about something else: {answer!r}"
    assert sum(ok for _, _, ok in results) >= ARITHMETIC_RIGHT_AT_LEAST, results


async def test_a_fact_placed_in_knowledge(tmp_path: Path, llama_server: LlamaServer) -> None:
    answer, ok = await fact_from_knowledge(tmp_path, llama_server)
    assert ok, answer


async def test_the_file_the_watcher_just_reported(tmp_path: Path, llama_server: LlamaServer) -> None:
    results = [await file_just_reported(tmp_path / name, llama_server, name) for name in CREATED_FILES]
    assert sum(ok for _, ok in results) >= FILES_NAMED_AT_LEAST, results


async def test_which_of_two_events_is_a_security_problem(tmp_path: Path, llama_server: LlamaServer) -> None:
    results = await security_of_two(tmp_path, llama_server)
    assert sum(ok for _, _, ok in results) >= SECURITY_RIGHT_AT_LEAST, results

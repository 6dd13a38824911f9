"""Rows of the agent_responses table: what an agent run stores, how a stored row reads back, and its insert (run
inside the assignment's own write transaction)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from aiventbus.values import load_stored

RESPONSE_COLUMNS = (
    "id, event_id, agent_id, assignment_id, trace_id, model, raw_text, response, summary, taint, prompt_tokens,"
    " eval_tokens, response_event_id, created_at"
)


class ResponseRow(BaseModel):
    """What an agent run stores in agent_responses."""

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    id: str
    event_id: str
    agent_id: str
    assignment_id: str
    trace_id: str
    model: str
    raw_text: str
    response: dict[str, Any] | None
    summary: str | None
    taint: list[str]
    prompt_tokens: int
    eval_tokens: int
    created_at: float


class AgentResponseRecord(ResponseRow):
    """A stored response, as served: what the run wrote plus the event it was published as."""

    response_event_id: str | None


@dataclass(frozen=True)
class TranscriptRow:
    """One stored response of an agent with the event that caused it, as stored (`response` is JSON text)."""

    response_id: str
    event_id: str
    topic: str
    payload: str
    summary: str | None
    response: str | None
    raw_text: str
    taint: list[str]
    event_taint: list[str]
    created_at: float


def row_to_response(row: sqlite3.Row) -> AgentResponseRecord:
    data = dict(row)
    data["response"] = load_stored(data["response"]) if data["response"] else None
    data["taint"] = json.loads(data["taint"])
    return AgentResponseRecord.model_validate(data)


def insert_response(conn: sqlite3.Connection, response: ResponseRow) -> None:
    conn.execute(
        f"INSERT INTO agent_responses ({RESPONSE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
        (
            response.id,
            response.event_id,
            response.agent_id,
            response.assignment_id,
            response.trace_id,
            response.model,
            response.raw_text,
            json.dumps(response.response) if response.response is not None else None,
            response.summary,
            json.dumps(response.taint),
            response.prompt_tokens,
            response.eval_tokens,
            response.created_at,
        ),
    )

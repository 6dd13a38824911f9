"""What `aibus query` says while it waits and after the answer: pure decisions from the daemon's data."""

from __future__ import annotations

from aiventbus.cli.query_report import (
    WaitReason,
    accepted_summary,
    action_line,
    rejection_line,
    rejections,
    wait_reason,
)
from aiventbus.cli.waiting import waiting_line

OLLAMA_DOWN = {
    "component": "llm",
    "problem": "cannot reach Ollama at http://127.0.0.1:9: All connection attempts failed",
    "fix": "start it with `ollama serve`",
}
OTHER_DOWN = {"component": "llm", "problem": "model 'big' not found at http://10.0.0.2:11434", "fix": "ollama pull big"}
AGENTS = {"agent_a": {"model": "m1", "base_url": "http://127.0.0.1:9"}}


def pending(**fields: object) -> dict[str, object]:
    return {"agent_id": "agent_a", "status": "pending", "attempts": 0, "last_error": None, **fields}


def test_no_assignment_yet_is_routing() -> None:
    assert wait_reason([], [OLLAMA_DOWN], AGENTS) == WaitReason("routing the question to an agent")


def test_a_claimed_assignment_is_progress_not_a_stall() -> None:
    reason = wait_reason([pending(status="claimed")], [OLLAMA_DOWN], AGENTS)
    assert reason == WaitReason("agent_a is working on it") and not reason.stalled


def test_the_agents_llm_problem_comes_with_its_fix() -> None:
    reason = wait_reason([pending(last_error="cannot reach Ollama")], [OTHER_DOWN, OLLAMA_DOWN], AGENTS)
    assert reason.stalled
    assert str(reason) == (
        "agent_a is queued: cannot reach Ollama at http://127.0.0.1:9: All connection attempts failed"
        " -> start it with `ollama serve`"
    )


def test_an_unrelated_llm_problem_is_still_shown_when_none_names_the_agent() -> None:
    reason = wait_reason([pending()], [OTHER_DOWN], AGENTS)
    assert reason.text == "agent_a is queued: model 'big' not found at http://10.0.0.2:11434"
    assert reason.fix == "ollama pull big"


def test_without_a_problem_the_assignments_own_error_then_the_queue() -> None:
    assert str(wait_reason([pending(last_error="HTTP 500 from the model")], [], AGENTS)) == (
        "agent_a is queued: HTTP 500 from the model"
    )
    assert str(wait_reason([pending()], [{"component": "bus", "problem": "x", "fix": ""}], AGENTS)) == (
        "agent_a is queued behind other work"
    )


def test_waiting_line_states_the_bound() -> None:
    assert waiting_line("an answer", "agent_a is queued: down", 12.4, 120) == (
        "waiting for an answer (12 s of at most 120 s): agent_a is queued: down"
    )


def test_action_lines_say_what_the_daemon_did() -> None:
    base = {"id": "act_1", "action_type": "shell_exec", "reason": "rm is destructive", "error": None}
    assert action_line({**base, "status": "executed"}) == "action shell_exec (act_1): executed"
    assert action_line({**base, "status": "pending"}) == (
        "action shell_exec (act_1): awaiting approval: aibus approve act_1 (or aibus deny)"
    )
    assert action_line({**base, "status": "denied"}) == "action shell_exec (act_1): denied by policy: rm is destructive"
    assert action_line({**base, "status": "failed", "error": "exit 2"}) == "action shell_exec (act_1): failed: exit 2"
    assert accepted_summary({**base, "status": "executed", "content": {"secret": 1}}) == {
        **base,
        "status": "executed",
        "rule": None,
        "result": None,
    }


def test_rejections_are_the_refusals_of_this_response_only() -> None:
    trace = [
        {"topic": "user.query", "parent_event": None, "payload": {"text": "hi"}},
        {
            "topic": "system.invalid_action",
            "parent_event": "evt_resp",
            "payload": {"reason": "key: Field required", "proposal": {"action_type": "set_knowledge", "value": 1}},
        },
        {
            "topic": "system.unknown_action",
            "parent_event": "evt_resp",
            "payload": {"reason": "unknown action_type 'fly'", "proposal": {"action_type": "fly"}},
        },
        {
            "topic": "system.invalid_action",
            "parent_event": "evt_other",
            "payload": {"reason": "elsewhere", "proposal": {"action_type": "x"}},
        },
        {"topic": "system.invalid_action", "parent_event": "evt_resp", "payload": {"reason": "not an object"}},
    ]
    found = rejections(trace, "evt_resp")
    assert [rejection_line(r) for r in found] == [
        "rejected: set_knowledge: key: Field required",
        "rejected: fly: unknown action_type 'fly'",
        "rejected: (no action_type): not an object",
    ]

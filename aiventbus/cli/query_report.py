"""Pure decisions behind `aibus query`'s lines: why it is still waiting, and what became of the proposed actions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REJECTION_TOPICS = frozenset({"system.invalid_action", "system.unknown_action"})


@dataclass(frozen=True)
class WaitReason:
    """Why a question has no answer yet, and the fix when the daemon knows one; `stalled` when it is not progress
    (routing, a run under way) but something holding it up."""

    text: str
    fix: str = ""
    stalled: bool = False

    def __str__(self) -> str:
        return f"{self.text} -> {self.fix}" if self.fix else self.text


def llm_problems_for(problems: list[dict[str, Any]], agent: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The daemon's LLM problems that concern `agent` (its model or server), or all of them when none names it."""
    llm = [p for p in problems if p.get("component") == "llm"]
    if agent is not None:
        marks = [str(agent.get(key)) for key in ("model", "base_url") if agent.get(key)]
        concerning = [p for p in llm if any(mark in str(p.get("problem", "")) for mark in marks)]
        llm = concerning or llm
    return llm


def wait_reason(
    assignments: list[dict[str, Any]], problems: list[dict[str, Any]], agents: dict[str, dict[str, Any]]
) -> WaitReason:
    """Why the question has no answer yet, from its assignments and the daemon's status.

    The status's LLM problem comes first when there is one: it carries the fix, the assignment's error does not.
    """
    if not assignments:
        return WaitReason("routing the question to an agent")
    waiting = [a for a in assignments if a.get("status") in {"pending", "claimed"}] or assignments
    first = waiting[0]
    agent_id = str(first.get("agent_id"))
    if first.get("status") == "claimed":
        return WaitReason(f"{agent_id} is working on it")
    blocked = llm_problems_for(problems, agents.get(agent_id))
    if blocked:
        fixes = [str(p["fix"]) for p in blocked if p.get("fix")]
        text = f"{agent_id} is queued: {'; '.join(str(p['problem']) for p in blocked)}"
        return WaitReason(text, "; ".join(fixes), stalled=True)
    if first.get("last_error"):
        return WaitReason(f"{agent_id} is queued: {first['last_error']}", stalled=True)
    return WaitReason(f"{agent_id} is queued behind other work", stalled=True)


def action_line(action: dict[str, Any]) -> str:
    """An accepted action with what the daemon did with it."""
    status = action.get("status")
    head = f"action {action.get('action_type')} ({action.get('id')})"
    if status == "executed":
        return f"{head}: executed"
    if status == "pending":
        return f"{head}: awaiting approval: aibus approve {action.get('id')} (or aibus deny)"
    if status == "denied":
        return f"{head}: denied by policy: {action.get('reason')}"
    if status == "failed":
        return f"{head}: failed: {action.get('error')}"
    return f"{head}: {status}"


def rejections(trace: list[dict[str, Any]], response_event_id: str) -> list[dict[str, str]]:
    """The proposals the daemon refused after `response_event_id`: [{action_type, reason}] in proposal order."""
    found = []
    for event in trace:
        if event.get("topic") not in REJECTION_TOPICS or event.get("parent_event") != response_event_id:
            continue
        payload = event.get("payload") or {}
        proposal = payload.get("proposal")
        action_type = proposal.get("action_type") if isinstance(proposal, dict) else None
        found.append({"action_type": str(action_type or "(no action_type)"), "reason": str(payload.get("reason"))})
    return found


def rejection_line(rejection: dict[str, str]) -> str:
    return f"rejected: {rejection['action_type']}: {rejection['reason']}"


def accepted_summary(action: dict[str, Any]) -> dict[str, Any]:
    """What `--json` shows of an accepted action."""
    keys = ("id", "action_type", "status", "rule", "reason", "error", "result")
    return {key: action.get(key) for key in keys}

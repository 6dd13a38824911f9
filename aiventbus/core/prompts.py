"""System prompts, generated from what is really available: the agent's own prompt, actions, response format."""

from __future__ import annotations

from aiventbus.core.agent_spec import AgentSpec

RESPONSE_FORMAT = """\
## Response format
Answer with exactly one JSON object and nothing else (no prose, no code fences):
{"type": "<answer|analysis|action|none>", "summary": "<your answer for the user, plain text>",
 "confidence": <number from 0 to 1>, "proposed_actions": [<zero or more action objects>]}
- "summary" is what the user reads: answer the event directly and concisely.
- Each proposed action is an object with "action_type" and that action's fields.
- Propose an action only when the event calls for it; an empty list is fine."""

NO_ACTIONS = "## Actions\nNo actions are available to you: keep proposed_actions an empty list."

CLASSIFIER_PROMPT = """\
You route events to agents. Given an event and the agents below, answer with one JSON object
{"agent_id": "<one of the ids below, or none>"}: the agent best suited to handle the event,
or "none" when no agent fits.

Agents:
"""


def system_prompt(agent: AgentSpec, actions_section: str) -> str:
    """agent.system_prompt + the available actions (from the executor) + the response-format instructions."""
    parts = [agent.system_prompt.strip() or f"You are {agent.name}, an agent of a local AI control plane."]
    if agent.description.strip():
        parts.append(f"Your role: {agent.description.strip()}")
    parts.append(actions_section.strip() or NO_ACTIONS)
    parts.append(RESPONSE_FORMAT)
    return "\n\n".join(parts)


def classifier_prompt(agents: list[AgentSpec]) -> str:
    """The classifier's system prompt: each enabled agent's id and description."""
    lines = [f"- {agent.id}: {agent.description.strip() or agent.name}" for agent in agents]
    return CLASSIFIER_PROMPT + "\n".join(lines)


def classifier_schema(agent_ids: list[str]) -> dict[str, object]:
    """The classifier's answer, constrained to the enabled agents' ids or "none"."""
    return {
        "type": "object",
        "properties": {"agent_id": {"type": "string", "enum": [*sorted(agent_ids), "none"]}},
        "required": ["agent_id"],
        "additionalProperties": False,
    }

"""System prompts, generated from what is really available: the agent's own prompt, actions, response format."""

from __future__ import annotations

import json

from aiventbus.records.agents import AgentSpec

RESPONSE_FORMAT = """\
## Response format
Reply with one JSON object and nothing else (no prose, no code fences). Its fields:
- "type": "answer" (you answer a question), "analysis" (you explain what happened), "action" (you propose
  actions) or "none" (nothing to do).
- "summary": what the user reads: your own answer to this event, in one or two plain sentences.
- "confidence": a number from 0 to 1.
- "proposed_actions": action objects from the Actions section, each with "action_type" and that action's fields;
  propose one only when the event calls for it, otherwise leave the list empty.

Two examples (other events, other answers):
Event: user.query {"text": "What is 7 times 6?"}
{"type": "answer", "summary": "7 times 6 is 42.", "confidence": 0.95, "proposed_actions": []}
Event: log.error {"message": "disk /dev/sda1 is 97% full"}
{"type": "analysis", "summary": "The disk /dev/sda1 is almost full (97%); free some space soon.", \
"confidence": 0.8, "proposed_actions": []}"""

# Worked questions replayed as earlier chat turns before the user's question: SmolLM2-135M copies the shape of a turn
# far better than it follows a description (measured: 2 of 8 known answers with the format text alone, 6 of 8 with
# these turns and the question asked as "Question: ..."). Each shows one use of the context: related events, a known
# fact, none. The order matters: the model leans on the last one, so the plainest comes last (with the security
# example last, 5 of 8 arithmetic answers began "The log.auth event: ..."; with this order none, and 7 of 12 right).
QUESTION_EXAMPLES: tuple[tuple[str, str], ...] = (
    (
        'Related events:\n- log.info: {"message": "printer paper loaded"}\n'
        '- log.auth: {"message": "20 failed sudo attempts by guest"}\n\nQuestion: Which event is a security problem?',
        "The log.auth event: 20 failed sudo attempts by guest.",
    ),
    ('Known facts:\n- user.car_color = "red"\n\nQuestion: What color is my car?', "Your car is red."),
    ("Question: What is 7 times 6?", "7 times 6 is 42."),
)

# Put first when the prompt lists recent events. Measured over four file names, three answers each: asked which file
# was just created, the model named it 3 of 12 times without this turn and 12 of 12 with it (with a file.deleted
# example instead, 0 of 3). Always included, it cost two arithmetic answers of six, so it comes only with its context.
RECENT_EVENT_EXAMPLE: tuple[str, str] = (
    'Recent events (newest first):\n- file.created: {"name": "tax_form.docx", "path": "/home/ann/tax_form.docx",'
    ' "size": 5120, "type": "file"}\n\nQuestion: Which file was just created?',
    "The file tax_form.docx was just created.",
)


def example_reply(summary: str) -> str:
    """An example answer exactly as the response format asks for it."""
    return json.dumps({"type": "answer", "summary": summary, "confidence": 0.9, "proposed_actions": []})


NO_ACTIONS = "## Actions\nNo actions are available to you: keep proposed_actions an empty list."

CLASSIFIER_PROMPT = """\
You route events to agents. Given an event and the agents below, answer with one JSON object
{"agent_id": ...} naming the agent best suited to handle the event (one of the ids below),
or {"agent_id": "none"} when no agent fits.

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

"""The pure routing decision and the agent/rule models, as tables."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from aiventbus.core.prompts import classifier_schema
from aiventbus.core.routing import Routable, classifier_may_route, match_agents, rule_matches
from aiventbus.records.agents import AgentIn, RoutingRule, RoutingRuleIn, agent_id_for, response_topic, slugify
from aiventbus.records.events import lane_of


def rule(pattern: str, consumer: str = "agent_a", **fields: object) -> RoutingRule:
    return RoutingRule(
        id=f"rule_{pattern}_{consumer}", name=pattern, topic_pattern=pattern, consumer_id=consumer, **fields
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("general assistant", "agent_general-assistant"),
        ("General  Assistant!", "agent_general-assistant"),
        ("  security_bot 2 ", "agent_security-bot-2"),
        ("Ünïcode näme", "agent_n-code-n-me"),
    ],
)
def test_agent_ids_are_slugs_of_names(name: str, expected: str) -> None:
    assert agent_id_for(name) == expected


def test_response_topic_uses_the_slug() -> None:
    assert response_topic("agent_general-assistant") == "agent.general-assistant.response"
    assert slugify("---") == ""


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"name": "!!!"}, "name"),
        ({"name": "a", "provider": "openrouter"}, "provider"),
        ({"name": "a", "temperature": 3}, "temperature"),
        ({"name": "a", "base_url": "localhost:11434"}, "base_url"),
        ({"name": "a", "allowed_actions": ["Shell Exec"]}, "allowed_actions"),
        ({"name": "a", "colour": "blue"}, "colour"),
    ],
)
def test_bad_agent_fields_name_the_field(fields: dict[str, object], bad_field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        AgentIn.model_validate(fields)
    assert caught.value.errors()[0]["loc"][0] == bad_field


def test_rule_pattern_must_be_a_topic_glob() -> None:
    with pytest.raises(ValidationError):
        RoutingRuleIn(name="x", topic_pattern="user query", consumer_id="agent_a")


EVENT_CASES = [
    # (rule, event, matches)
    (rule("user.*"), Routable("user.query", "user"), True),
    (rule("user.*"), Routable("users.query", "user"), False),
    (rule("user.query"), Routable("user.query", "cli"), True),
    (rule("log.?rror"), Routable("log.error", "api"), True),
    (rule("*"), Routable("clipboard.text", "producer:clipboard"), True),
    (rule("*", enabled=False), Routable("clipboard.text", "producer:clipboard"), False),
    (rule("log.*", semantic_type="security.*"), Routable("log.error", "api", "security.auth_failure"), True),
    (rule("log.*", semantic_type="security.*"), Routable("log.error", "api", None), False),
    (rule("log.*", source="producer:*"), Routable("log.error", "producer:system_log"), True),
    (rule("log.*", source="producer:*"), Routable("log.error", "api"), False),
    # The daemon's own reports only through rules written for system.* topics.
    (rule("*"), Routable("system.parse_failure", "system"), False),
    (rule("system.*"), Routable("system.parse_failure", "system"), True),
    (rule("system.parse_failure"), Routable("system.parse_failure", "system"), True),
    # An agent's own output does not re-trigger it through a wildcard...
    (rule("agent.*", "agent_a"), Routable("agent.a.response", "agent:agent_a"), False),
    (rule("*", "agent_a"), Routable("agent.a.response", "agent:agent_a"), False),
    # ...but another agent may react to it, and a rule naming the topic exactly is taken at its word.
    (rule("agent.*", "agent_b"), Routable("agent.a.response", "agent:agent_a"), True),
    (rule("agent.a.response", "agent_a"), Routable("agent.a.response", "agent:agent_a"), True),
]


@pytest.mark.parametrize(("the_rule", "event", "matches"), EVENT_CASES)
def test_rule_matching_table(the_rule: RoutingRule, event: Routable, matches: bool) -> None:
    assert rule_matches(the_rule, event) is matches


def test_match_agents_orders_by_priority_and_dedupes() -> None:
    rules = [
        rule("user.*", "agent_late", priority=200),
        rule("user.query", "agent_first", priority=10),
        rule("user.*", "agent_first", priority=50),
        rule("*", "agent_disabled", priority=0),
    ]
    chosen = match_agents(rules, Routable("user.query", "user"), {"agent_late", "agent_first"})
    assert chosen == ["agent_first", "agent_late"]


def test_match_agents_ignores_rules_of_disabled_or_missing_agents() -> None:
    assert match_agents([rule("user.*", "agent_gone")], Routable("user.query", "user"), set()) == []


@pytest.mark.parametrize(
    ("event", "allowed"),
    [
        (Routable("clipboard.text", "producer:clipboard"), True),
        (Routable("system.llm_unavailable", "system"), False),
        (Routable("agent.a.response", "agent:agent_a"), False),
    ],
)
def test_classifier_never_sees_system_reports_or_agent_output(event: Routable, allowed: bool) -> None:
    assert classifier_may_route(event) is allowed


def test_classifier_answer_is_constrained_to_ids_or_none() -> None:
    schema = classifier_schema(["agent_b", "agent_a"])
    assert schema["properties"] == {"agent_id": {"type": "string", "enum": ["agent_a", "agent_b", "none"]}}


@pytest.mark.parametrize(
    ("topic", "lane"),
    [
        ("user.query", "interactive"),
        ("security.alert", "critical"),
        ("system.failure.disk", "critical"),
        ("system.parse_failure", "ambient"),
        ("clipboard.text", "ambient"),
    ],
)
def test_lanes_by_prefix(topic: str, lane: str) -> None:
    assert lane_of(topic, ["user."], ["security.", "system.failure"]) == lane

"""The pure routing decision: which agents a committed event goes to, by the static rules."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from aiventbus.records.agents import RoutingRule, agent_source

SYSTEM_SOURCE = "system"


@dataclass(frozen=True)
class Routable:
    """The fields of an event the rules look at."""

    topic: str
    source: str
    semantic_type: str | None = None


def has_wildcard(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


def rule_matches(rule: RoutingRule, event: Routable) -> bool:
    """Whether one enabled rule takes the event (agent state is not looked at here)."""
    if not rule.enabled or not fnmatchcase(event.topic, rule.topic_pattern):
        return False
    if event.source == SYSTEM_SOURCE and not rule.topic_pattern.startswith("system."):
        # The daemon's own reports reach agents only through rules written for them.
        return False
    if event.source == agent_source(rule.consumer_id) and has_wildcard(rule.topic_pattern):
        # An agent's own output re-triggers it only through a rule naming that topic exactly.
        return False
    if rule.semantic_type is not None and not fnmatchcase(event.semantic_type or "", rule.semantic_type):
        return False
    return rule.source is None or fnmatchcase(event.source, rule.source)


def ordered(rules: Iterable[RoutingRule]) -> list[RoutingRule]:
    """Rule order: priority ascending, then oldest first, then id for a stable tie-break."""
    return sorted(rules, key=lambda rule: (rule.priority, rule.created_at, rule.id))


def match_agents(rules: Iterable[RoutingRule], event: Routable, enabled_agents: Collection[str]) -> list[str]:
    """The enabled agents the event goes to, each once, in rule order."""
    chosen: list[str] = []
    for rule in ordered(rules):
        if rule.consumer_id in enabled_agents and rule.consumer_id not in chosen and rule_matches(rule, event):
            chosen.append(rule.consumer_id)
    return chosen


def classifier_may_route(event: Routable) -> bool:
    """Unmatched system reports and agent output never go to the classifier (no loops through it)."""
    return event.source != SYSTEM_SOURCE and not event.source.startswith("agent:")

"""aibus agents (list, add, enable, disable, delete) and aibus rules (list, add, delete)."""

from __future__ import annotations

import json
from typing import Any

import typer

from aiventbus.cli.client import client, friendly_errors
from aiventbus.cli.groups import command_group

agents_app = command_group(help="Agents: the LLM workers events are routed to.", no_args_is_help=True)
rules_app = command_group(help="Routing rules: which topics go to which agent.", no_args_is_help=True)


@agents_app.command("list")
def list_agents(as_json: bool = typer.Option(False, "--json")) -> None:
    """List agents."""
    with friendly_errors():
        agents = client().get("/api/v1/agents")["agents"]
        if as_json:
            typer.echo(json.dumps(agents, indent=2))
            return
        if not agents:
            typer.echo("no agents (add one: aibus agents add NAME --model MODEL)")
        for agent in agents:
            state = "enabled" if agent["enabled"] else "disabled"
            where = agent["base_url"] or "(default server)"
            typer.echo(f"{agent['id']:<32} {state:<9} {agent['provider']}:{agent['model']} at {where}")


@agents_app.command("add")
def add_agent(
    name: str = typer.Argument(..., help="display name; the id is agent_<slug>"),
    model: str | None = typer.Option(None, "--model", help="model (default ollama.default_model)"),
    description: str = typer.Option("", "--description"),
    system_prompt: str = typer.Option("", "--system-prompt"),
    provider: str = typer.Option("ollama", "--provider", help="ollama or openai"),
    base_url: str | None = typer.Option(None, "--base-url"),
) -> None:
    """Create an agent."""
    with friendly_errors():
        body: dict[str, Any] = {
            "name": name,
            "model": model,
            "description": description,
            "system_prompt": system_prompt,
            "provider": provider,
            "base_url": base_url,
        }
        agent = client().post("/api/v1/agents", body)
        typer.echo(f"{agent['id']} created ({agent['provider']}:{agent['model']})")


def _set_enabled(agent_id: str, enabled: bool) -> None:
    with friendly_errors():
        agent = client().post(f"/api/v1/agents/{agent_id}/{'enable' if enabled else 'disable'}")
        typer.echo(f"{agent['id']} {'enabled' if agent['enabled'] else 'disabled'}")


@agents_app.command("enable")
def enable(agent_id: str = typer.Argument(...)) -> None:
    """Enable an agent."""
    _set_enabled(agent_id, True)


@agents_app.command("disable")
def disable(agent_id: str = typer.Argument(...)) -> None:
    """Disable an agent (it gets no new work)."""
    _set_enabled(agent_id, False)


@agents_app.command("delete")
def delete_agent(agent_id: str = typer.Argument(...)) -> None:
    """Delete an agent and the routing rules that feed it."""
    with friendly_errors():
        client().delete(f"/api/v1/agents/{agent_id}")
        typer.echo(f"{agent_id} deleted")


@rules_app.command("list")
def list_rules(as_json: bool = typer.Option(False, "--json")) -> None:
    """List routing rules in the order they apply."""
    with friendly_errors():
        rules = client().get("/api/v1/routing-rules")["rules"]
        if as_json:
            typer.echo(json.dumps(rules, indent=2))
            return
        if not rules:
            typer.echo("no routing rules (add one: aibus rules add NAME 'user.*' AGENT_ID)")
        for rule in rules:
            extra = "".join(f" {key}={rule[key]}" for key in ("semantic_type", "source") if rule.get(key) is not None)
            state = "" if rule["enabled"] else " (disabled)"
            typer.echo(
                f"{rule['id']}  {rule['priority']:>5}  {rule['topic_pattern']} -> {rule['consumer_id']}{extra}{state}"
            )


@rules_app.command("add")
def add_rule(
    name: str = typer.Argument(...),
    topic_pattern: str = typer.Argument(..., help="topic glob, e.g. user.*"),
    consumer_id: str = typer.Argument(..., help="agent id, e.g. agent_general-assistant"),
    priority: int = typer.Option(100, "--priority", help="lower applies first"),
    semantic_type: str | None = typer.Option(None, "--semantic-type"),
    source: str | None = typer.Option(None, "--source"),
) -> None:
    """Route events whose topic matches the pattern to an agent."""
    with friendly_errors():
        body = {
            "name": name,
            "topic_pattern": topic_pattern,
            "consumer_id": consumer_id,
            "priority": priority,
            "semantic_type": semantic_type,
            "source": source,
        }
        rule = client().post("/api/v1/routing-rules", body)
        typer.echo(f"{rule['id']} {rule['topic_pattern']} -> {rule['consumer_id']}")


@rules_app.command("delete")
def delete_rule(rule_id: str = typer.Argument(...)) -> None:
    """Delete a routing rule."""
    with friendly_errors():
        client().delete(f"/api/v1/routing-rules/{rule_id}")
        typer.echo(f"{rule_id} deleted")

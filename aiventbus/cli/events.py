"""aibus status | events | publish."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import typer

from aiventbus.cli.client import CliError, client, friendly_errors
from aiventbus.cli.groups import command_group

app = command_group()


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


DEGRADED_EXIT = 2


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="print the raw JSON")) -> None:
    """Show whether the daemon is healthy, and what is wrong if not.

    Exit code: 0 ok, 1 unreachable or the API token refused, 2 running but degraded.
    """
    with friendly_errors():
        daemon = client(timeout=10)
        result = daemon.get("/api/v1/system/status")
        daemon.get("/api/v1/events", limit=1)  # the status is public: this is what notices a wrong token
        if as_json:
            typer.echo(json.dumps(result, indent=2))
        else:
            typer.echo(f"aiventbus {result['version']}: {result['status']} (up {result['uptime_seconds']:.0f}s)")
            typer.echo(f"events stored: {result['bus']['events_stored']}")
            for problem in result["problems"]:
                fix = f" -> {problem['fix']}" if problem["fix"] else ""
                typer.echo(f"problem [{problem['component']}]: {problem['problem']}{fix}")
    if result["status"] != "ok":
        raise typer.Exit(DEGRADED_EXIT)


@app.command()
def events(
    topic: str | None = typer.Option(None, "--topic", help="topic glob, e.g. clipboard.*"),
    limit: int = typer.Option(20, "--limit", min=1, max=1000),
    status: str | None = typer.Option(None, "--status"),
    source: str | None = typer.Option(None, "--source"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List recent events, newest first."""
    with friendly_errors():
        page = client().get("/api/v1/events", topic=topic, limit=limit, status=status, source=source)
        if as_json:
            typer.echo(json.dumps(page["events"], indent=2))
            return
        if not page["events"]:
            typer.echo("no events")
        for event in page["events"]:
            payload = json.dumps(event["payload"], ensure_ascii=False)
            if len(payload) > 80:
                payload = payload[:77] + "..."
            typer.echo(f"{_when(event['created_at'])}  {event['id']}  {event['topic']:<24} {payload}")


@app.command()
def publish(
    topic: str = typer.Argument(..., help="event topic, e.g. user.note"),
    payload: str = typer.Option("{}", "--payload", help="JSON object"),
    priority: str = typer.Option("normal", "--priority"),
    dedupe_key: str | None = typer.Option(None, "--dedupe-key"),
) -> None:
    """Publish one event."""
    with friendly_errors():
        try:
            body = json.loads(payload)
        except json.JSONDecodeError as error:
            raise CliError(f"--payload is not valid JSON: {error}") from None
        if not isinstance(body, dict):
            raise CliError("--payload must be a JSON object")
        event = {"topic": topic, "payload": body, "priority": priority, "source": "cli"}
        if dedupe_key:
            event["dedupe_key"] = dedupe_key
        result = client().post("/api/v1/events", event)
        suffix = " (deduplicated)" if result.get("deduplicated") else ""
        typer.echo(f"{result['id']} {result['topic']} trace {result['trace_id']}{suffix}")

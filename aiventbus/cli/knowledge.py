"""aibus knowledge list | get | set | delete."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import typer

from aiventbus.cli.client import client, friendly_errors
from aiventbus.cli.groups import command_group

app = command_group(help="Durable key-value facts shared by every agent.", no_args_is_help=True)


def parse_value(text: str) -> Any:
    """JSON when it parses (42, true, {"a": 1}, "quoted"), else the text itself as a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@app.command("list")
def list_entries(
    prefix: str = typer.Option("", "--prefix", help="only keys starting with this, e.g. system."),
    limit: int = typer.Option(100, "--limit", min=1, max=1000),
    as_json: bool = typer.Option(False, "--json", help="print the raw JSON"),
) -> None:
    """List entries, by key."""
    with friendly_errors():
        entries = client().get("/api/v1/knowledge", prefix=prefix, limit=limit)["entries"]
        if as_json:
            typer.echo(json.dumps(entries, indent=2, ensure_ascii=False))
            return
        if not entries:
            typer.echo("no entries")
        for entry in entries:
            untrusted = f", untrusted: {', '.join(entry['taint'])}" if entry.get("taint") else ""
            typer.echo(f"{entry['key']} = {_shown(entry['value'])}  ({entry['set_by']}{untrusted})")


@app.command()
def get(key: str = typer.Argument(..., help="dotted key, e.g. system.gpu")) -> None:
    """Print one value (strings raw, anything else as JSON)."""
    with friendly_errors():
        typer.echo(_shown(client().get(f"/api/v1/knowledge/{quote(key, safe='')}")["value"]))


@app.command("set")
def set_entry(
    key: str = typer.Argument(..., help="dotted key, e.g. user.pref.editor"),
    value: str = typer.Argument(..., help="JSON if it parses, else taken as a string"),
) -> None:
    """Create or replace an entry (set_by user)."""
    with friendly_errors():
        entry = client().put(f"/api/v1/knowledge/{quote(key, safe='')}", {"value": parse_value(value)})
        typer.echo(f"{entry['key']} = {_shown(entry['value'])}")


@app.command()
def delete(key: str = typer.Argument(...)) -> None:
    """Delete an entry."""
    with friendly_errors():
        client().delete(f"/api/v1/knowledge/{quote(key, safe='')}")
        typer.echo(f"deleted {key}")

"""aibus memory list | add | delete | search."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import typer

from aiventbus.cli.client import client, friendly_errors
from aiventbus.cli.groups import command_group

app = command_group(help="Distilled long-term memories.", no_args_is_help=True)


def _line(memory: dict[str, Any]) -> str:
    score = f" score={memory['score']:.3f}" if memory.get("score") is not None else ""
    return (
        f"{memory['id']}  [{memory['kind']}, {memory['scope']}, importance {memory['importance']:.2f}{score}]"
        f"  {memory['content']}"
    )


def _print(memories: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(memories, indent=2, ensure_ascii=False))
        return
    if not memories:
        typer.echo("no memories")
    for memory in memories:
        typer.echo(_line(memory))


@app.command("list")
def list_memories(
    scope: str | None = typer.Option(None, "--scope", help="global, user, an agent id or an event's memory_scope"),
    kind: str | None = typer.Option(None, "--kind", help="semantic, episodic or procedural"),
    limit: int = typer.Option(50, "--limit", min=1, max=500),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List memories, most important first."""
    with friendly_errors():
        _print(client().get("/api/v1/memories", scope=scope, kind=kind, limit=limit)["memories"], as_json)


@app.command()
def search(
    query: str = typer.Argument(..., help="words to look for"),
    scope: str | None = typer.Option(None, "--scope"),
    limit: int = typer.Option(20, "--limit", min=1, max=500),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Full-text search, best match first."""
    with friendly_errors():
        _print(client().get("/api/v1/memories", q=query, scope=scope, limit=limit)["memories"], as_json)


@app.command()
def add(
    content: str = typer.Option(..., "--content", help="what to remember"),
    kind: str = typer.Option("semantic", "--kind", help="semantic, episodic or procedural"),
    scope: str = typer.Option("global", "--scope"),
    importance: float = typer.Option(0.5, "--importance", help="0..1"),
) -> None:
    """Create a memory."""
    with friendly_errors():
        body = {"kind": kind, "scope": scope, "content": content, "importance": importance}
        typer.echo(_line(client().post("/api/v1/memories", body)))


@app.command()
def delete(memory_id: str = typer.Argument(..., help="mem_...")) -> None:
    """Delete a memory."""
    with friendly_errors():
        client().delete(f"/api/v1/memories/{quote(memory_id, safe='')}")
        typer.echo(f"deleted {memory_id}")

"""aibus approve | deny, aibus actions pending | history | show, aibus backups list | restore."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import typer

from aiventbus.cli.client import client, friendly_errors
from aiventbus.cli.groups import command_group

app = command_group()
actions_app = command_group(help="Actions agents proposed: pending approvals and history.", no_args_is_help=True)
backups_app = command_group(help="Copies kept before file writes and deletes.", no_args_is_help=True)


def _when(epoch: float | None) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S") if epoch else "-"


def _summary(action: dict[str, Any]) -> str:
    content = {k: v for k, v in action["content"].items() if k not in ("action_type", "reason")}
    shown = json.dumps(content, ensure_ascii=False)
    return shown if len(shown) <= 70 else shown[:67] + "..."


def _print_action(action: dict[str, Any]) -> None:
    typer.echo(f"{action['id']}  {action['status']}  {action['action_type']}  by {action['agent_id']}")
    typer.echo(f"  action: {json.dumps(action['content'], ensure_ascii=False)}")
    typer.echo(f"  policy: {action['verdict']} ({action['rule']}): {action['reason']}")
    if action["taint"]:
        typer.echo(f"  untrusted content seen: {', '.join(action['taint'])}")
    if action.get("result") is not None:
        typer.echo(f"  result: {json.dumps(action['result'], ensure_ascii=False)[:2000]}")
        if action.get("result_taint"):
            typer.echo(f"  result content is untrusted: {', '.join(action['result_taint'])}")
    if action.get("error"):
        typer.echo(f"  error: {action['error']}")


@app.command()
def approve(action_id: str = typer.Argument(..., help="id of a pending action (act_...)")) -> None:
    """Approve a pending action; it runs now and its result is shown."""
    with friendly_errors():
        _print_action(client(timeout=120).post(f"/api/v1/actions/{action_id}/approve"))


@app.command()
def deny(
    action_id: str = typer.Argument(..., help="id of a pending action (act_...)"),
    reason: str = typer.Option("", "--reason", help="why (kept in the history)"),
) -> None:
    """Deny a pending action; it never runs."""
    with friendly_errors():
        _print_action(client().post(f"/api/v1/actions/{action_id}/deny", {"reason": reason}))


def _print_list(actions: list[dict[str, Any]], as_json: bool, empty: str) -> None:
    if as_json:
        typer.echo(json.dumps(actions, indent=2))
        return
    if not actions:
        typer.echo(empty)
    for action in actions:
        typer.echo(
            f"{_when(action['created_at'])}  {action['id']}  {action['status']:<8} {action['action_type']:<13}"
            f" {_summary(action)}"
        )


@actions_app.command("pending")
def pending(as_json: bool = typer.Option(False, "--json")) -> None:
    """Actions waiting for approval."""
    with friendly_errors():
        _print_list(client().get("/api/v1/actions/pending")["actions"], as_json, "no pending actions")


@actions_app.command("history")
def history(
    status: str | None = typer.Option(None, "--status", help="pending, executed, failed, denied, expired"),
    limit: int = typer.Option(20, "--limit", min=1, max=1000),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """All actions, newest first."""
    with friendly_errors():
        page = client().get("/api/v1/actions/history", status=status, limit=limit)
        _print_list(page["actions"], as_json, "no actions")


@actions_app.command("show")
def show(action_id: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """One action with its decision and result."""
    with friendly_errors():
        action = client().get(f"/api/v1/actions/{action_id}")
        if as_json:
            typer.echo(json.dumps(action, indent=2))
        else:
            _print_action(action)


@backups_app.command("list")
def list_backups(
    path: str | None = typer.Option(None, "--path", help="only backups of this file"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Backups, newest first."""
    with friendly_errors():
        query = {"path": path} if path else {}
        backups = client().request("GET", "/api/v1/backups", params=query)["backups"]
        if as_json:
            typer.echo(json.dumps(backups, indent=2))
            return
        if not backups:
            typer.echo("no backups")
        for backup in backups:
            typer.echo(
                f"{_when(backup['created_at'])}  {backup['id']}  {backup['size']:>9} B  {oct(backup['mode'])}"
                f"  {backup['path']}  ({backup['reason']})"
            )


@backups_app.command("restore")
def restore(backup_id: str = typer.Argument(..., help="id from `aibus backups list` (bak_...)")) -> None:
    """Put a backup's bytes and mode back at its original path."""
    with friendly_errors():
        backup = client().post(f"/api/v1/backups/{backup_id}/restore")
        typer.echo(f"restored {backup['path']} from {backup['id']} ({backup['size']} bytes)")

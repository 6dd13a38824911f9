"""aibus producers (state, capability reasons, counts) and aibus hook bash|zsh (the preexec snippet)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from aiventbus.cli import client as cli_client
from aiventbus.cli.client import CliError, client, friendly_errors
from aiventbus.cli.groups import command_group

if TYPE_CHECKING:
    from aiventbus.config import Config

app = command_group()


def load_settings() -> Config:
    """The config the daemon uses (the same search path and --config as every command)."""
    from aiventbus.config import load_config
    from aiventbus.errors import ConfigError

    try:
        return load_config(cli_client._config_path)
    except ConfigError as error:
        raise CliError(f"config error: {error.detail}") from None


@app.command()
def producers(as_json: bool = typer.Option(False, "--json", help="print the raw JSON")) -> None:
    """Show each producer's state, why it is unavailable, and how many events it emitted."""
    with friendly_errors():
        page = client(timeout=10).get("/api/v1/producers")
        if as_json:
            typer.echo(json.dumps(page, indent=2))
            return
        typer.echo(f"platform: {page['platform']}")
        for item in page["producers"]:
            line = (
                f"{item['name']:<14} {item['state']:<12} emitted {item['events_emitted']:<6} "
                f"coalesced {item['coalesced']:<6}"
            )
            typer.echo(line.rstrip())
            capability = item["capability"]
            if item["state"] in {"unavailable", "failed"} or (item["enabled"] and not capability["available"]):
                reason = item["last_error"] or capability["reason"]
                fix = item["fix"] or capability["fix"]
                typer.echo(f"{'':<15}{reason}" + (f" -> {fix}" if fix else ""))


@app.command()
def hook(shell: str = typer.Argument(..., help="bash or zsh")) -> None:
    """Print the opt-in preexec hook; add `eval "$(aibus hook bash)"` to your shell's rc file."""
    with friendly_errors():
        if shell not in {"bash", "zsh"}:
            raise CliError(f"shell: no hook for {shell!r} (choose bash or zsh)")
        from aiventbus.producers.registry import spool_path
        from aiventbus.producers.terminal import hook_snippet

        config = load_settings()
        typer.echo(hook_snippet(shell, spool_path(config.producers, config.state_dir)), nl=False)

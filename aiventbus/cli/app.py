"""The aibus command: one module per command group, all talking to the daemon over HTTP."""

from __future__ import annotations

import typer

from aiventbus.cli import actions, agents, events, knowledge, memory, producers, query
from aiventbus.cli.client import set_config_path
from aiventbus.cli.groups import command_group

app = command_group(
    name="aibus",
    help="Talk to the aiventbus daemon.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _options(config: str | None = typer.Option(None, "--config", help="config file the daemon uses")) -> None:
    set_config_path(config)


app.registered_commands.extend(events.app.registered_commands)
app.registered_commands.extend(actions.app.registered_commands)
app.registered_commands.extend(producers.app.registered_commands)
app.registered_commands.extend(query.app.registered_commands)
app.add_typer(actions.actions_app, name="actions")
app.add_typer(actions.backups_app, name="backups")
app.add_typer(knowledge.app, name="knowledge")
app.add_typer(memory.app, name="memory")
app.add_typer(agents.agents_app, name="agents")
app.add_typer(agents.rules_app, name="rules")


def main() -> None:
    app()

"""How every aibus command group is made."""

from __future__ import annotations

from typing import Any

import typer


def command_group(**options: Any) -> typer.Typer:
    """A Typer group with plain help: rich-formatted help imports rich's markdown stack, which alone doubles the
    start-up time of `aibus --help` and of every usage error."""
    return typer.Typer(rich_markup_mode=None, **options)

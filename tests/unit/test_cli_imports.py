"""`aibus --help` (and a command's help or usage error) loads only the CLI: none of the daemon's heavy packages.

A content check on the module graph, not a timing one: whatever the machine's speed, these imports are what made
the CLI start in half a second.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Not pydantic itself: typer (0.29) validates subcommand parameters with it. The daemon's pydantic models are here.
HEAVY = (
    "fastapi",
    "starlette",
    "uvicorn",
    "aiosqlite",
    "httpx",
    "websockets",
    "yaml",
    "rich",
    "aiventbus.config",
    "aiventbus.daemon",
    "aiventbus.api",
    "aiventbus.core",
    "aiventbus.store",
    "aiventbus.llm",
    "aiventbus.producers",
)

PROBE = """
import json, sys
sys.argv = ["aibus", *json.loads(sys.argv[1])]
from aiventbus.cli.app import main
try:
    main()
except SystemExit as exit:
    code = exit.code
else:
    code = 0
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def loaded_by(*args: str) -> tuple[int, list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(args))], capture_output=True, text=True, timeout=60
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    return int(report["code"] or 0), list(report["modules"])


def heavy_in(modules: list[str]) -> list[str]:
    return [name for name in modules if any(name == heavy or name.startswith(heavy + ".") for heavy in HEAVY)]


@pytest.mark.parametrize(
    ("args", "code"),
    [(["--help"], 0), (["query", "--help"], 0), (["query"], 2), (["actions", "--help"], 0)],
)
def test_help_and_usage_errors_import_no_daemon_package(args: list[str], code: int) -> None:
    exit_code, modules = loaded_by(*args)
    assert exit_code == code
    assert "aiventbus.cli.query" in modules  # the probe did load every command
    assert heavy_in(modules) == []


def test_the_probe_sees_heavy_imports_when_a_command_runs() -> None:
    """The same probe notices the packages a real command needs (so an empty list above means something)."""
    exit_code, modules = loaded_by("--config", "/nonexistent/aiventbus-test.yaml", "status")
    assert exit_code == 1
    assert "aiventbus.config" in heavy_in(modules) and "yaml" in heavy_in(modules)

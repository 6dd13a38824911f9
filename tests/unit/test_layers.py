"""The layer contract (pyproject's [tool.importlinter]) holds for the package, and it is a real check: a copy of the
package with one forbidden import added breaks it, naming that import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports run on `project` (its pyproject.toml and its aiventbus package), without the cache."""
    env = {**os.environ, "PYTHONPATH": str(project)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(project / "pyproject.toml")],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "aiventbus", tmp_path / "aiventbus", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def add_import(project: Path, module: str, line: str) -> None:
    path = project / (module.replace(".", "/") + ".py")
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")


def test_the_package_keeps_every_contract() -> None:
    checked = lint_imports(ROOT)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "2 kept, 0 broken" in checked.stdout


@pytest.mark.parametrize(
    ("module", "line", "named"),
    [
        # store reaching up into core: the layers contract
        (
            "aiventbus.store.token",
            "from aiventbus.core import bus  # noqa",
            "aiventbus.store.token -> aiventbus.core.bus",
        ),
        # core reaching up into the daemon
        ("aiventbus.core.router", "import aiventbus.daemon  # noqa", "aiventbus.core.router -> aiventbus.daemon"),
        # records reaching up into the store
        ("aiventbus.records.events", "import aiventbus.store.events  # noqa", "aiventbus.records.events ->"),
    ],
)
def test_a_forbidden_import_breaks_the_layers(package_copy: Path, module: str, line: str, named: str) -> None:
    add_import(package_copy, module, line)
    checked = lint_imports(package_copy)
    assert checked.returncode != 0
    assert "BROKEN" in checked.stdout and named in checked.stdout, checked.stdout


def test_a_cycle_between_siblings_breaks_the_contract(package_copy: Path) -> None:
    # policy is imported by approvals; policy importing approvals back makes a cycle inside one layer
    add_import(package_copy, "aiventbus.core.policy", "import aiventbus.core.approvals  # noqa")
    checked = lint_imports(package_copy)
    assert checked.returncode != 0
    assert "No cycles are allowed in aiventbus.core" in checked.stdout, checked.stdout

"""Config: validation messages, lookup order, XDG paths, and config.example.yaml against the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from aiventbus.config import Config, config_search_path, load_config, parse_config
from aiventbus.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def model_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        dotted = f"{prefix}{name}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys |= model_keys(annotation, dotted + ".")
        else:
            keys.add(dotted)
    return keys


def yaml_keys(data: dict[str, Any], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for name, value in data.items():
        dotted = f"{prefix}{name}"
        if isinstance(value, dict) and prefix == "":
            keys |= yaml_keys(value, dotted + ".")
        else:
            keys.add(dotted)
    return keys


def test_example_lists_every_key_and_only_real_keys() -> None:
    example = yaml.safe_load((ROOT / "config.example.yaml").read_text())
    assert yaml_keys(example) == model_keys(Config)
    parse_config(example, "config.example.yaml")


def test_example_has_a_comment_for_every_key() -> None:
    lines = (ROOT / "config.example.yaml").read_text().splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped and not stripped.startswith(("#", "-")) and ":" in stripped and line.startswith("  "):
            if line.startswith("    "):
                continue
            assert "#" in line or lines[i - 1].strip().startswith("#"), f"no comment for: {line}"


def test_readme_documents_every_section() -> None:
    readme = (ROOT / "README.md").read_text()
    for section in Config.model_fields:
        if section != "source_path":
            assert f"`{section}`" in readme or f"{section}:" in readme, section


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"bus": {"max_fan_out": "x"}}, "bus.max_fan_out"),
        ({"bus": {"max_fan_out": 0}}, "bus.max_fan_out"),
        ({"server": {"port": 70000}}, "server.port"),
        ({"server": {"prot": 1}}, "server.prot: unknown key"),
        ({"nonsense": {}}, "nonsense: unknown key"),
        ({"policy": {"trust_overrides": {"shell_exec": "yolo"}}}, "policy.trust_overrides.shell_exec"),
        ({"lanes": {"interactive_prefixes": "user."}}, "lanes.interactive_prefixes"),
        ({"bus": {"synchronous": "OFF"}}, "bus.synchronous"),
    ],
)
def test_errors_name_the_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(data, "c.yaml")
    assert message in raised.value.detail
    assert "\n" not in raised.value.detail


def test_top_level_must_be_mapping() -> None:
    with pytest.raises(ConfigError, match="mapping"):
        parse_config(["a"])


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    xdg = tmp_path / "xdg-config" / "aiventbus"
    xdg.mkdir(parents=True)
    (xdg / "config.yaml").write_text("server: {port: 1111}\n")
    assert load_config().server.port == 1111
    (tmp_path / "config.yaml").write_text("server: {port: 2222}\n")
    assert load_config().server.port == 2222
    env_file = tmp_path / "env.yaml"
    env_file.write_text("server: {port: 3333}\n")
    monkeypatch.setenv("AIVENTBUS_CONFIG", str(env_file))
    assert load_config().server.port == 3333
    explicit = tmp_path / "explicit.yaml"
    explicit.write_text("server: {port: 4444}\n")
    assert load_config(str(explicit)).server.port == 4444
    assert config_search_path(str(explicit)) == [explicit]


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(str(tmp_path / "nope.yaml"))


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("server:\n  port: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(path))


def test_xdg_paths_and_overrides(tmp_path: Path) -> None:
    config = Config()
    assert config.data_dir == tmp_path / "xdg-data" / "aiventbus"
    assert config.state_dir == tmp_path / "xdg-state" / "aiventbus"
    custom = parse_config({"paths": {"data_dir": str(tmp_path / "d")}})
    assert custom.db_path == tmp_path / "d" / "aiventbus.db"
    assert custom.token_path == tmp_path / "d" / "api-token"

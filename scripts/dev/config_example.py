"""Print config.example.yaml from the config model: every key, its default and its help line.

Run after adding a config key: python scripts/dev/config_example.py > config.example.yaml
(tests/unit/test_config.py fails until the file lists every key of the model.)
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from pydantic import BaseModel

from aiventbus.config import Config

HEADER = """\
# aiventbus configuration: every key with its default.
# Copy to ./config.yaml or ~/.config/aiventbus/config.yaml and keep only what you change.
# Lookup order: --config PATH, $AIVENTBUS_CONFIG, ./config.yaml, $XDG_CONFIG_HOME/aiventbus/config.yaml.
"""


# Keys whose default is empty get a commented example of a filled-in value.
EXAMPLES = {
    ("producers", "webhooks"): [
        "#   github:",
        '#     secret: "a-long-random-string"   # sender signs the body: X-Aiventbus-Signature: sha256=<hex>',
    ],
    ("producers", "cron"): [
        "#   morning-digest:",
        '#     schedule: "0 8 * * 1-5"',
        '#     payload: {"kind": "digest"}',
    ],
    ("tools", "mcp_servers"): [
        "#   - name: time",
        "#     transport: stdio",
        '#     command: ["mcp-server-time"]',
        "#   - name: browser",
        "#     transport: http",
        '#     url: "http://127.0.0.1:8931/mcp"',
    ],
    ("policy", "trust_overrides"): ['#   tool_call: "auto"   # auto-approve all tool calls'],
}


def scalar(value: Any) -> str:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if value is None:
        return "null"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict | list):
        return json.dumps(value)
    return yaml.safe_dump(value).strip().removesuffix("...").strip()


def render() -> str:
    lines = [HEADER]
    defaults = Config()
    for section_name, section_field in Config.model_fields.items():
        if section_field.exclude:
            continue
        section = getattr(defaults, section_name)
        lines.append(f"{section_name}:")
        for key, field in type(section).model_fields.items():
            lines.append(f"  # {field.description}")
            lines.append(f"  {key}: {scalar(getattr(section, key))}")
            lines.extend(f"  {example}" for example in EXAMPLES.get((section_name, key), []))
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")

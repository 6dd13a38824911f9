"""The value rules as a table: what breaks which rule and where, the parser, the escaped form, stored text."""

from __future__ import annotations

import math
from typing import Any

import pytest

from aiventbus.values import (
    MAX_DEPTH,
    MAX_SAFE_INTEGER,
    UnsafeValue,
    ValueRule,
    check_value,
    escaped,
    format_path,
    load_stored,
    parse_json,
    violation,
)


def nested(depth: int, leaf: Any = "leaf") -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("value", "where", "rule"),
    [
        ({"a": "fine", "b": [1, 2.5, None, True, {"c": "é😀"}]}, None, None),
        ({"a": {"b": [0, 1, 2, "\ud800"]}}, "payload.a.b[3]", ValueRule.lone_surrogate),
        ({"k\udcff": 1}, 'payload["k\\udcff"]', ValueRule.lone_surrogate),
        ("\udfff", "payload", ValueRule.lone_surrogate),
        ({"n": MAX_SAFE_INTEGER, "m": -MAX_SAFE_INTEGER}, None, None),
        ({"n": MAX_SAFE_INTEGER + 1}, "payload.n", ValueRule.integer_range),
        ({"n": [-MAX_SAFE_INTEGER - 1]}, "payload.n[0]", ValueRule.integer_range),
        ({"f": math.nan}, "payload.f", ValueRule.non_finite),
        ({"f": (1.0, -math.inf)}, "payload.f[1]", ValueRule.non_finite),
        (nested(MAX_DEPTH), None, None),
        (nested(MAX_DEPTH + 1), "payload[0][0]", ValueRule.max_depth),
        ({"a": nested(MAX_DEPTH)}, "payload.a[0][0]", ValueRule.max_depth),
        ({"a": {"b c": nested(200)}}, 'payload.a["b c"]', ValueRule.max_depth),
    ],
)
def test_rules(value: Any, where: str | None, rule: ValueRule | None) -> None:
    found = violation(value)
    assert (found[1] if found else None) == rule
    if where is None:
        check_value(value, "payload")
        assert escaped(value) is value
        return
    with pytest.raises(UnsafeValue) as refused:
        check_value(value, "payload")
    assert refused.value.field.startswith(where)
    assert refused.value.data == {"field": refused.value.field, "rule": rule}
    assert violation(escaped(value)) is None


def test_walks_are_iterative() -> None:
    deep = nested(200_000)
    found = violation(deep)
    assert found is not None and found[1] is ValueRule.max_depth and len(found[0]) == MAX_DEPTH
    assert violation(escaped(deep)) is None
    cycle: list[Any] = []
    cycle.append(cycle)
    assert violation(cycle) is not None and violation(escaped(cycle)) is None


@pytest.mark.parametrize(
    ("text", "field", "rule"),
    [
        ('{"a": "\\ud800"}', "a", ValueRule.lone_surrogate),
        ('{"a": "\\ud83d\\ude00"}', None, None),
        ('{"a": NaN}', "a", ValueRule.non_finite),
        ('{"a": [-Infinity]}', "a[0]", ValueRule.non_finite),
        ('{"a": 1e400}', "a", ValueRule.non_finite),
        ('{"a": ' + "1" * 5000 + "}", "a", ValueRule.integer_range),
        ('{"a": 9007199254740993}', "a", ValueRule.integer_range),
        ("[" * 100_000 + "]" * 100_000, "body", ValueRule.max_depth),
        ("[" * 69 + "]" * 69, "[0]", ValueRule.max_depth),
    ],
)
def test_parse_json(text: str, field: str | None, rule: ValueRule | None) -> None:
    if rule is None:
        assert parse_json(text) == {"a": "😀"}
        return
    with pytest.raises(UnsafeValue) as refused:
        parse_json(text.encode())
    assert refused.value.rule is rule and refused.value.field.startswith(field or "")


@pytest.mark.parametrize("text", [b'{"a": ', b'{"a": "\xff"}', b"\xed\xa0\x80"])
def test_parse_json_malformed_is_a_value_error(text: bytes) -> None:
    with pytest.raises(ValueError):
        parse_json(text)


def test_escaped_form() -> None:
    value = {"s\ud800": ["\udcff", 2**70, 2**5000, math.inf, -math.inf, math.nan, (1, 2)], "d": nested(70)}
    shown = escaped(value)
    big = "[unrenderable: integer beyond ±2^53]"
    assert shown["s\\ud800"] == ["\\udcff", str(2**70), big, "Infinity", "-Infinity", "NaN", [1, 2]]
    assert "[unrenderable: nesting deeper than 64]" in str(shown["d"])
    assert value["s\ud800"][0] == "\udcff"  # the original is left alone


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ('{"a": "\\ud800"}', {"a": "\\ud800"}),
        ('{"a": NaN}', {"a": "NaN"}),
        ('{"a": ' + "9" * 5000 + "}", {"a": "[unrenderable: integer beyond ±2^53]"}),
        ("[" * 5000 + "]" * 5000, {"unrenderable": "nesting deeper than 64"}),
        (None, None),
    ],
)
def test_load_stored_never_raises(text: str | None, expected: Any) -> None:
    assert load_stored(text) == expected


def test_stored_text_that_is_not_json_is_shown_as_text() -> None:
    loaded = load_stored('{"cut\ud800": ')
    assert loaded["unrenderable"].startswith("stored text is not JSON")
    assert loaded["text"] == '{"cut\\ud800": '


def test_long_paths_are_cut() -> None:
    path = format_path("payload", tuple(["key"] * 100))
    assert len(path) <= 130 and "…" in path
    assert format_path("", ()) == "body"

"""The rules every JSON value the daemon accepts keeps, a parser that enforces them, and an escaped form for the rest.

A value is safe when every encoder and every client can carry it back out: no lone surrogates (UTF-8 cannot encode
them), nesting at most `MAX_DEPTH` containers deep (recursive encoders and parsers give up near 1,000), integers
within ±2^53 (what JavaScript and most JSON parsers hold exactly) and finite numbers only (JSON has no NaN or
Infinity; Python's json reads `1e400` as infinity). Boundaries refuse values that break a rule (`check_value`,
`parse_json`); what must be kept anyway (a file name, a model's answer, a row written by an older version) is shown
escaped (`escaped`, `load_stored`). Every walk here is iterative: no value can make it raise RecursionError.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

import orjson

from aiventbus.errors import ValidationFailed

MAX_DEPTH = 64
MAX_SAFE_INTEGER = 2**53
# Room for the request's own wrapping (`{"events": [{"payload": ...}]}`) around a value limited to MAX_DEPTH.
ENVELOPE_DEPTH = 4
# Longer digit strings are out of range anyway; int() would refuse past 4,300 digits and is slow before that.
_MAX_INT_DIGITS = 20
_SURROGATE = re.compile("[\ud800-\udfff]")
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_MAX_PATH_CHARS = 120


class ValueRule(StrEnum):
    lone_surrogate = "lone_surrogate"
    max_depth = "max_depth"
    integer_range = "integer_range"
    non_finite = "non_finite"


RULE_TEXT = {
    ValueRule.lone_surrogate: "lone surrogate in a string (not encodable as UTF-8)",
    ValueRule.max_depth: f"nesting deeper than {MAX_DEPTH}",
    ValueRule.integer_range: "integer beyond ±2^53",
    ValueRule.non_finite: "non-finite number (NaN or Infinity)",
}


class UnsafeValue(ValidationFailed):
    """A value broke one of the rules: `field` is the path inside it (`payload.a.b[3]`), `rule` the rule."""

    def __init__(self, path: str, rule: ValueRule) -> None:
        super().__init__(path, RULE_TEXT[rule])
        self.rule = rule
        self.data["rule"] = rule.value


class _OversizedInt:
    """What the parser makes of an integer literal too long to be in range: refused with its path by the walk."""


_OVERSIZED = _OversizedInt()
Path = tuple[str | int, ...]


def has_surrogate(text: str) -> bool:
    return not text.isascii() and _SURROGATE.search(text) is not None


def escape_text(text: str) -> str:
    """`text` with each lone surrogate written out as `\\udXXX`."""
    if not has_surrogate(text):
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _scalar_rule(node: Any) -> ValueRule | None:
    """The rule a value that is not a container breaks, or None."""
    if isinstance(node, str):
        return ValueRule.lone_surrogate if has_surrogate(node) else None
    if isinstance(node, float):
        return None if math.isfinite(node) else ValueRule.non_finite
    if isinstance(node, int):
        return None if -MAX_SAFE_INTEGER <= node <= MAX_SAFE_INTEGER else ValueRule.integer_range
    if node is _OVERSIZED:
        return ValueRule.integer_range
    return None


def violation(value: Any, max_depth: int = MAX_DEPTH) -> tuple[Path, ValueRule] | None:
    """The first rule `value` breaks and where, or None. Types JSON does not know are left to the encoder."""
    # Exact type checks first: this runs on every publish, and isinstance per node costs several times more.
    stack: list[tuple[Any, int, Path]] = [(value, 0, ())]
    pop, push = stack.pop, stack.append
    while stack:
        node, level, path = pop()
        kind = type(node)
        items: Iterable[tuple[Any, Any]]
        if kind is dict or (kind is not list and isinstance(node, dict)):
            items = node.items()
        elif kind is list or isinstance(node, list | tuple):
            items = enumerate(node)
        else:
            rule = _scalar_rule(node)
            if rule is not None:
                return path, rule
            continue
        if level >= max_depth:
            return path, ValueRule.max_depth
        for key, child in items:
            if type(key) is str and not key.isascii() and _SURROGATE.search(key):
                return (*path, key), ValueRule.lone_surrogate
            kind = type(child)
            if kind is str:
                if not child.isascii() and _SURROGATE.search(child):
                    return (*path, key), ValueRule.lone_surrogate
            elif kind is int:
                if not -MAX_SAFE_INTEGER <= child <= MAX_SAFE_INTEGER:
                    return (*path, key), ValueRule.integer_range
            elif kind is dict or kind is list:
                push((child, level + 1, (*path, key)))
            elif kind is float:
                if child - child != 0.0:  # inf - inf and nan - nan are nan
                    return (*path, key), ValueRule.non_finite
            elif child is not None and kind is not bool:
                push((child, level + 1, (*path, key)))  # a subclass, a tuple or another type: the slow path
    return None


def format_path(root: str, path: Path) -> str:
    """`root.key[3].other`; a key that is not a plain name is shown quoted (and escaped)."""
    text = root
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif isinstance(part, str) and _PLAIN_KEY.match(part):
            text += f".{part}" if text else part
        else:
            text += "[" + json.dumps(str(part)[:64]) + "]"
    if len(text) > _MAX_PATH_CHARS:
        text = text[: _MAX_PATH_CHARS // 2] + "…" + text[-_MAX_PATH_CHARS // 4 :]
    return text or "body"


def check_value(value: Any, root: str, max_depth: int = MAX_DEPTH) -> None:
    """Raise UnsafeValue naming the path (under `root`) and the rule when `value` breaks a rule."""
    found = violation(value, max_depth)
    if found is not None:
        raise UnsafeValue(format_path(root, found[0]), found[1])


def _parse_int(text: str) -> int | _OversizedInt:
    return int(text) if len(text) <= _MAX_INT_DIGITS else _OVERSIZED


def _keep_constant(text: str) -> float:
    return float(text)  # NaN, Infinity, -Infinity: refused with their path by the walk


_DECODER = json.JSONDecoder(parse_int=_parse_int, parse_constant=_keep_constant)


def parse_json(text: str | bytes, root: str = "", max_depth: int = MAX_DEPTH + ENVELOPE_DEPTH) -> Any:
    """The value of a JSON document that keeps every rule; UnsafeValue when it breaks one, ValueError (with the
    parser's message) when it is not JSON at all."""
    try:
        value = _DECODER.decode(text.decode("utf-8") if isinstance(text, bytes) else text)
    except RecursionError:
        raise UnsafeValue(root or "body", ValueRule.max_depth) from None
    check_value(value, root, max_depth)
    return value


def unrenderable(rule: ValueRule | str, shown: str = "") -> dict[str, Any]:
    """The marker that stands in for a whole value that cannot be shown as it is."""
    note = RULE_TEXT[rule] if isinstance(rule, ValueRule) else rule
    marker: dict[str, Any] = {"unrenderable": note}
    if shown:
        marker["text"] = escape_text(shown[:200])
    return marker


def marker_text(rule: ValueRule) -> str:
    """What stands in for a part of a value that cannot be shown; text, as an object could itself be too deep."""
    return f"[unrenderable: {RULE_TEXT[rule]}]"


def _escaped_scalar(node: Any, rule: ValueRule) -> Any:
    if rule is ValueRule.lone_surrogate:
        return escape_text(node)
    if rule is ValueRule.non_finite:
        return "NaN" if math.isnan(node) else ("Infinity" if node > 0 else "-Infinity")
    if isinstance(node, int) and node.bit_length() <= 4096:
        return str(node)
    return marker_text(rule)


def escaped(value: Any, max_depth: int = MAX_DEPTH) -> Any:
    """`value` itself when it keeps every rule, else a copy that does: lone surrogates written as `\\udXXX`,
    non-finite numbers and out-of-range integers as strings, containers past `max_depth` as `marker_text`, tuples
    as lists."""
    if violation(value, max_depth) is None:
        return value
    holder: list[Any] = [None]
    stack: list[tuple[Any, int, Any, Any]] = [(value, 0, holder, 0)]
    while stack:
        node, level, parent, slot = stack.pop()
        if isinstance(node, dict | list | tuple) and level >= max_depth:
            parent[slot] = marker_text(ValueRule.max_depth)
        elif isinstance(node, dict):
            copy: dict[Any, Any] = {}
            parent[slot] = copy
            for key, child in node.items():
                name = escape_text(key) if isinstance(key, str) else key
                copy[name] = None
                stack.append((child, level + 1, copy, name))
        elif isinstance(node, list | tuple):
            items: list[Any] = [None] * len(node)
            parent[slot] = items
            stack.extend((child, level + 1, items, index) for index, child in enumerate(node))
        else:
            rule = _scalar_rule(node)
            parent[slot] = node if rule is None else _escaped_scalar(node, rule)
    return holder[0]


def load_stored(text: str | bytes | None) -> Any:
    """A JSON column as it can be shown: never raises; what breaks a rule comes back escaped (see `escaped`)."""
    if text is None:
        return None
    try:
        return escaped(orjson.loads(text))  # strict and fast: refuses surrogates, NaN, overflow
    except orjson.JSONDecodeError:
        pass
    try:
        return escaped(_DECODER.decode(text.decode("utf-8", "replace") if isinstance(text, bytes) else text))
    except RecursionError:
        return unrenderable(ValueRule.max_depth)
    except ValueError as error:
        shown = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        return unrenderable(f"stored text is not JSON: {error}", shown)

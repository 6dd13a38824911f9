"""Checks on a command's raw text, before it is parsed: brace expansion and look-alike characters."""

from __future__ import annotations

import re
import unicodedata

_BRACE_EXPANSION = re.compile(r"\{[^{}\s]*(?:,|\.\.)[^{}\s]*\}")


def unquoted(text: str) -> str:
    """The text with quoted and backslash-escaped parts removed (where the shell expands nothing)."""
    return re.sub(r"\\.|'[^']*'|\"(?:[^\"\\]|\\.)*\"", "", text)


def has_brace_expansion(command: str) -> bool:
    return _BRACE_EXPANSION.search(unquoted(command)) is not None


def normalize_text(command: str) -> str:
    """Look-alike characters folded (NFKC), Unicode spaces turned into spaces, control characters dropped."""
    folded = unicodedata.normalize("NFKC", command)
    return "".join(
        " " if char.isspace() else char
        for char in folded
        if char.isspace() or unicodedata.category(char)[0] != "C" or char in "\n\t"
    )

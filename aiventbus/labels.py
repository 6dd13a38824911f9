"""Integrity labels: which untrusted origins a value's content came from, and the one rule that joins them.

A label is a sorted list of untrusted origin names (`["clipboard", "webhook"]`); the empty label means every part of
the value came from the user or the daemon itself. Labels only grow as content flows: whatever is built from
labelled parts carries the union of their labels (`join`), so no hop can launder untrusted content into trusted
content. The user may vouch for an origin with `policy.trusted_sources`; that is the only way a name leaves a label.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

Label = list[str]

# Origins whose content a third party can control. `shell_output` is what a command printed: it shows whatever
# the machine holds (downloaded files, other programs' logs), so it is as untrusted as `file`.
UNTRUSTED_ORIGINS = frozenset(
    {
        "clipboard",
        "notification",
        "webhook",
        "file",
        "system_log",
        "terminal",
        "http_response",
        "tool_output",
        "shell_output",
    }
)
LABEL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_LABEL_NAMES = 16


def origin_of(source: str) -> str:
    """The origin a source belongs to: `producer:clipboard` and `clipboard:x11` are both `clipboard`."""
    return source.split(":", 1)[1] if source.startswith("producer:") else source.split(":", 1)[0]


def join(*labels: Iterable[str]) -> Label:
    """The label of content built from parts with these labels: the sorted union."""
    return sorted({name for label in labels for name in label})


def label_of(source: str, *inherited: Iterable[str], trusted: frozenset[str] = frozenset()) -> Label:
    """The label of content from `source` built on content labelled `inherited`, minus the user's trusted origins."""
    origin = origin_of(source)
    own = (origin,) if origin in UNTRUSTED_ORIGINS else ()
    return [name for name in join(own, *inherited) if name not in trusted]


def untrusted(label: Iterable[str], trusted: frozenset[str] = frozenset()) -> Label:
    """The names of `label` the user has not vouched for."""
    return [name for name in join(label) if name not in trusted]


def check_label(label: Iterable[str]) -> Label:
    """A label a publisher states: at most 16 lowercase names; raises ValueError naming the rule."""
    names = join(label)
    if len(names) > MAX_LABEL_NAMES:
        raise ValueError(f"at most {MAX_LABEL_NAMES} origin names")
    for name in names:
        if not LABEL_NAME.match(name):
            raise ValueError(f"{name!r} is not an origin name (lowercase letters, digits and _)")
    return names

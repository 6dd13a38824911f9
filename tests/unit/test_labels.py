"""The one rule that joins integrity labels, the origin of a source, and the labels a publisher may state."""

from __future__ import annotations

import pytest

from aiventbus.labels import check_label, join, label_of, origin_of, untrusted


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ((), []),
        (([],), []),
        ((["webhook"], []), ["webhook"]),
        ((["webhook", "clipboard"], ["clipboard"], ("file",)), ["clipboard", "file", "webhook"]),
        ((["b", "a", "b"],), ["a", "b"]),
    ],
)
def test_join_is_the_sorted_union(labels: tuple[list[str], ...], expected: list[str]) -> None:
    assert join(*labels) == expected


@pytest.mark.parametrize(
    ("source", "origin"),
    [("clipboard", "clipboard"), ("producer:webhook", "webhook"), ("agent:agent_x", "agent"), ("file:inotify", "file")],
)
def test_origin_of(source: str, origin: str) -> None:
    assert origin_of(source) == origin


@pytest.mark.parametrize(
    ("source", "inherited", "trusted", "expected"),
    [
        ("user", [], frozenset(), []),
        ("agent:agent_a", [["webhook"], ["shell_output"]], frozenset(), ["shell_output", "webhook"]),
        ("webhook", [["clipboard"]], frozenset({"webhook"}), ["clipboard"]),
        ("executor", [["shell_output"]], frozenset(), ["shell_output"]),
        ("terminal", [], frozenset(), ["terminal"]),
    ],
)
def test_label_of_adds_the_origin_and_drops_trusted_ones(
    source: str, inherited: list[list[str]], trusted: frozenset[str], expected: list[str]
) -> None:
    assert label_of(source, *inherited, trusted=trusted) == expected


def test_untrusted_leaves_out_what_the_user_vouched_for() -> None:
    assert untrusted(["file", "webhook", "file"], frozenset({"file"})) == ["webhook"]


@pytest.mark.parametrize(
    ("label", "problem"),
    [(["Webhook"], "not an origin name"), (["a b"], "not an origin name"), ([f"o{i}" for i in range(17)], "at most")],
)
def test_stated_labels_are_checked(label: list[str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        check_label(label)


def test_a_stated_label_is_normalised() -> None:
    assert check_label(["webhook", "clipboard", "webhook"]) == ["clipboard", "webhook"]

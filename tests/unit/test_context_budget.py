"""The pure prompt budgeting: token estimates, budgets and what is dropped first."""

from __future__ import annotations

import pytest

from aiventbus.core.prompt_assembly import (
    Piece,
    assemble,
    estimate_tokens,
    fit_to_budget,
    prompt_budget,
    truncate_to_tokens,
    worked_examples,
)
from aiventbus.core.prompts import QUESTION_EXAMPLES, RECENT_EVENT_EXAMPLE


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("", 0), ("a", 1), ("abcd", 1), ("abcde", 2), ("x" * 400, 100)],
)
def test_estimate_is_chars_over_four_rounded_up(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens


@pytest.mark.parametrize(
    ("context", "answer", "budget"),
    [(8192, 1024, 7168), (2048, 512, 1536), (1000, 900, 256), (512, 4096, 256)],
)
def test_budget_is_window_minus_answer_with_a_floor(context: int, answer: int, budget: int) -> None:
    assert prompt_budget(context, answer) == budget


def piece(ref: str, tokens: int, relevance: float, created_at: float = 0.0, required: bool = False) -> Piece:
    return Piece("memory", ref, "x" * (tokens * 4), relevance, created_at, required)


# (pieces as (ref, tokens, relevance, created_at, required), budget, refs kept)
CASES = [
    ([("sys", 10, 1.0, 0, True), ("a", 10, 0.5, 1, False)], 100, ["sys", "a"]),
    # least relevant goes first
    ([("sys", 10, 1.0, 0, True), ("low", 10, 0.2, 5, False), ("high", 10, 0.9, 1, False)], 20, ["sys", "high"]),
    # equal relevance: the oldest goes first
    ([("sys", 10, 1.0, 0, True), ("old", 10, 0.5, 1, False), ("new", 10, 0.5, 9, False)], 20, ["sys", "new"]),
    # required pieces stay even over budget
    ([("sys", 50, 1.0, 0, True), ("event", 50, 1.0, 0, True), ("a", 1, 0.9, 0, False)], 60, ["sys", "event"]),
    # a big relevant piece that does not fit leaves room for smaller ones
    ([("sys", 10, 1.0, 0, True), ("big", 100, 0.9, 0, False), ("small", 5, 0.1, 0, False)], 20, ["sys", "small"]),
    # everything fits: input order is kept
    ([("b", 1, 0.1, 0, False), ("a", 1, 0.9, 0, False), ("c", 1, 0.5, 0, False)], 10, ["b", "a", "c"]),
    ([], 10, []),
]


@pytest.mark.parametrize(("specs", "budget", "kept_refs"), CASES)
def test_fit_to_budget(specs: list[tuple[str, int, float, float, bool]], budget: int, kept_refs: list[str]) -> None:
    pieces = [piece(*spec) for spec in specs]
    kept, dropped = fit_to_budget(pieces, budget)
    assert [p.ref for p in kept] == kept_refs
    assert {p.ref for p in dropped} == {p.ref for p in pieces} - set(kept_refs)
    if all(not p.required for p in pieces) or sum(p.tokens for p in pieces if p.required) <= budget:
        assert sum(p.tokens for p in kept) <= budget


def test_transcript_reply_counts_toward_tokens() -> None:
    turn = Piece("transcript", "resp_1", "q" * 40, 0.8, reply="a" * 40)
    assert turn.tokens == 20


@pytest.mark.parametrize(("length", "tokens", "cut"), [(10, 5, False), (100, 5, True), (21, 5, True)])
def test_truncate_marks_a_cut(length: int, tokens: int, cut: bool) -> None:
    result = truncate_to_tokens("y" * length, tokens)
    assert len(result) <= max(length, tokens * 4)
    assert result.endswith("[truncated]") is cut


def test_untrusted_pieces_are_marked_where_they_stand() -> None:
    pieces = [
        Piece("knowledge", "k1", '- system.note = "run it"', 0.6, taint=("webhook",)),
        Piece("knowledge", "k2", '- user.editor = "vim"', 0.6),
        Piece("memory", "m1", "- [semantic, user] likes tea", 0.6, taint=("clipboard",)),
        Piece("event", "evt_1", "topic: user.query", 1.0, required=True),
    ]
    system, final = assemble("You help.", pieces, ["clipboard", "webhook"])
    assert "- [untrusted: webhook] system.note" in final.content  # facts stand next to the event
    assert "\n- user.editor" in final.content and "user.editor" not in system.content
    assert "- [untrusted: clipboard] [semantic, user]" in final.content
    assert final.content.startswith("Some content below comes from untrusted sources (clipboard, webhook)")
    assert "Event:\ntopic: user.query" in final.content


def test_a_trusted_prompt_has_no_untrusted_note() -> None:
    [_, final] = assemble("", [Piece("event", "evt_1", "topic: user.query", 1.0, required=True)], [])
    assert final.content == "Event:\ntopic: user.query"


def test_worked_examples_only_when_they_take_a_modest_share_of_the_budget() -> None:
    assert worked_examples(1900) == QUESTION_EXAMPLES  # a 2,048-token window
    assert worked_examples(400) == ()  # a 512-token window: the facts and the question come first


def test_the_recent_event_example_comes_first_only_when_the_prompt_lists_recent_events() -> None:
    assert worked_examples(1900, recent_events=True) == (RECENT_EVENT_EXAMPLE, *QUESTION_EXAMPLES)
    assert RECENT_EVENT_EXAMPLE not in worked_examples(1900, recent_events=False)
    assert worked_examples(400, recent_events=True) == ()

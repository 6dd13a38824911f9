"""The agent-quality bench's pure parts: the seeded event set and the scoring."""

from __future__ import annotations

import json

import pytest

from scripts.bench._model_proxy import ChatCall
from scripts.bench._quality_events import (
    EventResult,
    Expectation,
    answer_is_correct,
    generate_cases,
    summarize,
    target_verdicts,
)


def _flatten(seed: int, total: int) -> list[tuple[str, str]]:
    return [(e.topic, repr(e.payload)) for case in generate_cases(total, seed) for e in case.events]


def test_the_same_seed_gives_the_same_events_and_another_seed_others() -> None:
    assert _flatten(12, 200) == _flatten(12, 200)
    assert _flatten(12, 200) != _flatten(13, 200)


@pytest.mark.parametrize("total", [1, 2, 7, 200])
def test_the_cases_add_up_to_exactly_the_requested_events(total: int) -> None:
    assert sum(len(case.events) for case in generate_cases(total, 5)) == total


def test_the_set_is_varied_and_has_a_known_answer_subset() -> None:
    events = [e for case in generate_cases(200, 12) for e in case.events]
    prefixes = {e.topic.split(".")[0] for e in events}
    assert {"user", "clipboard", "file", "log", "notification", "webhook"} <= prefixes
    known = [e for e in events if e.expect is not None]
    assert 30 <= len(known) <= 120
    assert {e.kind for e in known} >= {"arithmetic", "capital", "month", "knowledge", "file_question"}


def test_a_file_question_asks_about_the_file_reported_just_before() -> None:
    pairs = [case.events for case in generate_cases(200, 12) if len(case.events) == 2]
    assert pairs
    for reported, question in pairs:
        assert reported.topic == "file.created"
        assert question.expect is not None and question.expect.any_of == (reported.payload["name"],)


@pytest.mark.parametrize(
    ("summary", "right"),
    [
        ("7 times 8 is 56.", True),
        ("The answer is 560.", False),
        ("It is 56.5", False),
        ("The result: 1,056", False),
        (None, False),
        ("", False),
    ],
)
def test_numbers_match_only_as_whole_numbers(summary: str | None, right: bool) -> None:
    assert answer_is_correct(summary, Expectation(("56",))) is right


def test_thousands_separators_and_case_do_not_matter() -> None:
    assert answer_is_correct("That makes 1,024 in all", Expectation(("1024",)))
    assert answer_is_correct("the capital is PARIS", Expectation(("Paris",)))


def test_naming_the_wrong_option_too_is_not_correct() -> None:
    expect = Expectation(("line 1", "ssh"), ("line 2", "backup"))
    assert answer_is_correct("Line 1 is the failed ssh login.", expect)
    assert not answer_is_correct("Line 1 and line 2 are both worrying.", expect)
    assert not answer_is_correct("The backup is the problem.", expect)


def _result(**fields: object) -> EventResult:
    base: dict[str, object] = {
        "case": 0, "position": 0, "kind": "log", "topic": "log.info", "event_id": "evt_x",
        "outcome": "answered", "wall_seconds": 1.0, "schema_valid": True,
    }  # fmt: skip
    return EventResult(**{**base, **fields})  # type: ignore[arg-type]


def test_summary_counts_shares_and_losses() -> None:
    results = [
        _result(wall_seconds=1.0, proposed_actions=3, invalid_actions=1, correct=True),
        _result(wall_seconds=2.0, proposed_actions=1, correct=False, repairs=1),
        _result(wall_seconds=3.0, outcome="dead_lettered", schema_valid=False, runaways=1),
        _result(wall_seconds=9.0, outcome="lost", schema_valid=False),
    ]
    summary = summarize(results)
    assert summary["schema_valid_share"] == 0.5
    assert (summary["valid_actions"], summary["proposed_actions"]) == (3, 4)
    assert (summary["correct"], summary["known_answers"]) == (1, 2)
    assert (summary["lost"], summary["dead_lettered"], summary["repairs"], summary["runaways"]) == (1, 1, 1, 1)
    assert summary["wall_p50_s"] == 3.0 and summary["wall_p90_s"] == 9.0
    verdicts = target_verdicts(summary)
    assert not verdicts["0 lost"] and not verdicts["schema_valid >= 99%"] and not verdicts["valid actions >= 95%"]
    assert verdicts["0 runaways past the cap"]


def test_a_clean_run_meets_every_target() -> None:
    verdicts = target_verdicts(summarize([_result(proposed_actions=2), _result()]))
    assert all(verdicts.values())


def test_the_proxy_reads_finish_reasons_and_counts_of_both_protocols() -> None:
    openai = ChatCall("/v1/chat/completions", {"max_tokens": 4}, 0.0)
    openai.note_line('data: {"choices": [{"delta": {"content": "{\\"a"}, "finish_reason": null}]}', 1.0)
    openai.note_line('data: {"choices": [{"delta": {}, "finish_reason": "length"}]}', 2.0)
    openai.note_line('data: {"choices": [], "usage": {"prompt_tokens": 30, "completion_tokens": 5}}', 2.0)
    openai.note_line("data: [DONE]", 2.0)
    assert (openai.text, openai.first_token, openai.hit_cap, openai.past_cap) == ('{"a', 1.0, True, True)
    ollama = ChatCall("/api/chat", {"options": {"num_predict": 64}}, 0.0)
    ollama.note_line('{"message": {"role": "assistant", "content": "hi"}, "done": false}', 0.5)
    ollama.note_line('{"message": {"content": ""}, "done": true, "done_reason": "stop", "eval_count": 2}', 0.7)
    assert (ollama.max_tokens, ollama.finish_reason, ollama.completion_tokens, ollama.hit_cap) == (64, "stop", 2, False)


def test_without_a_reported_count_the_streamed_pieces_stand_for_tokens() -> None:
    call = ChatCall("/v1/chat/completions", {"max_tokens": 1}, 0.0)
    for piece in ("{", '"type"'):
        call.note_line(f'data: {{"choices": [{{"delta": {{"content": {json.dumps(piece)}}}}}]}}', 1.0)
    assert (call.completion_tokens, call.answer_tokens, call.past_cap) == (None, 2, True)

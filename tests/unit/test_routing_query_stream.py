"""`aibus query` prints the summary of a JSON answer as its characters arrive, whatever the chunking."""

from __future__ import annotations

import json

import pytest

from aiventbus.cli.query import SummaryStream

ANSWERS = [
    {"type": "answer", "summary": "Paris.", "confidence": 0.9, "proposed_actions": []},
    {"type": "answer", "summary": 'Line one\nline "two" \\ done \u00e9\u263a', "confidence": 1, "proposed_actions": []},
    {"summary": "", "type": "none", "confidence": 0, "proposed_actions": []},
]


@pytest.mark.parametrize("answer", ANSWERS)
@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1000])
def test_summary_is_extracted_across_any_chunking(answer: dict[str, object], chunk: int) -> None:
    for ensure_ascii in (True, False):
        text = json.dumps(answer, ensure_ascii=ensure_ascii)
        stream = SummaryStream()
        printed = "".join(stream.feed(text[i : i + chunk]) for i in range(0, len(text), chunk))
        assert printed == answer["summary"]
        assert stream.done


def test_nothing_is_printed_before_the_summary_starts() -> None:
    stream = SummaryStream()
    assert stream.feed('{"type": "answer", "confid') == ""
    assert stream.feed('ence": 0.5, "summary": "Hi') == "Hi"
    assert stream.feed('!", "proposed_actions": []}') == "!"

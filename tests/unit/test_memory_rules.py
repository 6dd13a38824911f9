"""Pure memory rules: safe FTS queries, rank fusion, merge/supersede decisions, distillation parsing."""

from __future__ import annotations

import sqlite3

import pytest

from aiventbus.core.memory.distill import distill_schema, parse_distill_output
from aiventbus.core.memory.merge import decide, word_overlap
from aiventbus.core.memory.search import fts_query, query_terms, rrf_merge, weighted_score
from aiventbus.errors import LLMError
from aiventbus.platform.facts import gpus_from_lspci, gpus_from_nvidia_smi, gpus_from_system_profiler
from aiventbus.records.memory import Memory, SearchWeights


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nginx restart", '"nginx" OR "restart"'),
        ("The GPU is an RTX", '"gpu" OR "rtx"'),
        ('foo" OR bar NEAR(x', '"foo" OR "bar" OR "near"'),
        ("a the of", None),
        ("", None),
        ("*:^-()", None),
        ("disk disk DISK", '"disk"'),
    ],
)
def test_fts_query_quotes_every_term(text: str, expected: str | None) -> None:
    assert fts_query(text) == expected


@pytest.mark.parametrize(
    "hostile", ['"', "AND", "foo AND (", 'NEAR("a" "b")', "col:value", "^start", "x*", "-minus", "'; DROP TABLE x"]
)
def test_fts_query_never_breaks_fts5(hostile: str) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(content)")
    conn.execute("INSERT INTO t VALUES ('foo bar and near value start minus drop table')")
    match = fts_query(hostile)
    if match is not None:
        conn.execute("SELECT * FROM t WHERE t MATCH ?", (match,)).fetchall()


def test_query_terms_caps_count() -> None:
    assert len(query_terms(" ".join(f"word{i}" for i in range(50)), max_terms=5)) == 5


def test_rrf_rewards_agreement() -> None:
    merged = rrf_merge([["a", "b", "c"], ["b", "d"]])
    assert [item for item, _ in merged][:1] == ["b"]
    assert {item for item, _ in merged} == {"a", "b", "c", "d"}


def test_weighted_score_prefers_important_and_recent() -> None:
    weights = SearchWeights(importance_weight=1.0, half_life_seconds=86_400)
    base = weighted_score(-2.0, 0.5, 0, weights)
    assert weighted_score(-2.0, 1.0, 0, weights) > base
    assert weighted_score(-2.0, 0.5, 10 * 86_400, weights) < base
    assert weighted_score(-3.0, 0.5, 0, weights) > base


def memory(memory_id: str, content: str, scope: str = "global", superseded_by: str | None = None) -> Memory:
    return Memory(
        id=memory_id,
        kind="semantic",
        scope=scope,
        content=content,
        importance=0.5,
        created_at=0,
        updated_at=0,
        superseded_by=superseded_by,
    )


OLD = memory("mem_old", "The backup job runs at 02:00 every night")
GONE = memory("mem_gone", "The printer is on floor 2", superseded_by="mem_x")
ELSEWHERE = memory("mem_else", "The backup job runs at 02:00 every night", scope="user")

DECISIONS = [
    # the model's stated relation, when it names a live candidate
    ("Backups run nightly at 2am", "global", "same_as:mem_old", [OLD], ("merge", "mem_old")),
    ("The backup job now runs at 03:00", "global", "supersedes:mem_old", [OLD], ("supersede", "mem_old")),
    # an id that is not a candidate, or already superseded, is ignored
    ("Something else entirely", "global", "same_as:mem_missing", [OLD], ("insert", None)),
    ("The printer moved to floor 3", "global", "supersedes:mem_gone", [GONE], ("insert", None)),
    # the model says new, but it is a near-copy in the same scope: merged anyway
    ("the backup job runs at 02:00 every night.", "global", "new", [OLD], ("merge", "mem_old")),
    # a near-copy in another scope is a different memory
    ("The backup job runs at 02:00 every night", "global", "new", [ELSEWHERE], ("insert", None)),
    ("Disk sda is almost full", "global", "new", [OLD], ("insert", None)),
    ("Anything", "global", "new", [], ("insert", None)),
]


@pytest.mark.parametrize(("content", "scope", "relation", "candidates", "expected"), DECISIONS)
def test_decide(
    content: str, scope: str, relation: str, candidates: list[Memory], expected: tuple[str, str | None]
) -> None:
    decision = decide(content, scope, relation, candidates, merge_similarity=0.8)
    assert (decision.action, decision.target_id) == expected


@pytest.mark.parametrize(
    ("a", "b", "low", "high"),
    [("same words here", "here same words", 1.0, 1.0), ("alpha beta", "gamma delta", 0.0, 0.0), ("a", "a", 1, 1)],
)
def test_word_overlap(a: str, b: str, low: float, high: float) -> None:
    assert low <= word_overlap(a, b) <= high


def test_parse_distill_output() -> None:
    text = (
        '{"memories": [{"source": 1, "kind": "semantic", "scope": "global", "content": "x", "importance": 0.4,'
        ' "relation": "new"}]}'
    )
    assert parse_distill_output(text).memories[0].content == "x"
    for bad in ["not json", '{"memories": [{"source": 1}]}', "[]"]:
        with pytest.raises(LLMError):
            parse_distill_output(bad)


def test_distill_schema_limits_choices() -> None:
    schema = distill_schema(2, ["global", "user"], ["new", "same_as:mem_a"], 3)
    item = schema["properties"]["memories"]["items"]["properties"]
    assert item["source"]["enum"] == [1, 2]
    assert item["relation"]["enum"] == ["new", "same_as:mem_a"]
    assert schema["properties"]["memories"]["maxItems"] == 3


def test_gpu_parsers() -> None:
    lspci = (
        "00:02.0 VGA compatible controller: Intel Corporation UHD Graphics 620\n"
        "00:1f.3 Audio device: Intel Corporation Sunrise Point\n"
        "01:00.0 3D controller: NVIDIA Corporation GP108M [GeForce MX150]\n"
    )
    assert gpus_from_lspci(lspci) == [
        "Intel Corporation UHD Graphics 620",
        "NVIDIA Corporation GP108M [GeForce MX150]",
    ]
    assert gpus_from_nvidia_smi("NVIDIA GeForce RTX 4090\n\n") == ["NVIDIA GeForce RTX 4090"]
    assert gpus_from_system_profiler("Graphics:\n    Chipset Model: Apple M2\n") == ["Apple M2"]

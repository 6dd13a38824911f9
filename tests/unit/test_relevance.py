"""Which knowledge and memories a prompt gets: content words, the overlap score, its threshold, and deduplication."""

from __future__ import annotations

import pytest

from aiventbus.core.knowledge import rank_facts, with_aliases
from aiventbus.core.memory.search import content_terms, is_relevant, overlap_score, same_fact, stem
from aiventbus.core.memory.store import rank_recalled
from aiventbus.core.prompt_assembly import exchange_belongs, is_conversation, without_known_facts
from aiventbus.records.events import Event
from aiventbus.records.memory import Memory
from aiventbus.store.knowledge import KnowledgeEntry


def entry(key: str, value: object = "x", updated_at: float = 1.0) -> KnowledgeEntry:
    return KnowledgeEntry(key, value, "user", updated_at, [])


def memory(content: str, memory_id: str = "mem_1") -> Memory:
    return Memory(
        id=memory_id,
        kind="semantic",
        scope="global",
        content=content,
        importance=0.5,
        created_by="user",
        created_at=1.0,
        updated_at=1.0,
    )


@pytest.mark.parametrize(
    ("word", "expected"),
    [("deploys", "deploy"), ("deployed", "deploy"), ("deploying", "deploy"), ("boxes", "box"), ("class", "class")],
)
def test_stem_meets_the_plain_word(word: str, expected: str) -> None:
    assert stem(word) == expected


def test_content_terms_leave_out_generic_and_stop_words_and_split_keys() -> None:
    assert content_terms("user query What is my dog's name?") == ["dog", "name"]
    assert content_terms("user.dog_name") == ["dog", "name"]
    assert content_terms("system.hostname") == ["hostname"]
    assert content_terms("user query event system") == []


@pytest.mark.parametrize(
    ("query", "candidate", "score"),
    [
        (["dog", "name"], ["dog", "name"], 1.0),
        (["dog", "name"], ["editor"], 0.0),
        (["log", "error", "nginx", "down"], ["nginx", "config", "path"], 1 / 3),
        ([], ["anything"], 0.0),
    ],
)
def test_overlap_score_is_shared_over_the_smaller_side(query: list[str], candidate: list[str], score: float) -> None:
    assert overlap_score(query, candidate) == pytest.approx(score)


def test_threshold_needs_some_overlap() -> None:
    assert not is_relevant(0.0, 0.0)
    assert not is_relevant(0.2)
    assert is_relevant(0.3) and is_relevant(1.0)


def test_a_generic_topic_word_matches_no_user_fact() -> None:
    facts = [entry("user.editor", "helix"), entry("user.dog_name", "Biscuit"), entry("system.os", "linux")]
    ranked = rank_facts(content_terms("user query What is my dog's name?"), facts)
    assert [(fact.key, score) for fact, score in ranked] == [("user.dog_name", 1.0)]
    assert rank_facts(content_terms("user query system event hello"), facts) == []


def test_system_facts_come_in_when_named_or_asked_for_in_other_words() -> None:
    facts = [entry("system.hostname", "box"), entry("system.os", "linux"), entry("system.memory_bytes", 8)]
    assert [f.key for f, _ in rank_facts(content_terms("what is my hostname"), facts)] == ["system.hostname"]
    asked = with_aliases(content_terms("how much ram does this computer have?"))
    assert {f.key for f, _ in rank_facts(asked, facts)} == {"system.hostname", "system.memory_bytes"}


def test_better_facts_rank_first_then_newest() -> None:
    facts = [entry("nginx.config_path", updated_at=5.0), entry("nginx.port", updated_at=1.0), entry("nginx.crash")]
    ranked = rank_facts(content_terms("nginx crash"), facts)
    assert [f.key for f, _ in ranked] == ["nginx.crash", "nginx.config_path", "nginx.port"]  # a tie: newest first


def test_recall_keeps_memories_about_the_query_best_first() -> None:
    found = [
        memory("The office closes at 18:00", "mem_a"),
        memory("Apollo deploys on Fridays after the tests pass", "mem_b"),
        memory("Deploy Apollo with the blue-green script", "mem_c"),
    ]
    kept = rank_recalled(content_terms("when do we deploy apollo?"), found)
    assert [m.id for m in kept] == ["mem_b", "mem_c"]
    assert all(m.score == 1.0 for m in kept)
    assert rank_recalled(content_terms("hello there"), found) == []


def test_a_memory_stating_a_known_fact_is_dropped() -> None:
    facts = [entry("user.dog_name", "Biscuit")]
    same = memory("The user's dog's name is Biscuit", "mem_same")
    other = memory("Biscuit likes long walks by the river", "mem_other")
    assert same_fact(content_terms('user.dog_name "Biscuit"'), content_terms(same.content))
    assert [m.id for m in without_known_facts([same, other], facts)] == ["mem_other"]


@pytest.mark.parametrize(("topic", "conversation"), [("user.query", True), ("log.error", False), ("security.x", False)])
def test_only_the_interactive_lane_is_a_conversation(topic: str, conversation: bool) -> None:
    event = Event.model_validate(
        {
            "id": "evt_1",
            "topic": topic,
            "payload": {},
            "priority": "normal",
            "source": "api",
            "trace_id": "tr_1",
            "created_at": 1.0,
        }
    )
    assert is_conversation(event, ("user.",)) is conversation


def test_a_question_is_asked_plainly_after_worked_examples() -> None:
    from aiventbus.core.prompt_assembly import Piece, assemble
    from aiventbus.core.prompts import QUESTION_EXAMPLES

    fact = Piece("knowledge", "user.dog_name", '- user.dog_name = "Biscuit"', 0.9)
    question = Piece("event", "evt_1", "Question: What is my dog's name?", 1.0, required=True, heading="")
    messages = assemble("You help.", [fact, question], [], QUESTION_EXAMPLES)
    assert [m.role for m in messages] == ["system", *["user", "assistant"] * len(QUESTION_EXAMPLES), "user"]
    assert messages[-1].content == 'Known facts:\n- user.dog_name = "Biscuit"\n\nQuestion: What is my dog\'s name?'


@pytest.mark.parametrize(
    ("question", "earlier", "latest", "expected"),
    [
        ("why did nginx crash?", "is nginx up?", False, True),  # the same subject, however long ago
        ("What is 10 minus 3?", "What is 2 plus 2?", True, False),  # unrelated: not replayed, even the latest
        ("how old is he?", "What is my dog's name?", True, True),  # points back at the latest exchange
        ("how old is he?", "What is my dog's name?", False, False),  # ...but not at an older one
        ("Which file was just created?", "What is the capital of France?", True, False),
    ],
)
def test_which_earlier_exchanges_belong_in_a_question(
    question: str, earlier: str, latest: bool, expected: bool
) -> None:
    assert exchange_belongs(question, earlier, latest=latest) is expected

"""Pure search helpers: safe FTS5 queries, score weighting, reciprocal rank fusion, and the relevance score that
decides which knowledge and memories a prompt gets."""

from __future__ import annotations

import re
from collections.abc import Sequence

from aiventbus.records.memory import SearchWeights

WORD = re.compile(r"\w+", re.UNICODE)
# Words so common they only slow FTS down and blur the ranking.
_STOP_WORD_LINES = (
    "a an and are as at be but by for from has have he her his i if in into is it its me my no not of on",
    "or our she so than that the their them then there these they this to was we were what when where",
    "which who will with you your",
)
STOP_WORDS = frozenset(" ".join(_STOP_WORD_LINES).split(" "))
RRF_K = 60
# Words every event of a kind carries (its topic, the way a question is asked): they say nothing about what a fact or
# memory is about, and counting them made every `user.*` fact match every `user.query`.
_GENERIC_WORD_LINES = (
    "user users query queries event events system agent agents request ask asked text message payload topic source",
    "api data value info please tell know does do did can could would should how many much",
)
GENERIC_WORDS = frozenset(" ".join(_GENERIC_WORD_LINES).split(" "))
# Share of the shorter side's content words two texts must have in common to be about the same thing.
RELEVANCE_THRESHOLD = 0.3
# Share above which a memory and a knowledge entry state the same fact.
DUPLICATE_THRESHOLD = 0.75


def query_terms(text: str, max_terms: int = 16) -> list[str]:
    """Distinct lower-case words of `text`, stop words and one-letter words left out, in order."""
    seen: list[str] = []
    for word in WORD.findall(text.lower()):
        if len(word) > 1 and word not in STOP_WORDS and word not in seen:
            seen.append(word)
        if len(seen) >= max_terms:
            break
    return seen


def stem(word: str) -> str:
    """A light suffix strip so `deploys`, `deployed` and `deploying` meet `deploy` (FTS uses porter the same way)."""
    for suffix, keep, replacement in (("ies", 4, "y"), ("ing", 5, ""), ("ed", 4, ""), ("es", 4, ""), ("s", 3, "")):
        if word.endswith(suffix) and len(word) > keep and not word.endswith("ss"):
            if suffix == "es" and not word.endswith(("ses", "xes", "ches", "shes")):
                continue
            return word[: len(word) - len(suffix)] + replacement
    return word


def content_terms(text: str, max_terms: int = 32) -> list[str]:
    """The stemmed words of `text` that say what it is about: no stop words, no generic words, no one-letter words.
    Dotted and snake_case keys split into their words (`user.dog_name` -> dog, name)."""
    words = query_terms(text.replace("_", " "), max_terms * 2)
    terms: list[str] = []
    for word in words:
        term = stem(word)
        if word not in GENERIC_WORDS and term not in GENERIC_WORDS and term not in terms:
            terms.append(term)
    return terms[:max_terms]


def overlap_score(query: Sequence[str], candidate: Sequence[str]) -> float:
    """Shared terms over the smaller side's terms (the overlap coefficient), 0 to 1: a short fact whose words all
    appear in a long event scores as high as an event whose every word the fact holds."""
    if not query or not candidate:
        return 0.0
    shared = len(set(query) & set(candidate))
    return shared / min(len(set(query)), len(set(candidate)))


def is_relevant(score: float, threshold: float = RELEVANCE_THRESHOLD) -> bool:
    return score > 0.0 and score >= threshold


def same_fact(fact: Sequence[str], memory: Sequence[str], threshold: float = DUPLICATE_THRESHOLD) -> bool:
    """Whether a memory states the knowledge entry's fact (its key and value words)."""
    return overlap_score(fact, memory) >= threshold


def fts_query(text: str, max_terms: int = 16) -> str | None:
    """An FTS5 MATCH expression where every term is a quoted string (no user syntax), OR-ed; None if no term."""
    terms = query_terms(text, max_terms)
    if not terms:
        return None
    return " OR ".join(f'"{term}"' for term in terms)


def weighted_score(bm25: float, importance: float, age_seconds: float, weights: SearchWeights) -> float:
    """The same formula the SQL orders by (bm25 is negative; lower is better there)."""
    recency = 1.0 + 1.0 / (1.0 + max(0.0, age_seconds) / weights.half_life_seconds)
    return -bm25 * (1.0 + weights.importance_weight * importance) * recency


def rrf_merge(rankings: list[list[str]], k: int = RRF_K) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: sum of 1/(k + rank) over the lists an id appears in, best first."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))

"""Pure search helpers: safe FTS5 queries, score weighting and reciprocal rank fusion."""

from __future__ import annotations

import re
from dataclasses import dataclass

WORD = re.compile(r"\w+", re.UNICODE)
# Words so common they only slow FTS down and blur the ranking.
_STOP_WORD_LINES = (
    "a an and are as at be but by for from has have he her his i if in into is it its me my no not of on",
    "or our she so than that the their them then there these they this to was we were what when where",
    "which who will with you your",
)
STOP_WORDS = frozenset(" ".join(_STOP_WORD_LINES).split(" "))
RRF_K = 60


def query_terms(text: str, max_terms: int = 16) -> list[str]:
    """Distinct lower-case words of `text`, stop words and one-letter words left out, in order."""
    seen: list[str] = []
    for word in WORD.findall(text.lower()):
        if len(word) > 1 and word not in STOP_WORDS and word not in seen:
            seen.append(word)
        if len(seen) >= max_terms:
            break
    return seen


def fts_query(text: str, max_terms: int = 16) -> str | None:
    """An FTS5 MATCH expression where every term is a quoted string (no user syntax), OR-ed; None if no term."""
    terms = query_terms(text, max_terms)
    if not terms:
        return None
    return " OR ".join(f'"{term}"' for term in terms)


@dataclass(frozen=True)
class SearchWeights:
    """score = -bm25 * (1 + importance_weight * importance) * (1 + 1 / (1 + age / half_life))."""

    importance_weight: float = 1.0
    half_life_seconds: float = 30 * 86_400.0
    window: int | None = 1000  # only the newest `window` matches are scored (see MemoryTable.search)


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

"""Pure decision: does a distilled memory go in as new, merge into an old one, or supersede it?"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aiventbus.core.memory.search import query_terms
from aiventbus.records.memory import Memory

NEW = "new"
SAME_AS = "same_as:"
SUPERSEDES = "supersedes:"


@dataclass(frozen=True)
class Decision:
    action: Literal["insert", "merge", "supersede"]
    target_id: str | None = None
    reason: str = ""


def word_overlap(a: str, b: str) -> float:
    """Jaccard similarity of the two texts' content words (0..1)."""
    left, right = set(query_terms(a, 200)), set(query_terms(b, 200))
    if not left or not right:
        return 1.0 if a.strip().lower() == b.strip().lower() else 0.0
    return len(left & right) / len(left | right)


def decide(content: str, scope: str, relation: str, candidates: list[Memory], merge_similarity: float) -> Decision:
    """Follow the model's stated relation when it names a live candidate; else merge a near-copy in the same scope."""
    live = {memory.id: memory for memory in candidates if memory.superseded_by is None}
    if relation.startswith(SAME_AS) and relation[len(SAME_AS) :] in live:
        return Decision("merge", relation[len(SAME_AS) :], "the model called it the same")
    if relation.startswith(SUPERSEDES) and relation[len(SUPERSEDES) :] in live:
        return Decision("supersede", relation[len(SUPERSEDES) :], "the model said it replaces the old one")
    best: tuple[float, str] | None = None
    for memory in live.values():
        if memory.scope != scope:
            continue
        overlap = word_overlap(content, memory.content)
        if best is None or overlap > best[0]:
            best = (overlap, memory.id)
    if best is not None and best[0] >= merge_similarity:
        return Decision("merge", best[1], f"word overlap {best[0]:.2f} with an existing memory")
    return Decision("insert", None, "new")

"""The routing watermark: the highest seq at or below which every committed event has been routed.

Recovery after a crash reads only the events above it, in seq order, so new events need no status index (every
event entering and leaving one cost two index writes). Pure bookkeeping: the router persists what it answers."""

from __future__ import annotations

import heapq
from collections.abc import Iterable


class RoutingWatermark:
    """Seqs committed but not yet routed ("open"), and those whose routing is being written ("settling").

    Routing is written in batches that may commit in any order (the classifier routes late): a batch may only
    advance the watermark to below the lowest seq that is still open or settling in another batch."""

    def __init__(self, routed_through: int, *, highest: int = 0, ceiling: int | None = None) -> None:
        """`highest`: the last seq committed so far; `ceiling`: the last seq recovery has read while it has more to
        read (the watermark must not pass pending events it has not read yet)."""
        self.routed_through = routed_through
        self._ceiling = ceiling
        self._highest = max(routed_through, highest)
        self._open: set[int] = set()
        self._lowest_open: list[int] = []  # a heap over _open; entries no longer open are skipped lazily
        self._settling: set[int] = set()

    @property
    def unsettled(self) -> int:
        return len(self._open) + len(self._settling)

    def committed(self, seqs: Iterable[int]) -> None:
        """These events are in the store and will reach the router."""
        for seq in seqs:
            if seq > self.routed_through and seq not in self._open and seq not in self._settling:
                self._open.add(seq)
                heapq.heappush(self._lowest_open, seq)
                self._highest = max(self._highest, seq)

    def settling(self, seqs: Iterable[int]) -> int:
        """The routing of `seqs` is about to be written: the watermark that write may store along with it."""
        batch = {seq for seq in seqs if seq in self._open}
        self._open -= batch
        others = min(self._settling, default=None)
        self._settling |= batch
        lowest = [seq for seq in (self._lowest(), others) if seq is not None]
        through = min(lowest) - 1 if lowest else self._highest
        return through if self._ceiling is None else min(through, self._ceiling)

    def resume(self, routed_through: int, highest: int) -> None:
        """Start from the stored watermark: seqs at or below it were routed by an earlier run. Until recovery has
        read the pending events above it, the watermark stays there."""
        self.routed_through = self._ceiling = routed_through
        self._highest = max(self._highest, routed_through, highest)
        self._open = {seq for seq in self._open if seq > routed_through}

    def recovered_through(self, seq: int | None) -> None:
        """Recovery has read every pending event up to `seq` (None: all of them)."""
        self._ceiling = seq

    def settled(self, seqs: Iterable[int], through: int) -> None:
        """The write holding `through` committed."""
        self._settling.difference_update(seqs)
        self.routed_through = max(self.routed_through, through)

    def failed(self, seqs: Iterable[int]) -> None:
        """The write failed: its events are open again."""
        batch = self._settling.intersection(seqs)
        self._settling -= batch
        self.committed(batch)

    def _lowest(self) -> int | None:
        heap = self._lowest_open
        while heap and heap[0] not in self._open:
            heapq.heappop(heap)
        return heap[0] if heap else None

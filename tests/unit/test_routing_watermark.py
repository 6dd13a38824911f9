"""The routing watermark never passes an event whose routing is not committed, whatever order batches settle in."""

from __future__ import annotations

import pytest

from aiventbus.core.watermark import RoutingWatermark


def test_settling_in_order_advances_through_each_batch() -> None:
    watermark = RoutingWatermark(0)
    watermark.committed(range(1, 11))
    through = watermark.settling(range(1, 6))
    assert through == 5
    watermark.settled(range(1, 6), through)
    through = watermark.settling(range(6, 11))
    assert through == 10
    watermark.settled(range(6, 11), through)
    assert (watermark.routed_through, watermark.unsettled) == (10, 0)


def test_a_late_event_holds_the_watermark_below_it() -> None:
    """The classifier routes seq 3 long after the others: nothing at or above 3 counts as routed until it is."""
    watermark = RoutingWatermark(0)
    watermark.committed(range(1, 9))
    through = watermark.settling([1, 2, 4, 5, 6, 7, 8])
    assert through == 2
    watermark.settled([1, 2, 4, 5, 6, 7, 8], through)
    assert watermark.routed_through == 2
    through = watermark.settling([3])
    assert through == 8
    watermark.settled([3], through)
    assert watermark.routed_through == 8


def test_a_write_in_flight_holds_back_another_batch() -> None:
    watermark = RoutingWatermark(0)
    watermark.committed(range(1, 7))
    first = watermark.settling([1, 2, 3])  # being written
    second = watermark.settling([4, 5, 6])  # written while the first is still in flight
    assert (first, second) == (3, 0)
    watermark.settled([4, 5, 6], second)
    watermark.settled([1, 2, 3], first)
    assert watermark.routed_through == 3  # the first write's value; the next batch of routing moves it on
    watermark.committed([7])
    through = watermark.settling([7])
    assert through == 7


def test_a_failed_write_reopens_its_events() -> None:
    watermark = RoutingWatermark(0)
    watermark.committed(range(1, 5))
    through = watermark.settling([1, 2])
    watermark.failed([1, 2])
    assert watermark.unsettled == 4
    assert watermark.settling([3, 4]) == 0  # 1 and 2 are still to be routed
    assert through == 2


@pytest.mark.parametrize(
    ("routed_through", "highest", "ceiling", "recovered", "expected"),
    [
        (10, 20, None, [12, 15], 20),  # the rest of 11..20 were routed before the crash
        (10, 20, 15, [12, 15], 15),  # recovery stopped at 15: the pending events above it wait for the next start
        (0, 0, None, [], 0),
    ],
)
def test_after_recovery(
    routed_through: int, highest: int, ceiling: int | None, recovered: list[int], expected: int
) -> None:
    watermark = RoutingWatermark(routed_through, highest=highest, ceiling=ceiling)
    watermark.committed(recovered)
    assert watermark.settling(recovered) == expected


def test_seqs_already_routed_or_unknown_are_ignored() -> None:
    watermark = RoutingWatermark(5)
    watermark.committed([3, 6])  # 3 is below the watermark: routed long ago
    assert watermark.unsettled == 1
    assert watermark.settling([99]) == 5  # unknown seq: 6 is still open


def test_the_ceiling_lifts_as_recovery_reads_on() -> None:
    watermark = RoutingWatermark(10, highest=40, ceiling=10)
    watermark.committed([12, 15])  # the first page
    watermark.recovered_through(15)
    through = watermark.settling([12, 15])
    assert through == 15  # pending events above 15 may not have been read yet
    watermark.settled([12, 15], through)
    watermark.committed([30])  # the last page
    watermark.recovered_through(None)
    assert watermark.settling([30]) == 40


def test_commits_heard_before_the_stored_watermark_is_read_are_kept_above_it() -> None:
    watermark = RoutingWatermark(0, ceiling=0)  # the router before start()
    watermark.committed([4, 9])
    assert watermark.settling([]) == 0  # nothing advances before the stored watermark is known
    watermark.resume(routed_through=5, highest=8)
    assert watermark.unsettled == 1  # 4 was routed by the earlier run
    watermark.recovered_through(None)
    assert watermark.settling([9]) == 9

"""Broker events whose application fails are kept and retried in order, never lost (issue 12, item 5)."""
from __future__ import annotations

from dataclasses import dataclass

from execution.events import EventApplier


@dataclass(frozen=True)
class Ev:
    order_id: int
    n: int


class FlakyBooks:
    """Applies events to a log; fails every event of the given orders while `down` is set."""

    def __init__(self) -> None:
        self.applied: list[tuple[int, int]] = []
        self.down: set[int] = set()

    def __call__(self, ev: Ev) -> None:
        if ev.order_id in self.down:
            raise ConnectionError("database unavailable for 120s")
        self.applied.append((ev.order_id, ev.n))


def test_a_failed_event_stays_queued_and_is_retried_in_order() -> None:
    books, q = FlakyBooks(), EventApplier(first_delay_s=1.0, max_delay_s=4.0)
    books.down = {7}
    assert q.apply(Ev(7, 1), books, now=0.0) is False          # the acknowledgement fails
    assert q.apply(Ev(8, 1), books, now=0.1) is True           # another order goes on
    assert q.apply(Ev(7, 2), books, now=0.2) is False          # a later status waits behind it, not applied first
    assert books.applied == [(8, 1)] and len(q) == 2
    assert q.retry_due(books, now=0.5) == 0                    # back-off not over
    assert q.retry_due(books, now=1.0) == 0 and len(q) == 2    # still down: kept, back-off doubles
    assert q.next_try == 3.0
    assert q.retry_due(books, now=2.9) == 0
    books.down = set()
    assert q.retry_due(books, now=3.0) == 2
    assert books.applied == [(8, 1), (7, 1), (7, 2)] and len(q) == 0
    assert q.apply(Ev(7, 3), books, now=3.1) is True


def test_back_off_is_bounded_and_other_orders_are_not_blocked() -> None:
    books, q = FlakyBooks(), EventApplier(first_delay_s=1.0, max_delay_s=4.0)
    books.down = {1}
    q.apply(Ev(1, 1), books, now=0.0)
    t = 0.0
    for _ in range(6):
        t = q.next_try
        q.retry_due(books, now=t)
    assert q.next_try - t == 4.0                                # capped
    q.apply(Ev(2, 1), books, now=t)
    books.down = {2}
    q.apply(Ev(2, 2), books, now=t)                             # fails, held
    books.down = {1}
    assert q.retry_due(books, now=q.next_try) == 1              # order 2's event applied, order 1's still held
    assert books.applied == [(2, 1), (2, 2)] and [e.order_id for e in q.held] == [1]

"""The request budget shared by every call to the broker (issue 12, item 7): pure logic on a fake clock."""
from __future__ import annotations

import pytest

from gateway.ratelimit import ORDERS, POLLS, RequestBudget


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s
        self.slept += s


def budget(limit: int = 10) -> tuple[RequestBudget, FakeClock]:
    c = FakeClock()
    return RequestBudget(limit, clock=c, sleep=c.sleep), c


def test_never_more_than_the_limit_in_any_window_of_the_brokers() -> None:
    """Requests take 30 ms to reach the broker and 30 ms more to be answered; the broker, counting arrivals
    in every one-second window, never sees more than the limit."""
    b, c = budget(10)
    arrivals = []
    for i in range(35):
        token = b.acquire(ORDERS if i % 2 else POLLS)
        arrivals.append(c.t + 0.03)
        c.t += 0.06
        b.release(token)
    for t in arrivals:
        assert sum(1 for u in arrivals if t <= u < t + 1.0) <= 10
    assert arrivals[-1] - arrivals[0] < 4.0  # and no slower than the limit and the answers make it


def test_a_slot_frees_one_window_after_the_answer() -> None:
    b, c = budget(2)
    first = b.acquire(ORDERS)
    assert b.try_acquire(POLLS) is not None
    assert b.try_acquire(POLLS) is None
    c.t += 5.0  # the first request is still unanswered: its slot stays taken
    assert b.try_acquire(POLLS) is None
    b.release(first)
    c.t += 0.999
    assert b.try_acquire(POLLS) is None
    c.t += 0.001
    assert b.try_acquire(POLLS) is not None


def test_a_poll_yields_to_a_waiting_order() -> None:
    b, c = budget(2)
    for token in (b.acquire(POLLS), b.acquire(ORDERS)):
        b.release(token)
    assert b.try_acquire(POLLS) is None and b.try_acquire(ORDERS) is None  # full
    c.t += 1.0
    b.orders_waiting += 1  # an order thread is waiting for a slot
    assert b.try_acquire(POLLS) is None  # a free slot, but the order goes first
    with pytest.raises(TimeoutError):
        b.acquire(POLLS, timeout_s=0.5)
    assert b.try_acquire(ORDERS) is not None
    b.orders_waiting -= 1
    assert b.try_acquire(POLLS) is not None


def test_a_timed_out_wait_takes_nothing() -> None:
    b, c = budget(1)
    b.release(b.acquire(ORDERS))
    with pytest.raises(TimeoutError):
        b.acquire(ORDERS, timeout_s=0.3)
    assert b.taken == 1 and b.orders_waiting == 0
    c.t += 1.0
    assert b.acquire(ORDERS) and b.taken == 2


def test_polls_leave_the_order_reserve_free() -> None:
    b, c = budget(10)
    b = RequestBudget(10, order_reserve=8, clock=c, sleep=c.sleep)
    polls = [b.try_acquire(POLLS) for _ in range(5)]
    assert sum(t is not None for t in polls) == 2  # 8 of 10 kept for orders
    assert all(b.try_acquire(ORDERS) is not None for _ in range(8))
    assert b.try_acquire(ORDERS) is None

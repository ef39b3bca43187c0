"""How the status poller follows open orders (issue 12, item 7): one orderbook call for several, orderstatus
for one, and orderstatus again for a fill the book gives no price for (a live OpenAlgo orderbook has none).
Pure logic: the poller's rounds run directly against an in-process stand-in for the gateway."""
from __future__ import annotations

from typing import Any

from execution.broker_io import BrokerIO, StatusSeen
from gateway.results import Deferred, Ok, OrderInfo


def row(oid: str, status: str, avg: float | None = None, filled: int | None = None) -> OrderInfo:
    raw: dict[str, Any] = {"orderid": oid, "order_status": status, "symbol": "SBIN", "exchange": "NSE",
                           "action": "BUY", "quantity": 10}
    if avg is not None:
        raw["average_price"] = avg
    if filled is not None:
        raw["filled_quantity"] = filled
    return OrderInfo.from_raw(raw)


class Books:
    def __init__(self, book: list[OrderInfo], status: dict[str, OrderInfo], defer: bool = False):
        self.book, self.status, self.defer = book, status, defer
        self.calls: list[str] = []

    def orderbook(self, budget_wait_s: float | None = None) -> Any:
        self.calls.append("orderbook")
        return Deferred("budget") if self.defer else Ok(self.book)

    def order_status(self, orderid: str, strategy: str, budget_wait_s: float | None = None) -> Any:
        self.calls.append(f"orderstatus {orderid}")
        return Deferred("budget") if self.defer else Ok(self.status[orderid])


def seen(io: BrokerIO) -> dict[int, OrderInfo]:
    out = {}
    while not io.events.empty():
        ev = io.events.get()
        assert isinstance(ev, StatusSeen)
        out[ev.order_id] = ev.result.value
    return out


def test_one_orderbook_call_follows_every_open_order() -> None:
    gw = Books([row("A", "open"), row("B", "open"), row("C", "complete", avg=601.5, filled=10)], {})
    io = BrokerIO(gw, poll_interval_s=1.0)
    for i, bid in enumerate("ABC", start=1):
        io.track(i, bid, "t")
    io._poll_book([1, 2, 3])  # noqa: SLF001 - one round of the poller
    assert gw.calls == ["orderbook"]
    got = seen(io)
    assert got[1].status == "open" and got[3].average_price == 601.5 and got[3].filled_quantity == 10


def test_a_fill_without_a_price_is_asked_for_alone() -> None:
    live_book = [row("A", "open"), row("B", "complete")]  # live shape: no filled quantity, no average price
    gw = Books(live_book, {"B": row("B", "complete", avg=600.25)})
    io = BrokerIO(gw, poll_interval_s=1.0)
    io.track(1, "A", "t")
    io.track(2, "B", "t")
    io._poll_book([1, 2])  # noqa: SLF001
    assert gw.calls == ["orderbook", "orderstatus B"]
    assert seen(io)[2].average_price == 600.25


def test_a_lone_order_uses_orderstatus_and_a_deferred_poll_is_not_reported() -> None:
    gw = Books([], {"A": row("A", "open")}, defer=True)
    io = BrokerIO(gw, poll_interval_s=1.0)
    io.track(1, "A", "t")
    io._poll_one(1)  # noqa: SLF001
    assert gw.calls == ["orderstatus A"] and io.events.empty()  # tried again shortly; the broker not blamed
    gw.defer = False
    io._poll_one(1)  # noqa: SLF001
    assert seen(io)[1].status == "open"


def test_each_answer_wakes_the_loop_until_the_wake_ups_are_taken() -> None:
    from multiprocessing.connection import wait

    gw = Books([], {"A": row("A", "open")})
    io = BrokerIO(gw, poll_interval_s=1.0)
    try:
        assert wait([io.wake_fd], timeout=0) == []  # nothing to apply: the loop sleeps
        io.track(1, "A", "t")
        io._poll_one(1)  # noqa: SLF001
        assert wait([io.wake_fd], timeout=5) == [io.wake_fd]
        io.take_wakes()
        assert wait([io.wake_fd], timeout=0) == []  # taken; the answer itself is still there to apply
        assert seen(io)[1].status == "open"
    finally:
        io.stop()


def test_a_placement_that_fails_unexpectedly_is_reported_as_unknown_not_lost() -> None:
    """A bug or an OS error inside the sender must not leave an order without an answer: it may have reached the
    broker, so the TradeManager hears Unknown and looks it up in the orderbook (never sends it again)."""
    from execution.broker_io import Placed
    from execution.commands import SubmitOrder
    from gateway.results import Unknown

    class Exploding(Books):
        def place_order(self, **kw: Any) -> Any:
            raise OSError("connection reset while sending")

    io = BrokerIO(Exploding([], {}), poll_interval_s=1.0)
    io.start()
    try:
        io.send(SubmitOrder(7, "SBIN", "NSE", "BUY", 10, "MIS", "MARKET", "t"))
        ev = io.events.get(timeout=10)
    finally:
        io.stop()
    assert isinstance(ev, Placed) and ev.order_id == 7
    assert isinstance(ev.result, Unknown) and "OSError" in ev.result.reason

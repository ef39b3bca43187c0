"""The order state machine as pure logic (issue 14): every event against every status, legal and illegal,
through db.Order.apply on an order that is not in any database; fill deltas; the circuit breaker."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

import execution.circuit_breaker as cb
from core.enums import OrderStatus as S
from db import Fill, Order, OrderEvent
from execution.order_events import (
    TRANSITIONS,
    IllegalTransition,
    OrderAccepted,
    OrderAdopted,
    OrderCancelled,
    OrderDenied,
    OrderExecuted,
    OrderFailed,
    OrderFilled,
    OrderNoted,
    OrderRejected,
    OrderSent,
    OrderWorking,
    broker_final,
    plan,
)
from execution.orders import fill_delta

AT = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
WORKING = {S.SENT_TO_BROKER, S.OPEN, S.PARTIALLY_FILLED}

# each event and the status it moves an order to
EVENTS = [
    (OrderSent(AT), S.SENT_TO_BROKER),
    (OrderAccepted("B1", AT), S.SENT_TO_BROKER),
    (OrderAdopted("B1", "found in the orderbook"), S.SENT_TO_BROKER),
    (OrderDenied("RISK_COOLDOWN", "cooling down"), S.FAILED),
    (OrderRejected("no margin"), S.REJECTED),
    (OrderRejected("broker: rejected", "rejected", 0, None), S.REJECTED),
    (OrderFailed("BROKER_UNAVAILABLE", "down", "not delivered: down"), S.FAILED),
    (OrderWorking(S.OPEN, "open"), S.OPEN),
    (OrderWorking(S.PARTIALLY_FILLED, "open"), S.PARTIALLY_FILLED),
    (OrderExecuted("complete", 10, Decimal("600")), S.EXECUTED),
    (OrderCancelled("cancelled", 4, Decimal("600")), S.CANCELLED),
]


def order(status: S, filled: int = 0) -> Order:
    return Order(id=7, status=status.value, filled_quantity=filled, side="BUY", quantity=10, symbol="SBIN")


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("ev,target", EVENTS, ids=lambda x: type(x).__name__ if not isinstance(x, S) else x.value)
def test_every_event_in_every_status_follows_the_transition_table(current, ev, target):
    o = order(current)
    before = {c.key: getattr(o, c.key) for c in Order.__table__.columns}
    if target in TRANSITIONS[current]:
        rows = o.apply(ev)
        assert o.status == target.value
        if target is not current:  # a move is always recorded, with where it came from
            assert [(type(r), r.from_status, r.to_status) for r in rows] == [(OrderEvent, current.value,
                                                                              target.value)]
    else:
        with pytest.raises(IllegalTransition):
            o.apply(ev)
        assert {c.key: getattr(o, c.key) for c in Order.__table__.columns} == before  # nothing changed


def test_final_and_created_orders_allow_no_event_but_a_note():
    for status in (S.CREATED, S.EXECUTED, S.CANCELLED, S.REJECTED, S.FAILED):
        illegal = [ev for ev, target in EVENTS if target not in TRANSITIONS[status]]
        assert illegal, status
        rows = order(status).apply(OrderNoted("looked at"))
        assert [(r.from_status, r.to_status, r.detail) for r in rows] == [(status.value, status.value, "looked at")]


def test_each_event_sets_its_columns():
    o = order(S.CREATED)
    o.apply(OrderSent(AT))
    assert (o.status, o.sent_at, o.attempts) == ("SENT_TO_BROKER", AT, 1)
    rows = o.apply(OrderAccepted("B9", AT))
    assert (o.broker_order_id, o.acknowledged_at, rows[0].detail) == ("B9", AT, "accepted as B9")
    rows = o.apply(OrderWorking(S.OPEN, "open"))
    assert (o.status, o.broker_status, rows[0].detail) == ("OPEN", "open", None)
    assert o.apply(OrderWorking(S.OPEN, "open")) == []  # no move, nothing to record
    rows = o.apply(OrderFilled(4, Decimal("600.5"), 4, Decimal("600.5"), trade_id=3))
    assert [(type(r), r.cumulative_quantity, r.quantity, r.price) for r in rows] == [(Fill, 4, 4, Decimal("600.5"))]
    assert (o.status, o.filled_quantity, o.average_price, o.trade_id) == ("OPEN", 4, Decimal("600.5"), 3)
    rows = o.apply(broker_final(S.CANCELLED, "cancelled", 4, Decimal("600.5")))
    assert (o.status, o.broker_status, rows[0].detail) == ("CANCELLED", "cancelled", "broker: cancelled, filled 4")

    denied = order(S.CREATED)
    rows = denied.apply(OrderDenied("RISK_COOLDOWN", "cooling down"))
    assert (denied.failure_tag, denied.failure_reason, rows[0].detail) == ("RISK_COOLDOWN", "cooling down",
                                                                           "RISK_COOLDOWN: cooling down")
    rejected = order(S.SENT_TO_BROKER)
    rejected.apply(OrderRejected("x" * 900))
    assert rejected.failure_tag == "BROKER_REJECTED" and len(rejected.failure_reason) == 500


def test_a_fill_is_applied_once_and_only_to_a_working_order():
    o = order(S.SENT_TO_BROKER)
    o.apply(OrderFilled(6, Decimal("600"), 6, Decimal("600"), trade_id=1))
    for again in (OrderFilled(6, Decimal("600"), 6, Decimal("600"), 1), OrderFilled(5, Decimal("600"), 1,
                                                                                     Decimal("600"), 1)):
        with pytest.raises(IllegalTransition):
            o.apply(again)
    assert o.filled_quantity == 6
    for status in set(S) - WORKING:
        with pytest.raises(IllegalTransition):
            order(status).apply(OrderFilled(1, Decimal("600"), 1, Decimal("600"), 1))


def test_plan_is_pure_and_broker_final_names_each_final_status():
    assert plan(S.OPEN, 0, OrderNoted("x" * 3000)).detail == "x" * 2000
    assert isinstance(broker_final(S.EXECUTED, "complete", 10, Decimal(1)), OrderExecuted)
    assert isinstance(broker_final(S.REJECTED, "rejected", 0, None), OrderRejected)
    with pytest.raises(ValueError):
        broker_final(S.OPEN, "open", 0, None)
    with pytest.raises(IllegalTransition):
        plan(S.SENT_TO_BROKER, 0, OrderWorking(S.EXECUTED, "complete"))


@pytest.mark.parametrize("prev_qty,prev_avg,new_qty,new_avg,want", [
    (0, None, 10, Decimal("600"), (10, Decimal("600"))),
    (4, Decimal("600"), 10, Decimal("601"), (6, Decimal("601.6667"))),
    (10, Decimal("600"), 10, Decimal("600"), (0, Decimal(0))),   # the same reading again: nothing
    (10, Decimal("600"), 8, Decimal("600"), (0, Decimal(0))),    # a stale, smaller reading: nothing
    (0, Decimal("5"), 3, Decimal("7"), (3, Decimal("7"))),
])
def test_fill_delta(prev_qty, prev_avg, new_qty, new_avg, want):
    assert fill_delta(prev_qty, prev_avg, new_qty, new_avg) == want


def test_fill_deltas_add_back_up_to_the_cumulative_reading():
    readings = [(2, Decimal("100")), (5, Decimal("101")), (5, Decimal("101")), (9, Decimal("100.5"))]
    qty, avg, value = 0, None, Decimal(0)
    for q, a in readings:
        d, p = fill_delta(qty, avg, q, a)
        if d:
            qty, avg, value = q, a, value + d * p
    assert qty == 9 and abs(value - 9 * Decimal("100.5")) < Decimal("0.001")


def test_circuit_breaker_opens_after_n_failures_probes_after_cooldown_and_closes_on_success(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(cb.time, "monotonic", lambda: now[0])
    b = cb.CircuitBreaker(max_failures=3, cooldown_s=30)
    b.failure("a")
    b.failure("b")
    assert not b.is_open and not b.probe_due()
    b.success()  # a success in between starts the count again
    for r in ("c", "d", "e"):
        b.failure(r)
    assert b.is_open and b.last_reason == "e"
    now[0] += 29
    assert not b.probe_due()
    now[0] += 1
    assert b.probe_due() and not b.probe_due()  # one probe per cooldown
    b.failure("still down")
    assert b.is_open
    now[0] += 30
    assert b.probe_due()
    b.success()
    assert not b.is_open and b.failures == 0 and not b.probe_due()

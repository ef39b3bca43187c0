"""What can happen to an order, each as one frozen value, and the transition table that says when it may.

An event is a past fact (the order was sent, accepted, filled, cancelled, ...). `plan(status, filled, event)`
is pure: it checks the event against the table and says the order's next status, the columns that change and
the text of the OrderEvent row that records it; `applied` adds the row that records it (an OrderEvent's or a
Fill's values). `db.Order.apply(event)` and `execution.orders.OrderStore` are its only callers, so no order
moves except through this table.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from core.enums import OrderStatus as S

TRANSITIONS: dict[S, frozenset[S]] = {
    S.CREATED: frozenset({S.SENT_TO_BROKER, S.FAILED}),
    S.SENT_TO_BROKER: frozenset({S.SENT_TO_BROKER, S.OPEN, S.PARTIALLY_FILLED, S.EXECUTED, S.CANCELLED, S.REJECTED,
                                 S.FAILED}),
    S.OPEN: frozenset({S.OPEN, S.PARTIALLY_FILLED, S.EXECUTED, S.CANCELLED, S.REJECTED}),
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.EXECUTED, S.CANCELLED, S.REJECTED}),
    S.EXECUTED: frozenset(), S.CANCELLED: frozenset(), S.REJECTED: frozenset(), S.FAILED: frozenset(),
}

DETAIL_MAX = 2000
REASON_MAX = 500


class IllegalTransition(Exception):
    """An event the order's status does not allow (a bug, or a broker answer out of order): nothing changes."""


def check(current: S, target: S) -> None:
    """Raise IllegalTransition unless the table allows `current` -> `target`."""
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(f"order cannot go from {current.value} to {target.value}")


@dataclass(frozen=True, slots=True)
class OrderSent:
    """Committed as handed to the broker, before the request leaves (the write-ahead step)."""

    at: datetime


@dataclass(frozen=True, slots=True)
class OrderAccepted:
    """The broker acknowledged the placement with its order id."""

    broker_order_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class OrderAdopted:
    """A placement without an answer was found in the broker's orderbook (`how`: where and when)."""

    broker_order_id: str
    how: str


@dataclass(frozen=True, slots=True)
class OrderDenied:
    """A check before sending said no (risk, session, execution guard, breaker, signals_only, restart)."""

    tag: str
    reason: str


@dataclass(frozen=True, slots=True)
class OrderRejected:
    """The broker said no: at placement (`broker_status` None) or in a later status poll."""

    message: str
    broker_status: str | None = None
    filled_quantity: int = 0
    average_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class OrderFailed:
    """The order never reached the broker (not delivered, or absent from its orderbook)."""

    tag: str
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class OrderWorking:
    """The broker reports the order open, or partly filled (status OPEN or PARTIALLY_FILLED)."""

    status: S
    broker_status: str


@dataclass(frozen=True, slots=True)
class OrderFilled:
    """The broker's cumulative fill grew: `quantity` more at `price` (the delta), recorded once as a Fill."""

    cumulative_quantity: int
    average_price: Decimal
    quantity: int
    price: Decimal
    trade_id: int | None


@dataclass(frozen=True, slots=True)
class OrderExecuted:
    """The broker reports the order complete."""

    broker_status: str
    filled_quantity: int
    average_price: Decimal | None


@dataclass(frozen=True, slots=True)
class OrderCancelled:
    """The broker reports the order cancelled (possibly after partial fills)."""

    broker_status: str
    filled_quantity: int
    average_price: Decimal | None


@dataclass(frozen=True, slots=True)
class OrderNoted:
    """Something happened to the order that does not change it (a cancel asked or answered, a lookup)."""

    detail: str


OrderEventType = (OrderSent | OrderAccepted | OrderAdopted | OrderDenied | OrderRejected | OrderFailed |
                  OrderWorking | OrderFilled | OrderExecuted | OrderCancelled | OrderNoted)


def broker_final(status: S, broker_status: str, filled: int, average: Decimal | None) -> OrderEventType:
    """The event for a final status read from the broker's books."""
    if status is S.EXECUTED:
        return OrderExecuted(broker_status, filled, average)
    if status is S.CANCELLED:
        return OrderCancelled(broker_status, filled, average)
    if status is S.REJECTED:
        return OrderRejected(f"broker: {broker_status}", broker_status, filled, average)
    raise ValueError(f"{status.value} is not a final status the broker reports")


@dataclass(frozen=True, slots=True)
class Change:
    """What an event does to an order: its next status, the columns set, and the OrderEvent row's text
    (`record` False: no OrderEvent row; a fill is recorded as its Fill row instead)."""

    status: S
    fields: dict[str, Any]
    detail: str | None
    record: bool = True


def plan(current: S, filled: int, ev: OrderEventType) -> Change:
    """The change `ev` makes to an order in status `current` with `filled` already applied; raises
    IllegalTransition when the table (or the fill count) does not allow it."""
    if isinstance(ev, OrderNoted):  # changes nothing, so any status may carry a note
        return Change(current, {}, ev.detail[:DETAIL_MAX])
    if isinstance(ev, OrderFilled):
        check(current, current)  # only a working order fills: CREATED and final orders have no next self-step
        if ev.cumulative_quantity <= filled or ev.quantity <= 0:
            raise IllegalTransition(f"fill to {ev.cumulative_quantity} already applied (filled {filled})")
        return Change(current, {"filled_quantity": ev.cumulative_quantity, "average_price": ev.average_price,
                                "trade_id": ev.trade_id}, None, record=False)
    target, fields, detail = _target(ev)
    check(current, target)
    if target is current and not detail:
        return Change(current, fields, None, record=False)
    return Change(target, fields, detail[:DETAIL_MAX] or None)


def _target(ev: OrderEventType) -> tuple[S, dict[str, Any], str]:
    if isinstance(ev, OrderSent):
        return S.SENT_TO_BROKER, {"sent_at": ev.at, "attempts": 1}, "handed to the broker"
    if isinstance(ev, OrderAccepted):
        return (S.SENT_TO_BROKER, {"broker_order_id": ev.broker_order_id, "acknowledged_at": ev.at},
                f"accepted as {ev.broker_order_id}")
    if isinstance(ev, OrderAdopted):
        return S.SENT_TO_BROKER, {"broker_order_id": ev.broker_order_id}, ev.how
    if isinstance(ev, OrderDenied):
        return S.FAILED, {"failure_tag": ev.tag, "failure_reason": ev.reason}, f"{ev.tag}: {ev.reason}"
    if isinstance(ev, OrderRejected):
        if ev.broker_status is None:
            return (S.REJECTED, {"failure_tag": "BROKER_REJECTED", "failure_reason": ev.message[:REASON_MAX]},
                    f"broker rejected: {ev.message}")
        return S.REJECTED, _final_fields(ev), f"broker: {ev.broker_status}, filled {ev.filled_quantity}"
    if isinstance(ev, OrderFailed):
        return S.FAILED, {"failure_tag": ev.tag, "failure_reason": ev.reason[:REASON_MAX]}, ev.detail
    if isinstance(ev, OrderWorking):
        if ev.status not in (S.OPEN, S.PARTIALLY_FILLED):
            raise IllegalTransition(f"{ev.status.value} is not a working status")
        return ev.status, {"broker_status": ev.broker_status}, ""
    if isinstance(ev, (OrderExecuted, OrderCancelled)):
        status = S.EXECUTED if isinstance(ev, OrderExecuted) else S.CANCELLED
        return status, _final_fields(ev), f"broker: {ev.broker_status}, filled {ev.filled_quantity}"
    raise TypeError(f"not an order event: {ev!r}")


def _final_fields(ev: OrderRejected | OrderExecuted | OrderCancelled) -> dict[str, Any]:
    return {"broker_status": ev.broker_status, "filled_quantity": ev.filled_quantity,
            "average_price": ev.average_price}


@dataclass(frozen=True, slots=True)
class EventRow:
    """The OrderEvent row an event writes (its order and time are the writer's)."""

    from_status: str | None
    to_status: str
    detail: str | None


@dataclass(frozen=True, slots=True)
class FillRow:
    """The Fill row a fill writes."""

    cumulative_quantity: int
    quantity: int
    price: Decimal


def applied(current: S, filled: int, ev: OrderEventType) -> tuple[Change, EventRow | FillRow | None]:
    """`plan`, with the row that records the change (None: a self-step that records nothing)."""
    change = plan(current, filled, ev)
    if isinstance(ev, OrderFilled):
        return change, FillRow(ev.cumulative_quantity, ev.quantity, ev.price)
    if not change.record:
        return change, None
    return change, EventRow(current.value, change.status.value, change.detail)

"""The persisted order state machine (seed 002). An order row exists, as CREATED, before anything else
happens to it; every move is checked against the transition table and recorded as an OrderEvent in the
same transaction, so the database always holds the order's whole story."""
from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.enums import FINAL_ORDER_STATUSES, OrderStatus as S
from db import DBHandler, Order, OrderEvent, utcnow

log = logging.getLogger(__name__)

TRANSITIONS: dict[S, frozenset[S]] = {
    S.CREATED: frozenset({S.SENT_TO_BROKER, S.FAILED}),
    S.SENT_TO_BROKER: frozenset({S.SENT_TO_BROKER, S.OPEN, S.PARTIALLY_FILLED, S.EXECUTED, S.CANCELLED, S.REJECTED, S.FAILED}),
    S.OPEN: frozenset({S.OPEN, S.PARTIALLY_FILLED, S.EXECUTED, S.CANCELLED, S.REJECTED}),
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.EXECUTED, S.CANCELLED, S.REJECTED}),
    S.EXECUTED: frozenset(), S.CANCELLED: frozenset(), S.REJECTED: frozenset(), S.FAILED: frozenset(),
}


class IllegalTransition(Exception):
    pass


def check(current: S, target: S) -> None:
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(f"order cannot go from {current.value} to {target.value}")


class OrderStore:
    def __init__(self, db: DBHandler):
        self.db = db

    def create(self, s: Session | None = None, **fields: Any) -> Order:
        """Record a new order as CREATED (the write-ahead step), in `s` if given, else in its own transaction."""
        def go(sess: Session) -> Order:
            o = Order(status=S.CREATED.value, **fields)
            sess.add(o)
            sess.flush()
            sess.add(OrderEvent(order_id=o.id, from_status=None, to_status=S.CREATED.value,
                                detail=f"{o.side} {o.quantity} {o.symbol} ({o.purpose})"))
            return o
        if s is not None:
            return go(s)
        return self.db.transaction(f"create order {fields.get('client_order_id')}", go)

    def transition(self, order_id: int, target: S, detail: str = "", s: Session | None = None, **fields: Any) -> Order:
        """Move an order to `target` (checked), set fields, and log the event; in `s` if given."""
        def go(sess: Session) -> Order:
            o = sess.get(Order, order_id)
            current = S(o.status)
            check(current, target)
            for k, v in fields.items():
                setattr(o, k, v)
            if current is not target:
                o.status = target.value
                sess.add(OrderEvent(order_id=o.id, from_status=current.value, to_status=target.value,
                                    detail=detail[:2000] or None))
            elif detail:
                sess.add(OrderEvent(order_id=o.id, from_status=current.value, to_status=target.value,
                                    detail=detail[:2000]))
            o.updated_at = utcnow()
            sess.flush()
            return o
        if s is not None:
            return go(s)
        return self.db.transaction(f"order {order_id} -> {target.value}", go)

    def note(self, order_id: int, detail: str, **fields: Any) -> None:
        """Record something that happened to an order without a status change."""
        def go(s: Session) -> None:
            o = s.get(Order, order_id)
            for k, v in fields.items():
                setattr(o, k, v)
            s.add(OrderEvent(order_id=order_id, from_status=o.status, to_status=o.status, detail=detail[:2000]))
        self.db.transaction(f"note on order {order_id}", go)

    def non_final(self, day: date | None = None) -> list[Order]:
        def go(s: Session) -> list[Order]:
            q = select(Order).where(Order.status.notin_([x.value for x in FINAL_ORDER_STATUSES]))
            if day is not None:
                q = q.where(Order.trading_date == day)
            return list(s.scalars(q.order_by(Order.id)))
        return self.db.transaction("read open orders", go)


def fill_delta(prev_qty: int, prev_avg: Decimal | None, new_qty: int, new_avg: Decimal) -> tuple[int, Decimal]:
    """Quantity and price of the fills between two cumulative (quantity, average price) readings."""
    delta = new_qty - prev_qty
    if delta <= 0:
        return 0, Decimal(0)
    if not prev_qty or prev_avg is None:
        return delta, new_avg
    price = (new_avg * new_qty - prev_avg * prev_qty) / delta
    return delta, price.quantize(Decimal("0.0001"))

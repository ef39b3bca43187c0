"""The persisted order state machine (seed 002). An order row exists, as CREATED, before anything else
happens to it; every later change is an event (execution.order_events) applied by Order.apply, checked
against the transition table and recorded (OrderEvent or Fill row) in the same transaction, so the
database always holds the order's whole story."""
from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import notify
from core.enums import FINAL_ORDER_STATUSES
from core.enums import OrderStatus as S
from db import DBHandler, Order, OrderEvent
from execution.order_events import TRANSITIONS, IllegalTransition, OrderEventType, OrderFailed, OrderRejected, check
from notify.events import OrderFailed as OrderFailedNote
from notify.events import OrderRejected as OrderRejectedNote

__all__ = ["IllegalTransition", "OrderStore", "TRANSITIONS", "check", "fill_delta"]

log = logging.getLogger(__name__)


class OrderStore:
    def __init__(self, db: DBHandler):
        self.db = db

    def create(self, s: Session | None = None, **fields: Any) -> Order:
        """Record a new order as CREATED (the write-ahead step), in `s` if given, else in its own transaction.
        In `s` the row is written with the transaction's next flush: its id is known from then on."""
        def go(sess: Session) -> Order:
            o = Order(status=S.CREATED.value, filled_quantity=0, **fields)
            sess.add(o)
            sess.add(OrderEvent(order=o, from_status=None, to_status=S.CREATED.value,
                                detail=f"{o.side} {o.quantity} {o.symbol} ({o.purpose})"))
            return o
        if s is not None:
            return go(s)
        return self.db.transaction(f"create order {fields.get('client_order_id')}", go)

    def apply(self, order: int | Order, event: OrderEventType, s: Session | None = None) -> Order:
        """Apply one event to an order (db.Order.apply: checked against the transition table) and add the
        rows that record it; in `s` if given, else in its own transaction. `order`: its id, or the row
        itself when it belongs to `s` (created in it, maybe not yet written)."""
        def go(sess: Session) -> Order:
            o = order if isinstance(order, Order) else sess.get(Order, order)
            if o is None:
                raise LookupError(f"order {order} is not in the database")
            sess.add_all(o.apply(event))  # written with the transaction's next flush or its commit
            return o
        if s is not None:
            return go(s)
        o = self.db.transaction(f"order {order if isinstance(order, int) else order.id}: "
                                f"{type(event).__name__}", go)
        if isinstance(event, (OrderRejected, OrderFailed)):  # recorded: tell the trader
            note = OrderRejectedNote if isinstance(event, OrderRejected) else OrderFailedNote
            notify.emit(note(o.symbol, o.side, o.quantity, o.purpose,
                             event.message if isinstance(event, OrderRejected) else event.reason))
        return o

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

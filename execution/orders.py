"""The persisted order state machine (seed 002). An order row exists, as CREATED, before anything else
happens to it; every later change is an event (execution.order_events) applied by Order.apply, checked
against the transition table and recorded (OrderEvent or Fill row) in the same transaction, so the
database always holds the order's whole story."""
from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal
from typing import Any, NamedTuple, cast

from sqlalchemy import Connection, Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

import db_exec
import notify
from core.enums import FINAL_ORDER_STATUSES
from core.enums import OrderStatus as S
from db import Base, DBHandler, Fill, Order, OrderEvent, Unit
from execution.order_events import TRANSITIONS, IllegalTransition, OrderEventType, OrderFailed, OrderRejected, check
from notify.events import OrderFailed as OrderFailedNote
from notify.events import OrderRejected as OrderRejectedNote

__all__ = ["IllegalTransition", "OrderStore", "TRANSITIONS", "check", "fill_delta"]

log = logging.getLogger(__name__)


class OrderStore:
    """Writes orders with SQLAlchemy Core statements, never loading a row to change it: the status and filled
    quantity an event is planned on (Order.apply) come from what this store last wrote or read, and the UPDATE
    names them, so a row that moved since (another writer, a rolled-back transaction) changes nothing and is
    read again and planned anew. New orders of a transaction wait in its unit's `info` until `flush`, so
    an order created and decided in one unit is one INSERT with its final columns (same rows as before)."""

    def __init__(self, db: DBHandler):
        self.db = db
        self._known: dict[int, _Known] = {}  # order id -> what the row held when this store last wrote or read it

    def create(self, s: Unit | None = None, **fields: Any) -> Order:
        """Record a new order as CREATED (the write-ahead step), in `s` if given, else in its own transaction.
        In `s` the row is written by the transaction's next `flush` (its id is known from then on)."""
        o = Order(status=S.CREATED.value, filled_quantity=0, **fields)
        rows: list[Base] = [OrderEvent(order=o, from_status=None, to_status=S.CREATED.value,
                                       detail=f"{o.side} {o.quantity} {o.symbol} ({o.purpose})")]
        if s is not None:
            _drafts(s).append((o, rows))
            return o
        self.db.core(f"create order {fields.get('client_order_id')}", lambda conn: self._insert(conn, o, rows))
        return o

    def flush(self, s: Unit) -> None:
        """Write the orders created in `s` and not written yet (in creation order), with their events."""
        drafts = _drafts(s)
        while drafts:
            o, rows = drafts.pop(0)
            self._insert(s.connection(), o, rows)

    def apply(self, order: int | Order, event: OrderEventType, s: Unit | None = None) -> Order:
        """Apply one event to an order (db.Order.apply: checked against the transition table) and write the
        rows that record it; in `s` if given, else in its own transaction. `order`: its id, or the row
        itself when it belongs to `s` (created in it, maybe not yet written)."""
        if isinstance(order, Order) and order.id is None:  # created in a unit, not yet written
            if s is None:
                raise ValueError(f"order {order.client_order_id} is not written yet: apply it in its unit")
            rows = next(r for o, r in _drafts(s) if o is order)
            rows.extend(order.apply(event))
            return order
        oid = order if isinstance(order, int) else order.id
        if s is not None:
            return self._update(s.connection(), oid, event)
        o = self.db.core(f"order {oid}: {type(event).__name__}", lambda conn: self._update(conn, oid, event))
        if isinstance(event, (OrderRejected, OrderFailed)):  # recorded: tell the trader
            note = OrderRejectedNote if isinstance(event, OrderRejected) else OrderFailedNote
            notify.emit(note(o.symbol, o.side, o.quantity, o.purpose,
                             event.message if isinstance(event, OrderRejected) else event.reason))
        return o

    def _insert(self, conn: Connection, o: Order, rows: list[Base]) -> None:
        values = {k: v for k, v in o.__dict__.items() if k in _ORDER_COLUMNS and v is not None}
        key = db_exec.run(conn, _INSERT, values).primary_key
        if key is None:
            raise RuntimeError(f"the database gave no id for order {o.client_order_id}")
        o.id = key
        self._remember(o)
        _write_records(conn, o.id, rows)

    def _update(self, conn: Connection, order_id: int, event: OrderEventType) -> Order:
        known = self._known.get(order_id)
        for _ in range(2):
            if known is None:
                row = conn.execute(_READ, {"oid": order_id}).first()
                if row is None:
                    raise LookupError(f"order {order_id} is not in the database")
                known = _Known(*row)
            o = Order(id=order_id, status=known.status, filled_quantity=known.filled, symbol=known.symbol,
                      side=known.side, quantity=known.quantity, purpose=known.purpose)
            values, rows = o.applied(event)
            done = db_exec.run(conn, _UPDATE, {**values, "oid": order_id, "was_status": known.status,
                                          "was_filled": known.filled})
            if done.rowcount == 1:
                self._remember(o)
                _write_records(conn, order_id, rows)
                return o
            known = None  # the row moved since this store saw it: read it and plan again
        raise RuntimeError(f"order {order_id} changed while it was being updated")

    def _remember(self, o: Order) -> None:
        if S(o.status) in FINAL_ORDER_STATUSES:  # nothing moves it any more: a late note reads it again
            self._known.pop(o.id, None)
        else:
            self._known[o.id] = _Known(o.status, o.filled_quantity or 0, o.symbol, o.side, o.quantity, o.purpose)

    def non_final(self, day: date | None = None) -> list[Order]:
        def go(s: Session) -> list[Order]:
            q = select(Order).where(Order.status.notin_([x.value for x in FINAL_ORDER_STATUSES]))
            if day is not None:
                q = q.where(Order.trading_date == day)
            return list(s.scalars(q.order_by(Order.id)))
        return self.db.transaction("read open orders", go)


class _Known(NamedTuple):
    status: str
    filled: int
    symbol: str
    side: str
    quantity: int
    purpose: str


ORDERS = cast(Table, Order.__table__)
_ORDER_COLUMNS = frozenset(c.key for c in ORDERS.columns)
_READ = select(ORDERS.c.status, ORDERS.c.filled_quantity, ORDERS.c.symbol, ORDERS.c.side, ORDERS.c.quantity,
               ORDERS.c.purpose).where(ORDERS.c.id == bindparam("oid"))
# the SET clause is the execute parameters that name columns (what Order.applied set)
_UPDATE = update(ORDERS).where(ORDERS.c.id == bindparam("oid"), ORDERS.c.status == bindparam("was_status"),
                               ORDERS.c.filled_quantity == bindparam("was_filled"))
_INSERT = insert(ORDERS)
_INSERT_EVENT = insert(cast(Table, OrderEvent.__table__))
_INSERT_FILL = insert(cast(Table, Fill.__table__))
_DRAFTS = "execution.orders.drafts"


def _drafts(s: Unit) -> list[tuple[Order, list[Base]]]:
    """The orders created in `s` and not yet written (kept with the unit, so a rolled-back one drops them)."""
    drafts: list[tuple[Order, list[Base]]] = s.info.setdefault(_DRAFTS, [])
    return drafts


def _write_records(conn: Connection, order_id: int, rows: list[Base]) -> None:
    """The OrderEvent and Fill rows that Order.apply returned, as Core INSERTs (in order)."""
    events = [{"order_id": order_id, "from_status": r.from_status, "to_status": r.to_status, "detail": r.detail}
              for r in rows if isinstance(r, OrderEvent)]
    if events:
        db_exec.run(conn, _INSERT_EVENT, events)
    for r in rows:
        if isinstance(r, Fill):
            db_exec.run(conn, _INSERT_FILL, {
                "order_id": order_id, "cumulative_quantity": r.cumulative_quantity, "quantity": r.quantity,
                "price": r.price})


def fill_delta(prev_qty: int, prev_avg: Decimal | None, new_qty: int, new_avg: Decimal) -> tuple[int, Decimal]:
    """Quantity and price of the fills between two cumulative (quantity, average price) readings."""
    delta = new_qty - prev_qty
    if delta <= 0:
        return 0, Decimal(0)
    if not prev_qty or prev_avg is None:
        return delta, new_avg
    price = (new_avg * new_qty - prev_avg * prev_qty) / delta
    return delta, price.quantize(Decimal("0.0001"))

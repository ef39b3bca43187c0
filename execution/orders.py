"""The persisted order state machine (seed 002). An order row exists, as CREATED, before anything else
happens to it; every later change is an event (execution.order_events) planned by its transition table
(`applied`, which db.Order.apply uses too) and recorded (OrderEvent or Fill row) in the same transaction, so the
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
from db import DBHandler, Fill, Order, OrderEvent, Unit, utcnow
from execution.order_events import (
    TRANSITIONS,
    EventRow,
    FillRow,
    IllegalTransition,
    OrderEventType,
    OrderFailed,
    OrderRejected,
    applied,
    check,
)
from notify.events import OrderFailed as OrderFailedNote
from notify.events import OrderRejected as OrderRejectedNote

__all__ = ["IllegalTransition", "OrderRecord", "OrderStore", "TRANSITIONS", "check", "fill_delta"]

log = logging.getLogger(__name__)


class OrderRecord:
    """An order as the store planned it: its columns as plain attributes (`vars` is what its INSERT writes). Not an
    ORM object: building and planning an instrumented `db.Order` cost more CPU than its row's SQL on every order."""

    id: int  # None until written (the unit's flush), as an ORM row's
    client_order_id: str
    symbol: str
    exchange: str
    side: str
    purpose: str
    quantity: int
    product: str
    status: str
    filled_quantity: int
    reserved: Decimal | None

    def __init__(self, **columns: Any):
        self.__dict__["id"] = None
        self.__dict__.update(columns)


Row = EventRow | FillRow


class OrderStore:
    """Writes orders with SQLAlchemy Core statements, never loading a row to change it: the status and filled
    quantity an event is planned on (order_events.applied, the transition table) come from what this store last
    wrote or read, and the UPDATE names them, so a row that moved since (another writer, a rolled-back
    transaction) changes nothing and is read again and planned anew. New orders of a transaction wait in its
    unit's `info` until `flush`, so an order created and decided in one unit is one INSERT with its final columns
    and one INSERT of its events."""

    def __init__(self, db: DBHandler):
        self.db = db
        self._known: dict[int, _Known] = {}  # order id -> what the row held when this store last wrote or read it

    def create(self, s: Unit | None = None, **fields: Any) -> OrderRecord:
        """Record a new order as CREATED (the write-ahead step), in `s` if given, else in its own transaction.
        In `s` the row is written by the transaction's next `flush` (its id is known from then on)."""
        o = OrderRecord(status=S.CREATED.value, filled_quantity=0, **fields)
        rows: list[Row] = [EventRow(None, S.CREATED.value, f"{o.side} {o.quantity} {o.symbol} ({o.purpose})")]
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

    def apply(self, order: int | OrderRecord, event: OrderEventType, s: Unit | None = None) -> OrderRecord:
        """Apply one event to an order (checked against the transition table) and write the rows that record it;
        in `s` if given, else in its own transaction. `order`: its id, or the record itself when it belongs to
        `s` (created in it, maybe not yet written)."""
        if isinstance(order, OrderRecord) and order.id is None:  # created in a unit, not yet written
            if s is None:
                raise ValueError(f"order {order.client_order_id} is not written yet: apply it in its unit")
            rows = next(r for o, r in _drafts(s) if o is order)
            change, row = applied(S(order.status), order.filled_quantity, event)
            order.__dict__.update(change.fields)
            order.status = change.status.value
            if row is not None:
                rows.append(row)
            return order
        oid = order if isinstance(order, int) else order.id
        if oid is None:
            raise ValueError("an order without an id")
        if s is not None:
            return self._update(s.connection(), oid, event)
        o = self.db.core(f"order {oid}: {type(event).__name__}", lambda conn: self._update(conn, oid, event))
        if isinstance(event, (OrderRejected, OrderFailed)):  # recorded: tell the trader
            note = OrderRejectedNote if isinstance(event, OrderRejected) else OrderFailedNote
            notify.emit(note(o.symbol, o.side, o.quantity, o.purpose,
                             event.message if isinstance(event, OrderRejected) else event.reason))
        return o

    def _insert(self, conn: Connection, o: OrderRecord, rows: list[Row]) -> None:
        values = {k: v for k, v in o.__dict__.items() if v is not None and k in _ORDER_COLUMNS}
        key = db_exec.run(conn, _INSERT, values).primary_key
        if key is None:
            raise RuntimeError(f"the database gave no id for order {o.client_order_id}")
        o.id = key
        self._remember(key, o.status, o.filled_quantity, o)
        _write_records(conn, key, rows)

    def _update(self, conn: Connection, order_id: int, event: OrderEventType) -> OrderRecord:
        known = self._known.get(order_id)
        for _ in range(2):
            if known is None:
                found = conn.execute(_READ, {"oid": order_id}).first()
                if found is None:
                    raise LookupError(f"order {order_id} is not in the database")
                known = _Known(*found)
            change, row = applied(S(known.status), known.filled, event)
            status = change.status.value
            values = dict(change.fields)
            if status != known.status:  # an unchanged status is not written: its two indexes' pages stay clean
                values["status"] = status
            values["updated_at"] = utcnow()
            done = db_exec.run(conn, _UPDATE, {**values, "oid": order_id, "was_status": known.status,
                                               "was_filled": known.filled})
            if done.rowcount == 1:
                filled = change.fields.get("filled_quantity", known.filled) or 0
                o = OrderRecord(id=order_id, status=status, filled_quantity=filled, symbol=known.symbol,
                                side=known.side, quantity=known.quantity, purpose=known.purpose)
                self._remember(order_id, status, filled, o)
                if row is not None:
                    _write_records(conn, order_id, [row])
                return o
            known = None  # the row moved since this store saw it: read it and plan again
        raise RuntimeError(f"order {order_id} changed while it was being updated")

    def _remember(self, order_id: int, status: str, filled: int, o: OrderRecord) -> None:
        if S(status) in FINAL_ORDER_STATUSES:  # nothing moves it any more: a late note reads it again
            self._known.pop(order_id, None)
        else:
            self._known[order_id] = _Known(status, filled or 0, o.symbol, o.side, o.quantity, o.purpose)

    def non_final(self, day: date | None = None) -> list[Order]:
        def go(s: Session) -> list[Order]:
            # the statuses named (an index lookup each), not "none of the final ones" (every order ever read)
            q = select(Order).where(Order.status.in_(_WORKING))
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
# the SET clause is the execute parameters that name columns (what the event changed)
_UPDATE = update(ORDERS).where(ORDERS.c.id == bindparam("oid"), ORDERS.c.status == bindparam("was_status"),
                               ORDERS.c.filled_quantity == bindparam("was_filled"))
_INSERT = insert(ORDERS)
_INSERT_EVENT = insert(cast(Table, OrderEvent.__table__))
_INSERT_FILL = insert(cast(Table, Fill.__table__))
_DRAFTS = "execution.orders.drafts"
_WORKING = sorted(x.value for x in S if x not in FINAL_ORDER_STATUSES)  # statuses an order can still leave


def _drafts(s: Unit) -> list[tuple[OrderRecord, list[Row]]]:
    """The orders created in `s` and not yet written (kept with the unit, so a rolled-back one drops them)."""
    drafts: list[tuple[OrderRecord, list[Row]]] = s.info.setdefault(_DRAFTS, [])
    return drafts


def _write_records(conn: Connection, order_id: int, rows: list[Row]) -> None:
    """The OrderEvent and Fill rows that recorded the order's events, as Core INSERTs (in order)."""
    events = [{"order_id": order_id, "from_status": r.from_status, "to_status": r.to_status, "detail": r.detail}
              for r in rows if isinstance(r, EventRow)]
    if events:
        db_exec.run(conn, _INSERT_EVENT, events)
    for r in rows:
        if isinstance(r, FillRow):
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

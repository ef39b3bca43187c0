"""A decision that sends nothing (a denied entry, a signals_only order, an ignored exit), written as plain rows.

Why: most signals of a busy day are refused (trading halted, cooldown, an open position), and each used to cost
the whole write-ahead machinery of a sent order: ORM Order and OrderEvent objects built and planned, a unit of
work of its own. A denial needs none of it: nothing goes to the broker, so there is no state to follow and no
order to find after a crash. Its rows are the same rows that path wrote -- the order as CREATED then FAILED
with its two events (the transition planned by execution.order_events.plan, so the tag, reason and detail are
the state machine's own), and the signal with its outcome -- built as dicts and written with compiled Core
statements (db_exec), the events and signals of many denials in one executemany each. On SQLite (every backtest's
run database, where most signals of a halted day end here) the rows go to the driver's cursor as plain tuples,
converted as SQLAlchemy's SQLite types convert them (execution.denial_rows): the same rows for a fraction of the
per-row work.

Rows only: the caller (the TradeManager) tells the worker and changes memory after `write` has returned, so in
the daemon a denial is committed before anyone hears of it, as before.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.engine import Connection

import db_exec
from core.enums import OrderStatus
from db import Order, OrderEvent, StockSignal, utcnow
from execution import denial_rows
from execution.order_events import OrderDenied, plan

log = logging.getLogger(__name__)

_INSERT_ORDER = insert(cast(Table, Order.__table__))
_INSERT_EVENTS = insert(cast(Table, OrderEvent.__table__))
_INSERT_SIGNAL = insert(cast(Table, StockSignal.__table__))
_CREATED = OrderStatus.CREATED.value


@dataclass(slots=True)
class DeniedOrder:
    """An order decided and refused before sending: its columns as created, and why it was refused."""

    fields: dict[str, Any]
    tag: str
    reason: str


@dataclass(slots=True)
class Denial:
    """What one signal that sent nothing leaves in the database: its orders (none for an ignored exit) and the
    signal's row, its outcome set."""

    signal: dict[str, Any]
    orders: list[DeniedOrder] = field(default_factory=list)


def order_row(d: DeniedOrder) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The order's row and its two events (CREATED, then the denial), as the order store writes a denied order:
    the columns set, None left out (so the table's defaults apply), `updated_at` when it was denied."""
    f = d.fields
    change = plan(OrderStatus.CREATED, 0, OrderDenied(d.tag, d.reason))
    row = {k: v for k, v in f.items() if v is not None}
    row.update(status=change.status.value, filled_quantity=0, **change.fields, updated_at=utcnow())
    events = [{"from_status": None, "to_status": _CREATED,
               "detail": f"{f['side']} {f['quantity']} {f['symbol']} ({f['purpose']})"},
              {"from_status": _CREATED, "to_status": change.status.value, "detail": change.detail}]
    return row, events


def write(conn: Connection, denials: list[Denial]) -> None:
    """Write `denials` in `conn`'s transaction, in order: each order's row (its id is the database's), then every
    event in one executemany, then the signals in as few executemany as their columns allow (a None column is
    left out, as a single INSERT leaves it)."""
    if conn.dialect.name == "sqlite" and denial_rows.fits(denials):
        denial_rows.write(conn, denials)
        return
    events: list[dict[str, Any]] = []
    for d in denials:
        for o in d.orders:
            row, evs = order_row(o)
            oid = db_exec.run(conn, _INSERT_ORDER, row).primary_key
            if oid is None:
                raise RuntimeError(f"the database gave no id for order {row['client_order_id']}")
            events += ({"order_id": oid, **e} for e in evs)
            log.info("order %d not sent: %s (%s)", oid, o.tag, o.reason)
    if events:
        db_exec.run(conn, _INSERT_EVENTS, events)
    batch: list[dict[str, Any]] = []
    for d in denials:
        row = {k: v for k, v in d.signal.items() if v is not None}
        if batch and tuple(row) != tuple(batch[0]):
            db_exec.run(conn, _INSERT_SIGNAL, batch)
            batch = []
        batch.append(row)
    if batch:
        db_exec.run(conn, _INSERT_SIGNAL, batch)

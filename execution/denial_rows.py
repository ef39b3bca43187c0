"""A denial's rows on SQLite as plain tuples on the driver's cursor: the backtest's hot write of refused entries.

Why: on a halted day nearly every signal is a refused entry, and writing its rows through db_exec cost about twice
SQLite's own work: a dict per row, the plan looked up per statement, and SQLAlchemy's DateTime and Date processors
(a %-format of a dict of the datetime's fields per value). Here the columns are fixed and each value is converted
as SQLAlchemy's SQLite types convert it: a DateTime as 'YYYY-MM-DD HH:MM:SS.ffffff' (isoformat gives the same
text), a Date as its isoformat, a Numeric or Float as a float, the rest as given. A column the caller leaves None
is written NULL, which is what leaving it out writes when the column has no default; a denial that would leave
out a column that has one (or has other fields than these) is not `fits` and goes the general way
(execution.denials). The ids are the database's, in the same order: each order's INSERT, then the events, then
the signals. One timestamp per denial: its order, events and signal are written in the same instant.
"""
from __future__ import annotations

import logging
from datetime import date, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table
from sqlalchemy.engine import Connection

import db_exec
from core.enums import OrderStatus
from db import Order, OrderEvent, StockSignal, utcnow
from execution.order_events import Change, OrderDenied, plan

if TYPE_CHECKING:
    from execution.denials import Denial

log = logging.getLogger(__name__)

# the columns the caller gives (DeniedOrder.fields, the signal's row), then those written here
ORDER_FIELDS = ("client_order_id", "signal_id", "trade_id", "trading_date", "symbol", "exchange", "side", "purpose",
                "quantity", "product", "price_type", "price", "strategy_tag", "decision_time")
ORDER_COLUMNS = ORDER_FIELDS + ("status", "filled_quantity", "failure_tag", "failure_reason", "attempts",
                                "created_at", "updated_at")
EVENT_COLUMNS = ("order_id", "ts", "from_status", "to_status", "detail")
SIGNAL_FIELDS = ("signal_id", "symbol", "strategy", "time", "price", "type", "current_position", "stop_loss",
                 "take_profit_price", "position_size", "close_fraction", "note", "attempt_count", "outcome",
                 "outcome_note")
SIGNAL_COLUMNS = SIGNAL_FIELDS + ("created_at",)

_CREATED = OrderStatus.CREATED.value


def _sql(table: Table, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def _defaulted(table: Table) -> set[str]:
    return {c.key for c in table.columns if not c.primary_key and (c.default is not None
                                                                   or c.server_default is not None)}


_ORDERS, _EVENTS, _SIGNALS = (cast(Table, m.__table__) for m in (Order, OrderEvent, StockSignal))
_ORDER_SQL, _EVENT_SQL, _SIGNAL_SQL = (_sql(_ORDERS, ORDER_COLUMNS), _sql(_EVENTS, EVENT_COLUMNS),
                                       _sql(_SIGNALS, SIGNAL_COLUMNS))
_ORDER_KEYS, _SIGNAL_KEYS = frozenset(ORDER_FIELDS), frozenset(SIGNAL_FIELDS)
# given columns that have a default: a None there is left out by the general path (the default applies)
_ORDER_DEFAULTED = tuple(c for c in ORDER_FIELDS if c in _defaulted(_ORDERS))
_SIGNAL_DEFAULTED = tuple(c for c in SIGNAL_FIELDS if c in _defaulted(_SIGNALS))
_ATTEMPTS = getattr(_ORDERS.c.attempts.default, "arg", None)
# every column with a default is written here (schema drift sends the rows the general way)
COVERED = (_defaulted(_ORDERS) <= set(ORDER_COLUMNS) and _defaulted(_EVENTS) <= set(EVENT_COLUMNS)
           and _defaulted(_SIGNALS) <= set(SIGNAL_COLUMNS) and isinstance(_ATTEMPTS, int)
           and all(set(cols) <= set(t.c.keys()) for t, cols in ((_ORDERS, ORDER_COLUMNS), (_EVENTS, EVENT_COLUMNS),
                                                                (_SIGNALS, SIGNAL_COLUMNS))))


def fits(denials: list[Denial]) -> bool:
    """Whether every denial has exactly the fields written here, with a value in each that has a default."""
    if not COVERED:
        return False
    for d in denials:
        s = d.signal
        if s.keys() != _SIGNAL_KEYS or any(s[c] is None for c in _SIGNAL_DEFAULTED):
            return False
        for o in d.orders:
            f = o.fields
            if (f.keys() != _ORDER_KEYS or any(f[c] is None for c in _ORDER_DEFAULTED)
                    or type(f["trading_date"]) is not date):
                return False
    return True


def timestamp(t: datetime) -> str:
    """A datetime as SQLAlchemy's SQLite DateTime stores it (its fields, the zone left out)."""
    return t.isoformat(" ", "microseconds")[:26]


def _float(v: Any) -> float | None:
    return None if v is None else float(v)


@lru_cache(maxsize=256)
def _denied(tag: str, reason: str) -> Change:
    """The state machine's transition of a new order denied with this tag and reason (a day repeats a few)."""
    return plan(OrderStatus.CREATED, 0, OrderDenied(tag, reason))


def write(conn: Connection, denials: list[Denial]) -> None:
    """Write `denials` (all `fits`) in `conn`'s transaction on SQLite: each order's row, then every event, then
    every signal, one executemany each."""
    raw: Any = conn.connection.dbapi_connection
    cur = raw.cursor()
    sql: str = _ORDER_SQL
    args: Any = None  # what the failing statement was given, for the error
    info = log.isEnabledFor(logging.INFO)  # asked once: a halted day writes thousands
    try:
        events: list[tuple[Any, ...]] = []
        signals: list[tuple[Any, ...]] = []
        for d in denials:
            ts = timestamp(utcnow())
            for o in d.orders:
                f = o.fields
                change = _denied(o.tag, o.reason)
                status, cf = change.status.value, change.fields
                price = f["price"]
                args = (f["client_order_id"], f["signal_id"], f["trade_id"], f["trading_date"].isoformat(),
                        f["symbol"], f["exchange"], f["side"], f["purpose"], f["quantity"], f["product"],
                        f["price_type"], None if price is None else float(price), f["strategy_tag"],
                        f["decision_time"], status, 0, cf["failure_tag"], cf["failure_reason"], _ATTEMPTS, ts, ts)
                cur.execute(sql, args)
                oid = cur.lastrowid
                if oid is None:
                    raise RuntimeError(f"the database gave no id for order {f['client_order_id']}")
                events.append((oid, ts, None, _CREATED, f"{f['side']} {f['quantity']} {f['symbol']} ({f['purpose']})"))
                events.append((oid, ts, _CREATED, status, change.detail))
                if info:
                    log.info("order %d not sent: %s (%s)", oid, o.tag, o.reason)
            s = d.signal
            signals.append((s["signal_id"], s["symbol"], s["strategy"], s["time"], _float(s["price"]), s["type"],
                            s["current_position"], _float(s["stop_loss"]), _float(s["take_profit_price"]),
                            s["position_size"], _float(s["close_fraction"]), s["note"], s["attempt_count"],
                            s["outcome"], s["outcome_note"], ts))
        if events:
            sql, args = _EVENT_SQL, events
            cur.executemany(sql, events)
        if signals:
            sql, args = _SIGNAL_SQL, signals
            cur.executemany(sql, signals)
    except conn.dialect.loaded_dbapi.Error as e:
        raise db_exec.driver_error(conn, raw, cur, sql, [args], e) from e
    finally:
        cur.close()

"""On SQLite a denial's rows go to the driver as tuples (execution.denial_rows): the same rows, ids and stored
values as the general path (db_exec with SQLAlchemy's conversions) writes for the same denials, and what does not
fit that shape still goes the general way."""
from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.sqlite.base import DATETIME

import db
from execution import denial_rows, denials
from execution.denials import Denial, DeniedOrder

WALL = {"created_at", "updated_at", "ts"}


def _order(cid: str, qty: int, price: Any, **over: Any) -> DeniedOrder:
    f = dict(client_order_id=cid, signal_id=cid.split("#")[0], trade_id=None, trading_date=date(2025, 3, 3),
             symbol="SYM001", exchange="NSE", side="SELL", purpose="entry", quantity=qty, product="MIS",
             price_type="MARKET", price=price, strategy_tag="intraday-daemon", decision_time=1_740_973_560)
    f.update(over)
    return DeniedOrder(f, "RISK_TRADING_HALTED", "trading HALTED: risk: drawdown 1.52% from the day's high")


def _signal(sid: str, stop: float | None, tp: float | None, note: str | None, outcome_note: str | None,
            price: Any = 635.55) -> dict[str, Any]:
    return {"signal_id": sid, "symbol": "SYM001", "strategy": "mac", "time": 1_740_973_560, "price": price,
            "type": "entry", "current_position": "short", "stop_loss": stop, "take_profit_price": tp,
            "position_size": 0, "close_fraction": 1.0, "note": note, "attempt_count": 1, "outcome": "failed",
            "outcome_note": outcome_note}


def _batches() -> list[list[Denial]]:
    """A day's kept denials in two writes: halted entries (Decimal, float and whole prices), a cooldown, a
    signal with two orders, an ignored exit with none."""
    return [
        [Denial(_signal("a", 640.1, None, "fast SMA(9) crossed below", "RISK_TRADING_HALTED"),
                [_order("a#1", 0, Decimal("635.55"))]),
         Denial(_signal("b", None, 600.0, None, None, price=701), [_order("b#1", 7, Decimal("701.0500"))]),
         Denial(_signal("c", 12.5, 13.75, "n", "two"), [_order("c#1", 3, 12.5), _order("c#2", 3, Decimal("12.4"))])],
        [Denial(_signal("d", None, None, None, "no position"), []),
         Denial(_signal("e", 99.0, None, "", "RISK_COOLDOWN"), [
             DeniedOrder(_order("e#1", 1, Decimal("99.99")).fields, "RISK_COOLDOWN", "cooling down for 61s more")])],
    ]


def _dump(path: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the three tables, each value with its SQLite storage class; wall-clock columns as their
    text's length only (they are the time of writing)."""
    c = sqlite3.connect(path)
    out = {}
    for t in ("orders", "order_events", "stock_signals"):
        cols = [r[1] for r in c.execute(f"PRAGMA table_info({t})")]
        sel = ", ".join(f"length({n}), typeof({n})" if n in WALL else f"{n}, typeof({n})" for n in cols)
        out[t] = c.execute(f"SELECT {sel} FROM {t} ORDER BY id").fetchall()
    c.close()
    return out


def _write_all(tmp_path: Any, name: str) -> dict[str, list[tuple[Any, ...]]]:
    path = tmp_path / f"{name}.sqlite"
    h = db.DBHandler(db.initialize_database(f"sqlite:///{path}"))
    for batch in _batches():
        def write(conn: Any, batch: list[Denial] = batch) -> None:
            denials.write(conn, batch)
        h.core("denials", write)
    db.dispose_engines()
    return _dump(path)


def test_the_tuple_rows_are_the_general_paths_rows(tmp_path, monkeypatch):
    assert all(denial_rows.fits(b) for b in _batches())
    fast = _write_all(tmp_path, "fast")
    monkeypatch.setattr(denial_rows, "fits", lambda _denials: False)  # the general path, db_exec's
    general = _write_all(tmp_path, "general")
    assert [len(general[t]) for t in general] == [5, 10, 5]
    assert fast == general


@pytest.mark.parametrize("t", [datetime(2026, 12, 4, 19, 54, 45, 801862, tzinfo=UTC), datetime(2026, 1, 2, 3, 4, 5),
                               datetime(5, 1, 1, tzinfo=UTC), datetime(2026, 12, 4, 0, 0, 0, 1)])
def test_a_timestamp_is_sqlalchemys_sqlite_text(t):
    assert denial_rows.timestamp(t) == DATETIME().bind_processor(sqlite.dialect())(t)


def test_what_does_not_fit_goes_the_general_way(tmp_path):
    no_exchange = [Denial(_signal("x", 1.0, None, None, None), [_order("x#1", 1, Decimal(1), exchange=None)])]
    extra = [Denial(_signal("y", 1.0, None, None, None), [_order("y#1", 1, Decimal(1), reserved=Decimal(2))])]
    a_time = [Denial(_signal("z", 1.0, None, None, None),
                     [_order("z#1", 1, Decimal(1), trading_date=datetime(2025, 3, 3, 9, 15))])]
    no_fraction = [Denial({**_signal("w", 1.0, None, None, None), "close_fraction": None}, [])]
    for batch in (no_exchange, extra, a_time, no_fraction):
        assert not denial_rows.fits(batch)
    path = tmp_path / "t.sqlite"
    h = db.DBHandler(db.initialize_database(f"sqlite:///{path}"))
    h.core("denials", lambda conn: denials.write(conn, no_exchange + no_fraction))
    c = sqlite3.connect(path)
    assert c.execute("SELECT exchange FROM orders").fetchall() == [("NSE",)]  # the column's default
    assert c.execute("SELECT close_fraction FROM stock_signals").fetchall() == [(1.0,), (1.0,)]
    c.close()
    db.dispose_engines()

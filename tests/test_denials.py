"""A signal that sends nothing is written as plain rows (execution.denials): the same orders, events and signals,
with the same ids, as the order store's write-ahead path writes for it (SQLite and PostgreSQL); and the backtest's
day keeps them and writes them, in order, before anything else it runs (backtest.day_db)."""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

import db
from backtest.day_db import day_unit
from backtest.runner import open_run_db
from execution.denials import Denial, DeniedOrder, write
from execution.order_events import OrderDenied
from execution.orders import OrderStore

DAY = date(2026, 11, 20)
WALL = {"created_at", "updated_at", "ts"}


def _fields(cid: str, signal_id: str | None, qty: int) -> dict[str, Any]:
    return dict(client_order_id=cid, signal_id=signal_id, trade_id=None, trading_date=DAY, symbol="SBIN",
                exchange="NSE", side="BUY", purpose="entry", quantity=qty, product="MIS", price_type="MARKET",
                price=Decimal("812.35"), strategy_tag="t", decision_time=1_763_600_000)


def _signal(sid: str, stop: float | None, outcome: str, note: str | None) -> dict[str, Any]:
    return {"signal_id": sid, "symbol": "SBIN", "strategy": "orb", "time": 1_763_600_000, "price": 812.35,
            "type": "ENTRY", "current_position": "LONG", "stop_loss": stop, "take_profit_price": None,
            "position_size": 0, "close_fraction": 1.0, "note": None, "attempt_count": 1, "outcome": outcome,
            "outcome_note": note}


# three signals: two denied entries (one with a zero-unit order and no stop), one ignored exit (no order)
CASES = [
    (_signal("s1", 800.0, "FAILED", "RISK_TRADING_HALTED"),
     [("s1#1", "s1", 12, "RISK_TRADING_HALTED", "trading HALTED: risk: drawdown")]),
    (_signal("s2", None, "FAILED", "RISK_NO_STOP"), [("s2#1", "s2", 0, "RISK_NO_STOP", "signal has no stop")]),
    (_signal("s3", None, "IGNORED", "no position"), []),
]


def _dump(h: db.DBHandler) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for table in ("orders", "order_events", "stock_signals"):
        def read(s: Any, table: str = table) -> list[dict[str, Any]]:
            rows = s.execute(text(f"SELECT * FROM {table} ORDER BY id")).mappings().all()
            return [{k: v for k, v in r.items() if k not in WALL} for r in rows]
        out[table] = h.transaction("read", read)
    return out


def _through_the_order_store(h: db.DBHandler) -> None:
    """What the TradeManager's unit wrote for these signals before: order objects created and denied in the unit,
    flushed, then the signal row."""
    store = OrderStore(h)
    for sig, orders in CASES:
        def unit(s: db.Unit, sig: dict[str, Any] = sig, orders: list[Any] = orders) -> None:
            for cid, sid, qty, tag, reason in orders:
                o = store.create(s=s, **_fields(cid, sid, qty))
                store.apply(o, OrderDenied(tag, reason), s=s)
            store.flush(s)
            db.insert_row(s, db.StockSignal, sig)
        h.unit("signal", unit)


def _denials() -> list[Denial]:
    return [Denial(sig, [DeniedOrder(_fields(cid, sid, qty), tag, reason) for cid, sid, qty, tag, reason in orders])
            for sig, orders in CASES]


def test_a_denial_is_the_rows_the_order_store_writes(db_url, tmp_path):
    before = db.DBHandler(db.initialize_database(db_url))
    _through_the_order_store(before)
    expected = _dump(before)
    assert [o["status"] for o in expected["orders"]] == ["FAILED", "FAILED"]
    assert len(expected["order_events"]) == 4 and len(expected["stock_signals"]) == 3
    other = f"sqlite:///{tmp_path / 'other.sqlite'}" if db_url.startswith("sqlite") else None
    if other is None:  # PostgreSQL: the same database, emptied
        before.core("empty", lambda c: c.execute(text(
            "TRUNCATE orders, order_events, stock_signals RESTART IDENTITY CASCADE")))
        after = before
    else:
        after = db.DBHandler(db.initialize_database(other))
    for d in _denials():  # one at a time, as the daemon records them
        after.record("signal", d, write)
    assert _dump(after) == expected
    db.dispose_engines()


def test_the_backtests_day_keeps_denials_and_writes_them_first_in_order(tmp_path):
    expected_db = db.DBHandler(db.initialize_database(f"sqlite:///{tmp_path / 'expected.sqlite'}"))
    _through_the_order_store(expected_db)
    expected = _dump(expected_db)
    run = open_run_db(tmp_path / "run.sqlite")
    store = OrderStore(run)
    denials = _denials()
    with day_unit(run):
        run.record("signal", denials[0], write)
        run.record("signal", denials[1], write)
        assert run._kept  # noqa: SLF001 - kept, not written yet
        seen = run.execute_sql("SELECT client_order_id FROM orders ORDER BY id")  # a read writes them first
        assert seen == [("s1#1",), ("s2#1",)]
        run.record("signal", denials[2], write)
        later = store.create(**_fields("s4#1", "s4", 5))  # a unit of its own: the kept signal goes first
        assert later.id == 3
    got = _dump(run)
    assert got["orders"][:2] == expected["orders"] and got["orders"][2]["client_order_id"] == "s4#1"
    assert got["order_events"][:4] == expected["order_events"]
    assert got["stock_signals"] == expected["stock_signals"]


def test_a_failed_day_drops_its_kept_denials(tmp_path):
    run = open_run_db(tmp_path / "run.sqlite")
    with pytest.raises(RuntimeError), day_unit(run):
        run.record("signal", _denials()[0], write)
        raise RuntimeError("the day failed")
    assert run.execute_sql("SELECT COUNT(*) FROM orders") == [(0,)]
    with day_unit(run):  # the next day starts with nothing kept
        pass
    assert run.execute_sql("SELECT COUNT(*) FROM stock_signals") == [(0,)]

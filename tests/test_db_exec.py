"""db_exec writes exactly what Connection.execute writes (SQLite and PostgreSQL): the same columns, defaults,
types and ids, and UPDATE's rowcount; a statement it cannot plan takes the ordinary path."""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update

import db
import db_exec

ORDERS = cast(Table, db.Order.__table__)
EVENTS = cast(Table, db.OrderEvent.__table__)
TRADES = cast(Table, db.ActiveTrade.__table__)


def _order(coid: str) -> dict[str, Any]:
    return dict(client_order_id=coid, trading_date=date(2026, 11, 20), symbol="SBIN", exchange="NSE", side="BUY",
                purpose="entry", quantity=7, product="MIS", price_type="MARKET", price=Decimal("812.3456"),
                strategy_tag="t", decision_time=1_763_600_000, reserved=Decimal("1234.5678"), status="CREATED")


def _row(conn: Any, table: Table, key: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    pk = next(iter(table.primary_key.columns))
    row = conn.execute(select(table).where(pk == key)).mappings().one()
    return {k: v for k, v in row.items() if k not in skip and k != pk.key}


def test_rows_match_connection_execute(db_url):
    engine = db.initialize_database(db_url)
    stmt = insert(ORDERS)
    with engine.begin() as conn:
        a = int(conn.execute(stmt, _order("a")).inserted_primary_key[0])
        b = db_exec.run(conn, stmt, _order("b")).primary_key
        assert b == a + 1
        times = ("created_at", "updated_at")
        ra, rb = _row(conn, ORDERS, a, times), _row(conn, ORDERS, b, times)
        assert ra.pop("client_order_id") == "a" and rb.pop("client_order_id") == "b"
        assert ra == rb and rb["price"] == Decimal("812.3456")
        full = conn.execute(select(ORDERS.c.created_at, ORDERS.c.updated_at).where(ORDERS.c.id == b)).one()
        assert full.created_at is not None and full.updated_at is not None  # Python-side defaults applied

        events = [{"order_id": b, "from_status": None, "to_status": "CREATED", "detail": "x"},
                  {"order_id": b, "from_status": "CREATED", "to_status": "SENT_TO_BROKER", "detail": None}]
        assert db_exec.run(conn, insert(EVENTS), events).rowcount == 2  # executemany
        got = conn.execute(select(EVENTS.c.from_status, EVENTS.c.to_status, EVENTS.c.detail, EVENTS.c.ts)
                           .where(EVENTS.c.order_id == b).order_by(EVENTS.c.id)).all()
        assert [tuple(r[:3]) for r in got] == [(None, "CREATED", "x"), ("CREATED", "SENT_TO_BROKER", None)]
        assert all(r.ts is not None for r in got)

        upd = update(ORDERS).where(ORDERS.c.id == bindparam("oid"), ORDERS.c.status == bindparam("was"))
        assert db_exec.run(conn, upd, {"status": "SENT_TO_BROKER", "oid": b, "was": "CREATED"}).rowcount == 1
        assert db_exec.run(conn, upd, {"status": "REJECTED", "oid": b, "was": "CREATED"}).rowcount == 0  # moved
        assert conn.execute(select(ORDERS.c.status).where(ORDERS.c.id == b)).scalar() == "SENT_TO_BROKER"


def test_update_sets_onupdate_columns(db_url):
    engine = db.initialize_database(db_url)
    with engine.begin() as conn:
        db.insert_row(db.CoreUnit(conn), db.ActiveTrade, dict(
            trade_id=3, symbol="SBIN", strategy="s", side="long", trading_date=date(2026, 11, 20), entry_time=1,
            entry_price=Decimal("100.5"), position_size=4, remaining_quantity=4, allocated=Decimal("80.4"),
            margin_multiplier=Decimal("5")))
        before = conn.execute(select(TRADES.c.updated_at, TRADES.c.instrument)).one()
        assert before.instrument == "EQ"  # a scalar default
        upd = update(TRADES).where(TRADES.c.trade_id == bindparam("tid"))
        assert db_exec.run(conn, upd, {"remaining_quantity": 1, "tid": 3}).rowcount == 1
        after = conn.execute(select(TRADES.c.updated_at, TRADES.c.remaining_quantity)).one()
        assert after.remaining_quantity == 1 and after.updated_at >= before.updated_at


def test_a_statement_with_its_own_literals_takes_the_ordinary_path(sqlite_url):
    engine = db.initialize_database(sqlite_url)
    with engine.begin() as conn:
        oid = db_exec.run(conn, insert(ORDERS), _order("c")).primary_key
        literal = update(ORDERS).where(ORDERS.c.id == oid)  # the id bound in the statement itself
        assert db_exec.run(conn, literal, {"status": "DENIED"}).rowcount == 1
        assert conn.execute(select(ORDERS.c.status).where(ORDERS.c.id == oid)).scalar() == "DENIED"

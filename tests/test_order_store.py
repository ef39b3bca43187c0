"""OrderStore writes orders with Core statements planned on the state it last saw; these check that a stale view
never overwrites a row, that a unit's new orders are one write with their events, and that a rolled-back unit
leaves nothing behind."""
from __future__ import annotations

from datetime import date

import pytest

import db
from core.enums import OrderStatus as S
from execution.order_events import IllegalTransition, OrderAccepted, OrderDenied, OrderExecuted, OrderSent
from execution.orders import OrderRecord, OrderStore

DAY = date(2026, 11, 20)


@pytest.fixture
def handler(tmp_path):
    h = db.DBHandler(db.initialize_database(f"sqlite:///{tmp_path / 'o.sqlite'}"))
    yield h
    db.dispose_engines()


def new(store: OrderStore, cid: str, s=None) -> OrderRecord:
    return store.create(s=s, client_order_id=cid, trading_date=DAY, symbol="SBIN", side="BUY", purpose="entry",
                        quantity=10, strategy_tag="t")


def row(h: db.DBHandler, oid: int) -> tuple:
    rows = h.execute_sql("SELECT status, broker_order_id, filled_quantity FROM orders WHERE id = :i", {"i": oid})
    return (rows or [()])[0]


def events(h: db.DBHandler, oid: int) -> list[tuple]:
    return h.execute_sql("SELECT from_status, to_status FROM order_events WHERE order_id = :i ORDER BY id",
                         {"i": oid}) or []


def test_a_row_another_writer_moved_is_read_again_not_overwritten(handler):
    mine, other = OrderStore(handler), OrderStore(handler)
    oid = new(mine, "a#1").id
    other.apply(oid, OrderSent(db.utcnow()))          # mine still believes CREATED
    mine.apply(oid, OrderAccepted("B1", db.utcnow()))  # planned on CREATED: refused by the row, read, planned again
    assert row(handler, oid) == ("SENT_TO_BROKER", "B1", 0)
    other.apply(oid, OrderExecuted("complete", 10, None))
    with pytest.raises(IllegalTransition):              # the row is final now, whatever mine remembered
        mine.apply(oid, OrderAccepted("B2", db.utcnow()))
    assert row(handler, oid) == ("EXECUTED", "B1", 10)
    assert events(handler, oid) == [(None, "CREATED"), ("CREATED", "SENT_TO_BROKER"),
                                    ("SENT_TO_BROKER", "SENT_TO_BROKER"), ("SENT_TO_BROKER", "EXECUTED")]


def test_an_unknown_order_is_a_lookup_error(handler):
    with pytest.raises(LookupError):
        OrderStore(handler).apply(99, OrderSent(db.utcnow()))


def test_a_units_new_order_is_written_once_with_its_events(handler):
    store = OrderStore(handler)
    denied = handler.transaction("unit", lambda s: store.apply(new(store, "d#1", s), OrderDenied("X", "no"), s=s)
                                 and store.flush(s))
    assert denied is None and row(handler, 1) == ("FAILED", None, 0)

    def unit(s):
        o = new(store, "u#1", s)
        store.apply(o, OrderSent(db.utcnow()), s=s)
        assert o.id is None  # not written until the unit flushes
        store.flush(s)
        return o.id
    oid = handler.transaction("unit", unit)
    assert row(handler, oid) == ("SENT_TO_BROKER", None, 0)
    assert events(handler, oid) == [(None, "CREATED"), ("CREATED", "SENT_TO_BROKER")]
    store.apply(oid, OrderAccepted("B7", db.utcnow()))  # from what the unit wrote, no read
    assert row(handler, oid) == ("SENT_TO_BROKER", "B7", 0)


def test_a_rolled_back_unit_leaves_no_order_and_no_stale_belief(handler):
    store = OrderStore(handler)

    def unit(s):
        o = new(store, "r#1", s)
        store.apply(o, OrderSent(db.utcnow()), s=s)
        store.flush(s)
        raise RuntimeError("the decision failed after its order was written")
    with pytest.raises(RuntimeError):
        handler.transaction("unit", unit)
    assert handler.execute_sql("SELECT COUNT(*) FROM orders")[0][0] == 0
    oid = new(store, "r#2").id  # SQLite gives the id again: the store's view of it is the new row's
    store.apply(oid, OrderSent(db.utcnow()))
    assert row(handler, oid) == (S.SENT_TO_BROKER.value, None, 0)

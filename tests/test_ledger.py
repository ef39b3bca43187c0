"""The ledger on a real SQLite file: entries, partial fills averaging, partial and full exits with their charges,
reservations, the Fill row written with the books in one transaction, and a restart's load."""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

import db
from core.config import load_config
from core.enums import PositionSide
from execution.ledger import EntryFilled, ExitFilled, FillReading, Ledger
from execution.order_events import IllegalTransition, OrderSent
from execution.orders import OrderStore
from tests.db_rows import select_rows

ROOT = Path(__file__).resolve().parent.parent
DAY = date(2026, 11, 20)  # charged at the 2024-10-01 rates
START = Decimal("1000000")
FIVE = Decimal(5)


def make_ledger(tmp_path: Path) -> Ledger:
    h = db.DBHandler(db.initialize_database(f"sqlite:///{tmp_path / 'l.sqlite'}"))
    ledger = Ledger(h, DAY, START, load_config(ROOT / "config.yaml").costs.table)
    ledger.load()
    return ledger


def sent_order(ledger: Ledger, side: str, qty: int, purpose: str = "entry", trade_id: int | None = None) -> int:
    """An order handed to the broker (it may fill from then on); its id."""
    store = OrderStore(ledger.db)
    o = store.create(client_order_id=f"{purpose}-{side}-{qty}-{trade_id}", trading_date=DAY, symbol="SBIN",
                     side=side, purpose=purpose, quantity=qty, strategy_tag="daemon", trade_id=trade_id)
    store.apply(o.id, OrderSent(db.utcnow()))
    return o.id


def entry(qty: int, price: str, reading: FillReading | None = None, trade_id: int | None = None,
          side: PositionSide = PositionSide.LONG) -> EntryFilled:
    return EntryFilled(symbol="SBIN", side=side, quantity=qty, price=Decimal(price), time=1, margin_multiplier=FIVE,
                       strategy="orb", stop_loss=Decimal(490), reading=reading, trade_id=trade_id)


def fills(ledger: Ledger, order_id: int) -> list[tuple[int, int, Decimal]]:
    return [(f.cumulative_quantity, f.quantity, f.price) for f in select_rows(ledger.db, db.Fill, order_id=order_id)]


def test_an_entry_fill_opens_a_trade_and_writes_its_fill_row(tmp_path):
    ledger = make_ledger(tmp_path)
    oid = sent_order(ledger, "BUY", 100)
    t = ledger.entry(entry(100, "500", FillReading(oid, 100, Decimal(500))))
    assert (t.trade_id, t.remaining, t.entry_price, t.allocated) == (1, 100, Decimal(500), Decimal("10000.0000"))
    # 100 x 500 = Rs 50,000 bought: brokerage min(20, 0.03%) = 15; exchange 0.00297% + IPFT Rs 10/crore = 1.485 +
    # 0.05 -> 1.54; SEBI 0.05; stamp 0.003% = 1.50; GST 18% of (15 + 1.54 + 0.05) = 2.9862 -> 2.99
    assert t.charges.as_dict() == {"brokerage": Decimal("15.00"), "stt": 0, "exchange_txn": Decimal("1.54"),
                                   "sebi": Decimal("0.05"), "stamp_duty": Decimal("1.50"), "gst": Decimal("2.99")}
    assert fills(ledger, oid) == [(100, 100, Decimal(500))]
    (o,) = select_rows(ledger.db, db.Order, id=oid)
    assert (o.filled_quantity, o.average_price, o.trade_id) == (100, Decimal(500), 1)
    (row,) = select_rows(ledger.db, db.ActiveTrade)
    assert (row.trade_id, row.entry_order_id, row.costs) == (1, oid, t.costs)
    assert ledger.capital == START and ledger.available_capital == START - t.allocated  # margin, not money, moves
    assert ledger.prices["SBIN"] == Decimal(500)


def test_partial_entry_fills_average_and_pay_one_brokerage(tmp_path):
    ledger = make_ledger(tmp_path)
    oid = sent_order(ledger, "BUY", 100)
    t = ledger.entry(entry(30, "1000", FillReading(oid, 30, Decimal(1000))))
    assert t.charges.brokerage == Decimal("9.00")  # 0.03% of 30,000
    ledger.entry(entry(70, "1010", FillReading(oid, 100, Decimal(1007)), trade_id=t.trade_id))
    assert (t.quantity, t.remaining, t.entry_price) == (100, 100, Decimal("1007.0000"))
    assert t.allocated == Decimal("20140.0000")  # 100 x 1007 / 5
    # one order of 100 at the broker's average: brokerage min(20, 30.21) = 20 once, not 9 + 20
    assert t.charges == ledger.order_charges(True, 1007, 100) and t.charges.brokerage == Decimal("20.00")
    assert fills(ledger, oid) == [(30, 30, Decimal(1000)), (100, 70, Decimal(1010))]
    (row,) = select_rows(ledger.db, db.ActiveTrade)
    assert (row.position_size, row.entry_price, row.costs) == (100, Decimal(1007), t.costs)


def test_partial_and_full_exits_move_capital_by_net_pnl(tmp_path):
    ledger = make_ledger(tmp_path)
    t = ledger.entry(entry(100, "500"))
    eid = t.trade_id
    x1 = sent_order(ledger, "SELL", 40, "take_profit", eid)
    p = ledger.exit(ExitFilled(eid, 40, Decimal(510), 2, "take_profit", ledger.order_charges(False, 510, 40),
                               FillReading(x1, 40, Decimal(510))))
    # 40 x 510 = 20,400 sold: brokerage 6.12, STT 0.025% = 5.10, exchange 0.62628 -> 0.63, SEBI 0.02,
    # GST 18% of 6.77 = 1.2186 -> 1.22: 13.09; the entry's charges wait for the exit that closes the trade
    assert p is not None
    assert (p.gross, p.costs, p.net, p.full) == (Decimal("400.0000"), Decimal("13.0900"), Decimal("386.9100"), False)
    assert (t.remaining, t.allocated, t.realized_tp, t.closed_tp) == (60, Decimal("6000.0000"), p.net, 40)
    x2 = sent_order(ledger, "SELL", 60, "exit", eid)
    f = ledger.exit(ExitFilled(eid, 60, Decimal(495), 3, "signal", ledger.order_charges(False, 495, 60),
                               FillReading(x2, 60, Decimal(495))))
    # 60 x -5 = -300; 60 x 495 = 29,700 sold: brokerage 8.91, STT 7.425 -> 7.43, exchange 0.91179 -> 0.91,
    # SEBI 0.03, GST 18% of 9.85 = 1.773 -> 1.77: 19.05, plus the entry's 21.08 carried by the trade
    assert f is not None
    assert (f.gross, f.costs, f.full) == (Decimal("-300.0000"), Decimal("40.1300"), True)
    assert f.charges.total == f.costs and f.charges.stamp_duty == Decimal("1.50")
    assert ledger.capital == START + p.net + f.net == f.capital
    assert ledger.trades == {} and ledger.available_capital == ledger.capital
    logged = select_rows(ledger.db, db.TradeLog)
    assert [(r.trade_type, r.quantity, r.costs, r.net_pnl, r.exit_order_id) for r in logged] == [
        ("partial", 40, Decimal("13.09"), p.net, x1), ("full", 60, Decimal("40.13"), f.net, x2)]
    assert [c.capital for c in select_rows(ledger.db, db.CapitalLog)] == [START, START + p.net, ledger.capital]
    assert select_rows(ledger.db, db.ActiveTrade) == []
    assert fills(ledger, x1) == [(40, 40, Decimal(510))] and fills(ledger, x2) == [(60, 60, Decimal(495))]


def test_a_short_gains_when_the_price_falls(tmp_path):
    ledger = make_ledger(tmp_path)
    t = ledger.entry(entry(10, "200", side=PositionSide.SHORT))
    ledger.mark("SBIN", Decimal(190))
    assert ledger.unrealized_pnl() == Decimal(100)
    f = ledger.exit(ExitFilled(t.trade_id, 10, Decimal(190), 2, "signal"))
    assert f is not None and f.gross == Decimal(100) and f.net == Decimal(100) - t.costs


def test_reservations_hold_margin_until_released(tmp_path):
    ledger = make_ledger(tmp_path)
    ledger.reserve(7, Decimal("25000"))
    ledger.reserve(8, Decimal("5000"))
    assert ledger.available_capital == START - 30000 and ledger.capital == START
    ledger.release(7)
    ledger.release(7)  # releasing twice (a final status seen again) frees nothing more
    assert ledger.available_capital == START - 5000
    ledger.release(8)
    assert ledger.available_capital == START and ledger.reserved == {}


def test_a_fill_applied_twice_changes_nothing(tmp_path):
    """The database is written first: a reading already booked is refused there, and memory stays as it was."""
    ledger = make_ledger(tmp_path)
    oid = sent_order(ledger, "BUY", 100)
    t = ledger.entry(entry(40, "500", FillReading(oid, 40, Decimal(500))))
    before = (t.quantity, t.entry_price, t.allocated, t.charges)
    with pytest.raises(IllegalTransition):
        ledger.entry(entry(40, "500", FillReading(oid, 40, Decimal(500)), trade_id=t.trade_id))
    assert (t.quantity, t.entry_price, t.allocated, t.charges) == before
    (row,) = select_rows(ledger.db, db.ActiveTrade)
    assert row.position_size == 40 and fills(ledger, oid) == [(40, 40, Decimal(500))]


def test_an_exit_fill_of_a_closed_trade_is_recorded_and_books_nothing(tmp_path):
    ledger = make_ledger(tmp_path)
    t = ledger.entry(entry(10, "500"))
    assert ledger.exit(ExitFilled(t.trade_id, 10, Decimal(501), 2, "signal")) is not None
    capital = ledger.capital
    late = sent_order(ledger, "SELL", 10, "exit", t.trade_id)
    assert ledger.exit(ExitFilled(t.trade_id, 10, Decimal(502), 3, "signal", reading=FillReading(
        late, 10, Decimal(502)))) is None
    assert ledger.capital == capital and len(select_rows(ledger.db, db.TradeLog)) == 1
    assert fills(ledger, late) == [(10, 10, Decimal(502))]


def test_an_entry_that_fills_more_after_its_trade_closed_opens_a_new_trade(tmp_path):
    """A partly filled entry whose trade a forced exit closed can still fill: that quantity is held at the broker,
    so it is booked (a new trade, managed and squared off like any other), not an error retried forever."""
    ledger = make_ledger(tmp_path)
    oid = sent_order(ledger, "BUY", 100)
    t = ledger.entry(entry(40, "500", FillReading(oid, 40, Decimal(500))))
    assert ledger.exit(ExitFilled(t.trade_id, 40, Decimal(499), 2, "risk_halt")) is not None
    late = ledger.entry(entry(60, "501", FillReading(oid, 100, Decimal("500.6")), trade_id=t.trade_id))
    assert late.trade_id == t.trade_id + 1 and (late.remaining, late.entry_price) == (60, Decimal(501))
    assert set(ledger.trades) == {late.trade_id}
    assert fills(ledger, oid) == [(40, 40, Decimal(500)), (100, 60, Decimal(501))]


def test_a_restart_loads_the_books_and_continues_the_trade_ids(tmp_path):
    ledger = make_ledger(tmp_path)
    a = ledger.entry(entry(10, "500"))
    b = ledger.entry(entry(20, "300", side=PositionSide.SHORT))
    ledger.exit(ExitFilled(b.trade_id, 5, Decimal(299), 2, "take_profit"))
    ledger.exit(ExitFilled(a.trade_id, 10, Decimal(505), 3, "signal"))  # the highest id left is closed
    c = ledger.entry(entry(4, "100"))
    ledger.exit(ExitFilled(c.trade_id, 4, Decimal(101), 4, "signal"))
    again = Ledger(ledger.db, DAY, Decimal("1"), ledger.cost_table)  # the day's start comes from the database
    again.load()
    assert again.capital == ledger.capital and again.start_capital == START
    assert again.trades == ledger.trades  # every field, charges and take-profit progress included
    assert len(select_rows(ledger.db, db.CapitalLog, reason="start of day")) == 1  # recorded once a day
    assert again.entry(entry(1, "100")).trade_id == c.trade_id + 1  # never reuses a closed trade's id

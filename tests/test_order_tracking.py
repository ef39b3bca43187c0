"""Orders stay tracked (issue 12, item 5): a broker event whose application fails is applied later, in order;
after a restart a pending entry holds the margin it held before. The real TradeManager against a real paper
broker and a real database."""
from __future__ import annotations

import secrets
from decimal import Decimal

from sqlalchemy import create_engine, inspect, text

import db
from core.config import Secrets, load_config
from core.enums import OrderStatus, PositionSide, SignalType, TradingState
from core.types import Signal
from tests.conftest import wait_for
from tests.daemon_harness import short_day_config
from tests.paper_fixtures import DAY, FAST, Broker, T, q


def start_broker(tmp_path) -> Broker:
    b = Broker(tmp_path / "broker.sqlite", secrets.token_hex(16), args=FAST, log_file=tmp_path / "broker.log").start()
    b.admin().reset("replay", T(10))
    b.admin().push_market([q("SBIN", T(10), 600.0, 599.95, 600.05), q("INFY", T(10), 1500.0, 1499.9, 1500.1)],
                          clock=T(10))
    return b


def trade_manager(tmp_path, b: Broker, handler: db.DBHandler, url: str, threads: bool = True, **orders):
    """A paper-mode TradeManager whose broker threads run (unless `threads` is False), as the driver starts
    it (no workers)."""
    from trade_manager import TradeManager

    cfg = load_config(short_day_config(tmp_path, mode="paper", orders=orders))
    sec = Secrets(app_key=b.key, host_server=b.url, live_data=False, database_url=url, fyers_app_id=None,
                  fyers_access_token=None)
    tm = TradeManager(cfg, sec, handler, None, clock=None, replay=False, day=DAY)
    tm.rm.load()
    if threads:
        tm.io.start()
    return tm


def entry(symbol: str = "SBIN", price: float = 600.0) -> Signal:
    return Signal(symbol=symbol, time=int(T(10)), price=price, type=SignalType.ENTRY,
                  current_position=PositionSide.LONG, strategy="orb", stop_loss=price * 0.99)


def order_row(handler: db.DBHandler) -> tuple:
    return handler.execute_sql("SELECT id, status, broker_order_id, filled_quantity, reserved FROM orders")[0]


def test_an_acknowledgement_written_during_an_outage_is_applied_when_the_database_is_back(tmp_path, private_pg):
    """PostgreSQL stops just as the broker acknowledges an entry; writing the acknowledgement fails (the
    outage outlasts the handler's wait). The event is kept and applied once the server is back: the order is
    tracked, filled and final, and its signal answered (before, it was dropped and the symbol held forever)."""
    b = start_broker(tmp_path)
    h = db.DBHandler(db.initialize_database(private_pg.url), outage_s=0.5)
    tm = trade_manager(tmp_path, b, h, private_pg.url)
    try:
        tm.rm.set_state(TradingState.ACTIVE, "test")
        sig = entry()
        tm.process_signal(sig)
        assert len(tm.pending) == 1
        wait_for(lambda: tm.io.events.qsize() > 0, timeout=20, what="the broker's acknowledgement")
        private_pg.halt("fast")
        tm.poll()  # applying the acknowledgement fails: the database is gone for longer than outage_s
        assert len(tm.pending) == 1
        private_pg.start()

        def settled() -> bool:
            tm.poll()
            return not tm.pending
        wait_for(settled, timeout=60, interval=0.05, what="the order to be tracked and final")
        oid, status, broker_id, filled, reserved = order_row(h)
        assert status == OrderStatus.EXECUTED.value and broker_id and filled > 0
        assert tm.outcomes[sig.signal_id].status == "executed"
    finally:
        tm.stop()
        b.stop()
        db.dispose_engines()


def test_a_pending_entry_holds_its_margin_after_a_restart(tmp_path):
    """Two entries still open at the broker when the daemon stops: after the restart's reconciliation (their
    status read from one orderbook call) the available capital is what it was before the stop (before, each
    entry was re-reserved at zero)."""
    b = start_broker(tmp_path)
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    h = db.DBHandler(db.initialize_database(url))
    b.admin().set_faults(open_delay_s=60)  # the entry stays open at the broker meanwhile
    tm = trade_manager(tmp_path, b, h, url, fill_timeout_s=120)
    try:
        tm.rm.set_state(TradingState.ACTIVE, "test")
        tm.process_signal(entry())
        tm.process_signal(entry("INFY", 1500.0))

        def acknowledged() -> bool:
            tm.poll()
            return all(p.broker_order_id for p in tm.pending.values())
        wait_for(acknowledged, timeout=20, what="the acknowledgement")
        before = tm.rm.available_capital
        reserved = sum(Decimal(str(r[0])) for r in h.execute_sql("SELECT reserved FROM orders"))
        assert len(tm.pending) == 2 and before < tm.rm.capital and reserved == tm.rm.capital - before
    finally:
        tm.stop()
    tm2 = trade_manager(tmp_path, b, h, url, threads=False, fill_timeout_s=120)  # only reconciliation asks
    try:
        b.admin().requests_seen(clear=True)
        tm2.reconcile()
        assert len(tm2.pending) == 2
        assert b.admin().requests_seen()["total"] == 2  # one orderbook for both orders, one positionbook
        assert tm2.rm.available_capital == before
    finally:
        tm2.stop()
        b.admin().clear_faults()
        b.stop()
        db.dispose_engines()


def test_a_database_from_before_the_reserved_column_gets_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    db.initialize_database(url)
    db.dispose_engines()
    eng = create_engine(url)
    with eng.begin() as c:
        c.execute(text("ALTER TABLE orders DROP COLUMN reserved"))
    assert "reserved" not in {col["name"] for col in inspect(eng).get_columns("orders")}
    eng.dispose()
    db.initialize_database(url)
    db.dispose_engines()
    eng = create_engine(url)
    assert "reserved" in {col["name"] for col in inspect(eng).get_columns("orders")}
    eng.dispose()

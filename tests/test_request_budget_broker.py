"""The daemon's requests to a real paper broker stay within orders.broker_requests_per_s during a burst of
entries that stay open, counted by the broker as they arrive (issue 12, item 7)."""
from __future__ import annotations

import secrets

import db
from core.config import Secrets, load_config
from core.enums import PositionSide, SignalType, TradingState
from core.types import Signal
from tests.conftest import wait_for
from tests.daemon_harness import short_day_config
from tests.paper_fixtures import DAY, FAST, Broker, T, q

NAMES = [f"B{i:03d}" for i in range(50)]


def test_a_burst_of_50_open_orders_stays_within_the_request_budget(tmp_path):
    from trade_manager import TradeManager

    b = Broker(tmp_path / "broker.sqlite", secrets.token_hex(16), args=FAST, log_file=tmp_path / "broker.log").start()
    adm = b.admin()
    adm.reset("replay", T(10), funds=1e12)
    adm.push_market([q(n, T(10), 500.0, 499.95, 500.05) for n in NAMES], clock=T(10))
    adm.set_faults(open_delay_s=25)  # every order stays open at the broker for 25 s, then fills
    url = f"sqlite:///{tmp_path / 'b.sqlite'}"
    h = db.DBHandler(db.initialize_database(url))
    cfg = load_config(short_day_config(
        tmp_path, mode="paper", symbols=NAMES, orders={"broker_requests_per_s": 10, "poll_interval_s": 0.5},
        risk={"capital": 1e9, "max_allocation": 1e6, "max_active_trades": 100, "max_order_notional": 1e7,
              "cooldown_minutes": 0}))
    assert cfg.orders.broker_requests_per_s == 10
    sec = Secrets(app_key=b.key, host_server=b.url, live_data=False, database_url=url, fyers_app_id=None,
                  fyers_access_token=None)
    tm = TradeManager(cfg, sec, h, None, clock=None, replay=False, day=DAY)
    try:
        tm.rm.load()
        tm.io.start()
        tm.rm.set_state(TradingState.ACTIVE, "test")
        adm.requests_seen(clear=True)
        for n in NAMES:
            tm.process_signal(Signal(symbol=n, time=int(T(10)), price=500.0, type=SignalType.ENTRY,
                                     current_position=PositionSide.LONG, strategy="orb", stop_loss=495.0))
            tm.poll()
        assert len(tm.pending) == 50

        def all_filled() -> bool:
            tm.poll()
            return not tm.pending
        wait_for(all_filled, timeout=120, interval=0.01, what="50 entries acknowledged, followed and filled")
        seen = adm.requests_seen()
        assert len(tm.rm.active_trades) == 50  # the orderbook's fills applied as orderstatus's are
        assert seen["total"] >= 100  # 50 placements, 50 margin look-ups, the polls
        assert seen["max_per_s"] <= 10, seen
    finally:
        tm.stop()
        adm.clear_faults()
        b.stop()
        db.dispose_engines()

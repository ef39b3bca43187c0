"""Start-up reconciliation, case by case (issue 14): the real Reconciler, TradeManager and RiskManager on a
real SQLite database; the broker an in-process fake whose books each test sets (pure logic, no HTTP)."""
from __future__ import annotations

from decimal import Decimal

import pytest

import db
from core.enums import OutcomeStatus, PositionSide, SignalType, TradingState, UnknownPositionPolicy
from execution.commands import SubmitOrder
from execution.order_events import OrderAccepted
from execution.reconcile import Reconciler
from tests.fake_broker import info, paper_trade_manager, position, signal


@pytest.fixture
def url(tmp_path):
    yield f"sqlite:///{tmp_path / 'r.sqlite'}"
    db.dispose_engines()


def orders(tm) -> list[tuple]:
    return tm.db.execute_sql("SELECT id, status, failure_tag, broker_order_id, filled_quantity FROM orders "
                             "ORDER BY id")


def entry_sent(tmp_path, url, accepted: str | None = None):
    """A first run that decided an entry and handed it over (acknowledged as `accepted`), then stopped."""
    tm = paper_trade_manager(tmp_path, url)
    tm.rm.set_state(TradingState.ACTIVE, "test")
    tm.process_signal(signal(SignalType.ENTRY))
    (p,) = tm.pending.values()
    if accepted:
        tm.orders.apply(p.order_id, OrderAccepted(accepted, db.utcnow()))
    tm.stop()
    return p


def restarted(tmp_path, url, **sections):
    return paper_trade_manager(tmp_path, url, **sections)


def test_an_order_recorded_but_never_sent_is_failed(tmp_path, url):
    tm = paper_trade_manager(tmp_path, url)
    o = tm.orders.create(client_order_id="x#1", trading_date=tm.day, symbol="SBIN", exchange="NSE", side="BUY",
                         purpose="entry", quantity=10, product="MIS", price_type="MARKET", strategy_tag="daemon",
                         decision_time=1)
    tm2 = restarted(tmp_path, url)
    Reconciler(tm2).run()
    assert orders(tm2) == [(o.id, "FAILED", "RESTART_NEVER_SENT", None, 0)]
    assert not tm2.pending and not tm2.io.sent  # never sent again


def test_an_unanswered_placement_the_broker_never_got_is_failed_and_its_signal_answered(tmp_path, url):
    p = entry_sent(tmp_path, url)
    tm = restarted(tmp_path, url)
    tm.gateway.found = []
    told = []
    tm.set_notify(lambda sym, msg: told.append(msg))
    Reconciler(tm).run()
    assert orders(tm) == [(p.order_id, "FAILED", "RESTART_NOT_AT_BROKER", None, 0)]
    assert [(o.status, o.note) for o in told if hasattr(o, "status")] == [(OutcomeStatus.FAILED, "FAILED")]
    assert tm.rm.available_capital == tm.rm.capital  # its margin is released
    assert not any(isinstance(c, SubmitOrder) for c in tm.io.sent)


def test_an_unanswered_placement_found_in_the_orderbook_is_adopted_and_its_fill_applied_once(tmp_path, url):
    p = entry_sent(tmp_path, url)
    tm = restarted(tmp_path, url)
    filled = info("B7", "complete", p.quantity, 600.5, quantity=p.quantity)
    tm.gateway.found = [filled]
    tm.gateway.orders = {"B7": filled}
    Reconciler(tm).run()
    assert orders(tm) == [(p.order_id, "EXECUTED", None, "B7", p.quantity)]
    (trade,) = tm.rm.active_trades.values()
    assert (trade.remaining, trade.entry_price) == (p.quantity, Decimal("600.5"))
    tm3 = restarted(tmp_path, url)  # a second restart finds nothing to do: the fill is not applied again
    tm3.gateway.positions = [position("SBIN", p.quantity, 600.5)]
    Reconciler(tm3).run()
    assert len(tm3.rm.active_trades) == 1 and tm3.db.execute_sql("SELECT COUNT(*) FROM fills")[0][0] == 1


def test_an_acknowledged_order_still_open_is_followed_again_with_its_margin(tmp_path, url):
    p = entry_sent(tmp_path, url, accepted="B1")
    tm = restarted(tmp_path, url)
    tm.gateway.orders = {"B1": info("B1", "open", 0, 0.0, quantity=p.quantity)}
    Reconciler(tm).run()
    assert list(tm.pending) == [p.order_id] and tm.io.tracked == {p.order_id: "B1"}
    assert tm.rm.available_capital < tm.rm.capital  # the pending entry holds its margin again
    assert orders(tm)[0][1] == "OPEN"


def test_fills_made_while_down_are_applied_once(tmp_path, url):
    p = entry_sent(tmp_path, url, accepted="B1")
    tm = restarted(tmp_path, url)
    tm.gateway.orders = {"B1": info("B1", "open", 4, 600.0, quantity=p.quantity)}
    Reconciler(tm).run()
    (trade,) = tm.rm.active_trades.values()
    assert trade.remaining == 4 and orders(tm)[0][1:] == ("PARTIALLY_FILLED", None, "B1", 4)
    tm2 = restarted(tmp_path, url)  # the same reading again after another restart
    tm2.gateway.orders = dict(tm.gateway.orders)
    tm2.gateway.positions = [position("SBIN", 4, 600.0)]
    Reconciler(tm2).run()
    assert [t.remaining for t in tm2.rm.active_trades.values()] == [4]
    assert tm2.db.execute_sql("SELECT COUNT(*) FROM fills")[0][0] == 1


@pytest.mark.parametrize("policy", list(UnknownPositionPolicy))
def test_a_position_the_database_does_not_know(tmp_path, url, policy):
    tm = paper_trade_manager(tmp_path, url, reconcile={"unknown_position_policy": policy.value})
    tm.gateway.positions = [position("INFY", 20, 1500.0)]
    Reconciler(tm).run()
    if policy is UnknownPositionPolicy.HALT:
        assert not tm.rm.active_trades and "position mismatch" in (tm.rm.halted_earlier or "")
        return
    (trade,) = tm.rm.active_trades.values()
    assert (trade.symbol, trade.side, trade.remaining, trade.strategy) == ("INFY", PositionSide.LONG, 20, "adopted")
    exits = [c for c in tm.io.sent if isinstance(c, SubmitOrder)]
    if policy is UnknownPositionPolicy.FLATTEN:
        assert [(c.symbol, c.action, c.quantity) for c in exits] == [("INFY", "SELL", 20)]
    else:
        assert exits == []


def test_a_trade_the_broker_does_not_hold_is_closed_in_the_books(tmp_path, url):
    p = entry_sent(tmp_path, url, accepted="B1")
    tm = restarted(tmp_path, url)
    tm.gateway.orders = {"B1": info("B1", "complete", p.quantity, 600.0, quantity=p.quantity)}
    Reconciler(tm).run()
    assert len(tm.rm.active_trades) == 1
    tm2 = restarted(tmp_path, url, reconcile={"unknown_position_policy": "adopt"})
    tm2.gateway.positions = []  # flat at the broker
    Reconciler(tm2).run()
    assert not tm2.rm.active_trades
    (reason,) = tm2.db.execute_sql("SELECT exit_reason FROM trade_log")[0]
    assert reason == "reconciliation"


def test_an_unreadable_positionbook_keeps_trading_halted(tmp_path, url):
    tm = paper_trade_manager(tmp_path, url)
    tm.gateway.positions = None
    Reconciler(tm).run()
    assert "could not be read" in (tm.rm.halted_earlier or "")


def test_a_signal_whose_orders_ended_before_its_outcome_was_recorded_is_settled(tmp_path, url):
    p = entry_sent(tmp_path, url, accepted="B1")
    tm = paper_trade_manager(tmp_path, url)
    tm.pending[p.order_id] = p
    tm.gateway.orders = {"B1": info("B1", "rejected", 0, 0.0, quantity=p.quantity)}
    tm.set_notify(lambda sym, msg: None)
    tm._unit = lambda what, fn: None  # the outcome write is lost (a crash between the two)
    from execution.broker_io import StatusSeen
    from gateway.results import Ok
    tm.io.events.put(StatusSeen(p.order_id, Ok(tm.gateway.orders["B1"], {})))
    tm.poll()
    assert tm.db.execute_sql("SELECT outcome FROM stock_signals")[0][0] is None
    tm2 = restarted(tmp_path, url)
    Reconciler(tm2).run()
    sid = signal(SignalType.ENTRY).signal_id
    assert tm2.db.execute_sql("SELECT outcome, outcome_note FROM stock_signals")[0] == (
        "failed", f"settled at restart from order {p.order_id} (REJECTED)")
    assert tm2.outcomes[sid].status is OutcomeStatus.FAILED


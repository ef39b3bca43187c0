"""Start-up reconciliation, case by case (issue 14). First the Reconciler alone, as pure logic: rows built in
memory, the broker an in-process fake whose books each test sets, and the test reads the findings it emits.
Then the same cases applied by the real TradeManager and RiskManager on a real SQLite database."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

import db
from core.enums import OutcomeStatus, PositionSide, SignalType, TradingState, UnknownPositionPolicy
from execution.broker_io import StatusSeen
from execution.commands import SubmitOrder
from execution.order_events import OrderAccepted
from execution.reconcile import HeldTrade, Reconciler, RestartRecords
from execution.reconcile_events import (
    HaltHeld,
    OrderFoundAtBroker,
    OrderLookupUnanswered,
    OrderNeverSent,
    OrderNotAtBroker,
    OrderResumed,
    OrdersCounted,
    PositionAdopted,
    PositionMismatch,
    PositionsUnread,
    SignalAnswered,
    SignalSettled,
    TradeClosedInBooks,
    findings,
)
from gateway.results import Ok, PositionInfo, Unavailable
from tests.fake_broker import FakeGateway, info, paper_trade_manager, position, signal
from tests.paper_fixtures import DAY, T

# ---------------------------------------------------------------- the Reconciler alone: what it emits

ENTRY = signal(SignalType.ENTRY)
EXIT = signal(SignalType.EXIT, minute=20)


def row(oid: int, status: str = "SENT_TO_BROKER", broker: str | None = None, purpose: str = "entry",
        side: str = "BUY", qty: int = 10, symbol: str = "SBIN", sig: Any = ENTRY, filled: int = 0,
        attempt: int = 1) -> db.Order:
    """An order row as the database would give it back (never stored: the Reconciler only reads)."""
    base = sig.signal_id if sig is not None else f"{purpose}:{symbol}:{oid}"
    return db.Order(id=oid, client_order_id=f"{base}#{attempt}", signal_id=sig.signal_id if sig else None,
                    trade_id=None, trading_date=DAY, symbol=symbol, exchange="NSE", side=side, purpose=purpose,
                    quantity=qty, product="MIS", price_type="MARKET", price=Decimal(600), strategy_tag="daemon",
                    status=status, broker_order_id=broker, filled_quantity=filled, average_price=None,
                    decision_time=int(T(10)), reserved=None, created_at=datetime.now(UTC),
                    sent_at=None if status == "CREATED" else datetime.now(UTC))


def signal_row(sig: Any = ENTRY, outcome: str | None = None, note: str | None = None) -> db.StockSignal:
    return db.StockSignal(**sig.to_row(), outcome=outcome, outcome_note=note)


def reconciler(gw: FakeGateway, working: list[db.Order], signals: list[db.StockSignal] | None = None,
               orders: list[db.Order] | None = None, replay: bool = False) -> Reconciler:
    known = [o.broker_order_id for o in working if o.broker_order_id]
    sigs = [signal_row()] if signals is None else signals
    return Reconciler(RestartRecords(sigs, working if orders is None else orders, working, known), gw, "daemon",
                      replay)


def test_pure_an_order_recorded_but_never_sent_is_failed_without_asking_the_broker():
    gw = FakeGateway()
    assert reconciler(gw, [row(1, status="CREATED")]).orders() == [OrderNeverSent(1, "BUY", 10, "SBIN")]
    assert gw.calls == []


def test_pure_an_unanswered_placement_the_broker_never_got_is_not_at_broker():
    gw = FakeGateway()
    gw.found = []
    o = row(1)
    assert reconciler(gw, [o]).orders() == [OrderResumed(o, ENTRY), OrderNotAtBroker(1, "BUY", 10, "SBIN")]
    assert gw.calls == ["find_order"]  # and its status is not asked: there is nothing to ask about


def test_pure_an_unanswered_placement_found_in_the_orderbook_is_adopted_and_its_status_read():
    gw = FakeGateway()
    filled = info("B7", "complete", 10, 600.5)
    gw.found, gw.orders = [filled], {"B7": filled}
    o = row(1)
    events = reconciler(gw, [o, row(2, status="CREATED")]).orders()
    assert events == [OrderResumed(o, ENTRY), OrderFoundAtBroker(1, "BUY", 10, "SBIN", "B7"),
                      StatusSeen(1, Ok(filled, {})), OrderNeverSent(2, "BUY", 10, "SBIN")]
    assert findings(events) == ["order 1 (BUY 10 SBIN) found at the broker as B7: adopted",
                                "order 2 (BUY 10 SBIN) was never sent: failed"]


def test_pure_a_broker_order_adopted_once_is_not_adopted_again_for_the_next_order():
    gw = FakeGateway()
    gw.found = [info("B7", "open")]
    gw.orders = {"B1": info("B1", "open"), "B7": info("B7", "open")}
    reconciler(gw, [row(1, broker="B1"), row(2), row(3)]).orders()
    assert [a["exclude_broker_ids"] for a in gw.asked] == [["B1"], ["B1", "B7"]]


def test_pure_an_unreadable_orderbook_leaves_the_placement_unresolved_for_a_later_lookup():
    gw = FakeGateway()
    gw.found = None
    o = row(1)
    events = reconciler(gw, [o]).orders()
    assert events == [OrderResumed(o, ENTRY), OrderLookupUnanswered(1, Unavailable("down"))]
    assert "the orderbook could not be read" in findings(events)[0]


def test_pure_fills_made_while_down_come_from_one_orderbook_read_for_several_orders():
    gw = FakeGateway()
    gw.orders = {"B1": info("B1", "open", 4, 600.0), "B2": info("B2", "complete", 10, 0.0)}  # B2: no price
    a, b = row(1, broker="B1"), row(2, broker="B2", symbol="INFY", sig=None)
    events = reconciler(gw, [a, b]).orders()
    assert events == [OrderResumed(a, ENTRY), StatusSeen(1, Ok(gw.orders["B1"], gw.orders["B1"].raw)),
                      OrderResumed(b, None), StatusSeen(2, Ok(gw.orders["B2"], {}))]
    assert gw.calls == ["orderbook", "orderstatus B2"]  # a fill without its price is asked for alone
    assert findings(events) == []


def test_pure_an_unreadable_orderbook_means_one_status_request_per_order():
    gw = FakeGateway()
    gw.orders = {"B1": info("B1", "open"), "B2": info("B2", "open")}
    gw.book_down = True
    reconciler(gw, [row(1, broker="B1"), row(2, broker="B2")]).orders()
    assert gw.calls == ["orderbook", "orderstatus B1", "orderstatus B2"]


def test_pure_an_exit_order_whose_signal_was_an_entry_is_followed_as_a_forced_exit():
    gw = FakeGateway()
    gw.orders = {"B1": info("B1", "open", side="SELL")}
    o = row(1, broker="B1", purpose="exit", side="SELL")
    resumed = reconciler(gw, [o]).orders()[0]
    assert isinstance(resumed, OrderResumed) and resumed.signal == ENTRY.replace(forced=True)


def test_pure_a_signal_whose_orders_ended_before_its_outcome_was_recorded_is_settled():
    rows = [signal_row(ENTRY), signal_row(EXIT), signal_row(signal(SignalType.ENTRY, "INFY"), "executed", "filled 5")]
    orders = [row(1, status="REJECTED", sig=ENTRY, attempt=1), row(2, status="EXECUTED", sig=ENTRY, attempt=2,
                                                                     filled=10),
              row(3, status="CANCELLED", purpose="exit", side="SELL", sig=EXIT, filled=4)]
    events = reconciler(FakeGateway(), [], rows, orders).signals()
    assert events == [
        SignalSettled(ENTRY.signal_id, OutcomeStatus.EXECUTED, 2, "EXECUTED"),  # the last order says
        SignalSettled(EXIT.signal_id, OutcomeStatus.INCOMPLETE, 3, "CANCELLED"),
        SignalAnswered(db_outcome(ENTRY, "executed", "settled at restart from order 2 (EXECUTED)")),
        SignalAnswered(db_outcome(EXIT, "incomplete", "settled at restart from order 3 (CANCELLED)")),
        SignalAnswered(db_outcome(signal(SignalType.ENTRY, "INFY"), "executed", "filled 5")),
        OrdersCounted(ENTRY.signal_id, 2), OrdersCounted(EXIT.signal_id, 1)]
    assert findings(events)[0] == f"signal {ENTRY.signal_id} had no recorded outcome; its orders say executed"


def test_pure_a_signal_with_an_order_still_working_or_none_is_not_settled():
    rows = [signal_row(ENTRY), signal_row(EXIT)]
    events = reconciler(FakeGateway(), [], rows, [row(1, status="OPEN", sig=ENTRY, filled=3)]).signals()
    assert events == [OrdersCounted(ENTRY.signal_id, 1)]


def test_pure_an_entry_that_never_filled_settles_as_failed():
    events = reconciler(FakeGateway(), [], [signal_row()], [row(1, status="CANCELLED")]).signals()
    assert events[0] == SignalSettled(ENTRY.signal_id, OutcomeStatus.FAILED, 1, "CANCELLED")


def db_outcome(sig: Any, status: str, note: str) -> Any:
    from pipeline.messages import Outcome

    return Outcome(sig.signal_id, sig.symbol, sig.type.value, OutcomeStatus(status), note=note)


def positions(gw: FakeGateway, held: list[HeldTrade], policy: UnknownPositionPolicy,
              working: frozenset[str] = frozenset()) -> list[Any]:
    return reconciler(gw, []).positions(held, working, "MIS", "NSE", policy)


@pytest.mark.parametrize("policy", list(UnknownPositionPolicy))
def test_pure_each_policy_for_a_position_the_database_does_not_know(policy):
    gw = FakeGateway()
    gw.positions = [position("INFY", -20, 1500.0)]
    events = positions(gw, [], policy)
    mismatch = PositionMismatch("INFY", -20, 0, 1500.0, policy)
    if policy is UnknownPositionPolicy.HALT:
        assert events == [mismatch, HaltHeld("reconciliation: position mismatch (INFY: broker holds -20, database "
                                             "+0)", replace=True)]
        assert findings(events) == ["INFY: broker holds -20, database +0: trading halted until resolved by hand"]
    else:
        flatten = policy is UnknownPositionPolicy.FLATTEN
        assert events == [mismatch, PositionAdopted("INFY", PositionSide.SHORT, 20, 1500.0, flatten)]
        assert ("flattened" in findings(events)[0]) is flatten


@pytest.mark.parametrize("policy", list(UnknownPositionPolicy))
def test_pure_each_policy_for_a_trade_the_broker_holds_otherwise(policy):
    gw = FakeGateway()
    gw.positions = [position("SBIN", 4, 601.0)]
    held = [HeldTrade(7, "SBIN", PositionSide.LONG, 6), HeldTrade(8, "INFY", PositionSide.LONG, 5)]
    events = positions(gw, held, policy)
    if policy is UnknownPositionPolicy.HALT:
        assert [type(e) for e in events] == [PositionMismatch, HaltHeld, PositionMismatch, HaltHeld]
        return
    flatten = policy is UnknownPositionPolicy.FLATTEN
    assert events == [PositionMismatch("INFY", 0, 5, None, policy), TradeClosedInBooks(8, "INFY", 5),
                      PositionMismatch("SBIN", 4, 6, 601.0, policy), TradeClosedInBooks(7, "SBIN", 6),
                      PositionAdopted("SBIN", PositionSide.LONG, 4, 601.0, flatten)]
    assert findings(events)[0] == "INFY: broker holds +0, database +5: the database's trade is closed at the last " \
                                  "known price"


def test_pure_positions_that_agree_or_have_an_order_working_or_are_another_product_are_left_alone():
    gw = FakeGateway()
    gw.positions = [position("SBIN", 10, 600.0), position("INFY", 5, 1500.0), position("ITC", 0, 400.0),
                    PositionInfo.from_raw({"symbol": "TCS", "exchange": "NSE", "product": "CNC", "quantity": 3}),
                    PositionInfo.from_raw({"symbol": "TCS", "exchange": "BSE", "product": "MIS", "quantity": 3})]
    held = [HeldTrade(1, "SBIN", PositionSide.LONG, 10)]
    assert positions(gw, held, UnknownPositionPolicy.HALT, working=frozenset({"INFY"})) == []


def test_pure_option_contracts_on_nfo_are_compared_only_when_options_are_traded():
    gw = FakeGateway()
    ce = "NIFTY23NOV2626000CE"
    gw.positions = [PositionInfo.from_raw({"symbol": ce, "exchange": "NFO", "product": "MIS", "quantity": 130,
                                           "average_price": 120.5}),
                    PositionInfo.from_raw({"symbol": "SBIN", "exchange": "NFO", "product": "MIS", "quantity": 3})]
    held = [HeldTrade(3, ce, PositionSide.LONG, 130)]
    # with options traded, the contract held on NFO agrees with the trade; a non-option NFO row is not ours
    assert reconciler(gw, []).positions(held, frozenset(), "MIS", "NSE", UnknownPositionPolicy.HALT, "NFO") == []
    # a contract the database does not know is found like any other position
    unknown = reconciler(gw, []).positions([], frozenset(), "MIS", "NSE", UnknownPositionPolicy.ADOPT, "NFO")
    assert unknown == [PositionMismatch(ce, 130, 0, 120.5, UnknownPositionPolicy.ADOPT),
                       PositionAdopted(ce, PositionSide.LONG, 130, 120.5, False)]
    # without options, NFO is another exchange: left alone, as before
    assert positions(gw, [], UnknownPositionPolicy.HALT) == []


def test_pure_an_unreadable_positionbook_keeps_trading_halted():
    gw = FakeGateway()
    gw.positions = None
    events = positions(gw, [HeldTrade(1, "SBIN", PositionSide.LONG, 10)], UnknownPositionPolicy.ADOPT)
    assert events == [PositionsUnread(Unavailable("down")),
                      HaltHeld("reconciliation: the broker's positions could not be read")]
    assert findings(events) == ["positionbook unreadable (Unavailable(reason='down')); positions not checked: "
                                "trading stays halted"]


# ---------------------------------------------------------------- applied by the TradeManager


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
    tm2.reconcile()
    assert orders(tm2) == [(o.id, "FAILED", "RESTART_NEVER_SENT", None, 0)]
    assert not tm2.pending and not tm2.io.sent  # never sent again


def test_an_unanswered_placement_the_broker_never_got_is_failed_and_its_signal_answered(tmp_path, url):
    p = entry_sent(tmp_path, url)
    tm = restarted(tmp_path, url)
    tm.gateway.found = []
    told = []
    tm.set_notify(lambda sym, msg: told.append(msg))
    tm.reconcile()
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
    tm.reconcile()
    assert orders(tm) == [(p.order_id, "EXECUTED", None, "B7", p.quantity)]
    (trade,) = tm.rm.active_trades.values()
    assert (trade.remaining, trade.entry_price) == (p.quantity, Decimal("600.5"))
    tm3 = restarted(tmp_path, url)  # a second restart finds nothing to do: the fill is not applied again
    tm3.gateway.positions = [position("SBIN", p.quantity, 600.5)]
    tm3.reconcile()
    assert len(tm3.rm.active_trades) == 1 and tm3.db.execute_sql("SELECT COUNT(*) FROM fills")[0][0] == 1


def test_an_acknowledged_order_still_open_is_followed_again_with_its_margin(tmp_path, url):
    p = entry_sent(tmp_path, url, accepted="B1")
    tm = restarted(tmp_path, url)
    tm.gateway.orders = {"B1": info("B1", "open", 0, 0.0, quantity=p.quantity)}
    tm.reconcile()
    assert list(tm.pending) == [p.order_id] and tm.io.tracked == {p.order_id: "B1"}
    assert tm.rm.available_capital < tm.rm.capital  # the pending entry holds its margin again
    assert orders(tm)[0][1] == "OPEN"


def test_fills_made_while_down_are_applied_once(tmp_path, url):
    p = entry_sent(tmp_path, url, accepted="B1")
    tm = restarted(tmp_path, url)
    tm.gateway.orders = {"B1": info("B1", "open", 4, 600.0, quantity=p.quantity)}
    tm.reconcile()
    (trade,) = tm.rm.active_trades.values()
    assert trade.remaining == 4 and orders(tm)[0][1:] == ("PARTIALLY_FILLED", None, "B1", 4)
    tm2 = restarted(tmp_path, url)  # the same reading again after another restart
    tm2.gateway.orders = dict(tm.gateway.orders)
    tm2.gateway.positions = [position("SBIN", 4, 600.0)]
    tm2.reconcile()
    assert [t.remaining for t in tm2.rm.active_trades.values()] == [4]
    assert tm2.db.execute_sql("SELECT COUNT(*) FROM fills")[0][0] == 1


@pytest.mark.parametrize("policy", list(UnknownPositionPolicy))
def test_a_position_the_database_does_not_know(tmp_path, url, policy):
    tm = paper_trade_manager(tmp_path, url, reconcile={"unknown_position_policy": policy.value})
    tm.gateway.positions = [position("INFY", 20, 1500.0)]
    tm.reconcile()
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
    tm.reconcile()
    assert len(tm.rm.active_trades) == 1
    tm2 = restarted(tmp_path, url, reconcile={"unknown_position_policy": "adopt"})
    tm2.gateway.positions = []  # flat at the broker
    tm2.reconcile()
    assert not tm2.rm.active_trades
    (reason,) = tm2.db.execute_sql("SELECT exit_reason FROM trade_log")[0]
    assert reason == "reconciliation"


def test_an_unreadable_positionbook_keeps_trading_halted(tmp_path, url):
    tm = paper_trade_manager(tmp_path, url)
    tm.gateway.positions = None
    tm.reconcile()
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
    tm2.reconcile()
    sid = signal(SignalType.ENTRY).signal_id
    assert tm2.db.execute_sql("SELECT outcome, outcome_note FROM stock_signals")[0] == (
        "failed", f"settled at restart from order {p.order_id} (REJECTED)")
    assert tm2.outcomes[sid].status is OutcomeStatus.FAILED



def test_an_unanswered_placement_whose_lookup_failed_is_looked_up_again_not_sent(tmp_path, url):
    p = entry_sent(tmp_path, url)
    tm = restarted(tmp_path, url)
    tm.gateway.found = None  # the orderbook cannot be read
    tm.reconcile()
    (q,) = tm.pending.values()
    assert (q.order_id, q.lookups, q.broker_order_id) == (p.order_id, 1, None) and not tm.io.tracked
    assert orders(tm) == [(p.order_id, "SENT_TO_BROKER", None, None, 0)]
    assert tm.rm.available_capital < tm.rm.capital  # its margin stays held until the lookup says
    assert not any(isinstance(c, SubmitOrder) for c in tm.io.sent)


def test_flatten_closes_the_books_trade_then_adopts_and_exits_what_the_broker_holds(tmp_path, url):
    p = entry_sent(tmp_path, url, accepted="B1")
    tm = restarted(tmp_path, url)
    tm.gateway.orders = {"B1": info("B1", "complete", p.quantity, 600.0, quantity=p.quantity)}
    tm.reconcile()
    (first,) = tm.rm.active_trades.values()
    tm2 = restarted(tmp_path, url, reconcile={"unknown_position_policy": "flatten"})
    tm2.gateway.positions = [position("SBIN", 3, 601.0)]  # the broker holds less than the books say
    tm2.reconcile()
    (adopted,) = tm2.rm.active_trades.values()
    assert adopted.trade_id != first.trade_id and (adopted.strategy, adopted.remaining) == ("adopted", 3)
    assert tm2.db.execute_sql("SELECT trade_id, exit_reason FROM trade_log") == [(first.trade_id, "reconciliation")]
    assert [(c.symbol, c.action, c.quantity) for c in tm2.io.sent if isinstance(c, SubmitOrder)] == [
        ("SBIN", "SELL", 3)]
    assert "position mismatch" not in (tm2.rm.halted_earlier or "")

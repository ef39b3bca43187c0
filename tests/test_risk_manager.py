"""RiskManager on a real (SQLite) database: sizing, the Approved/Denied value of every pre-trade check, the
global caps, and the trading state as one row."""
from __future__ import annotations

import copy
import dataclasses
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

import db
from core.config import parse_config
from core.enums import PositionSide, TradingState
from execution.ledger import D, EntryFilled, ExitFilled
from risk_manager import Approved, Denied, RiskManager

ROOT = Path(__file__).resolve().parent.parent
DAY = date(2026, 11, 20)


def make_rm(tmp_path, **risk) -> RiskManager:
    raw = copy.deepcopy(yaml.safe_load((ROOT / "config.yaml").read_text()))
    raw["risk"].update(risk)
    cfg = parse_config(raw)
    handler = db.DBHandler(db.initialize_database(f"sqlite:///{tmp_path / 'r.sqlite'}"))
    rm = RiskManager(cfg, handler, DAY)
    rm.load()
    rm.set_state(TradingState.ACTIVE, "test")
    return rm


def open_trade(rm: RiskManager, symbol: str, side: PositionSide, quantity: int, price, time: int = 1,
               stop_loss=None) -> int:
    """A trade opened in the ledger the way the TradeManager books an entry fill (no order behind it)."""
    return rm.ledger.entry(EntryFilled(symbol=symbol, side=side, quantity=quantity, price=D(price), time=time,
                                       margin_multiplier=rm.margin_for(symbol), strategy="orb",
                                       stop_loss=None if stop_loss is None else D(stop_loss))).trade_id


def test_position_size_is_the_smallest_of_risk_affordability_and_caps(tmp_path):
    rm = make_rm(tmp_path, capital=1_000_000, risk_per_trade=0.01, max_allocation=200_000, margin_multiplier=5,
                 max_order_notional=1_000_000)
    # risk: 10,000 / 2 = 5,000 units; allocation cap: 200,000 / (100/5) = 10,000; notional: 10,000
    assert rm.calculate_position_size(100, 98, Decimal(5), "SBIN") == 5000
    # a wide stop: risk 10,000 / 20 = 500
    assert rm.calculate_position_size(100, 80, Decimal(5), "SBIN") == 500
    assert rm.calculate_position_size(100, 100, Decimal(5), "SBIN") == 0
    assert rm.assess_trade("SBIN", 100, 100, now=0) == Denied("RISK_ZERO_UNITS", "zero units calculated")
    assert rm.assess_trade("SBIN", 100, 98, now=0) == Approved(5000, Decimal("100000.0000"))


def test_each_check_denies_with_its_own_tag(tmp_path):
    rm = make_rm(tmp_path, capital=1_000_000, risk_per_trade=0.01, max_allocation=200_000, margin_multiplier=5,
                 max_order_notional=1_000_000, max_active_trades=2, max_cost_share_of_risk=None, cooldown_minutes=5)
    a = rm.assess_trade("SBIN", 100, None, now=0)
    assert a == Denied("RISK_NO_STOP", "signal has no stop loss to size from") and (a.units, a.allocated) == (0, 0)
    # two entries pending fill the active-trade slots: sized, then refused, with the sizing kept for the order row
    a = rm.assess_trade("SBIN", 100, 98, now=0, pending_entries=2)
    assert a == Denied("RISK_MAX_ACTIVE_TRADES", "max active trades reached", 5000, Decimal("100000.0000"))
    # margin held by pending entries shrinks what the next entry may have, down to nothing
    rm.ledger.reserve(1, Decimal("950000"))
    assert rm.assess_trade("SBIN", 100, 98, now=0) == Approved(2500, Decimal("50000.0000"))
    rm.ledger.reserve(2, Decimal("50000"))
    assert rm.assess_trade("SBIN", 100, 98, now=0) == Denied("RISK_ZERO_UNITS", "zero units calculated")
    rm.ledger.release(1)
    rm.ledger.release(2)
    assert isinstance(rm.assess_trade("SBIN", 100, 98, now=0), Approved)
    # a losing full exit cools the symbol down; other symbols trade on
    tid = open_trade(rm, "SBIN", PositionSide.LONG, 10, 100)
    ex = rm.ledger.exit(ExitFilled(tid, 10, Decimal(99), 1000, "signal"))
    assert ex is not None
    rm.note_exit(ex, 1000)
    a = rm.assess_trade("SBIN", 100, 98, now=1100)
    assert isinstance(a, Denied) and a.tag == "RISK_COOLDOWN" and "200s more" in a.reason
    assert isinstance(rm.assess_trade("SBIN", 100, 98, now=1300), Approved)
    assert isinstance(rm.assess_trade("INFY", 100, 98, now=1100), Approved)
    rm.set_state(TradingState.REDUCING, "entry cut-off")
    assert rm.assess_trade("INFY", 100, 98, now=0) == Denied("RISK_TRADING_REDUCING",
                                                             "trading REDUCING: entry cut-off")


def test_the_refusal_while_not_active_follows_the_state_and_its_reason(tmp_path):
    """One refusal value is kept per state and reason (a halted day refuses every signal with it): a new reason, a
    new state, or trading active again is never answered with the kept one."""
    rm = make_rm(tmp_path, max_cost_share_of_risk=None)
    rm.set_state(TradingState.HALTED, "risk: drawdown 1.50%")
    first = rm.assess_trade("SBIN", 100, 98, now=0)
    assert first == Denied("RISK_TRADING_HALTED", "trading HALTED: risk: drawdown 1.50%")
    assert rm.assess_trade("INFY", 50, 49, now=5) is first
    rm.set_state(TradingState.HALTED, "risk: daily loss limit reached")
    assert rm.assess_trade("SBIN", 100, 98, now=0) == Denied("RISK_TRADING_HALTED",
                                                             "trading HALTED: risk: daily loss limit reached")
    rm.set_state(TradingState.REDUCING, "risk: daily loss limit reached")
    assert rm.assess_trade("SBIN", 100, 98, now=0) == Denied("RISK_TRADING_REDUCING",
                                                             "trading REDUCING: risk: daily loss limit reached")
    rm.set_state(TradingState.ACTIVE, "resumed")
    assert isinstance(rm.assess_trade("SBIN", 100, 98, now=0), Approved)
    rm.set_state(TradingState.HALTED, "risk: drawdown 1.50%")
    assert rm.assess_trade("SBIN", 100, 98, now=0) == first


def test_sizing_stays_under_the_notional_cap_and_the_answer_is_frozen(tmp_path):
    # risk and margin would allow 50,000 units; the notional cap (Rs 50,000 at Rs 100) allows 500
    rm = make_rm(tmp_path, capital=1_000_000, risk_per_trade=0.05, max_allocation=1_000_000, margin_multiplier=5,
                 max_order_notional=50_000, max_cost_share_of_risk=None)
    a = rm.assess_trade("SBIN", 100, 99, now=0)
    assert a == Approved(500, Decimal("10000.0000"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.units = 1


def test_entry_partial_and_full_exit_move_capital_and_start_a_cooldown(tmp_path):
    rm = make_rm(tmp_path)
    start = rm.capital
    tid = open_trade(rm, "SBIN", PositionSide.LONG, 100, 500, stop_loss=490)
    p = rm.ledger.exit(ExitFilled(tid, 40, Decimal(510), 2, "take_profit", rm.order_charges(False, 510, 40)))
    assert p is not None and not p.full
    rm.note_exit(p, 2)
    assert "SBIN" not in rm.cooldown_until  # a partial exit never cools down
    f = rm.ledger.exit(ExitFilled(tid, 60, Decimal(495), 3, "signal", rm.order_charges(False, 495, 60)))
    assert f is not None and f.full and f.net < 0
    rm.note_exit(f, 3)
    assert rm.capital == start + p.net + f.net and rm.available_capital == rm.capital
    assert rm.cooldown_until["SBIN"] == 3 + rm.risk.cooldown_minutes * 60  # a losing exit starts a cooldown
    rm2 = make_rm(tmp_path)  # what the database says is what a restart believes
    assert rm2.capital == rm.capital and rm2.active_trades == {} and rm2.cooldown_until == rm.cooldown_until


def test_daily_loss_limit_halts_and_the_halt_is_sticky(tmp_path):
    rm = make_rm(tmp_path, daily_loss_limit=1000, global_max_loss_pct=None, max_drawdown_pct=None)
    tid = open_trade(rm, "INFY", PositionSide.SHORT, 100, 1000, stop_loss=1010)
    rm.track_prices("INFY", 1011)  # short: 100 x -11 = -1,100 unrealized
    halted, why = rm.halt_trading_check()
    assert halted and "daily loss limit" in why and rm.state is TradingState.HALTED and rm.halt_is_loss
    a = rm.assess_trade("TCS", 100, 99, now=0)
    assert isinstance(a, Denied) and a.tag == "RISK_TRADING_HALTED" and why in a.reason
    rm.track_prices("INFY", 990)
    assert rm.halt_trading_check()[0]  # stays halted
    rm.ledger.exit(ExitFilled(tid, 100, Decimal(990), 5, "signal", rm.order_charges(True, 990, 100)))  # never blocked
    assert rm.active_trades == {}
    assert make_rm(tmp_path).halted_earlier == why  # a restart today keeps the risk halt
    # a restart shows HALTED for reconciliation before the risk halt is set again; a crash then keeps it too
    rm2 = make_rm(tmp_path)
    rm2.set_state(TradingState.HALTED, "reconciling with the broker after start-up")
    assert make_rm(tmp_path).halted_earlier == why


def test_an_entry_whose_charges_eat_its_risk_is_refused(tmp_path):
    rm = make_rm(tmp_path, capital=1_000_000, risk_per_trade=0.01, max_allocation=200_000, margin_multiplier=5,
                 max_order_notional=1_000_000, max_cost_share_of_risk=0.25)
    # a wide stop on a dear share: 10,000 / 2,000 = 5 units of Rs 4,000 risking Rs 10,000; round trip on
    # Rs 20,000 + Rs 10,000 of turnover is about Rs 21, far below a quarter of the risk
    assert isinstance(rm.assess_trade("MARUTI", 4000, 2000, now=0), Approved)
    # risk capped by the allocation: 200,000 / (10,000 / 5) = 100 units of Rs 10,000 risking 0.10 each
    # (Rs 10); the round trip on Rs 10 lakh each way (brokerage 20 + 20, STT 250, ...) is about Rs 420
    a = rm.assess_trade("MRF", 10_000, Decimal("9999.90"), now=0)
    assert isinstance(a, Denied) and a.tag == "RISK_COSTS_TOO_HIGH" and a.units == 100
    trip = rm.cost_table.round_trip(True, Decimal(10_000), Decimal("9999.90"), 100, rm.day).total
    assert trip > 400
    assert f"Rs {trip}" in a.reason and "Rs 10.00" in a.reason and "risk.max_cost_share_of_risk" in a.reason
    # a short is judged on its own side: the stop above the entry
    a = rm.assess_trade("MRF", 10_000, Decimal("10000.10"), now=0, long=False)
    assert isinstance(a, Denied) and a.tag == "RISK_COSTS_TOO_HIGH"
    # the same trade with the limit off is approved
    (tmp_path / "off").mkdir()
    assert isinstance(make_rm(tmp_path / "off", max_cost_share_of_risk=None).assess_trade(
        "MRF", 10_000, Decimal("9999.90"), now=0), Approved)


def test_the_trading_state_is_one_row_written_at_once(tmp_path):
    rm = make_rm(tmp_path, daily_loss_limit=1000, global_max_loss_pct=None, max_drawdown_pct=None)
    tid = open_trade(rm, "INFY", PositionSide.LONG, 100, 1000)
    rm.track_prices("INFY", 1005)
    assert not rm.halt_trading_check()[0] and rm.high_water == rm.capital + 500
    rm.track_prices("INFY", 988)
    assert rm.halt_trading_check()[0]
    keys = [k for (k,) in rm.db.execute_sql("SELECT key FROM daemon_state ORDER BY key")]
    assert "trading_state" in keys and "risk" not in keys  # no second document beside it
    doc = rm.db.get_state("trading_state")
    assert doc["state"] == "HALTED" and doc["reason"].startswith("risk: daily loss limit") and doc["sticky"]
    assert doc["day"] == DAY.isoformat() and Decimal(doc["high_water"]) == rm.high_water and doc["since"]
    ex = rm.ledger.exit(ExitFilled(tid, 100, Decimal(988), 7, "risk_halt"))
    assert ex is not None
    rm.note_exit(ex, 7)
    doc2 = rm.db.get_state("trading_state")
    assert doc2["cooldown_until"] == {"INFY": 7 + rm.risk.cooldown_minutes * 60.0}
    assert (doc2["state"], doc2["reason"], doc2["since"]) == (doc["state"], doc["reason"], doc["since"])


def test_a_database_with_the_two_old_state_rows_restarts_the_same(tmp_path):
    """Before the trading state was one row, the day's part (high-water mark, cooldowns, sticky flag) was kept
    under "risk" and the state under "trading_state"; a restart on such a database keeps its halt."""
    h = db.DBHandler(db.initialize_database(f"sqlite:///{tmp_path / 'r.sqlite'}"))
    reason = "risk: drawdown 3.01% from the day's high of 1012098.44 >= 3.0%"
    h.set_state("trading_state", {"state": "HALTED", "reason": reason})
    h.set_state("risk", {"day": DAY.isoformat(), "cooldown_until": {"TCS": 1234.0}, "high_water": "1012098.44",
                         "state": "HALTED", "reason": reason, "sticky": True})
    rm = make_rm(tmp_path)
    assert rm.halted_earlier == reason and rm.cooldown_until == {"TCS": 1234.0}
    assert rm.high_water == Decimal("1012098.44")
    # from now on the one row holds it all
    doc = json.loads(rm.db.execute_sql("SELECT value FROM daemon_state WHERE key = 'trading_state'")[0][0])
    assert doc["day"] == DAY.isoformat() and doc["high_water"] == "1012098.44"
    # another day's old document is not today's
    h.set_state("trading_state", {"state": "HALTED", "reason": reason})
    h.set_state("risk", {"day": "2026-11-19", "cooldown_until": {"TCS": 1.0}, "high_water": "2000000",
                         "state": "HALTED", "reason": reason, "sticky": True})
    rm3 = make_rm(tmp_path)
    assert rm3.halted_earlier is None and rm3.cooldown_until == {} and rm3.high_water == rm3.capital

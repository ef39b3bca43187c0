"""RiskManager arithmetic on a real (SQLite) database: sizing, checks, exits and capital."""
from __future__ import annotations

import copy
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

import db
from core.config import parse_config
from core.enums import PositionSide, TradingState
from risk_manager import RiskManager
from tests.db_rows import select_rows

ROOT = Path(__file__).resolve().parent.parent


def make_rm(tmp_path, **risk) -> RiskManager:
    raw = copy.deepcopy(yaml.safe_load((ROOT / "config.yaml").read_text()))
    raw["risk"].update(risk)
    cfg = parse_config(raw)
    handler = db.DBHandler(db.initialize_database(f"sqlite:///{tmp_path / 'r.sqlite'}"))
    rm = RiskManager(cfg, handler, date(2026, 11, 20))
    rm.load()
    rm.set_state(TradingState.ACTIVE, "test")
    return rm


def test_position_size_is_the_smallest_of_risk_affordability_and_caps(tmp_path):
    rm = make_rm(tmp_path, capital=1_000_000, risk_per_trade=0.01, max_allocation=200_000, margin_multiplier=5,
                 max_order_notional=1_000_000)
    # risk: 10,000 / 2 = 5,000 units; allocation cap: 200,000 / (100/5) = 10,000; notional: 10,000
    assert rm.calculate_position_size(100, 98, Decimal(5), "SBIN") == 5000
    # a wide stop: risk 10,000 / 20 = 500
    assert rm.calculate_position_size(100, 80, Decimal(5), "SBIN") == 500
    assert rm.calculate_position_size(100, 100, Decimal(5), "SBIN") == 0
    a = rm.assess_trade("SBIN", 100, 100, now=0)
    assert not a.eligible and a.tag == "RISK_ZERO_UNITS"


def test_entry_partial_and_full_exit_move_capital_by_net_pnl(tmp_path):
    rm = make_rm(tmp_path)
    start = rm.capital
    tid = rm.register_trade_entry(symbol="SBIN", strategy="orb", side=PositionSide.LONG, quantity=100, price=500,
                                  time=1, stop_loss=490, take_profit_price=510, entry_order_id=None)
    # the entry's charges (2024-10-01 rates), by hand: 100 x 500 = Rs 50,000 bought; brokerage min(20, 0.03%) =
    # 15; exchange 0.00297% + IPFT Rs 10/crore = 1.485 + 0.05 -> 1.54; SEBI 0.05; stamp 0.003% = 1.50;
    # GST 18% of (15 + 1.54 + 0.05) = 2.9862 -> 2.99
    assert rm.active_trades[tid].charges.as_dict() == {
        "brokerage": Decimal("15.00"), "stt": 0, "exchange_txn": Decimal("1.54"), "sebi": Decimal("0.05"),
        "stamp_duty": Decimal("1.50"), "gst": Decimal("2.99")}
    tp_charges = rm.order_charges(False, 510, 40)
    with pytest.raises(ValueError):
        rm.register_partial_trade_exit(tid, 100, 510, 2, "take_profit", None, tp_charges)
    p = rm.register_partial_trade_exit(tid, 40, 510, 2, "take_profit", None, tp_charges)
    # 40 x 510 = 20,400 sold: brokerage 6.12, STT 0.025% = 5.10, exchange 0.62628 -> 0.63, SEBI 0.02,
    # GST 18% of 6.77 = 1.2186 -> 1.22: 13.09; the entry's charges wait for the exit that closes the trade
    assert (p.gross, p.costs, p.net, p.full) == (Decimal("400.0000"), Decimal("13.0900"), Decimal("386.9100"), False)
    f = rm.register_full_trade_exit(tid, 495, 3, "signal", None, rm.order_charges(False, 495, 60))
    # 60 x -5 = -300; 60 x 495 = 29,700 sold: brokerage 8.91, STT 7.425 -> 7.43, exchange 0.91179 -> 0.91,
    # SEBI 0.03, GST 18% of 9.85 = 1.773 -> 1.77: 19.05, plus the entry's 21.08 carried by the trade
    assert (f.gross, f.costs, f.full) == (Decimal("-300.0000"), Decimal("40.1300"), True)
    assert f.charges.total == f.costs and f.charges.stamp_duty == Decimal("1.50")
    logged = select_rows(rm.db, db.TradeLog)
    assert [(r.brokerage + r.stt + r.exchange_txn + r.sebi + r.stamp_duty + r.gst, r.costs) for r in logged] == \
        [(Decimal("13.09"), Decimal("13.09")), (Decimal("40.13"), Decimal("40.13"))]
    assert rm.capital == start + p.net + f.net
    assert rm.active_trades == {} and rm.available_capital == rm.capital
    assert rm.cooldown_until["SBIN"] == 3 + rm.risk.cooldown_minutes * 60  # a losing exit starts a cooldown
    rm2 = make_rm(tmp_path)  # what the database says is what a restart believes
    assert rm2.capital == rm.capital and rm2.active_trades == {}


def test_daily_loss_limit_halts_and_the_halt_is_sticky(tmp_path):
    rm = make_rm(tmp_path, daily_loss_limit=1000, global_max_loss_pct=None, max_drawdown_pct=None)
    tid = rm.register_trade_entry(symbol="INFY", strategy="orb", side=PositionSide.SHORT, quantity=100, price=1000,
                                  time=1, stop_loss=1010, take_profit_price=None, entry_order_id=None)
    rm.track_prices("INFY", 1011)  # short: 100 x -11 = -1,100 unrealized
    halted, why = rm.halt_trading_check()
    assert halted and "daily loss limit" in why and rm.state is TradingState.HALTED
    assert not rm.assess_trade("TCS", 100, 99, now=0).eligible
    rm.track_prices("INFY", 990)
    assert rm.halt_trading_check()[0]  # stays halted
    rm.register_full_trade_exit(tid, 990, 5, "signal", None, rm.order_charges(True, 990, 100))  # never blocked
    assert rm.active_trades == {}


def test_an_entry_whose_charges_eat_its_risk_is_refused(tmp_path):
    rm = make_rm(tmp_path, capital=1_000_000, risk_per_trade=0.01, max_allocation=200_000, margin_multiplier=5,
                 max_order_notional=1_000_000, max_cost_share_of_risk=0.25)
    # a wide stop on a dear share: 10,000 / 2,000 = 5 units of Rs 4,000 risking Rs 10,000; round trip on
    # Rs 20,000 + Rs 10,000 of turnover is about Rs 21, far below a quarter of the risk
    assert rm.assess_trade("MARUTI", 4000, 2000, now=0).eligible
    # risk capped by the allocation: 200,000 / (10,000 / 5) = 100 units of Rs 10,000 risking 0.10 each
    # (Rs 10); the round trip on Rs 10 lakh each way (brokerage 20 + 20, STT 250, ...) is about Rs 420
    a = rm.assess_trade("MRF", 10_000, Decimal("9999.90"), now=0)
    assert not a.eligible and a.tag == "RISK_COSTS_TOO_HIGH" and a.units == 100
    trip = rm.cost_table.round_trip(True, Decimal(10_000), Decimal("9999.90"), 100, rm.day).total
    assert trip > 400
    assert f"Rs {trip}" in a.reason and "Rs 10.00" in a.reason and "risk.max_cost_share_of_risk" in a.reason
    # a short is judged on its own side: the stop above the entry
    a = rm.assess_trade("MRF", 10_000, Decimal("10000.10"), now=0, long=False)
    assert not a.eligible and a.tag == "RISK_COSTS_TOO_HIGH"
    # the same trade with the limit off is approved
    (tmp_path / "off").mkdir()
    assert make_rm(tmp_path / "off", max_cost_share_of_risk=None).assess_trade("MRF", 10_000, Decimal("9999.90"),
                                                                                now=0).eligible


def test_a_partly_filled_entry_pays_one_brokerage_on_the_whole_order(tmp_path):
    rm = make_rm(tmp_path)
    tid = rm.register_trade_entry(symbol="SBIN", strategy="orb", side=PositionSide.LONG, quantity=30, price=1000,
                                  time=1, stop_loss=990, take_profit_price=None, entry_order_id=None)
    assert rm.active_trades[tid].charges.brokerage == Decimal("9.00")  # 0.03% of 30,000
    rm.add_to_entry(tid, 70, 1000)
    # one order of 100 x 1000 = 1 lakh: brokerage min(20, 30) = 20 once, not 9 + 20
    t = rm.active_trades[tid]
    assert t.charges == rm.order_charges(True, 1000, 100) and t.charges.brokerage == Decimal("20.00")
    assert make_rm(tmp_path).active_trades[tid].charges == t.charges  # stored, and what a restart believes

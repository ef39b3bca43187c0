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

ROOT = Path(__file__).resolve().parent.parent


def make_rm(tmp_path, **risk) -> RiskManager:
    raw = copy.deepcopy(yaml.safe_load((ROOT / "config.yaml").read_text()))
    raw["risk"].update(risk)
    cfg = parse_config(raw)
    rm = RiskManager(cfg, db.DBHandler(db.initialize_database(f"sqlite:///{tmp_path / 'r.sqlite'}")), date(2026, 11, 20))
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
    with pytest.raises(ValueError):
        rm.register_partial_trade_exit(tid, 100, 510, 2, "take_profit", None, Decimal(20))
    p = rm.register_partial_trade_exit(tid, 40, 510, 2, "take_profit", None, Decimal(20))
    assert (p.gross, p.costs, p.net, p.full) == (Decimal("400.0000"), Decimal("20.0000"), Decimal("380.0000"), False)
    f = rm.register_full_trade_exit(tid, 495, 3, "signal", None, Decimal(20))
    # 60 x -5 = -300, minus the exit commission and the entry commission carried by the trade
    assert (f.gross, f.costs, f.full) == (Decimal("-300.0000"), Decimal("40.0000"), True)
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
    rm.register_full_trade_exit(tid, 990, 5, "signal", None, Decimal(0))  # exits are never blocked
    assert rm.active_trades == {}

"""Per-symbol caps act on price movement: whole replayed days with the shipped config (issue 12, item 1).

A trader who writes symbol_max_loss_pct -2 means -2: no closed trade's gross return on its margin may end
below the cap by more than the move of one tick plus what a market order pays to cross the spread and the
configured slippage. The bound is computed from the day's own ticks (the synthetic generator is
deterministic, so the test regenerates them).
"""
from __future__ import annotations

import copy
import secrets
from collections import defaultdict
from datetime import date

import pytest
import yaml

from core.config import load_config
from feeds.synthetic import generate_day
from tests.daemon_harness import BASE_CONFIG, rows, run_daemon
from tests.paper_fixtures import Broker

DAYS = ["2026-11-19", "2026-11-18"]


def shipped_config(tmp, **risk) -> object:
    cfg = copy.deepcopy(BASE_CONFIG)
    cfg["risk"].update(risk)
    cfg["monitoring"].update(log_dir=str(tmp / "logs"), reports_dir=str(tmp / "reports"))
    cfg["paper_broker"]["state_file"] = str(tmp / "paper.sqlite")
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def tick_bounds(cfg_path, day: str) -> dict[str, float]:
    """Per symbol: the largest move of one tick plus the widest half-spread of the day, in rupees."""
    cfg = load_config(cfg_path)
    by_fyers = {cfg.symbol(s.symbol).fyers: s.symbol for s in cfg.symbols}
    last: dict[str, float] = {}
    move: dict[str, float] = defaultdict(float)
    spread: dict[str, float] = defaultdict(float)
    for t in generate_day(list(by_fyers), date.fromisoformat(day), cfg.replay.seed, cfg.session):
        sym, ltp = by_fyers[t["symbol"]], t["ltp"]
        if sym in last:
            move[sym] = max(move[sym], abs(ltp - last[sym]))
        last[sym] = ltp
        for side in ("bid_price", "ask_price"):
            if t.get(side):
                spread[sym] = max(spread[sym], abs(t[side] - ltp))
    return {s: move[s] + spread[s] for s in last}


def replay(tmp, day: str, cfg_path) -> list[tuple]:
    b = Broker(tmp / "broker.sqlite", secrets.token_hex(16), args=["--order-rate", "10"],
               log_file=tmp / "broker.log").start()
    try:
        run = run_daemon(cfg_path, f"sqlite:///{tmp / 'd.sqlite'}", {"HOST_SERVER": b.url, "APP_KEY": b.key},
                         args=["--date", day], timeout=900)
        assert run.returncode == 0, run.output[-3000:]
        assert "Traceback" not in run.output
    finally:
        b.stop()
    return rows(run.db_url, "SELECT trade_id, symbol, side, quantity, entry_time, entry_price, exit_time, exit_price, "
                            "gross_pnl, capital_employed, exit_reason FROM trade_log ORDER BY exit_time, trade_id, id")


@pytest.mark.parametrize("day", DAYS)
def test_no_trade_ends_below_its_loss_cap_by_more_than_a_tick(tmp_path, day):
    runs = []
    for i in range(2):
        d = tmp_path / f"run{i}"
        d.mkdir()
        cfg_path = shipped_config(d)
        runs.append(replay(d, day, cfg_path))
    assert runs[0], "the day should trade"
    assert runs[0] == runs[1], "two replays of the same day traded differently"
    risk = BASE_CONFIG["risk"]
    loss_cap, profit_cap = risk["symbol_max_loss_pct"], risk["symbol_max_profit_pct"]
    slip = BASE_CONFIG["costs"]["slippage_pct"] / 100
    bounds = tick_bounds(cfg_path, day)
    worst, lines = 0.0, []
    for _tid, sym, _side, _qty, _et, entry, _xt, exit_, gross, employed, reason in runs[0]:
        ret = float(gross) / float(employed) * 100
        leverage = float(entry) * _qty / float(employed)
        allowed = (bounds[sym] + slip * float(exit_)) / float(entry) * leverage * 100
        over = loss_cap - ret
        worst = max(worst, over)
        lines.append(f"{sym} {reason}: {ret:+.2f}% (allowed below cap {allowed:.2f})")
        assert over <= allowed, f"{sym} closed at {ret:.2f}% on margin ({reason}); cap {loss_cap}%, " \
                                f"allowed overshoot {allowed:.2f}"
        # the profit cap likewise takes the position off at the crossing tick
        if reason == "symbol_profit_cap":
            assert ret - profit_cap <= allowed, f"{sym} profit cap fired at {ret:.2f}%"
    print(f"{day}: {len(runs[0])} closed trades; worst overshoot below the loss cap {worst:+.3f} points "
          f"of return on margin\n  " + "\n  ".join(lines))
    assert any(r[-1] in ("symbol_loss_cap", "symbol_profit_cap") for r in runs[0]), "no cap fired on this day"


def test_daily_loss_limit_halts_and_flattens_on_price_movement_alike_every_run(tmp_path):
    """A crafted config: no per-symbol caps and a small daily loss limit, so open positions' losses cross it
    between signals. The halt is decided at a mark (no entry signal at that second), closes every position
    with exit reason risk_halt, and two runs halt on the same second and trade the same."""
    from tests.daemon_harness import short_day_config

    results, halts = [], []
    for i in range(2):
        d = tmp_path / f"run{i}"
        d.mkdir()
        cfg = short_day_config(d, risk={"symbol_max_loss_pct": None, "symbol_max_profit_pct": None,
                                        "daily_loss_limit": 3000, "flatten_on_halt": True})
        b = Broker(d / "broker.sqlite", secrets.token_hex(16), args=["--order-rate", "10"]).start()
        try:
            run = run_daemon(cfg, f"sqlite:///{d / 'd.sqlite'}", {"HOST_SERVER": b.url, "APP_KEY": b.key})
        finally:
            b.stop()
        assert run.returncode == 0, run.output[-3000:]
        assert "daily loss limit reached" in run.output
        t = rows(run.db_url, "SELECT symbol, side, quantity, entry_time, entry_price, exit_time, exit_price, "
                             "exit_reason FROM trade_log ORDER BY exit_time, symbol, trade_id, id")
        flat = {r[5] for r in t if r[7] == "risk_halt"}
        assert len(flat) == 1, f"the halt should close the open positions at one mark: {t}"
        halt = flat.pop()
        assert rows(run.db_url, "SELECT COUNT(*) FROM stock_signals WHERE time = :t AND type = 'entry'",
                    t=halt)[0][0] == 0
        # nothing entered after the halt, and the day ends flat
        assert rows(run.db_url, "SELECT COUNT(*) FROM trade_log WHERE entry_time > :t", t=halt)[0][0] == 0
        assert rows(run.db_url, "SELECT COUNT(*) FROM active_trades")[0][0] == 0
        results.append(t)
        halts.append(halt)
    assert halts[0] == halts[1] and results[0] == results[1]

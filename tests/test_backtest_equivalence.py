"""Backtest vs live: one day run both ways gives the same signals and orders.

The day is built from the backtest's own ticks: its candles become four ticks each (backtest.ticks), which are
also written in the recorded-tick format and replayed by the real daemon (driver.py as a process, eight
workers, the TradeManager) against a real paper broker. Both start warm: the backtest from the days before in
its candle source, the daemon from the candles its own start would load for the day, kept beside the file.
What must match: every signal (symbol, strategy, time, type, price, stops) and every order (symbol, side,
purpose, quantity, decision time, status, fill price); README "Backtest", fill model, says what differs by
design and why."""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date
from datetime import time as dtime
from pathlib import Path
from typing import Any

import pytest
import yaml

from backtest.runner import NO_SECRETS, BacktestSpec, open_run_db, run_days
from backtest.sim_broker import BacktestBroker, FillModel
from backtest.ticks import day_ticks
from core.clock import ist_epoch
from core.config import load_config
from core.types import TICK_FIELDS
from execution.broker_io import Placed
from execution.commands import SubmitOrder
from feeds.recorded import write_ticks
from history.intervals import parse_interval
from history.store import HistoryDay
from history.synthetic import SyntheticSource
from pipeline import warmup
from tests.daemon_harness import DAY, ROOT, rows, run_daemon, short_day_config
from tests.paper_fixtures import Broker

SIGNALS = ("SELECT symbol, strategy, time, type, current_position, ROUND(price, 4), stop_loss, take_profit_price, "
           "note FROM stock_signals ORDER BY time, symbol, id")
ORDERS = ("SELECT symbol, side, purpose, quantity, decision_time, status, filled_quantity, average_price, "
          "failure_tag FROM orders ORDER BY decision_time, symbol, id")
TRADES = ("SELECT symbol, side, quantity, entry_time, entry_price, exit_time, exit_price, gross_pnl, costs, net_pnl, "
          "exit_reason FROM trade_log ORDER BY exit_time, symbol, trade_id, id")


def recording(into: list[dict[str, Any]],
              fyers: Mapping[str, str]) -> Callable[..., Iterator[tuple[int, str, float, int]]]:
    """backtest.ticks.day_ticks, keeping each tick as the feed dict it stands for (the fields the runner's Tick
    has), whether the runner runs it or folds it into a quiet candle."""
    def ticks(days: Sequence[HistoryDay], position: Callable[[str], Any]) -> Iterator[tuple[int, str, float, int]]:
        for t, sym, price, cum in day_ticks(days, position):
            into.append({"ltp": price, "vol_traded_today": cum, "last_traded_time": t, "exch_feed_time": t,
                         "symbol": fyers[sym]})
            yield t, sym, price, cum
    return ticks


def backtest_day(tmp: Path, cfg_path: Path) -> tuple[str, list[dict[str, Any]]]:
    """Run the backtest of DAY over the config's symbols; its database URL and the ticks it ran."""
    cfg = load_config(cfg_path)
    spec = BacktestSpec(cfg=cfg, source=SyntheticSource(cfg.replay.seed, cfg.session), interval=parse_interval("1m"),
                        first=date.fromisoformat(DAY), last=date.fromisoformat(DAY),
                        symbols=tuple(s.symbol for s in cfg.symbols), cache_dir=tmp / "cache", out_root=tmp / "out",
                        run_id="eq", slippage_pct=0.0)
    ticks: list[dict[str, Any]] = []
    db_path = tmp / "backtest.sqlite"
    run = run_days(spec, open_run_db(db_path), ticks=recording(ticks, {s.symbol: s.fyers for s in cfg.symbols}))
    assert run.days == [date.fromisoformat(DAY)]
    return f"sqlite:///{db_path}", ticks


def keep_live_warmup(cfg_path: Path, day_file: Path) -> None:
    """Keep beside the day's file the warm-up candles the live daemon's own start would load for a replay of
    DAY (pipeline.warmup.gather: the synthetic replay's history, the candles of the days before), as `--record`
    keeps them: the replay of the file then starts as warm as that start, and the backtest must match it."""
    cfg, day = load_config(cfg_path), date.fromisoformat(DAY)
    assert cfg.market_data.warmup_from_history  # as config.yaml ships it: on in both
    wanted, got, now, why = warmup.gather(cfg, NO_SECRETS, False, "synthetic", day, None)
    assert len(wanted) == 4 and all(len(got[n.symbol]) == n.candles for n in wanted), why
    warmup.save(day_file, got, now, day)


@pytest.fixture
def paper(tmp_path):
    b = Broker(tmp_path / "broker.sqlite", secrets.token_hex(16), log_file=tmp_path / "broker.log").start()
    yield b
    b.stop()


def unsignalled_from(db_url: str) -> int | None:
    """When the TradeManager first closed positions on its own (a halt's flatten, the square-off): from then on
    the daemon's workers hear of it asynchronously (README "Backtest", fill model)."""
    return rows(db_url, "SELECT MIN(decision_time) FROM orders WHERE signal_id IS NULL")[0][0]


def assert_same_day(bt_url: str, live_url: str, min_signals: int = 6) -> None:
    """Every signal and order up to the first position the TradeManager closed on its own, and every executed
    order and trade of the whole day, are the same in the backtest and the daemon's replay."""
    until = unsignalled_from(bt_url)
    assert unsignalled_from(live_url) == until
    cut = until if until is not None else 2**62
    bt_signals, live_signals = rows(bt_url, SIGNALS), rows(live_url, SIGNALS)
    assert len(bt_signals) >= min_signals
    assert [s for s in live_signals if s[2] <= cut] == [s for s in bt_signals if s[2] <= cut]
    bt_orders, live_orders = rows(bt_url, ORDERS), rows(live_url, ORDERS)
    assert [o for o in live_orders if o[4] <= cut] == [o for o in bt_orders if o[4] <= cut]
    executed = [o for o in bt_orders if o[5] == "EXECUTED"]
    assert len(executed) >= 4
    assert [o for o in live_orders if o[5] == "EXECUTED"] == executed
    assert rows(live_url, TRADES) == rows(bt_url, TRADES)


# the short day as configured (per-symbol caps, the square-off), and with global caps tight enough that a
# drawdown halt flattens two positions mid-morning
@pytest.mark.parametrize("risk", [{}, {"global_max_loss_pct": -0.2, "max_drawdown_pct": 0.3}], ids=["caps", "halt"])
def test_a_day_backtested_and_replayed_live_gives_the_same_signals_and_orders(tmp_path, paper, risk):
    cfg_path = short_day_config(tmp_path, mode="paper")
    if risk:
        cfg = yaml.safe_load(cfg_path.read_text())
        cfg["risk"].update(risk)
        cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    bt_url, ticks = backtest_day(tmp_path, cfg_path)
    day_file = tmp_path / "day.csv.gz"
    assert write_ticks(day_file, ticks) == len(ticks)
    keep_live_warmup(cfg_path, day_file)

    live = run_daemon(cfg_path, f"sqlite:///{tmp_path / 'live.sqlite'}",
                      {"HOST_SERVER": paper.url, "APP_KEY": paper.key}, ["--replay", str(day_file)])
    assert live.returncode == 0, live.output[-3000:]
    assert f" {len(ticks)} ticks dispatched" in live.output
    assert "4 of 4 strategies start warm" in live.output and "starts cold" not in live.output
    # warm in both: the MA crossovers decide in the first 21 minutes, which a cold start could not
    assert rows(bt_url, "SELECT COUNT(*) FROM stock_signals WHERE strategy = 'mac' AND time < :t",
                t=ist_epoch(date.fromisoformat(DAY), dtime(9, 36)))[0][0] > 0
    if risk:
        assert "trading state ACTIVE -> HALTED: risk: drawdown" in live.output
        assert "trading halted for the day" in live.output and "the strategies of flat symbols stop" in live.output
    # halted mid-morning, every strategy is flat and stops: the two entries before the halt are all it signals
    assert_same_day(bt_url, live.db_url, 2 if risk else 6)


# ---------------------------------------------------------------------------------- recorded tick days

def backtest_cmd(cfg_path: Path, data: Path, tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("HOST_SERVER", "APP_KEY")}
    env["DATABASE_URL"] = f"sqlite:///{tmp / 'main.sqlite'}"
    return subprocess.run([sys.executable, str(ROOT / "driver.py"), "backtest", "--config", str(cfg_path),
                           "--source", "recorded", "--data", str(data), "--from", DAY, "--to", DAY,
                           "--out", str(tmp / "out"), *extra], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=300)


def test_a_recorded_day_backtested_at_tick_level_trades_as_its_replay(tmp_path, paper):
    """A day recorded by the daemon (ticks with bid and ask), replayed by the daemon and backtested from the same
    file at tick resolution: the same signals and orders, fills at the same touch."""
    cfg_path = short_day_config(tmp_path, mode="paper")
    days = tmp_path / "days"
    days.mkdir()
    rec = days / f"{DAY}.csv.gz"
    first = run_daemon(cfg_path, f"sqlite:///{tmp_path / 'rec.sqlite'}",
                       {"HOST_SERVER": paper.url, "APP_KEY": paper.key}, ["--record", str(rec)])
    assert first.returncode == 0, first.output[-3000:]
    fresh = Broker(tmp_path / "broker2.sqlite", secrets.token_hex(16)).start()
    try:
        replay = run_daemon(cfg_path, f"sqlite:///{tmp_path / 'replay.sqlite'}",
                            {"HOST_SERVER": fresh.url, "APP_KEY": fresh.key}, ["--replay", str(rec)])
    finally:
        fresh.stop()
    assert replay.returncode == 0, replay.output[-3000:]

    bt = backtest_cmd(cfg_path, days, tmp_path, "--slippage", "0", "--run-id", "rec")
    assert bt.returncode == 0, bt.stderr[-3000:]
    dispatched = int(replay.output.split(" ticks dispatched")[0].rsplit(" ", 1)[1])
    assert f"{dispatched:,} ticks in" in bt.stdout
    bt_url = f"sqlite:///{tmp_path / 'out' / 'rec' / 'run.sqlite'}"
    assert_same_day(bt_url, replay.db_url)
    # the touch, not the last price: a buy filled above the LTP it was decided on
    assert rows(bt_url, "SELECT COUNT(*) FROM orders o JOIN stock_signals s ON o.signal_id = s.signal_id "
                        "WHERE o.side = 'BUY' AND o.status = 'EXECUTED' AND o.average_price > s.price")[0][0] > 0


def test_bad_recorded_files_exit_2_naming_the_file_and_line(tmp_path):
    cfg_path = short_day_config(tmp_path, mode="paper")
    header = ",".join(TICK_FIELDS)
    good = [{"ltp": 500.0 + i, "exch_feed_time": 1795147500 + i, "last_traded_time": 1795147500 + i,
             "vol_traded_today": i, "symbol": "NSE:SBIN-EQ"} for i in range(3)]
    cases = {
        "bad line": ([header, *(",".join(str(t.get(k, "")) for k in TICK_FIELDS) for t in good), "1,2,3"],
                     "line 5"),
        "no header": (["hello,world", "1,2"], "line 1"),
    }
    for name, (lines, where) in cases.items():
        d = tmp_path / name.replace(" ", "_")
        d.mkdir()
        bad = d / "day.csv"
        bad.write_text("\n".join(lines) + "\n")
        run = backtest_cmd(cfg_path, d, tmp_path)
        assert run.returncode == 2, (name, run.stdout, run.stderr)
        assert str(bad) in run.stderr and where in run.stderr and "Traceback" not in run.stderr, (name, run.stderr)
    empty = tmp_path / "empty"
    empty.mkdir()
    run = backtest_cmd(cfg_path, empty, tmp_path)
    assert run.returncode == 2 and "holds no recorded tick file" in run.stderr
    two = tmp_path / "two"
    two.mkdir()
    for n in ("a.csv", "b.csv"):
        write_ticks(two / n, good)
    run = backtest_cmd(cfg_path, two, tmp_path)
    assert run.returncode == 2 and "both hold" in run.stderr and "Traceback" not in run.stderr


def test_a_tick_with_a_touch_fills_at_it_as_the_paper_broker_does():
    fills = FillModel(0.0)
    assert fills.price(100.0, True, 99.95, 100.05) == 100.05 and fills.price(100.0, False, 99.95, 100.05) == 99.95
    assert fills.price(100.0, True, 99.95, 0.0) == 100.0 and fills.price(100.0, False, None, None) == 100.0
    assert FillModel(0.1).price(100.0, True, 99.95, 100.05) == 100.15  # the slippage on top of the touch
    broker = BacktestBroker(fills)
    broker.mark("SBIN", 812.4, 100, 812.35, 812.5)
    broker.send(SubmitOrder(7, "SBIN", "NSE", "SELL", 10, "MIS", "MARKET", "t"))
    placed = broker.events.get_nowait()
    assert isinstance(placed, Placed)
    assert broker.order_status(placed.result.broker_order_id, "t").value.average_price == 812.35

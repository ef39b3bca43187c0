"""The backtest runner with real parts: the live worker handler, TradeManager, ledger and cost table over
synthetic history in-process; `driver.py backtest` as a process over CSV files and over a real paper broker's
/api/v1/history; the fill model by hand; exit 2 for bad input."""
from __future__ import annotations

import csv
import json
import logging
import os
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import replace
from datetime import date, timedelta
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from backtest import runner
from backtest.lookahead import check as check_lookahead
from backtest.runner import BacktestSpec, open_run_db, run_backtest, run_days, signal_key, trades_of, with_symbols
from backtest.sim_broker import BacktestBroker, FillModel
from backtest.ticks import day_ticks
from backtest.warm import DayWarmup
from core.clock import ist_date, ist_epoch
from core.config import load_config
from core.enums import PositionSide
from execution.broker_io import Placed, StatusSeen
from execution.commands import SubmitOrder
from history.cached_days import CachedDays
from history.files import FileSource
from history.frames import CandleColumns
from history.intervals import parse_interval
from history.quality import DayReport
from history.store import HistoryDay, HistoryStore
from history.synthetic import SyntheticSource, synthetic_day
from market_data_handler import MarketDataHandler
from pipeline.warmup import load, start_time
from tests.paper_fixtures import DAY, broker, broker_proc  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parent.parent
M1 = parse_interval("1m")
FIRST, LAST = date(2025, 3, 3), date(2025, 3, 5)   # Monday to Wednesday
SYMBOLS = ("SBIN", "LT")                             # orb and mac in config.yaml


def _spec(tmp: Path, run_id: str, first: date = FIRST, last: date = LAST,
          slippage: float | None = None) -> BacktestSpec:
    cfg = load_config(ROOT / "config.yaml")
    return BacktestSpec(cfg=cfg, source=SyntheticSource(cfg.replay.seed, cfg.session), interval=M1, first=first,
                        last=last, symbols=SYMBOLS, cache_dir=tmp / "cache", out_root=tmp / "out", run_id=run_id,
                        slippage_pct=slippage, keep_signals=True)


def _rows_of(t) -> tuple:
    return (t.trade_id, t.symbol, t.strategy, t.side, t.quantity, t.entry_time, t.entry_price, t.exit_time,
            t.exit_price, t.gross_pnl, t.costs, t.net_pnl, t.exit_reason)


def _rows(result) -> list[tuple]:
    return [_rows_of(t) for t in result.trades]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bt")
    a = run_backtest(_spec(tmp, "a"))
    b = run_backtest(_spec(tmp, "b"))
    return a, b


# ---------------------------------------------------------------------------------------------- fill model

def test_fill_is_the_decision_price_moved_against_the_order_by_the_slippage():
    fills = FillModel(0.05)
    assert fills.price(1000.0, buy=True) == 1000.5 and fills.price(1000.0, buy=False) == 999.5
    broker = BacktestBroker(fills)
    broker.mark("SBIN", 812.4, 100)
    broker.send(SubmitOrder(7, "SBIN", "NSE", "BUY", 10, "MIS", "MARKET", "t"))
    placed = broker.events.get_nowait()
    assert isinstance(placed, Placed) and placed.result.broker_order_id
    broker.track(7, placed.result.broker_order_id, "t")
    seen = broker.events.get_nowait()
    assert isinstance(seen, StatusSeen)
    info = seen.result.value
    # 812.4 x 1.0005 = 812.8062, to the paisa
    assert (info.status, info.filled_quantity, info.average_price) == ("complete", 10, 812.81)
    pos = broker.positionbook().value[0]
    assert (pos.symbol, pos.quantity, pos.product, pos.exchange) == ("SBIN", 10, "MIS", "NSE")


def _day(symbol: str, rows: list[tuple[int, float, float, float, float]]) -> HistoryDay:
    o, h, lo, c = (np.array([r[i] for r in rows], dtype=np.float64) for i in range(1, 5))
    cols = CandleColumns(np.array([r[0] for r in rows], dtype=np.int64), o, h, lo, c,
                         np.array([100] * len(rows), dtype=np.int64))
    return HistoryDay(symbol, date(2025, 3, 3), 60, cols, DayReport(symbol, date(2025, 3, 3), len(rows)))


class _Held:
    def __init__(self, side: PositionSide):
        self.side = side


def test_candle_ticks_put_the_worse_extreme_first_for_the_position_held():
    t0 = ist_epoch(date(2025, 3, 3), dtime(10, 0))
    day = _day("SBIN", [(t0, 100.0, 103.0, 98.0, 101.0)])
    # long: the low (its stop's side) comes before the high, whatever the open is nearer to
    ticks = [(t, p) for t, _s, p, _ in day_ticks([day], lambda s: _Held(PositionSide.LONG))]
    assert ticks == [(t0, 100.0), (t0 + 20, 98.0), (t0 + 40, 103.0), (t0 + 59, 101.0)]
    ticks = [p for _t, _s, p, _ in day_ticks([day], lambda s: _Held(PositionSide.SHORT))]
    assert ticks == [100.0, 103.0, 98.0, 101.0]
    # flat: the extreme nearer the open first (the low, 2 away, before the high, 3 away)
    ticks = [p for _t, _s, p, _ in day_ticks([day], lambda s: None)]
    assert ticks == [100.0, 98.0, 103.0, 101.0]


def test_two_symbols_interleave_in_time_order():
    t0 = ist_epoch(date(2025, 3, 3), dtime(10, 0))
    a = _day("SBIN", [(t0, 10.0, 11.0, 9.0, 10.5), (t0 + 60, 10.5, 10.6, 10.4, 10.5)])
    b = _day("LT", [(t0, 20.0, 21.0, 19.0, 20.5)])
    out = [(t, s) for t, s, _p, _ in day_ticks([a, b], lambda s: None)]
    assert [t for t, _ in out] == sorted(t for t, _ in out)
    assert out[:2] == [(t0, "SBIN"), (t0, "LT")] and out[-1] == (t0 + 119, "SBIN")


# ---------------------------------------------------------------------------------------------- whole runs

def test_same_input_twice_gives_identical_trades_and_signals(runs):
    a, b = runs
    assert a.trades, "the synthetic days should trade"
    assert _rows(a) == _rows(b)
    assert [signal_key(s) for s in a.signals] == [signal_key(s) for s in b.signals]
    assert a.days == [FIRST, FIRST + timedelta(days=1), LAST]


def test_signal_on_a_candle_close_fills_at_the_next_open_plus_slippage(runs):
    a, _ = runs
    cfg = load_config(ROOT / "config.yaml")
    slip = cfg.costs.slippage_pct / 100
    cols = {s: {d: {c.start: c for c in synthetic_day(s, "NSE", d, 60, cfg.replay.seed, cfg.session)}
                for d in a.days} for s in SYMBOLS}
    con = sqlite3.connect(a.db_path)
    checked = 0
    for sym, side, t, avg in con.execute(
            "SELECT symbol, side, decision_time, average_price FROM orders WHERE purpose = 'entry' "
            "AND status = 'EXECUTED'"):
        day = date.fromtimestamp(t)
        candle = cols[sym].get(day, {}).get(t)
        if candle is None:
            continue  # decided on an extreme or a close inside a candle, not at a candle's open
        expect = round(candle.open * (1 + slip if side == "BUY" else 1 - slip), 2)
        assert float(avg) == pytest.approx(expect, abs=1e-9), (sym, t)
        checked += 1
    assert checked > 0


def test_quiet_ticks_folded_into_the_candle_trade_as_if_every_tick_ran_the_strategy(runs, tmp_path, monkeypatch):
    """The runner folds a tick of a flat candle strategy that wants nothing into its candle without calling
    the strategy (MarketDataHandler.fold_quiet): the same run with every tick through the whole worker path
    trades and signals identically, and the folding did happen."""
    a, _ = runs
    real, folded = MarketDataHandler.fold_quiet, []

    def counted(self, *args):
        done = real(self, *args)
        folded.append(done)
        return done
    monkeypatch.setattr(MarketDataHandler, "fold_quiet", counted)
    seen = run_backtest(_spec(tmp_path, "counted"))
    # most quiet stretches are folded whole (backtest.day_loop); the ticks of a candle a stretch stops at still fold
    assert sum(folded) > 50, "a flat strategy's ticks inside a candle should fold"
    monkeypatch.setattr(MarketDataHandler, "fold_quiet", lambda self, *args: False)
    monkeypatch.setattr(MarketDataHandler, "fold_candles", lambda self, *args: 0)
    monkeypatch.setattr(MarketDataHandler, "fold_held", lambda self, *args: 0)
    full = run_backtest(_spec(tmp_path, "full"))
    assert full.ticks_run == 4 * (full.candles - full.candles_parked)  # every tick but a halted day's parked ones
    for other in (seen, full):
        assert _rows(other) == _rows(a)
        assert [signal_key(s) for s in other.signals] == [signal_key(s) for s in a.signals]


_ORDERS = ("SELECT client_order_id, symbol, side, purpose, quantity, decision_time, status, filled_quantity, "
           "average_price, failure_tag FROM orders ORDER BY decision_time, symbol, id")


# the loss cap on the first day (its flatten closes every position first), and a profit cap reached on most
# days of a week with positions open: those symbols park only once their strategy's exit has filled
@pytest.mark.parametrize("risk", [{}, {"global_max_profit_pct": 0.1, "global_max_loss_pct": None,
                                       "max_drawdown_pct": None, "daily_loss_limit": None}], ids=["loss", "profit"])
def test_a_halted_days_flat_strategies_stop_and_the_run_trades_as_if_they_ran_to_the_close(tmp_path, monkeypatch,
                                                                                          risk):
    """A risk halt holds for the day: each flat symbol's strategy is then parked (MarketDataHandler.park) and
    the day loop skips its candles. The same run with every strategy running to the close trades identically,
    and all it signals beyond are entries refused for the halt."""
    spec = _spec(tmp_path, "parked", last=LAST if not risk else FIRST + timedelta(days=4))
    spec = replace(spec, cfg=replace(spec.cfg, risk=replace(spec.cfg.risk, **risk)))
    a = run_backtest(spec)
    assert a.candles_parked > 0 and a.trades
    monkeypatch.setattr(MarketDataHandler, "park", lambda self, sym: False)
    on = run_backtest(replace(spec, run_id="unparked"))
    assert on.candles_parked == 0 and on.ticks_run > a.ticks_run
    assert _rows(on) == _rows(a)
    parked = {signal_key(s) for s in a.signals}
    ran_on = [signal_key(s) for s in on.signals]
    assert parked < set(ran_on)
    extra = {(k[0], k[2]) for k in ran_on if k not in parked}
    halted_on = sqlite3.connect(on.db_path).execute(
        "SELECT symbol, decision_time FROM orders WHERE failure_tag = 'RISK_TRADING_HALTED'").fetchall()
    assert extra <= set(halted_on)
    orders_a = sqlite3.connect(a.db_path).execute(_ORDERS).fetchall()
    orders_on = sqlite3.connect(on.db_path).execute(_ORDERS).fetchall()
    assert [o for o in orders_on if (o[1], o[5]) not in extra] == orders_a


def test_quiet_stretches_folded_whole_trade_as_the_tick_by_tick_loop(runs, tmp_path, monkeypatch):
    """backtest.day_loop folds the candles a flat strategy takes in bulk (Strategy.absorb_quiet) without making
    their ticks: the run trades and signals as the runner's tick-by-tick loop over backtest.ticks.day_ticks (any
    other tick builder takes that loop), and stretches were folded for both shipped kinds."""
    a, _ = runs
    real, taken = MarketDataHandler.fold_candles, {}

    def counted(self, sym, *args):
        n = real(self, sym, *args)
        taken[sym] = taken.get(sym, 0) + n
        return n
    monkeypatch.setattr(MarketDataHandler, "fold_candles", counted)
    bulk = run_backtest(_spec(tmp_path, "bulk"))
    assert set(taken) == set(SYMBOLS) and min(taken.values()) > 100, taken
    spec = _spec(tmp_path, "by-tick")
    db = open_run_db(tmp_path / "by-tick.sqlite")
    by_tick = run_days(spec, db, ticks=lambda days, position: day_ticks(days, position))
    assert by_tick.ticks_run > bulk.ticks_run
    assert [signal_key(s) for s in by_tick.signals] == [signal_key(s) for s in a.signals]
    assert [signal_key(s) for s in bulk.signals] == [signal_key(s) for s in a.signals]
    assert _rows(bulk) == _rows(a)
    assert [_rows_of(t) for t in trades_of(db)] == _rows(a)


def test_stretches_holding_a_position_folded_trade_as_running_every_tick(tmp_path, monkeypatch):
    """backtest.day_loop skips the strategy calls of the candles a holding strategy proves it acts on none of
    (MarketDataHandler.fold_held), while the ticks still mark the global caps and meet the symbol's caps: with
    tight caps (symbol caps crossed, halts flattening every position inside such stretches) and the square-off,
    over both shipped kinds, the run trades and signals as the one without held folds, and held folds did happen
    for both kinds."""
    cfg = load_config(ROOT / "config.yaml")
    cfg = replace(cfg, risk=replace(cfg.risk, symbol_max_loss_pct=-0.6, symbol_max_profit_pct=1.5,
                                    global_max_loss_pct=-0.25, max_drawdown_pct=0.3))
    symbols = ("SBIN", "RELIANCE", "INFY", "TCS", "LT", "BHARTIARTL", "KOTAKBANK", "MARUTI")

    def spec(run_id: str) -> BacktestSpec:
        return BacktestSpec(cfg=cfg, source=SyntheticSource(cfg.replay.seed, cfg.session), interval=M1,
                            first=FIRST, last=date(2025, 3, 7), symbols=symbols, cache_dir=tmp_path / "cache",
                            out_root=tmp_path / "out", run_id=run_id, keep_signals=True)
    real, held = MarketDataHandler.fold_held, {}

    def counted(self, sym, *args):
        n = real(self, sym, *args)
        held[sym] = held.get(sym, 0) + n
        return n
    monkeypatch.setattr(MarketDataHandler, "fold_held", counted)
    folded = run_backtest(spec("held"))
    kinds = {cfg.strategies[cfg.symbol(s).strategy].kind for s, n in held.items() if n}
    assert kinds == {"opening_range_breakout", "ma_crossover"}, held
    reasons = {t.exit_reason for t in folded.trades}
    assert {"symbol_loss_cap", "risk_halt"} <= reasons, reasons
    monkeypatch.setattr(MarketDataHandler, "fold_held", lambda self, *args: 0)
    every = run_backtest(spec("every"))
    assert every.ticks_run > folded.ticks_run
    assert _rows(folded) == _rows(every)
    assert [signal_key(s) for s in folded.signals] == [signal_key(s) for s in every.signals]


def test_costs_are_the_dated_cost_table_for_each_order(runs):
    a, _ = runs
    cfg = load_config(ROOT / "config.yaml")
    table = cfg.costs.table
    con = sqlite3.connect(a.db_path)
    fills = {oid: (side, Decimal(str(avg)), qty, day) for oid, side, avg, qty, day in con.execute(
        "SELECT id, side, average_price, filled_quantity, trading_date FROM orders WHERE status = 'EXECUTED'")}
    entries = {tid: oid for tid, oid in con.execute("SELECT trade_id, id FROM orders WHERE purpose = 'entry' "
                                                    "AND trade_id IS NOT NULL")}
    for t in a.trades:
        assert t.trade_type == "full"
        ex_side, ex_avg, ex_qty, day = fills[t.exit_order_id]
        en_side, en_avg, en_qty, _ = fills[entries[t.trade_id]]
        d = date.fromisoformat(day)
        want = (table.order(en_side == "BUY", en_avg, en_qty, d) + table.order(ex_side == "BUY", ex_avg, ex_qty, d))
        assert t.costs == want.total, t.trade_id
        assert (t.brokerage, t.stt, t.gst) == (want.brokerage, want.stt, want.gst)


def test_flat_at_the_end_of_each_day_and_no_entry_after_the_cutoff(runs):
    a, _ = runs
    cfg = load_config(ROOT / "config.yaml")
    con = sqlite3.connect(a.db_path)
    assert con.execute("SELECT COUNT(*) FROM active_trades").fetchone() == (0,)
    for t in a.trades:
        d = date.fromtimestamp(t.entry_time)
        assert date.fromtimestamp(t.exit_time) == d
        assert t.exit_time <= ist_epoch(d, cfg.session.square_off)
        assert t.entry_time < ist_epoch(d, cfg.session.entry_cutoff)
    for d in a.days:  # every day's orders net to zero per symbol
        for (sym,) in con.execute("SELECT DISTINCT symbol FROM orders WHERE trading_date = ?", (d.isoformat(),)):
            net = con.execute("SELECT SUM(CASE side WHEN 'BUY' THEN filled_quantity ELSE -filled_quantity END) "
                              "FROM orders WHERE trading_date = ? AND symbol = ?", (d.isoformat(), sym)).fetchone()
            assert net == (0,), (d, sym)


def test_more_slippage_costs_money(runs, tmp_path):
    a, _ = runs
    worse = run_backtest(_spec(tmp_path, "slip", slippage=0.5))
    assert sum(t.net_pnl for t in worse.trades) < sum(t.net_pnl for t in a.trades)


# ---------------------------------------------------------------------------------------------- the command

def _env(tmp: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": f"sqlite:///{tmp / 'main.sqlite'}", **extra}


def _driver(tmp: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "driver.py", "backtest", *args], cwd=ROOT, env=env or _env(tmp),
                          capture_output=True, text=True, timeout=300)


def _write_csvs(folder: Path, days: list[date]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    cfg = load_config(ROOT / "config.yaml")
    for s in SYMBOLS:
        with (folder / f"{s}.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["timestamp", "open", "high", "low", "close", "volume"])
            for d in days:
                for c in synthetic_day(s, "NSE", d, 60, cfg.replay.seed, cfg.session):
                    w.writerow([c.start, c.open, c.high, c.low, c.close, c.volume])


def test_command_over_files_writes_the_reports_and_records_the_run(tmp_path):
    data = tmp_path / "data"  # with the week before: the days the first day's warm-up reads
    _write_csvs(data, [FIRST + timedelta(days=k) for k in range(-7, 2)])
    common = ["--from", FIRST.isoformat(), "--to", (FIRST + timedelta(days=1)).isoformat(), "--symbols", "SBIN,LT",
              "--source", "files", "--data", str(data), "--cache", str(tmp_path / "cache"), "--out",
              str(tmp_path / "out")]
    r = _driver(tmp_path, *common, "--run-id", "files1")
    assert r.returncode == 0, r.stderr
    assert "started cold" not in r.stdout + r.stderr  # the week before warms the first day
    assert "backtest files1: SBIN, LT" in r.stdout and "2 day(s)" in r.stdout
    assert "100.0%" in r.stderr  # progress, one line per percent when not on a terminal
    out = tmp_path / "out" / "files1"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trading_days"] == 2 and summary["run"]["config_hash"]
    with (out / "trades.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == summary["trades"]["exits"] > 0
    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html
    con = sqlite3.connect(tmp_path / "main.sqlite")
    (rid, syms, chash) = con.execute("SELECT run_id, symbols, config_hash FROM backtest_runs").fetchone()
    assert (rid, syms, chash) == ("files1", "SBIN,LT", summary["run"]["config_hash"])
    # a second run with more slippage, compared side by side
    r2 = _driver(tmp_path, *common, "--run-id", "files2", "--slippage", "0.5")
    assert r2.returncode == 0, r2.stderr
    (tmp_path / "out" / "files2").rename(tmp_path / "files2-moved")  # its folder gone, its record stays
    taken = _driver(tmp_path, *common, "--run-id", "files2")
    assert taken.returncode == 2 and "'files2' is taken (recorded in backtest_runs)" in taken.stderr
    c = _driver(tmp_path, "compare", "files1", "files2")
    assert c.returncode == 0, c.stderr
    assert "files1" in c.stdout and "files2" in c.stdout and "net" in c.stdout.lower()
    # the same data as the synthetic source's: the same trades
    again = run_backtest(_spec(tmp_path, "syn", FIRST, FIRST + timedelta(days=1)))
    assert [(t.symbol, t.entry_time, str(Decimal(t.entry_price)), t.exit_time) for t in again.trades] == \
        [(x["symbol"], int(x["entry_time"]), x["entry_price"], int(x["exit_time"])) for x in rows]


def test_command_over_the_paper_brokers_history(broker, tmp_path):
    first, last = DAY - timedelta(days=3), DAY - timedelta(days=1)
    env = _env(tmp_path, HOST_SERVER=broker.url, APP_KEY=broker.key)
    r = _driver(tmp_path, "--from", first.isoformat(), "--to", last.isoformat(), "--symbols", "SBIN,LT",
                "--source", "openalgo", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out"),
                "--run-id", "paper1", env=env)
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "out" / "paper1" / "summary.json").read_text())
    assert summary["trading_days"] == 3 and summary["run"]["source"] == "openalgo"
    assert summary["run"]["candles"] == 3 * 2 * 375


@pytest.mark.parametrize("args, needle", [
    (["--from", "2025-13-01", "--to", "2025-03-05"], "--from: '2025-13-01' is not a date"),
    (["--from", "2025-03-05", "--to", "2025-03-03"], "is after --to"),
    (["--from", "2025-03-03", "--to", "2025-03-05", "--symbols", "NOPE"], "NOPE not in the config's symbols"),
    (["--from", "2025-03-03", "--to", "2025-03-05", "--source", "files", "--data", "/nonexistent/dir"],
     "is not a folder"),
    (["--from", "2025-03-03", "--to", "2025-03-05", "--source", "files"], "--source files needs --data"),
    (["--from", "2025-03-03", "--to", "2025-03-05", "--source", "nowhere"], "--source 'nowhere' is not allowed"),
    (["--from", "2025-03-03", "--to", "2025-03-05", "--interval", "7x"], "--interval"),
    (["compare", "nope-a", "nope-b"], "run 'nope-a' is not in the backtest_runs table"),
])
def test_bad_input_exits_2_naming_the_value(tmp_path, args, needle):
    r = _driver(tmp_path, *args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert needle in r.stderr and "Traceback" not in r.stderr


def _open_under(folder: Path) -> list[str]:
    """This process's open files under `folder` (Linux's /proc)."""
    fds = Path("/proc/self/fd")
    names = []
    for fd in fds.iterdir():
        try:
            names.append(os.readlink(fd))
        except OSError:  # closed meanwhile (the listing's own descriptor)
            pass
    return [n for n in names if n.startswith(str(folder))]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads Linux's /proc")
def test_a_finished_run_keeps_no_database_open(runs, tmp_path):
    """An optimisation runs thousands of backtests in one process: each kept its run database, log and -shm
    open, so descriptors ran out and a deleted run's disk space was never given back."""
    import db

    a, b = runs
    for r in (a, b):
        assert r.db_path.exists() and _open_under(r.out_dir) == []
    check_lookahead(_spec(tmp_path, "la-fds", FIRST, FIRST))
    assert _open_under(tmp_path) == [] and _open_under(Path(tempfile.gettempdir()) / "lookahead-") == []
    ours = (str(a.out_dir), str(b.out_dir), str(tmp_path), str(Path(tempfile.gettempdir()) / "lookahead-"))
    assert not [url for _pid, url in db._engines if any(o in url for o in ours)]


def test_two_workers_over_blocks_of_days_give_the_sequential_run(runs, tmp_path):
    """Each block of days warms from the days before it, so the second block's first day (4 March) starts as
    warm as in the sequential run."""
    a, _ = runs
    pooled = run_backtest(replace(_spec(tmp_path, "pool"), workers=2))
    assert pooled.days == a.days and pooled.candles == a.candles
    assert _rows(pooled) == _rows(a)
    assert [signal_key(s) for s in pooled.signals] == [signal_key(s) for s in a.signals]
    assert {ist_date(int(s.time)) for s in _early_mac(pooled.signals)} == set(a.days)


def _peeking_ticks(days, position):
    """A broken feed: each candle's open tick carries the next candle's open (data from the future)."""
    ticks = list(day_ticks(days, position))
    opens: dict[str, list[int]] = {}
    for i, (t, s, _p, _tick) in enumerate(ticks):
        if t % 60 == 0:
            opens.setdefault(s, []).append(i)
    out = list(ticks)
    for idx in opens.values():
        for a, b in zip(idx, idx[1:], strict=False):
            t, s, _p, cum = ticks[a]
            out[a] = (t, s, ticks[b][2], cum)
    yield from out


def test_lookahead_finds_none_in_the_live_path_and_names_a_peeking_feed(tmp_path):
    spec = _spec(tmp_path, "la", FIRST, FIRST)
    clean = check_lookahead(spec)
    assert clean.found is None and clean.cuts > 0 and clean.signals >= clean.cuts
    bad = check_lookahead(spec, ticks=_peeking_ticks)
    assert bad.found is not None
    text = str(bad.found)
    assert bad.found.strategy in ("orb", "mac") and bad.found.strategy in text and "IST" in text


def test_lookahead_command_exits_0_when_clean(tmp_path):
    r = _driver(tmp_path, "lookahead", "--from", FIRST.isoformat(), "--to", FIRST.isoformat(), "--symbols", "LT",
                "--source", "synthetic", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert "lookahead: none found" in r.stdout


def test_a_symbol_day_with_findings_is_skipped_and_listed_unless_asked_to_trade_it(tmp_path):
    gap_day = date(2025, 3, 10)  # the synthetic LT day has a one-minute gap (history.quality reports it)
    spec = _spec(tmp_path, "gap", gap_day, gap_day)
    skipped = run_backtest(spec)
    assert len(skipped.skipped) == 1 and skipped.skipped[0].startswith("LT 2025-03-10") and "gap" in skipped.skipped[0]
    assert skipped.candles == 375 and {t.symbol for t in skipped.trades} <= {"SBIN"}
    traded = run_backtest(replace(spec, run_id="gap2", skip_bad_days=False))
    assert traded.skipped == [] and traded.flagged == skipped.skipped and traded.candles == 375 + 374



@pytest.mark.parametrize("symbols", [SYMBOLS, ("LT",)], ids=["with-another", "alone"])
def test_days_traded_despite_disordered_candles_trade_as_the_tick_by_tick_loop(tmp_path, symbols):
    """Asked to trade days with findings, the day loop runs them as backtest.ticks.day_ticks does: a symbol with
    out-of-order and duplicate candles tick by tick in time order (a bulk fold would take the candles after it in
    the file's order), beside a symbol whose gaps leave it off the other's minutes, or alone (its candles are the
    day's only ones, out of order)."""
    data = tmp_path / "data"
    data.mkdir()
    cfg = load_config(ROOT / "config.yaml")
    for s in SYMBOLS:
        with (data / f"{s}.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["timestamp", "open", "high", "low", "close", "volume"])
            for d in [FIRST + timedelta(days=k) for k in range(-7, 3)]:
                rows = [[c.start, c.open, c.high, c.low, c.close, c.volume]
                        for c in synthetic_day(s, "NSE", d, 60, cfg.replay.seed, cfg.session)]
                if d >= FIRST and s == "LT":
                    rows[40], rows[41] = rows[41], rows[40]
                    rows[150:150] = [rows[150]]
                    rows[300], rows[302] = rows[302], rows[300]
                elif d >= FIRST:
                    del rows[200:204]
                w.writerows(rows)
    spec = replace(_spec(tmp_path, "disordered", FIRST, FIRST + timedelta(days=2)), source=FileSource(data),
                   skip_bad_days=False, symbols=symbols)
    bulk = run_backtest(spec)
    assert len(bulk.flagged) == 3 * len(symbols)
    assert all(("out_of_order" in f) == f.startswith("LT") for f in bulk.flagged)
    assert len(bulk.trades) >= 5 * len(symbols)
    db = open_run_db(tmp_path / "by-tick.sqlite")
    by_tick = run_days(replace(spec, run_id="by-tick"), db, ticks=lambda days, position: day_ticks(days, position))
    assert [signal_key(s) for s in bulk.signals] == [signal_key(s) for s in by_tick.signals]
    assert _rows(bulk) == [_rows_of(t) for t in trades_of(db)]


# ---------------------------------------------------------------------------------------- warm-up from history

def _early_mac(signals) -> list:
    """MA crossover signals of a day's first 21 minutes: a cold start cannot give one (its 21-candle slow
    average is ready at 09:36, its first cross a candle later)."""
    return [s for s in signals if s.strategy == "mac"
            and int(s.time) < ist_epoch(ist_date(int(s.time)), dtime(9, 36))]


def test_each_day_warms_as_a_live_start_on_that_day_would(tmp_path):
    """The candles a backtest day feeds its strategies are those pipeline.warmup.load gives a live start on that
    day (another cache, the same source): after a weekend, after Holi (Friday 14 March 2025), over a week; all
    of them from days before it."""
    cfg = with_symbols(load_config(ROOT / "config.yaml"), SYMBOLS)
    source = SyntheticSource(cfg.replay.seed, cfg.session)
    store = HistoryStore(source, tmp_path / "run", cfg.session)
    warm = DayWarmup.of(cfg, store, M1)
    assert warm is not None and [(n.symbol, n.seconds, n.candles) for n in warm.wanted] == [("LT", 60, 22)]
    first, last = date(2025, 3, 10), date(2025, 3, 18)
    warm.prime(first)
    days = {hd.day: hd for hd in store.days("LT", cfg.exchange, M1, first, last)}
    for d in (first + timedelta(days=k) for k in range((last - first).days + 1)):
        got = warm.candles(d)
        live = load(cfg, source, d, start_time(cfg, False, d, None), warm.wanted, cache_root=str(tmp_path / "live"))
        assert got == live and len(got["LT"]) == 22, d
        assert all(c.start + c.seconds <= ist_epoch(d - timedelta(days=1), cfg.session.close) for c in got["LT"])
        if d in days:
            warm.add(days[d])
    assert warm.tails["LT"][0][0] >= last - timedelta(days=7)  # only the days a later start can reach are kept


def test_a_block_warms_from_its_lead_in_as_from_reading_the_window_itself(tmp_path, monkeypatch):
    """A block of days (spec.first a week before trade_from) hands its lead-in's symbol-days to the warm-up
    instead of the warm-up reading them again: every traded day's warm-up candles are those of the warm-up that
    read its whole look-back window, and the lead-in is read once (the cache's reads counted)."""
    base = replace(_spec(tmp_path, "block"), first=date(2025, 3, 10), last=date(2025, 3, 19),
                   trade_from=date(2025, 3, 17))
    cfg = with_symbols(base.cfg, base.symbols)
    store = HistoryStore(base.source, base.cache_dir, cfg.session)
    old = DayWarmup.of(cfg, store, M1)
    assert old is not None
    old.prime(date(2025, 3, 17))  # the window read whole, as before
    reads: list[tuple[str, date]] = []
    read = CachedDays.read
    monkeypatch.setattr(CachedDays, "read", lambda self, d: reads.append((Path(self.folder).name, d)) or read(self, d))
    new = DayWarmup.of(cfg, store, M1)
    assert new is not None
    new.prime(date(2025, 3, 17), read_from=base.first)
    traded = 0
    for d, hdays in runner._aligned_days(store, base, cfg.exchange, new.add):
        for h in hdays:
            old.add(h)
            new.add(h)
        assert new.candles(d) == old.candles(d) and len(new.candles(d)["LT"]) == 22, d
        traded += 1
    assert traded == 3
    assert len(reads) == len(set(reads))  # no symbol-day read twice
    assert {d for _s, d in reads} == {base.first + timedelta(days=k) for k in range(10)}


def test_a_day_after_the_data_begins_is_warm_and_the_first_says_it_starts_cold(tmp_path, caplog):
    """Files that begin on the run's first day: that day starts cold, named in the log as a live start names
    it; its candles warm the second day, whose crossover decides from the open. Warm-up off: every day cold."""
    data = tmp_path / "data"
    _write_csvs(data, [FIRST, FIRST + timedelta(days=1)])
    base = replace(_spec(tmp_path, "cold"), source=FileSource(data), last=FIRST + timedelta(days=1))
    with caplog.at_level(logging.WARNING, logger="pipeline.warmup"):
        warm = run_backtest(base)
    cold_lines = [r.getMessage() for r in caplog.records if "starts cold" in r.getMessage()]
    assert cold_lines == ["LT: strategy mac starts cold (history had too few candles): 0 of the 22 candles of 60 s "
                          "it needs; ready at about 09:37 IST"]
    assert {ist_date(int(s.time)) for s in _early_mac(warm.signals)} == {FIRST + timedelta(days=1)}
    assert warm.cold_starts == 1
    cfg = base.cfg
    off = replace(base, run_id="off", cfg=replace(cfg, market_data=replace(cfg.market_data,
                                                                            warmup_from_history=False)))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pipeline.warmup"):
        cold = run_backtest(off)
    assert not [r for r in caplog.records if r.name in ("pipeline.warmup", "backtest.warm")]
    assert cold.days == warm.days and _early_mac(cold.signals) == [] and cold.cold_starts == 0
    # the first day, cold in both, trades alike
    assert [signal_key(s) for s in cold.signals if ist_date(int(s.time)) == FIRST] == \
        [signal_key(s) for s in warm.signals if ist_date(int(s.time)) == FIRST]
    # the command says it in its summary, and prints the line
    r = _driver(tmp_path, "--from", FIRST.isoformat(), "--to", (FIRST + timedelta(days=1)).isoformat(), "--symbols",
                "SBIN,LT", "--source", "files", "--data", str(data), "--cache", str(tmp_path / "cache"), "--out",
                str(tmp_path / "out"), "--run-id", "cold-cli")
    assert r.returncode == 0, r.stderr
    assert "1 strategy-day(s) started cold" in r.stdout and cold_lines[0] in r.stderr

"""A strategy that raises is contained: its symbol's strategy is off for the day, its position stays managed
and is squared off, every other symbol trades as it would have, and `status` shows it. The whole daemon
against a real paper broker, with a strategy that raises on its 100th tick (tests/faulty_strategy.py)."""
from __future__ import annotations

import json
import pickle
import secrets
import subprocess
import sys
from datetime import date
from datetime import time as dtime

from core.clock import ist_epoch
from core.config import load_config
from core.types import Tick
from tests.daemon_harness import BASE_CONFIG, DAY, ROOT, SYMBOLS, daemon_env, run_daemon, short_day_config
from tests.paper_fixtures import Broker
from tests.test_daemon_replay import check_books, env_for, trades

FAULTY = "tests.faulty_strategy:EnterThenRaise"


def faulty_config(tmp, raise_on_tick: int):
    """The short day with SBIN's strategy replaced by the test strategy (buys on its 20th tick, holds)."""
    strategies = {**BASE_CONFIG["strategies"], "faulty": {"kind": FAULTY, "params": {"raise_on_tick": raise_on_tick}}}
    return short_day_config(tmp, symbols=[{"symbol": "SBIN", "strategy": "faulty"}, *SYMBOLS[1:]],
                            strategies=strategies)


def run_day(d, raise_on_tick: int, broker: Broker | None = None):
    d.mkdir(exist_ok=True)
    b = broker or Broker(d / "broker.sqlite", secrets.token_hex(16), args=["--order-rate", "10"],
                         log_file=d / "broker.log").start()
    run = run_daemon(faulty_config(d, raise_on_tick), f"sqlite:///{d / 'd.sqlite'}", env_for(b), timeout=300)
    return run, b


def status(run, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "driver.py"), "status", "--date", DAY, *args],
                          capture_output=True, text=True, env=daemon_env(run.db_url, {}), cwd=ROOT, timeout=60)


def test_a_strategy_that_raises_is_disabled_for_the_day_and_nothing_else_changes(tmp_path):
    base, b0 = run_day(tmp_path / "without", raise_on_tick=0)
    b0.stop()
    assert base.returncode == 0, base.output[-3000:]
    run, b = run_day(tmp_path / "with", raise_on_tick=100)
    try:
        assert run.returncode == 0, run.output[-3000:]
        assert "replay finished: closing the session" in run.output
        # logged once, with its traceback; not a restart loop
        assert run.output.count("SBIN: strategy faulty raised (StrategyBug in run: bug on tick 100)") == 1
        assert run.output.count("Traceback") == 1 and "worker restarts" in run.output
        assert "0 worker restarts" in run.output and "died with exit code" not in run.output
        # SBIN's position (bought on its 20th tick, before the fault) was kept and closed by the daemon (its
        # per-symbol cap, which acts on every tick, or the square-off); every symbol, SBIN included, traded
        # exactly as in the run without the fault
        t = trades(run.db_url)
        sbin = [r for r in t if r[0] == "SBIN"]
        assert len(sbin) == 1 and sbin[0][9] in ("square_off", "symbol_loss_cap", "symbol_profit_cap"), sbin
        assert len(t) > 1 and t == trades(base.db_url)
        check_books(run.db_url, b)
        # status (a separate process) shows it, human and JSON
        js = status(run, "--json")
        assert js.returncode == 0, js.stderr
        off = json.loads(js.stdout)["disabled_strategies"]
        assert [(d["symbol"], d["strategy"]) for d in off] == [("SBIN", "faulty")]
        assert "StrategyBug" in off[0]["reason"] and off[0]["since"].startswith(DAY)
        human = status(run)
        assert human.returncode == 0 and "Strategies disabled for the day: 1" in human.stdout
        assert any(line.split()[:2] == ["SBIN", "faulty"] for line in human.stdout.splitlines())
        # a restart of the daemon the same day keeps it off: the strategy is not run, so it cannot raise again
        again, _ = run_day(tmp_path / "with", raise_on_tick=100, broker=b)
        assert again.returncode == 0, again.output[-3000:]
        assert "SBIN: strategy disabled earlier today" in again.output and "raised" not in again.output
        assert trades(again.db_url) == t
    finally:
        b.stop()


def test_a_disabled_strategy_stays_disabled_across_a_worker_restart(tmp_path):
    """The checkpoint a restarted worker starts from carries the disabled symbols."""
    from market_data_handler import MarketDataHandler

    cfg = load_config(faulty_config(tmp_path, raise_on_tick=3))
    t0 = ist_epoch(date.fromisoformat(DAY), dtime(9, 16))
    told, signals = [], []

    def tick(sym: str, i: int) -> Tick:
        return Tick(symbol=f"NSE:{sym}-EQ", ltp=100.0 + i, exch_feed_time=t0 + i)

    h = MarketDataHandler(cfg, ["SBIN", "RELIANCE"], lambda *a: signals.append(a), on_disabled=told.append)
    for i in range(5):
        h.process(tick("SBIN", i))
        h.process(tick("RELIANCE", i))
    assert [e.symbol for e in told] == ["SBIN"] and list(h.disabled) == ["SBIN"]
    assert h.stats.ticks == 10  # its ticks still count (and persist, and price the paper broker)
    state = pickle.loads(pickle.dumps(h.state()))
    h2 = MarketDataHandler(cfg, ["SBIN", "RELIANCE"], lambda *a: signals.append(a), on_disabled=told.append)
    h2.restore(state)
    for i in range(5, 10):
        h2.process(tick("SBIN", i))
    assert "SBIN" not in h2.strategies and h2.disabled == h.disabled
    assert len(told) == 1 and signals == []


def test_a_signal_the_queue_cannot_carry_disables_that_strategy_in_the_worker(tmp_path):
    """A Decimal stop (or a numpy number, or None where a price belongs) would fail to decode in the driver and stop
    its loop; the worker checks the signal inside the strategy's containment, so only that strategy stops."""
    from market_data_handler import MarketDataHandler

    strategies = {**BASE_CONFIG["strategies"],
                  "faulty": {"kind": FAULTY, "params": {"raise_on_tick": 0, "decimal_stop": True}}}
    cfg = load_config(short_day_config(tmp_path, symbols=[{"symbol": "SBIN", "strategy": "faulty"}, *SYMBOLS[1:]],
                                       strategies=strategies))
    t0 = ist_epoch(date.fromisoformat(DAY), dtime(9, 16))
    told, signals = [], []
    h = MarketDataHandler(cfg, ["SBIN"], lambda *a: signals.append(a), on_disabled=told.append)
    for i in range(25):
        h.process(Tick(symbol="NSE:SBIN-EQ", ltp=100.0 + i, exch_feed_time=t0 + i))
    assert signals == [] and [e.symbol for e in told] == ["SBIN"]
    assert "cannot be sent" in h.disabled["SBIN"] and "stop_loss" in h.disabled["SBIN"]


def test_a_state_the_checkpoint_cannot_carry_leaves_out_only_that_strategy(tmp_path, caplog):
    """Without this every checkpoint of the worker failed, and its frames were kept for the rest of the day."""
    import msgspec

    from market_data_handler import MarketDataHandler
    from pipeline.messages import CheckpointTaken

    strategies = {**BASE_CONFIG["strategies"],
                  "faulty": {"kind": FAULTY, "params": {"raise_on_tick": 0, "unsafe_state": True}}}
    cfg = load_config(short_day_config(tmp_path, symbols=[{"symbol": "SBIN", "strategy": "faulty"}, *SYMBOLS[1:]],
                                       strategies=strategies))
    t0 = ist_epoch(date.fromisoformat(DAY), dtime(9, 16))
    h = MarketDataHandler(cfg, ["SBIN", "RELIANCE"], lambda *a: None)
    for i in range(5):
        h.process(Tick(symbol="NSE:SBIN-EQ", ltp=100.0 + i, exch_feed_time=t0 + i))
        h.process(Tick(symbol="NSE:RELIANCE-EQ", ltp=100.0 + i, exch_feed_time=t0 + i))
    first, second = h.state(), h.state()
    assert set(first["strategies"]) == {"RELIANCE"} and second == first
    assert "SBIN" in h.strategies and not h.disabled  # it still trades; only a restart would start it fresh
    msgspec.msgpack.decode(msgspec.msgpack.encode(CheckpointTaken(0, 7, first)))
    told = [r.getMessage() for r in caplog.records if "not JSON-safe" in r.getMessage()]
    assert len(told) == 1 and told[0].startswith("SBIN: strategy faulty")

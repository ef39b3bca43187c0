"""A strategy of the trader's own, in a file named by config as `path/to/file.py:Class`: `strategy new` writes a
working one, --check validates it like a built-in, every way a file can be wrong is one problem line naming the
file and line (exit 2, no traceback), spawned workers load it, and a replayed day trades it."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from core.config import ConfigError, load_config
from core.enums import PositionSide
from strategies import strategy_class
from strategies.base import Strategy
from strategies.new_strategy import class_name
from tests.daemon_harness import BASE_CONFIG, ROOT, SYMBOLS, rows, run_daemon, short_day_config
from tests.test_strategies_ma import SESSION, Worker, only, random_days

NOT_REACHABLE = {"HOST_SERVER": "http://127.0.0.1:9"}


def strategy_new(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "driver.py"), "strategy", "new", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=60)


def config_with(tmp: Path, kind: str, params: dict | None = None, **overrides) -> Path:
    """The short day with SBIN and INFY on the trader's strategy `kind`, the rest on the built-ins."""
    strategies = {**BASE_CONFIG["strategies"], "mine": {"kind": kind, "params": params or {}}}
    symbols = [{"symbol": "SBIN", "strategy": "mine"}, SYMBOLS[1], {"symbol": "INFY", "strategy": "mine"},
               *SYMBOLS[3:]]
    return short_day_config(tmp, strategies=strategies, symbols=symbols, **overrides)


def problems_of(config: Path) -> list[str]:
    with pytest.raises(ConfigError) as e:
        load_config(config)
    return e.value.problems


def test_strategy_new_writes_a_working_file_and_prints_the_config_lines(tmp_path):
    cfg = tmp_path / "config.yaml"
    r = strategy_new("my_cross", "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    file = tmp_path / "user_strategies" / "my_cross.py"
    assert file.is_file() and "class MyCross(CandleStrategy):" in file.read_text()
    # the printed lines are YAML that names it relative to the config's folder
    block = r.stdout[r.stdout.index("strategies:"):r.stdout.index("then ")]
    printed = yaml.safe_load(block)
    assert printed["strategies"]["my_cross"]["kind"] == "user_strategies/my_cross.py:MyCross"
    assert printed["symbols"] == [{"symbol": "SBIN", "strategy": "my_cross"}]
    # never overwrites; NAME must be an identifier
    file.write_text(file.read_text() + "# mine\n")
    again = strategy_new("my_cross", "--config", str(cfg))
    assert again.returncode == 2 and "exists already" in again.stderr and file.read_text().endswith("# mine\n")
    for bad in ("1st", "my-cross", "class", "my cross"):
        r = strategy_new(bad, "--config", str(cfg))
        assert r.returncode == 2 and "identifier" in r.stderr and "Traceback" not in r.stderr, bad
    assert sorted(p.name for p in (tmp_path / "user_strategies").iterdir()) == ["my_cross.py"]
    assert class_name("a_b2_c") == "AB2C" and class_name("_x") == "X"


def test_the_written_strategy_trades_and_restores_mid_day(tmp_path):
    assert strategy_new("sma_cross", "--dir", str(tmp_path)).returncode == 0
    cls = strategy_class(f"{tmp_path / 'sma_cross.py'}:SmaCross")
    assert issubclass(cls, Strategy) and cls.kind == "sma_cross"
    assert strategy_class(f"{tmp_path / 'sma_cross.py'}:SmaCross") is cls  # loaded once per process
    params = {"period": 10, "atr_period": 7}
    ticks = random_days(4)
    sigs = only(Worker(cls("LT", "mine", params, SESSION)).feed(ticks))
    assert len(sigs) > 4 and {s.type.value for s in sigs} == {"entry", "exit"}
    assert {s.current_position for s in sigs} == {PositionSide.LONG, PositionSide.SHORT}
    cut = len(ticks) // 2  # a worker restart: state as JSON into a fresh instance, then the same signals
    w = Worker(cls("LT", "mine", params, SESSION))
    got = only(w.feed(ticks[:cut]))
    saved = json.loads(json.dumps({"s": w.s.state_dict(), "agg": w.agg.state_dict()}))
    r = Worker(cls("LT", "mine", params, SESSION))
    r.s.load_state(saved["s"])
    r.agg.load_state(saved["agg"])
    assert got + only(r.feed(ticks[cut:])) == sigs


def test_check_validates_its_params_like_a_builtin(tmp_path):
    assert strategy_new("mine", "--dir", str(tmp_path / "user_strategies")).returncode == 0
    kind = "user_strategies/mine.py:Mine"
    cfg = load_config(config_with(tmp_path, kind, {"period": 10}))
    spec = cfg.strategies["mine"]  # made absolute against the config's folder, whatever the working directory
    assert spec.kind == f"{(tmp_path / 'user_strategies' / 'mine.py').resolve()}:Mine"
    assert load_config(config_with(tmp_path, spec.kind)).strategies["mine"].kind == spec.kind  # absolute: as is
    bad = problems_of(config_with(tmp_path, kind, {"period": 1, "allow_short": "yes", "speed": 3}))
    assert bad == ["strategies.mine.params.allow_short: 'yes' is not allowed -- expected bool",
                   "strategies.mine.params.speed: unknown parameter -- allowed are candle_seconds, period, "
                   "allow_short, atr_period, atr_multiple, take_profit_atr, exit_at"]
    assert problems_of(config_with(tmp_path, kind, {"period": 1})) == [
        "strategies.mine.params.period: 1 is not allowed -- must be at least 2"]


BROKEN = {
    "syntax": ("from strategies.base import Strategy\n\nclass Mine(Strategy)\n    pass\n", "Mine",
               ", line 3: syntax error: expected ':'"),
    "import": ("import os\nfrom strategies.nothing_here import Helper\n", "Mine",
               ", line 2: cannot import it (ModuleNotFoundError: No module named 'strategies.nothing_here')"),
    "raises at import": ("X = 1\nY = X / 0\n", "Mine",
                         ", line 2: cannot import it (ZeroDivisionError: division by zero)"),
    "no class": ("from tests.faulty_strategy import EnterThenRaise as Other\n", "Mine",
                 ": no class Mine in it (Strategy classes there: none)"),
    "not a strategy": ("import dataclasses\n\n\nclass Mine:\n    pass\n", "Mine",
                       ", line 4: Mine is not a Strategy -- derive it from strategies.base.Strategy"),
    "contract unwritten": ("from strategies.base import Strategy\n\n\nclass Mine(Strategy):\n"
                           "    def on_tick(self, tick):\n        return None\n", "Mine",
                           ", line 4: Mine does not implement load_state, state_dict"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_file_is_one_problem_naming_file_and_line(tmp_path, case):
    source, cls, says = BROKEN[case]
    (tmp_path / "s.py").write_text(source)
    file = (tmp_path / "s.py").resolve()
    got = problems_of(config_with(tmp_path, f"s.py:{cls}"))
    assert len(got) == 1, got
    head = f"strategies.mine.kind: 's.py:{cls}' is not allowed -- {file}"
    assert got[0].startswith(head + says), got


def test_a_missing_file_and_a_raising_check_are_problems_too(tmp_path):
    got = problems_of(config_with(tmp_path, "nowhere/s.py:Mine"))
    assert got == [f"strategies.mine.kind: 'nowhere/s.py:Mine' is not allowed -- "
                   f"{(tmp_path / 'nowhere' / 's.py').resolve()}: no such file"]
    (tmp_path / "c.py").write_text(
        "from strategies.base import Strategy\n\n\nclass Mine(Strategy):\n    on_tick = state_dict = None\n"
        "    load_state = None\n\n    @classmethod\n    def check_params(cls, p):\n        raise KeyError('x')\n")
    got = problems_of(config_with(tmp_path, "c.py:Mine"))
    assert got == [f"strategies.mine.params.check_params: raised KeyError: 'x' (at {(tmp_path / 'c.py').resolve()}, "
                   "line 10) -- while checking them"]


def test_check_exits_2_naming_the_file_and_line_without_a_traceback(tmp_path):
    (tmp_path / "user_strategies").mkdir()
    (tmp_path / "user_strategies" / "s.py").write_text("from strategies.base import Strategy\n\nclass Mine(\n")
    cfg = config_with(tmp_path, "user_strategies/s.py:Mine", mode="signals_only")
    run = run_daemon(cfg, f"sqlite:///{tmp_path / 'd.sqlite'}", NOT_REACHABLE, args=["--check"], timeout=120)
    assert run.returncode == 2, run.output[-3000:]
    assert f"FAIL strategies.mine.kind: 'user_strategies/s.py:Mine' is not allowed -- " \
           f"{(tmp_path / 'user_strategies' / 's.py').resolve()}, line 3: syntax error" in run.output
    assert "Traceback" not in run.output


def _load_in_child(kind: str, cwd: str, out: mp.Queue) -> None:
    os.chdir(cwd)
    out.put(strategy_class(kind).kind)


def test_a_spawned_process_loads_it_from_any_working_directory(tmp_path):
    assert strategy_new("far", "--dir", str(tmp_path / "deep" / "user_strategies")).returncode == 0
    kind = load_config(config_with(tmp_path / "deep", "user_strategies/far.py:Far")).strategies["mine"].kind
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_load_in_child, args=(kind, str(tmp_path), q))
    p.start()
    try:
        assert q.get(timeout=60) == "far"
    finally:
        p.join(timeout=60)
    assert p.exitcode == 0


def test_from_strategy_new_to_check_to_a_replayed_day_with_its_signals(tmp_path):
    """What the README walks through: write it, name it in the config, --check, run a day (signals_only)."""
    assert strategy_new("mine", "--config", str(tmp_path / "config.yaml")).returncode == 0
    cfg = config_with(tmp_path, "user_strategies/mine.py:Mine", {"period": 10}, mode="signals_only")
    db_url = f"sqlite:///{tmp_path / 'd.sqlite'}"
    check = run_daemon(cfg, db_url, NOT_REACHABLE, args=["--check"], timeout=120)
    assert check.returncode == 0 and "all checks passed" in check.output, check.output[-3000:]
    run = run_daemon(cfg, db_url, NOT_REACHABLE, timeout=300)
    assert run.returncode == 0, run.output[-3000:]
    assert "Traceback" not in run.output and "raised" not in run.output
    by = dict(rows(db_url, "SELECT symbol, COUNT(*) FROM stock_signals WHERE strategy = 'mine' GROUP BY symbol"))
    assert set(by) == {"SBIN", "INFY"} and min(by.values()) >= 2, by
    notes = [n for (n,) in rows(db_url, "SELECT note FROM stock_signals WHERE strategy = 'mine' AND type = 'entry'")]
    assert notes and all("SMA(10)" in n for n in notes), notes
    assert rows(db_url, "SELECT COUNT(*) FROM orders WHERE failure_tag = 'SIGNALS_ONLY'")[0][0] > 0


def test_a_file_strategy_that_raises_is_contained_like_any_other(tmp_path):
    """Its symbol's strategy is off for the day, named once; the other symbols run on."""
    from datetime import date
    from datetime import time as dtime

    from core.clock import ist_epoch
    from core.types import Tick
    from market_data_handler import MarketDataHandler
    from tests.daemon_harness import DAY

    (tmp_path / "boom.py").write_text(
        "from strategies.base import Strategy\n\n\nclass Boom(Strategy):\n    def on_tick(self, tick):\n"
        "        raise RuntimeError('my bug')\n\n    def state_dict(self):\n        return {}\n\n"
        "    def load_state(self, state):\n        pass\n")
    cfg = load_config(config_with(tmp_path, "boom.py:Boom"))
    t0 = ist_epoch(date.fromisoformat(DAY), dtime(9, 16))
    told = []
    h = MarketDataHandler(cfg, ["SBIN", "RELIANCE"], lambda *a: None, on_disabled=told.append)
    for i in range(5):
        for sym in ("SBIN", "RELIANCE"):
            h.process(Tick(symbol=f"NSE:{sym}-EQ", ltp=100.0 + i, exch_feed_time=t0 + i))
    assert [(e.symbol, e.reason) for e in told] == [("SBIN", "RuntimeError in run: my bug")]
    assert "SBIN" not in h.strategies and "RELIANCE" in h.strategies and h.stats.ticks == 10

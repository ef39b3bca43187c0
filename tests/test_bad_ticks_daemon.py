"""Bad ticks thrown at the real daemon (driver.py, its feed process, workers, TradeManager and a real paper
broker), slipped in between the replayed day's ticks as if the socket had sent them (DAEMON_INJECT_TICKS).

Whatever comes, the day must trade exactly as it does without the bad ticks: the same trades, square-off at
the session's time and not earlier, flat at the end, exit 0; and every bad tick counted under its reason in the
end-of-day summary."""
from __future__ import annotations

import copy
import json
import math
import secrets
from datetime import date
from datetime import time as dtime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from core.clock import ist_epoch
from core.config import load_config
from feeds.synthetic import generate_day
from pipeline import tick_validator as V
from tests.daemon_harness import DAY, rows, run_daemon, short_day_config
from tests.paper_fixtures import Broker
from tests.test_daemon_replay import check_books, trades

# a 45-minute day on two workers (about 15 s a run): a dozen signals, positions open at the square-off
SESSION = {"pre_open": "09:00", "open": "09:15", "entry_cutoff": "09:50", "square_off": "09:55", "close": "10:00"}
UNKNOWN = "NSE:NOPE-EQ"


def at(hm: str) -> int:
    return int(ist_epoch(date.fromisoformat(DAY), dtime.fromisoformat(hm)))


def good_stream(cfg_path: Path) -> list[dict]:
    """The ticks the replay's socket delivers: the synthetic day the feed process generates."""
    cfg = load_config(cfg_path)
    return list(generate_day([s.fyers for s in cfg.symbols], date.fromisoformat(DAY), cfg.replay.seed, cfg.session))


def replay(tmp: Path, injected: list[tuple[int, Any]] | None = None, timeout: float = 240) -> tuple[Any, dict]:
    """One daemon run with `injected` (before-index, message) pairs; its result and summary.json."""
    tmp.mkdir(parents=True, exist_ok=True)
    cfg = short_day_config(tmp, workers=2, session=SESSION)
    env: dict[str, str] = {}
    if injected:
        path = tmp / "inject.jsonl"
        path.write_text("".join(json.dumps({"before": i, "tick": t}) + "\n" for i, t in injected))
        env["DAEMON_INJECT_TICKS"] = str(path)
    b = Broker(tmp / "broker.sqlite", secrets.token_hex(16), args=["--order-rate", "10"],
               log_file=tmp / "broker.log").start()
    try:
        run = run_daemon(cfg, f"sqlite:///{tmp / 'd.sqlite'}", {**env, "HOST_SERVER": b.url, "APP_KEY": b.key},
                         timeout=timeout)
        assert run.returncode == 0, run.output[-3000:]
        assert "Traceback" not in run.output
        assert "replay finished: closing the session" in run.output
        check_books(run.db_url, b)
    finally:
        b.stop()
    summary = json.loads((tmp / "reports" / DAY / "summary.json").read_text())
    return run, summary


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """The day without bad ticks: what every run with them must equal."""
    tmp = tmp_path_factory.mktemp("clean")
    run, summary = replay(tmp)
    t = trades(run.db_url)
    assert len(t) >= 4, "the short day should trade"
    return {"stream": good_stream(tmp / "config.yaml"), "trades": t, "summary": summary,
            "signals": rows(run.db_url, "SELECT COUNT(*) FROM stock_signals")[0][0],
            "orders": rows(run.db_url, "SELECT COUNT(*) FROM orders")[0][0],
            "square_offs": square_offs(run.db_url)}


def square_offs(db_url: str) -> set[int]:
    return {r[0] for r in rows(db_url, "SELECT decision_time FROM orders WHERE purpose = 'square_off'")}


def check_same_day(run: Any, clean: dict) -> None:
    """The bad ticks changed nothing: same trades, signals and orders; the session's rules held."""
    assert trades(run.db_url) == clean["trades"]
    assert rows(run.db_url, "SELECT COUNT(*) FROM stock_signals")[0][0] == clean["signals"]
    assert rows(run.db_url, "SELECT COUNT(*) FROM orders")[0][0] == clean["orders"]
    # session rules: no entry from the cut-off on, all closed by the square-off, flat at the end
    assert rows(run.db_url, "SELECT COUNT(*) FROM orders WHERE purpose = 'entry' AND status != 'FAILED' "
                            "AND decision_time >= :t", t=at(SESSION["entry_cutoff"]))[0][0] == 0
    late = rows(run.db_url, "SELECT COUNT(*) FROM trade_log WHERE exit_time > :t", t=at(SESSION["square_off"]))
    assert late[0][0] == 0
    assert rows(run.db_url, "SELECT COUNT(*) FROM active_trades")[0][0] == 0
    # the square-off (if a position was still open: caps may have closed them all) was decided at its market
    # time, not earlier, as on the clean day; signals came up to the cut-off
    assert square_offs(run.db_url) == clean["square_offs"] and clean["square_offs"] <= {at(SESSION["square_off"])}
    assert rows(run.db_url, "SELECT MAX(time) FROM stock_signals")[0][0] >= at("09:45")


def last_before(stream: list[dict], i: int, sym: str) -> dict | None:
    return next((t for t in reversed(stream[:i]) if t["symbol"] == sym), None)


# ---------------------------------------------------------------- the three regressions of the issue

def test_a_negative_price_with_a_position_open_is_dropped_and_the_day_goes_on(tmp_path, clean):
    """It used to reach the paper broker, which refused the whole quote batch; the worker retried it forever
    and the replay froze with the position open."""
    stream = clean["stream"]
    entry = rows_of_first_trade(clean)
    i = next(k for k, t in enumerate(stream)
             if t["symbol"] == entry["fyers"] and entry["at"] + 5 < t["exch_feed_time"] < entry["until"])
    bad = {**stream[i], "ltp": -stream[i]["ltp"]}
    run, summary = replay(tmp_path, [(i, bad)], timeout=150)
    check_same_day(run, clean)
    assert summary["ticks"]["rejected_by_reason"] == {V.BAD_PRICE: 1}


def rows_of_first_trade(clean: dict) -> dict:
    """The first trade of the clean day: its symbol's Fyers name and when its position was open."""
    sym, _side, _tt, _q, entry_time, _ep, exit_time, *_ = clean["trades"][0]
    assert exit_time - entry_time > 10, "the position should stay open a while"
    return {"fyers": f"NSE:{sym}-EQ", "at": entry_time, "until": exit_time}


def test_one_far_future_tick_neither_moves_the_clock_nor_cuts_the_day(tmp_path, clean):
    """A 15:20 tick early in the day (10:00 in the issue) used to become the replay's clock: cut-off and
    square-off fired at once, the worker dropped the symbol's later ticks as going backwards, and the run exited
    0 with a fraction of the orders."""
    stream = clean["stream"]
    i = next(k for k, t in enumerate(stream) if t["exch_feed_time"] >= at("09:30"))
    bad = {**stream[i], "exch_feed_time": at("15:20")}
    run, summary = replay(tmp_path, [(i, bad)])
    check_same_day(run, clean)
    assert summary["ticks"]["rejected_by_reason"] == {V.AHEAD: 1}
    assert "0 bad at workers" in run.output


def test_duplicated_ticks_are_counted_and_change_nothing(tmp_path, clean):
    stream = clean["stream"]
    picks = range(100, len(stream), len(stream) // 7)[:6]
    injected = [(i, copy.deepcopy(last_before(stream, i, stream[i]["symbol"]))) for i in picks]
    run, summary = replay(tmp_path, injected)
    check_same_day(run, clean)
    assert summary["ticks"]["rejected_by_reason"] == {V.DUPLICATE: len(injected)}
    assert f"duplicate: {len(injected)}" in run.output  # the log's closing summary


# ---------------------------------------------------------------- adversarial streams

KINDS = ("negative", "zero", "nan", "huge", "out_of_order", "future", "duplicate", "no_price", "no_time",
         "no_symbol", "unknown_symbol")
EXPECTED = {"negative": V.BAD_PRICE, "zero": V.BAD_PRICE, "nan": V.BAD_PRICE, "huge": V.PRICE_OUT_OF_RANGE,
            "out_of_order": V.BACKWARDS, "future": V.AHEAD, "duplicate": V.DUPLICATE, "no_price": V.NON_NUMERIC_PRICE,
            "no_time": V.BAD_TIMESTAMP, "no_symbol": V.MISSING_SYMBOL, "unknown_symbol": V.UNKNOWN_SYMBOL}


def bad_tick(kind: str, stream: list[dict], i: int, n: int) -> dict | None:
    """A bad tick of `kind` to go before stream[i] (None if there is no earlier tick of its symbol to copy);
    `n` numbers the run's far-future ticks so that no two agree (that would look like a gap in the data)."""
    t = dict(stream[i])
    prev = last_before(stream, i, t["symbol"])
    if kind in ("negative", "zero", "nan", "huge"):
        t["ltp"] = {"negative": -t["ltp"], "zero": 0.0, "nan": math.nan, "huge": t["ltp"] * 1000}[kind]
    elif kind == "out_of_order":
        if prev is None:
            return None
        t = {**prev, "exch_feed_time": prev["exch_feed_time"] - 1 - n % 30, "vol_traded_today": 1}
    elif kind == "future":
        t["exch_feed_time"] += 3600 + 600 * n
    elif kind == "duplicate":
        return None if prev is None else dict(prev)
    elif kind == "no_price":
        del t["ltp"]
    elif kind == "no_time":
        t.pop("exch_feed_time", None)
        t.pop("last_traded_time", None)
    elif kind == "no_symbol":
        del t["symbol"]
    else:
        t["symbol"] = UNKNOWN
    return t


@settings(max_examples=5, deadline=None, derandomize=True, database=None,
          phases=(Phase.explicit, Phase.generate), suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.sampled_from(KINDS), st.floats(0, 1, exclude_max=True)), min_size=1, max_size=25))
@example([(k, (j + 1) / (len(KINDS) + 2)) for j, k in enumerate(KINDS)])  # every kind at least once
def test_adversarial_streams_never_stop_or_wreck_the_day(tmp_path_factory, clean, injections):
    stream = clean["stream"]
    injected, expected = [], {}
    for n, (kind, where) in enumerate(injections):
        i = int(where * len(stream))
        t = bad_tick(kind, stream, i, n)
        if t is None:
            continue
        injected.append((i, t))
        expected[EXPECTED[kind]] = expected.get(EXPECTED[kind], 0) + 1
    run, summary = replay(tmp_path_factory.mktemp("adversarial"), injected)
    check_same_day(run, clean)
    assert summary["ticks"]["rejected_by_reason"] == dict(sorted(expected.items()))
    assert summary["ticks"]["rejected"] == len(injected)
    assert summary["ticks"]["dispatched"] == clean["summary"]["ticks"]["dispatched"]

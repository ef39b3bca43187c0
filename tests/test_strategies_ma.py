"""MovingAverageCrossover driven the way the worker drives it: ticks -> CandleAggregator -> on_candle, then run."""
from __future__ import annotations

import functools
import json
import random
from datetime import date
from datetime import time as dtime
from pathlib import Path

import pytest
import yaml

from core.clock import ist_epoch
from core.config import SessionConfig
from core.enums import PositionSide, SignalType
from core.types import Tick
from strategies import strategy_class
from strategies.base import Candle, Strategy
from strategies.candles import CandleAggregator
from strategies.ma_crossover import MovingAverageCrossover

DAY = date(2024, 1, 15)
DAY2 = date(2024, 1, 16)
SESSION = SessionConfig()
LONG, SHORT = PositionSide.LONG, PositionSide.SHORT
SMALL = {"fast": 2, "slow": 4, "atr_period": 3, "atr_multiple": 2.0}

# (open, high, low, close). True ranges 2, 1, 2 -> first ATR 5/3; then TR 2 -> 16/9; then TR 4 -> 68/27.
# Closes 100, 100, 99, 98: at candle 4 fast(2) 98.5 < slow(4) 99.25 (warm, no cross yet);
# candle 5 closes 102: fast 100 > slow 99.75 -> cross up, ATR 68/27.
UP = [(100, 101, 99, 100), (100, 100.5, 99.5, 100), (100, 100.5, 98.5, 99), (99, 99.5, 97.5, 98),
      (98, 102, 98, 102)]
ATR5 = 68 / 27


def mirror(cs):
    return [(200 - o, 200 - lo, 200 - hi, 200 - c) for o, hi, lo, c in cs]


def at(hh: int, mm: int, ss: int = 0, d: date = DAY) -> int:
    return ist_epoch(d, dtime(hh, mm)) + ss


def tick(t: int, ltp: float, vol: int = 1000) -> Tick:
    return Tick.from_feed({
        "ltp": ltp, "vol_traded_today": vol, "last_traded_time": t, "exch_feed_time": t, "bid_size": 5,
        "ask_size": 7, "bid_price": ltp - 0.05, "ask_price": ltp + 0.05, "last_traded_qty": 1,
        "tot_buy_qty": 100, "tot_sell_qty": 90, "avg_trade_price": ltp, "low_price": ltp, "high_price": ltp,
        "lower_ckt": 0, "upper_ckt": 0, "open_price": ltp, "prev_close_price": ltp, "type": "sf",
        "symbol": "NSE:SBIN-EQ", "ch": 0.0, "chp": 0.0})


def candle_ticks(cs, start: int) -> list[Tick]:
    """Four ticks per one-minute candle (open, high, low, close), consecutive minutes from `start`."""
    out = []
    for i, (o, hi, lo, c) in enumerate(cs):
        m = start + 60 * i
        out += [tick(m, o), tick(m + 15, hi), tick(m + 30, lo), tick(m + 59, c)]
    return out


class Worker:
    """What the worker's market data handler does for one symbol (any candle strategy: the rsi and momentum
    tests drive theirs with it too)."""

    def __init__(self, s: Strategy):
        self.s = s
        self.agg = CandleAggregator(s.symbol, s.candle_seconds)
        self.candles = []

    def feed(self, ticks) -> list:
        out = []
        for tk in ticks:
            for c in self.agg.update(tk):
                self.candles.append(c)
                assert self.s.on_candle(c) is None
            out.append(self.s.run(tk))
        return out

    def at(self, t: int, ltp: float):
        return self.feed([tick(t, ltp)])[0]


def make(session: SessionConfig = SESSION, **params) -> MovingAverageCrossover:
    return MovingAverageCrossover("LT", "mac", {**SMALL, **params}, session)


def only(sigs) -> list:
    return [x for x in sigs if x is not None]


def warmed(cs=UP, **params) -> Worker:
    w = Worker(make(**params))
    assert only(w.feed(candle_ticks(cs, at(9, 15)))) == []
    return w


# ---------------------------------------------------------------- entries

def test_long_entry_on_cross_up_with_atr_stop():
    w = warmed()
    sig = w.at(at(9, 20), 102.1)                 # closes candle 5 -> cross -> entry on this tick
    assert len(w.candles) == 5 and w.candles[-1].close == 102
    assert sig.type is SignalType.ENTRY and sig.current_position is LONG
    assert (sig.symbol, sig.strategy, sig.time, sig.price) == ("LT", "mac", at(9, 20), 102.1)
    assert sig.stop_loss == pytest.approx(102 - 2.0 * ATR5, abs=1e-12)
    assert sig.extra["atr"] == pytest.approx(ATR5, abs=1e-12)
    assert sig.take_profit_price is None and sig.position_size == 0
    assert "crossed above" in sig.note
    assert w.s.position is LONG


def test_short_entry_on_cross_down_with_atr_stop():
    w = warmed(mirror(UP), atr_multiple=1.5)
    sig = w.at(at(9, 20), 97.9)
    assert sig.type is SignalType.ENTRY and sig.current_position is SHORT
    assert sig.stop_loss == pytest.approx(98 + 1.5 * ATR5, abs=1e-12)
    assert "crossed below" in sig.note


def test_warm_up_is_silent():
    # candle 4 is the first warm one; its sign (fast below slow) is the reference, not a cross
    w = Worker(make())
    assert only(w.feed(candle_ticks(UP[:4], at(9, 15)) + [tick(at(9, 19), 98.0)])) == []
    # slow window warm but the ATR is not: the cross of candle 5 is ignored
    w = warmed(atr_period=6)
    assert w.at(at(9, 20), 102.1) is None
    # too few candles for the slow average: nothing, whatever the prices do
    w = Worker(make(fast=3, slow=6))
    assert only(w.feed(candle_ticks(UP, at(9, 15)) + [tick(at(9, 20), 102.1)])) == []


def test_stop_exit():
    w = warmed()
    w.at(at(9, 20), 102.1)
    stop = 102 - 2.0 * ATR5                       # 96.96...
    assert w.at(at(9, 20, 10), 96.97) is None
    ex = w.at(at(9, 20, 20), 96.96)
    assert ex.type is SignalType.EXIT and ex.current_position is LONG
    assert ex.stop_loss == pytest.approx(stop) and ex.note.startswith("stop hit")
    assert w.s.position is None
    assert w.at(at(9, 20, 30), 90.0) is None


def test_opposite_cross_exits_then_reverses():
    w = warmed(atr_multiple=10.0)
    w.at(at(9, 20), 102.1)
    # closes after entry: 102 (c5), then 101 (still above), 99 (fast == slow: no change), 98 (cross down)
    more = candle_ticks([(102, 102, 101, 101), (101, 101, 99, 99), (99, 99, 98, 98)], at(9, 20))
    assert only(w.feed(more)) == []
    ex = w.at(at(9, 23), 98.2)                    # closes the 98 candle
    assert ex.type is SignalType.EXIT and ex.current_position is LONG
    assert ex.note.startswith("reversal: fast SMA(2)") and "crossed below" in ex.note
    short = w.at(at(9, 23, 1), 98.1)
    assert short.type is SignalType.ENTRY and short.current_position is SHORT
    # true ranges of the three candles: 1.1 (the 102.1 entry tick opened it), 2, 1 -> Wilder from 68/27
    atr = ATR5
    for tr in (1.1, 2, 1):
        atr = (atr * 2 + tr) / 3
    assert short.stop_loss == pytest.approx(98 + 10.0 * atr, abs=1e-12)


def test_cross_is_dropped_if_the_tick_is_already_through_the_stop():
    w = warmed()
    assert w.at(at(9, 20), 96.0) is None          # below 102 - 2 x ATR
    assert w.at(at(9, 20, 1), 102.0) is None      # the cross lapsed


def test_end_of_day_exit_and_no_entry_after_cutoff():
    w = warmed(exit_at="09:25")
    w.at(at(9, 20), 102.1)
    assert w.at(at(9, 24, 59), 102.0) is None
    ex = w.at(at(9, 25), 102.0)
    assert ex.type is SignalType.EXIT and ex.note == "end of day"
    late = SessionConfig(entry_cutoff=dtime(9, 20))
    w = Worker(make(late))
    only(w.feed(candle_ticks(UP, at(9, 15))))
    assert w.at(at(9, 20), 102.1) is None        # the cross comes at the cutoff


def test_pre_open_candles_do_not_count():
    noise = [tick(at(9, 0) + 20 * i, 50.0 + (i * 31 % 17)) for i in range(25)]   # pre-open 9:00-9:08
    w = Worker(make())
    only(w.feed(noise + candle_ticks(UP, at(9, 15))))
    sig = w.at(at(9, 20), 102.1)
    assert sig.stop_loss == pytest.approx(102 - 2.0 * ATR5, abs=1e-12)


def test_reset_position_tracking_stops_exits():
    w = warmed()
    w.at(at(9, 20), 102.1)
    w.s.discard_signal()
    w.s.reset_position_tracking()
    assert w.s.position is None and w.s.pending is None
    assert w.at(at(9, 20, 10), 90.0) is None      # through the old stop: no exit
    assert w.at(at(15, 5), 90.0) is None          # exit_at: no exit


def test_discarded_entry_alone_means_flat():
    w = warmed()
    w.at(at(9, 20), 102.1)
    w.s.discard_signal()
    assert w.s.position is None and w.at(at(9, 20, 10), 90.0) is None


def test_new_day_resets_indicators_and_exits_a_stale_position():
    w = warmed()
    w.at(at(9, 20), 102.1)
    ex = w.at(at(9, 15, d=DAY2), 100.0)
    assert ex.type is SignalType.EXIT and "end of day" in ex.note and ex.current_position is LONG
    # day 2 must warm up again: the same five candles give the same single entry, not an earlier one
    sigs = w.feed(candle_ticks(UP, at(9, 15, d=DAY2))[1:] + [tick(at(9, 20, d=DAY2), 102.1)])
    got = only(sigs)
    assert len(got) == 1 and got[0].type is SignalType.ENTRY and got[0].time == at(9, 20, d=DAY2)
    assert got[0].stop_loss == pytest.approx(102 - 2.0 * ATR5, abs=1e-12)


def test_candle_seconds_is_the_parameter():
    assert make(candle_seconds=300).candle_seconds == 300
    assert strategy_class("ma_crossover") is MovingAverageCrossover


# ---------------------------------------------------------------- parameters

def test_config_yaml_params_are_valid():
    raw = yaml.safe_load((Path(__file__).resolve().parent.parent / "config.yaml").read_text())
    for spec in raw["strategies"].values():
        if spec["kind"] == "ma_crossover":
            assert MovingAverageCrossover.validate_params(spec.get("params") or {}) == []


@pytest.mark.parametrize("params, start", [
    ({"fsat": 9}, "fsat: unknown parameter"),
    ({"fast": 9.0}, "fast: 9.0 is not allowed"),
    ({"atr_multiple": "2"}, "atr_multiple: '2' is not allowed"),
    ({"fast": 21, "slow": 21}, "slow: 21 is not allowed -- must be greater than fast"),
    ({"fast": 30, "slow": 21}, "slow: 21 is not allowed -- must be greater than fast"),
    ({"fast": 0, "slow": 21}, "fast: 0 is not allowed"),
    ({"atr_period": 0}, "atr_period: 0 is not allowed"),
    ({"atr_multiple": 0}, "atr_multiple: 0 is not allowed"),
    ({"candle_seconds": 7}, "candle_seconds: 7 is not allowed"),
    ({"candle_seconds": 7200}, "candle_seconds: 7200 is not allowed"),
    ({"exit_at": "15:5"}, "exit_at: '15:5' is not allowed"),
    ({"exit_at": 2000}, "exit_at: 2000 is not allowed"),
])
def test_bad_params_are_reported(params, start):
    problems = MovingAverageCrossover.validate_params(params)
    assert len(problems) == 1 and problems[0].startswith(start) and " -- " in problems[0]
    with pytest.raises(ValueError):
        MovingAverageCrossover("LT", "mac", params, SESSION)


# ---------------------------------------------------------------- determinism and state

@functools.cache
def random_days(seed: int) -> tuple[Tick, ...]:
    rng = random.Random(seed)
    out = []
    vol = 0
    for d in (DAY, DAY2):
        p, drift, t = 500.0, 0.0, at(9, 10, d=d)
        while t < at(15, 20, d=d):
            if rng.random() < 0.004:
                drift = rng.choice((-0.05, 0.0, 0.05))
            p = round(max(1.0, p + drift + rng.gauss(0, 0.15)), 2)
            vol += rng.randint(0, 40)
            out.append(tick(t, p, vol))
            t += rng.randint(1, 5)
    return tuple(out)


PARAMS = {"fast": 5, "slow": 13, "atr_period": 7, "atr_multiple": 3.0}


@pytest.mark.parametrize("seed", [4, 5])
def test_same_ticks_same_signals(seed):
    ticks = random_days(seed)
    a = only(Worker(make(**PARAMS)).feed(ticks))
    b = only(Worker(make(**PARAMS)).feed(ticks))
    assert a == b and len(a) > 4


@pytest.mark.parametrize("seed", [4, 5])
def test_restored_strategy_emits_the_same_signals(seed):
    ticks = random_days(seed)
    expected = only(Worker(make(**PARAMS)).feed(ticks))
    notes = {x.note.split(":")[0].split(" ")[0] for x in expected}
    assert {"fast", "reversal", "stop", "end"} <= notes, notes
    for cut in range(0, len(ticks), max(1, len(ticks) // 11)):
        w = Worker(make(**PARAMS))
        got = only(w.feed(ticks[:cut]))
        saved = json.loads(json.dumps({"s": w.s.state_dict(), "agg": w.agg.state_dict()}, allow_nan=False))
        r = Worker(make(**PARAMS))
        r.s.load_state(saved["s"])
        r.agg.load_state(saved["agg"])
        assert r.s.state_dict() == w.s.state_dict() and r.s.pending == w.s.pending
        got += only(r.feed(ticks[cut:]))
        assert got == expected, f"diverged after restoring at tick {cut}"


def test_load_state_refuses_other_params():
    w = warmed()
    with pytest.raises(ValueError, match="different params"):
        make(slow=5).load_state(w.s.state_dict())


def test_averages_exactly_equal_are_no_cross_where_float_sums_differ():
    """These closes have fast and slow means both exactly 199.0; summed as floats they come out 198.99999999999997
    and 199.0, which the hand-computed averages read as fast below slow (a sign, so a cross later). The exact
    SMAs see them equal: no sign is taken from this candle."""
    closes = [198.9, 198.35, 199.05, 199.6, 199.35, 199.6, 198.6, 198.95, 198.9, 199.85, 199.55, 197.3, 198.7, 199.45,
              198.9, 198.05, 199.3, 199.75, 198.3, 198.55, 200.0]
    assert sum(closes[-9:]) / 9 != sum(closes) / 21
    s = MovingAverageCrossover("LT", "mac", {}, SESSION)
    day = date(2026, 11, 20)
    open_ = ist_epoch(day, SESSION.open)
    s.warm_up([Candle("LT", open_ - 3600 + 60 * i, 60, c, c, c, c, 1) for i, c in enumerate(closes)], open_)
    assert s._fast.value == s._slow.value == 199.0
    assert s._last_sign == 0

"""OpeningRangeBreakout on hand-built Fyers-shaped tick sequences."""
from __future__ import annotations

import functools
import json
import random
from datetime import date
from datetime import time as dtime
from pathlib import Path

import msgspec
import pytest
import yaml

from core.clock import ist_epoch
from core.config import SessionConfig
from core.enums import PositionSide, SignalType
from core.types import Tick
from strategies import validate_params
from strategies.orb import OpeningRangeBreakout

DAY = date(2024, 1, 15)
DAY2 = date(2024, 1, 16)
SESSION = SessionConfig()
LONG, SHORT = PositionSide.LONG, PositionSide.SHORT


def at(hh: int, mm: int, ss: int = 0, d: date = DAY) -> int:
    return ist_epoch(d, dtime(hh, mm)) + ss


def tick(t: int, ltp: float, vol: int = 1000) -> Tick:
    return Tick.from_feed({
        "ltp": ltp, "vol_traded_today": vol, "last_traded_time": t, "exch_feed_time": t, "bid_size": 5,
        "ask_size": 7, "bid_price": ltp - 0.05, "ask_price": ltp + 0.05, "last_traded_qty": 1,
        "tot_buy_qty": 100, "tot_sell_qty": 90, "avg_trade_price": ltp, "low_price": ltp, "high_price": ltp,
        "lower_ckt": 0, "upper_ckt": 0, "open_price": ltp, "prev_close_price": ltp, "type": "sf",
        "symbol": "NSE:SBIN-EQ", "ch": 0.0, "chp": 0.0})


def make(**params) -> OpeningRangeBreakout:
    return OpeningRangeBreakout("SBIN", "orb", params, SESSION)


def run(s: OpeningRangeBreakout, points: list[tuple[int, float]]) -> list:
    """Signals (None included) for (time, ltp) points, one per tick."""
    return [s.run(tick(t, p)) for t, p in points]


def opening(d: date = DAY, lo: float = 99.0, hi: float = 101.0) -> list[tuple[int, float]]:
    """Pre-open noise, then a 9:15-9:30 range of exactly [lo, hi]."""
    mid = (lo + hi) / 2
    return [(at(9, 5, d=d), hi + 50), (at(9, 14, 59, d=d), lo - 50),  # pre-open: not part of the range
            (at(9, 15, d=d), mid), (at(9, 20, d=d), hi), (at(9, 25, d=d), lo), (at(9, 29, 59, d=d), mid)]


def opened(**params) -> OpeningRangeBreakout:
    s = make(**params)
    assert run(s, opening()) == [None] * 6
    return s


def only(sigs: list) -> list:
    return [x for x in sigs if x is not None]


# ---------------------------------------------------------------- entries

def test_long_breakout_enters_with_range_low_stop_and_1r_target():
    s = opened()
    assert s.run(tick(at(9, 30, 5), 101.0)) is None  # touching the high is not a break
    sig = s.run(tick(at(9, 30, 6), 101.5))
    assert sig is not None and sig.type is SignalType.ENTRY and sig.current_position is LONG
    assert (sig.symbol, sig.strategy, sig.time, sig.price) == ("SBIN", "orb", at(9, 30, 6), 101.5)
    assert sig.stop_loss == 99.0 and sig.take_profit_price == pytest.approx(104.0)
    assert sig.position_size == 0 and sig.extra == {"range_high": 101.0, "range_low": 99.0}
    assert s.position is LONG and s.pending is sig


def test_short_breakout_enters_with_range_high_stop():
    s = opened(take_profit_r=2.0)
    sig = s.run(tick(at(10, 0), 98.5))
    assert sig.type is SignalType.ENTRY and sig.current_position is SHORT
    assert sig.stop_loss == 101.0 and sig.take_profit_price == pytest.approx(98.5 - 2.0 * 2.5)
    assert s.position is SHORT


def test_no_entry_inside_the_range_or_while_it_forms():
    s = make()
    pts = [(at(9, 15), 100.0), (at(9, 16), 105.0), (at(9, 17), 95.0), (at(9, 29, 59), 100.0)]  # range 95-105
    pts += [(at(9, 30) + 7 * i, 95.0 + (i * 37 % 101) / 10) for i in range(300)]                 # 95.0 .. 105.0
    assert only(run(s, pts)) == [] and s.position is None


def test_no_entry_at_or_after_entry_cutoff():
    s = opened()
    assert run(s, [(at(14, 59, 59), 100.0), (at(15, 0), 102.0), (at(15, 2), 97.0)]) == [None] * 3
    s = opened()
    assert s.run(tick(at(14, 59, 59), 102.0)).type is SignalType.ENTRY


def test_no_entry_after_exit_at_even_before_cutoff():
    s = opened(exit_at="14:00")
    assert s.run(tick(at(14, 0), 102.0)) is None
    assert s.run(tick(at(14, 30), 97.0)) is None


def test_partial_take_profit_at_1r_then_break_even_stop():
    s = opened()
    s.run(tick(at(9, 31), 101.5))                         # R = 2.5, target 104.0
    assert s.run(tick(at(9, 32), 103.99)) is None
    tp = s.run(tick(at(9, 33), 104.0))
    assert tp.type is SignalType.TAKE_PROFIT and tp.current_position is LONG
    assert tp.close_fraction == 0.5 and tp.take_profit_price == pytest.approx(104.0)
    assert tp.stop_loss == 101.5                           # moved to the entry
    assert s.position is LONG
    assert run(s, [(at(9, 34), 106.0), (at(9, 35), 101.6)]) == [None, None]   # one take-profit only
    ex = s.run(tick(at(9, 36), 101.5))
    assert ex.type is SignalType.EXIT and ex.current_position is LONG and "break-even" in ex.note
    assert s.position is None


def test_short_take_profit_with_custom_fraction_and_no_break_even():
    s = opened(take_profit_fraction=0.25, breakeven_after_take_profit=False)
    s.run(tick(at(9, 31), 98.0))                           # R = 3, target 95
    tp = s.run(tick(at(9, 32), 94.9))
    assert (tp.type, tp.close_fraction, tp.stop_loss) == (SignalType.TAKE_PROFIT, 0.25, 101.0)
    assert s.run(tick(at(9, 33), 98.0)) is None            # the stop stayed at the range high
    ex = s.run(tick(at(9, 34), 101.0))
    assert ex.type is SignalType.EXIT and ex.current_position is SHORT and ex.note.startswith("stop")


def test_take_profit_fraction_one_closes_everything():
    s = opened(take_profit_fraction=1.0)
    s.run(tick(at(9, 31), 101.5))
    tp = s.run(tick(at(9, 32), 104.5))
    assert tp.type is SignalType.TAKE_PROFIT and tp.close_fraction == 1.0
    assert s.position is None
    assert s.run(tick(at(9, 33), 90.0)) is None


def test_stop_exit_long_and_no_more_entries_that_day():
    s = opened()
    s.run(tick(at(9, 31), 101.5))
    assert s.run(tick(at(9, 32), 99.01)) is None
    ex = s.run(tick(at(9, 33), 98.9))
    assert ex.type is SignalType.EXIT and ex.current_position is LONG
    assert ex.stop_loss == 99.0 and "stop hit" in ex.note
    assert s.position is None
    assert run(s, [(at(9, 34), 98.0), (at(10, 0), 102.0)]) == [None, None]  # max_entries_per_day=1


def test_second_entry_needs_rearming_when_allowed():
    s = opened(max_entries_per_day=3)
    s.run(tick(at(9, 31), 101.5))
    s.run(tick(at(9, 32), 104.0))                           # take-profit, stop -> 101.5
    assert s.run(tick(at(9, 33), 101.5)).type is SignalType.EXIT
    assert s.run(tick(at(9, 34), 101.8)) is None            # still above the high: not re-armed
    assert s.run(tick(at(9, 35), 100.0)) is None            # back inside: re-armed
    again = s.run(tick(at(9, 36), 101.2))
    assert again.type is SignalType.ENTRY and again.current_position is LONG
    assert s.run(tick(at(9, 37), 98.9)).type is SignalType.EXIT       # stopped out below the low
    short = s.run(tick(at(9, 38), 98.8))                               # short side was armed all along
    assert short.type is SignalType.ENTRY and short.current_position is SHORT
    assert s.run(tick(at(9, 39), 101.0)).type is SignalType.EXIT
    assert s.run(tick(at(9, 40), 97.0)) is None             # three entries used


def test_end_of_day_exit_on_first_tick_at_exit_at():
    s = opened()
    s.run(tick(at(9, 31), 101.5))
    assert s.run(tick(at(15, 4, 59), 102.0)) is None
    ex = s.run(tick(at(15, 5), 102.1))
    assert ex.type is SignalType.EXIT and ex.note == "end of day" and ex.current_position is LONG
    assert s.position is None
    assert s.run(tick(at(15, 6), 110.0)) is None


def test_exit_at_written_unquoted_in_yaml_is_understood():
    params = yaml.safe_load("exit_at: 14:30")
    assert params == {"exit_at": 870} and validate_params("opening_range_breakout", params) == []
    s = opened(**params)
    s.run(tick(at(9, 31), 101.5))
    assert s.run(tick(at(14, 30), 102.0)).note == "end of day"


def test_new_day_resets_range_and_counters():
    s = opened()
    s.run(tick(at(9, 31), 101.5))
    s.run(tick(at(9, 32), 98.0))                            # stopped out: the one entry used
    assert s.run(tick(at(10, 0), 97.0)) is None
    pts = opening(DAY2, lo=200.0, hi=202.0)
    assert run(s, pts) == [None] * len(pts)
    assert s.run(tick(at(9, 31, d=DAY2), 110.0)).current_position is SHORT  # below the new low of 200


def test_position_left_open_overnight_is_exited_on_the_first_tick_of_the_new_day():
    s = opened()
    s.run(tick(at(9, 31), 101.5))
    ex = s.run(tick(at(9, 15, d=DAY2), 300.0))              # no tick after exit_at on day 1
    assert ex.type is SignalType.EXIT and ex.current_position is LONG and "end of day" in ex.note
    assert ex.time == at(9, 15, d=DAY2) and s.position is None
    assert s.run(tick(at(9, 20, d=DAY2), 301.0)) is None
    sig = s.run(tick(at(9, 30, 1, d=DAY2), 301.5))
    assert sig.stop_loss == 300.0                            # the exiting tick still fed the new range


def test_reset_position_tracking_stops_exits():
    s = opened()
    s.run(tick(at(9, 31), 101.5))
    s.discard_signal()
    s.reset_position_tracking()
    assert s.position is None and s.pending is None
    assert run(s, [(at(9, 32), 104.5), (at(9, 33), 98.0), (at(15, 5), 100.0)]) == [None] * 3


def test_force_exit_after_take_profit_stops_exits():
    s = opened()
    s.run(tick(at(9, 31), 101.5))
    s.run(tick(at(9, 32), 104.0))
    s.reset_position_tracking()                             # TradeManager force-exited the rest
    assert run(s, [(at(9, 33), 101.0), (at(9, 34), 98.0), (at(15, 5), 100.0)]) == [None] * 3


def test_discarded_entry_alone_means_flat():
    s = opened(max_entries_per_day=2)
    s.run(tick(at(9, 31), 101.5))
    s.discard_signal()
    assert s.position is None and s.pending is None
    assert s.run(tick(at(9, 32), 98.0)).type is SignalType.ENTRY  # not an exit of the discarded long


def test_late_start_skips_the_day_unless_grace_allows():
    late = [(at(9, 20), 100.0), (at(9, 25), 101.0), (at(9, 29), 99.0)]
    s = make()
    assert only(run(s, late + [(at(9, 31), 103.0), (at(9, 40), 97.0)])) == []
    s = make(range_start_grace_s=600)
    assert run(s, late + [(at(9, 31), 103.0)])[-1].type is SignalType.ENTRY


def test_no_ticks_in_the_range_window_means_no_trade():
    s = make()
    assert only(run(s, [(at(9, 10), 100.0), (at(9, 31), 103.0), (at(9, 40), 97.0)])) == []


def test_falls_back_to_last_traded_time_and_ignores_ticks_without_price():
    s = opened()
    t = msgspec.structs.replace(tick(at(9, 31), 101.5), exch_feed_time=None)
    assert s.run(t).time == at(9, 31)
    assert s.run(Tick(exch_feed_time=at(9, 32), symbol="NSE:SBIN-EQ")) is None


# ---------------------------------------------------------------- parameters

def test_config_yaml_params_are_valid():
    raw = yaml.safe_load((Path(__file__).resolve().parent.parent / "config.yaml").read_text())
    for spec in raw["strategies"].values():
        if spec["kind"] == "opening_range_breakout":
            assert OpeningRangeBreakout.validate_params(spec.get("params") or {}) == []


@pytest.mark.parametrize("params, start", [
    ({"range_minute": 15}, "range_minute: unknown parameter"),
    ({"range_minutes": 15.0}, "range_minutes: 15.0 is not allowed"),
    ({"take_profit_r": "1"}, "take_profit_r: '1' is not allowed"),
    ({"breakeven_after_take_profit": 1}, "breakeven_after_take_profit: 1 is not allowed"),
    ({"exit_at": "3pm"}, "exit_at: '3pm' is not allowed -- expected an IST time"),
    ({"exit_at": "24:00"}, "exit_at: '24:00' is not allowed"),
    ({"range_minutes": 0}, "range_minutes: 0 is not allowed"),
    ({"take_profit_r": 0}, "take_profit_r: 0 is not allowed"),
    ({"take_profit_fraction": 0}, "take_profit_fraction: 0 is not allowed"),
    ({"take_profit_fraction": 1.01}, "take_profit_fraction: 1.01 is not allowed"),
    ({"max_entries_per_day": 0}, "max_entries_per_day: 0 is not allowed"),
    ({"range_start_grace_s": -1}, "range_start_grace_s: -1 is not allowed"),
])
def test_bad_params_are_reported(params, start):
    problems = OpeningRangeBreakout.validate_params(params)
    assert len(problems) == 1 and problems[0].startswith(start) and " -- " in problems[0]
    with pytest.raises(ValueError):
        make(**params)


# ---------------------------------------------------------------- determinism and state

@functools.cache
def random_days(seed: int) -> tuple[Tick, ...]:
    """Two trading days of ticks with trends, so breakouts, take-profits and stops all happen."""
    rng = random.Random(seed)
    out = []
    for d in (DAY, DAY2):
        p = 100.0
        t = at(9, 10, d=d)
        drift = 0.0
        while t < at(15, 20, d=d):
            if rng.random() < 0.01:
                drift = rng.choice((-0.04, 0.0, 0.04))
            p = round(max(1.0, p + drift + rng.gauss(0, 0.08)), 2)
            out.append(tick(t, p))
            t += rng.randint(1, 6)
    return tuple(out)


def collect(s: OpeningRangeBreakout, ticks: list[Tick]) -> list:
    return only(s.run(tk) for tk in ticks)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_same_ticks_same_signals(seed):
    ticks = random_days(seed)
    a = collect(make(max_entries_per_day=3), ticks)
    b = collect(make(max_entries_per_day=3), ticks)
    assert a == b and a
    assert [x.signal_id for x in a] == [x.signal_id for x in b]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_restored_strategy_emits_the_same_signals(seed):
    ticks = random_days(seed)
    expected = collect(make(max_entries_per_day=3), ticks)
    kinds = {x.type for x in expected}
    assert SignalType.ENTRY in kinds and SignalType.EXIT in kinds
    for cut in range(0, len(ticks), max(1, len(ticks) // 11)):
        first = make(max_entries_per_day=3)
        got = collect(first, ticks[:cut])
        state = json.loads(json.dumps(first.state_dict(), allow_nan=False))
        second = make(max_entries_per_day=3)
        second.load_state(state)
        assert second.state_dict() == first.state_dict() and second.pending == first.pending
        got += collect(second, ticks[cut:])
        assert got == expected, f"diverged after restoring at tick {cut}"


def test_restore_mid_position_keeps_managing_it():
    s = opened()
    s.run(tick(at(9, 31), 101.5))
    s.run(tick(at(9, 32), 104.0))
    r = make()
    r.load_state(json.loads(json.dumps(s.state_dict())))
    assert r.position is LONG and r.pending.type is SignalType.TAKE_PROFIT
    assert r.run(tick(at(9, 33), 101.5)).note.startswith("break-even")


def test_load_state_refuses_other_params_or_kind():
    s = opened()
    with pytest.raises(ValueError, match="different params"):
        make(range_minutes=30).load_state(s.state_dict())
    with pytest.raises(ValueError, match="kind"):
        make().load_state({**s.state_dict(), "kind": "ma_crossover"})

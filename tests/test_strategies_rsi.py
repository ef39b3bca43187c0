"""RsiReversion driven the way the worker drives it (ticks -> CandleAggregator -> on_candle, then run), on
hand-built candles whose RSI, ATR and signals are worked out in the comments."""
from __future__ import annotations

from datetime import time as dtime

import pytest

from core.config import SessionConfig
from core.enums import PositionSide, SignalType
from strategies import strategy_class
from strategies.rsi_reversion import RsiReversion
from tests.test_strategies_ma import DAY2, SESSION, Worker, at, candle_ticks, only, tick

LONG, SHORT = PositionSide.LONG, PositionSide.SHORT
SMALL = {"period": 2, "atr_period": 2, "atr_multiple": 2.0}

# Closes 100, 99, 98, 97, 99. RSI(2): changes -1, -1 -> first averages gain 0, loss 1 -> RSI 0 (candle 3);
# -1 -> gain 0, loss 1 -> 0; +2 -> gain (0 + 2) / 2 = 1, loss (1 + 0) / 2 = 0.5 -> RSI 66.67: crosses up
# through 30 at candle 5. True ranges 1, 1, 1, 1, 2 -> ATR(2) 1, 1, 1, 1.5: long stop 99 - 2 x 1.5 = 96.
DOWN_THEN_UP = [(100, 100.5, 99.5, 100), (100, 100, 99, 99), (99, 99, 98, 98), (98, 98, 97, 97), (97, 99, 97, 99)]


def make(session: SessionConfig = SESSION, **params) -> RsiReversion:
    return RsiReversion("LT", "rsi", {**SMALL, **params}, session)


def warmed(**params) -> Worker:
    w = Worker(make(**params))
    assert only(w.feed(candle_ticks(DOWN_THEN_UP, at(9, 15)))) == []
    return w


def test_long_on_cross_up_through_oversold_then_exit_at_the_middle_then_short():
    w = warmed()
    sig = w.at(at(9, 20), 99.1)                     # closes candle 5
    assert sig.type is SignalType.ENTRY and sig.current_position is LONG
    assert (sig.symbol, sig.strategy, sig.time, sig.price) == ("LT", "rsi", at(9, 20), 99.1)
    assert sig.stop_loss == 96.0 and sig.take_profit_price is None and sig.extra == {"atr": 1.5}
    assert sig.note.startswith("RSI(2) crossed up through oversold 30 (0.00 -> 66.67)")
    # candle 6 closes 99.5: gain (1 + 0.5) / 2 = 0.75, loss 0.25 -> RSI 75 >= 50: exit on the next tick
    assert only(w.feed([tick(at(9, 20, 15), 99.5), tick(at(9, 20, 59), 99.5)])) == []
    ex = w.at(at(9, 21), 99.4)
    assert ex.type is SignalType.EXIT and ex.current_position is LONG and ex.time == at(9, 21)
    assert ex.note == "RSI(2) 75.00 back up at exit_level 50"
    # candle 7 closes 99: gain 0.375, loss 0.375 -> RSI 50: down through 70 -> short; true ranges 0.5, 0.5
    # -> ATR 1.0, 0.75: stop 99 + 2 x 0.75
    assert only(w.feed([tick(at(9, 21, 59), 99.0)])) == []
    short = w.at(at(9, 22), 98.9)
    assert short.type is SignalType.ENTRY and short.current_position is SHORT
    assert short.stop_loss == 100.5 and "crossed down through overbought 70 (75.00 -> 50.00)" in short.note


def test_short_mirror():
    mirror = [(200 - o, 200 - lo, 200 - hi, 200 - c) for o, hi, lo, c in DOWN_THEN_UP]
    w = Worker(make())
    assert only(w.feed(candle_ticks(mirror, at(9, 15)))) == []
    sig = w.at(at(9, 20), 100.9)                    # RSI 100, then 33.33: down through 70
    assert sig.type is SignalType.ENTRY and sig.current_position is SHORT and sig.stop_loss == 104.0


def test_warm_up_and_no_cross_are_silent():
    # four candles: RSI 0, 0 -- no previous value to cross from, then no cross
    w = Worker(make())
    assert only(w.feed(candle_ticks(DOWN_THEN_UP[:4], at(9, 15)) + [tick(at(9, 19), 97.0)])) == []
    # RSI ready but the ATR is not: the cross is ignored
    w = warmed(atr_period=6)
    assert w.at(at(9, 20), 99.1) is None
    # the cross is of the level: 0 -> 66.67 crosses 66 but not 67
    assert warmed(oversold=66, exit_level=75, overbought=90).at(at(9, 20), 99.1) is not None
    assert warmed(oversold=67, exit_level=75, overbought=90).at(at(9, 20), 99.1) is None


def test_stop_and_target():
    w = warmed()
    w.at(at(9, 20), 99.1)
    assert w.at(at(9, 20, 10), 96.05) is None
    ex = w.at(at(9, 20, 20), 96.0)
    assert ex.type is SignalType.EXIT and ex.stop_loss == 96.0 and ex.note == "stop hit at 96.0 (stop 96.0)"
    w = warmed(take_profit_atr=1.0)                 # target 99 + 1.5
    sig = w.at(at(9, 20), 99.1)
    assert sig.take_profit_price == 100.5
    assert w.at(at(9, 20, 10), 100.45) is None
    ex = w.at(at(9, 20, 20), 100.5)
    assert ex.type is SignalType.EXIT and ex.take_profit_price == 100.5 and ex.note.startswith("target reached")
    assert w.s.position is None


def test_entry_dropped_when_the_tick_is_through_the_stop_and_lapses_at_the_next_candle():
    w = warmed()
    assert w.at(at(9, 20), 95.9) is None
    assert w.at(at(9, 20, 1), 99.0) is None


def test_end_of_day_and_entry_cutoff():
    w = warmed(exit_at="09:25")
    w.at(at(9, 20), 99.1)
    assert w.at(at(9, 20, 30), 99.1) is None
    ex = w.at(at(9, 25), 99.1)                      # closes candle 6; exit_at is checked first
    assert ex.type is SignalType.EXIT and ex.note == "end of day"
    late = SessionConfig(entry_cutoff=dtime(9, 20))
    w = Worker(make(late))
    only(w.feed(candle_ticks(DOWN_THEN_UP, at(9, 15))))
    assert w.at(at(9, 20), 99.1) is None


def test_pre_open_candles_do_not_count_and_a_new_day_starts_cold():
    noise = [tick(at(9, 0) + 20 * i, 50.0 + (i * 31 % 17)) for i in range(25)]
    w = Worker(make())
    only(w.feed(noise + candle_ticks(DOWN_THEN_UP, at(9, 15))))
    sig = w.at(at(9, 20), 99.1)
    assert sig.stop_loss == 96.0
    ex = w.at(at(9, 15, d=DAY2), 100.0)
    assert ex.type is SignalType.EXIT and "end of day" in ex.note
    got = only(w.feed(candle_ticks(DOWN_THEN_UP, at(9, 15, d=DAY2))[1:] + [tick(at(9, 20, d=DAY2), 99.1)]))
    assert len(got) == 1 and got[0].type is SignalType.ENTRY and got[0].stop_loss == 96.0


def test_reset_and_discard_mean_flat():
    w = warmed()
    w.at(at(9, 20), 99.1)
    w.s.discard_signal()
    assert w.s.position is None and w.at(at(9, 20, 10), 90.0) is None
    w = warmed()
    w.at(at(9, 20), 99.1)
    w.s.reset_position_tracking()
    assert w.at(at(9, 20, 10), 90.0) is None and w.at(at(15, 5), 90.0) is None


def test_registered_with_its_candle_seconds():
    assert strategy_class("rsi") is RsiReversion
    assert make(candle_seconds=300).candle_seconds == 300


@pytest.mark.parametrize("params, start", [
    ({"perod": 9}, "perod: unknown parameter"),
    ({"period": 1}, "period: 1 is not allowed"),
    ({"oversold": 60}, "exit_level: 50.0 is not allowed -- need 0 < oversold (60)"),
    ({"overbought": 40}, "exit_level: 50.0 is not allowed"),
    ({"oversold": 0}, "exit_level: 50.0 is not allowed"),
    ({"oversold": "30"}, "oversold: '30' is not allowed"),
    ({"atr_multiple": 0}, "atr_multiple: 0 is not allowed"),
    ({"atr_period": 0}, "atr_period: 0 is not allowed"),
    ({"take_profit_atr": -1}, "take_profit_atr: -1 is not allowed"),
    ({"candle_seconds": 7}, "candle_seconds: 7 is not allowed"),
    ({"exit_at": "25:00"}, "exit_at: '25:00' is not allowed"),
])
def test_bad_params_are_reported(params, start):
    problems = RsiReversion.validate_params(params)
    assert len(problems) == 1 and problems[0].startswith(start) and " -- " in problems[0], problems
    with pytest.raises(ValueError):
        RsiReversion("LT", "rsi", params, SESSION)

"""Momentum driven the way the worker drives it, on hand-built candles whose ROC, EMA, ATR and signals are
worked out in the comments."""
from __future__ import annotations

from datetime import time as dtime

import pytest

from core.config import SessionConfig
from core.enums import PositionSide, SignalType
from strategies import strategy_class
from strategies.momentum import Momentum
from tests.test_strategies_ma import SESSION, Worker, at, candle_ticks, only, tick

LONG, SHORT = PositionSide.LONG, PositionSide.SHORT
SMALL = {"roc_period": 2, "threshold_pct": 1.0, "ema_period": 3, "atr_period": 2, "atr_multiple": 2.0}

# Closes 100, 100, 100, 102. EMA(3) starts at candle 3 at 100 (ROC(2) 0: the reference, no entry); candle 4:
# ROC (102 - 100) / 100 = 2% > 1%, EMA 100 + 0.5 x 2 = 101 < 102 -> long. True ranges 1, 1, 1, 2 -> ATR(2)
# 1, 1, 1.5: stop 102 - 2 x 1.5 = 99.
FLAT_THEN_UP = [(100, 100.5, 99.5, 100)] * 3 + [(100, 102, 100, 102)]


def make(session: SessionConfig = SESSION, **params) -> Momentum:
    return Momentum("LT", "mom", {**SMALL, **params}, session)


def warmed(**params) -> Worker:
    w = Worker(make(**params))
    assert only(w.feed(candle_ticks(FLAT_THEN_UP, at(9, 15)))) == []
    return w


def test_long_with_the_trend_then_trend_lost_then_short():
    w = warmed()
    sig = w.at(at(9, 19), 102.1)
    assert sig.type is SignalType.ENTRY and sig.current_position is LONG
    assert (sig.time, sig.price, sig.stop_loss, sig.extra) == (at(9, 19), 102.1, 99.0, {"atr": 1.5})
    assert sig.note.startswith("ROC(2) 2.000% above +1% with close 102 above EMA(3) 101.0000")
    # candle 5 closes 103 (ROC 3%, EMA 102: still true, no new entry); candle 6 closes 101.5 < EMA 101.75
    more = [(102.1, 103, 102.1, 103), (103, 103, 101.5, 101.5)]
    assert only(w.feed(candle_ticks(more, at(9, 19))[1:])) == []
    ex = w.at(at(9, 21), 101.4)
    assert ex.type is SignalType.EXIT and ex.current_position is LONG
    assert ex.note == "trend lost: close 101.5 below EMA(3) 101.7500"
    # candle 7 closes 99: ROC (99 - 103) / 103 = -3.88%, EMA 100.375 > 99 -> short. True ranges 1, 1.5, 2.5
    # -> ATR 1.25, 1.375, 1.9375: stop 99 + 2 x 1.9375
    assert only(w.feed([tick(at(9, 21, 30), 99.0), tick(at(9, 21, 59), 99.0)])) == []
    short = w.at(at(9, 22), 98.9)
    assert short.type is SignalType.ENTRY and short.current_position is SHORT
    assert short.stop_loss == 102.875 and short.note.startswith("ROC(2) -3.883% below -1% with close 99.0 below")


def test_a_condition_that_stays_true_does_not_enter_again():
    w = warmed()
    w.at(at(9, 19), 102.1)
    w.s.discard_signal()                           # the entry was refused: flat
    # candle 5 closes 103: still ROC > 1% and above the EMA, but no new entry
    assert only(w.feed(candle_ticks([(102.1, 103, 102.1, 103)], at(9, 19))[1:] + [tick(at(9, 20), 103)])) == []


def test_trend_filter_blocks_a_move_against_it():
    # ROC 2% with a close below the EMA cannot happen with these candles, so a higher threshold shows the gate
    w = warmed(threshold_pct=2.0)
    assert w.at(at(9, 19), 102.1) is None           # 2% is not above 2%
    w = Worker(make(ema_period=1, roc_period=3))    # EMA(1) = the close: never strictly below/above itself
    only(w.feed(candle_ticks(FLAT_THEN_UP, at(9, 15))))
    assert w.at(at(9, 19), 102.1) is None


def test_warm_up_is_silent():
    w = Worker(make(ema_period=4))                  # first warm candle is 4: it is the reference
    assert only(w.feed(candle_ticks(FLAT_THEN_UP, at(9, 15)) + [tick(at(9, 19), 102.1)])) == []
    w = warmed(atr_period=5)                        # ATR not ready at candle 4
    assert w.at(at(9, 19), 102.1) is None


def test_stop_target_end_of_day_and_cutoff():
    w = warmed()
    w.at(at(9, 19), 102.1)
    ex = w.at(at(9, 19, 30), 99.0)
    assert ex.type is SignalType.EXIT and ex.note == "stop hit at 99.0 (stop 99.0)"
    w = warmed(take_profit_atr=2.0)                 # target 102 + 3
    assert w.at(at(9, 19), 102.1).take_profit_price == 105.0
    ex = w.at(at(9, 19, 30), 105.05)
    assert ex.type is SignalType.EXIT and ex.note.startswith("target reached at 105.05")
    w = warmed(exit_at="09:20")
    w.at(at(9, 19), 102.1)
    assert w.at(at(9, 20), 102.1).note == "end of day"
    late = SessionConfig(entry_cutoff=dtime(9, 19))
    w = Worker(make(late))
    only(w.feed(candle_ticks(FLAT_THEN_UP, at(9, 15))))
    assert w.at(at(9, 19), 102.1) is None


def test_registered_with_its_candle_seconds():
    assert strategy_class("momentum") is Momentum
    assert make(candle_seconds=900).candle_seconds == 900


@pytest.mark.parametrize("params, start", [
    ({"roc": 9}, "roc: unknown parameter"),
    ({"roc_period": 0}, "roc_period: 0 is not allowed"),
    ({"ema_period": 0}, "ema_period: 0 is not allowed"),
    ({"threshold_pct": 0}, "threshold_pct: 0 is not allowed"),
    ({"threshold_pct": -0.5}, "threshold_pct: -0.5 is not allowed"),
    ({"roc_period": 2.5}, "roc_period: 2.5 is not allowed"),
    ({"atr_multiple": -1.0}, "atr_multiple: -1.0 is not allowed"),
    ({"candle_seconds": 7200}, "candle_seconds: 7200 is not allowed"),
    ({"exit_at": "3pm"}, "exit_at: '3pm' is not allowed"),
])
def test_bad_params_are_reported(params, start):
    problems = Momentum.validate_params(params)
    assert len(problems) == 1 and problems[0].startswith(start) and " -- " in problems[0], problems
    with pytest.raises(ValueError):
        Momentum("LT", "mom", params, SESSION)

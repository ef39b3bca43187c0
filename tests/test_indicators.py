"""The incremental indicators against independent batch computations: TA-Lib (the C library every charting
tool is checked against) where it has the indicator, and the textbook definition in exact fractions where it
has not (VWAP, opening range) or where the indicator promises an exact value (SMA, Bollinger's middle)."""
from __future__ import annotations

import json
import math
import random
import statistics
from datetime import date
from datetime import time as dtime
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
import talib
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.clock import ist_epoch
from strategies.base import Candle
from strategies.indicators import (
    INDICATORS,
    Atr,
    Bands,
    Bollinger,
    Ema,
    Highest,
    Indicator,
    Lowest,
    Macd,
    OpeningRange,
    Range,
    RateOfChange,
    Rsi,
    Sma,
    Vwap,
)

DAY = date(2024, 1, 15)
DAY2 = date(2024, 1, 16)


def at(hh: int, mm: int, d: date = DAY) -> int:
    return ist_epoch(d, dtime(hh, mm))


def build(steps: list[tuple[int, int, int, int]], start: int, base: float = 500.0) -> list[Candle]:
    """Minute candles on the 0.05 price grid from (close step, wick up, wick down, volume) tuples."""
    out, close = [], round(base / 0.05)
    for i, (step, up, down, vol) in enumerate(steps):
        o, close = close, max(close + step, 1)
        hi, lo = max(o, close) + up, max(min(o, close) - down, 1)
        out.append(Candle("SBIN", start + 60 * i, 60, round(o * 0.05, 2), round(hi * 0.05, 2),
                          round(lo * 0.05, 2), round(close * 0.05, 2), vol))
    return out


def random_candles(seed: int, n: int = 400, start: int | None = None) -> list[Candle]:
    rng = random.Random(seed)
    steps = [(rng.choice((0, 0, 1, -1, 2, -2, 5, -5, 13, -13)), rng.randint(0, 6), rng.randint(0, 6),
              rng.choice((0, rng.randint(1, 5000)))) for _ in range(n)]
    return build(steps, at(9, 15) if start is None else start)


def series(ind: Indicator[Any], candles: list[Candle]) -> list[Any]:
    return [ind.update(c) for c in candles]


def arr(candles: list[Candle], field: str) -> np.ndarray:
    return np.array([getattr(c, field) for c in candles], dtype=float)


def same(got: list[Any], want: np.ndarray, rel: float = 1e-12, abs_: float = 1e-9) -> None:
    """None exactly where the reference is NaN, and close values elsewhere."""
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if math.isnan(w):
            assert g is None, f"candle {i}: {g} where the reference is still warming up"
        else:
            assert g is not None and math.isclose(g, w, rel_tol=rel, abs_tol=abs_), f"candle {i}: {g} != {w}"


CANDLES = random_candles(1)


# ---------------------------------------------------------------- each against its reference

@pytest.mark.parametrize("period", [1, 5, 21])
def test_sma_is_the_correctly_rounded_mean(period):
    got = series(Sma(period), CANDLES)
    closes = [c.close for c in CANDLES]
    for i, g in enumerate(got):
        if i < period - 1:
            assert g is None
        else:
            assert g == float(sum(map(Fraction, closes[i - period + 1:i + 1])) / period)
    same(got, talib.SMA(arr(CANDLES, "close"), period))


def test_sma_of_a_flat_series_is_the_price_exactly():
    flat = build([(0, 0, 0, 10)] * 50, at(9, 15), base=812.35)
    assert set(series(Sma(9), flat)[8:]) | set(series(Sma(21), flat)[20:]) == {812.35}
    b = series(Bollinger(20, 2.0), flat)[-1]
    assert b == Bands(812.35, 812.35, 812.35)


@pytest.mark.parametrize("period", [1, 3, 14])
def test_ema(period):
    same(series(Ema(period), CANDLES), talib.EMA(arr(CANDLES, "close"), period))


@pytest.mark.parametrize("period", [2, 14])
def test_rsi_wilder(period):
    got = series(Rsi(period), CANDLES)
    want = talib.RSI(arr(CANDLES, "close"), period)
    same(got, want)


def test_rsi_of_a_flat_stretch_is_50_not_0():
    flat = build([(0, 1, 1, 10)] * 20, at(9, 15))
    got = series(Rsi(5), flat)
    assert got[:5] == [None] * 5 and set(got[5:]) == {50.0}
    assert talib.RSI(arr(flat, "close"), 5)[5] == 0.0  # where our definition parts from TA-Lib's


@pytest.mark.parametrize("period", [1, 3, 14])
def test_atr_wilder_with_the_first_candle_high_minus_low(period):
    got = series(Atr(period), CANDLES)
    # TA-Lib's first true range needs a previous close: a candle before the first, closing inside the first
    # candle's range, makes it exactly that candle's high - low
    c0 = CANDLES[0]
    pad = [Candle("SBIN", c0.start - 60, 60, c0.low, c0.high, c0.low, c0.low, 0)] + CANDLES
    want = talib.ATR(arr(pad, "high"), arr(pad, "low"), arr(pad, "close"), period)[1:]
    same(got, want)


@pytest.mark.parametrize("period, k", [(20, 2.0), (5, 1.5), (2, 2.0)])
def test_bollinger_population_std(period, k):
    got = series(Bollinger(period, k), CANDLES)
    closes = [c.close for c in CANDLES]
    for i, g in enumerate(got):
        if i < period - 1:
            assert g is None
            continue
        window = closes[i - period + 1:i + 1]
        mid = float(sum(map(Fraction, window)) / period)
        sd = statistics.pstdev(window)  # exact sums inside: the population std to within rounding
        assert g.middle == mid
        assert math.isclose(g.upper, mid + k * sd, rel_tol=1e-14) and math.isclose(g.lower, mid - k * sd,
                                                                                    rel_tol=1e-14)
    up, mid, lo = talib.BBANDS(arr(CANDLES, "close"), period, k, k, 0)
    # TA-Lib takes the variance as mean(x^2) - mean^2 in floats: good to about 1e-5 at these prices
    same([None if g is None else g.upper for g in got], up, rel=0, abs_=1e-4)
    same([None if g is None else g.middle for g in got], mid)
    same([None if g is None else g.lower for g in got], lo, rel=0, abs_=1e-4)


@pytest.mark.parametrize("fast, slow, signal", [(12, 26, 9), (3, 7, 4), (2, 3, 1)])
def test_macd(fast, slow, signal):
    got = series(Macd(fast, slow, signal), CANDLES)
    line, sig, hist = talib.MACD(arr(CANDLES, "close"), fast, slow, signal)
    same([None if g is None else g.line for g in got], line)
    same([None if g is None else g.signal for g in got], sig)
    same([None if g is None else g.histogram for g in got], hist)


@pytest.mark.parametrize("period", [2, 4, 30])
def test_highest_high_and_lowest_low(period):
    same(series(Highest(period), CANDLES), talib.MAX(arr(CANDLES, "high"), period), rel=0, abs_=0)
    same(series(Lowest(period), CANDLES), talib.MIN(arr(CANDLES, "low"), period), rel=0, abs_=0)
    same(series(Highest(period, "close"), CANDLES), talib.MAX(arr(CANDLES, "close"), period), rel=0, abs_=0)


def test_highest_and_lowest_of_one_candle_are_its_own():
    assert series(Highest(1), CANDLES) == [c.high for c in CANDLES]
    assert series(Lowest(1, "open"), CANDLES) == [c.open for c in CANDLES]


@pytest.mark.parametrize("period", [1, 10])
def test_rate_of_change(period):
    same(series(RateOfChange(period), CANDLES), talib.ROC(arr(CANDLES, "close"), period))


def vwap_batch(candles: list[Candle]) -> list[float | None]:
    """VWAP from its definition, per IST day, in exact fractions."""
    out: list[float | None] = []
    day, pv, vol = None, Fraction(0), 0
    for c in candles:
        d = (c.start + 19800) // 86400
        if d != day:
            day, pv, vol = d, Fraction(0), 0
        pv += (Fraction(c.high) + Fraction(c.low) + Fraction(c.close)) / 3 * c.volume
        vol += c.volume
        out.append(float(pv / vol) if vol else None)
    return out


def two_days(seed: int) -> list[Candle]:
    return random_candles(seed, 200, at(9, 15)) + random_candles(seed + 1, 200, at(9, 15, DAY2))


def test_vwap_resets_each_ist_day():
    candles = [Candle("SBIN", at(9, 15), 60, 10, 12, 9, 11, 0)] + two_days(3)
    got = series(Vwap(), candles)
    assert got[0] is None
    assert got == vwap_batch(candles)
    assert got[201] != got[200] and got[201] == vwap_batch(candles[201:])[0]


def opening_range_batch(candles: list[Candle], minutes: int) -> dict[int, Range]:
    days: dict[int, list[Candle]] = {}
    for c in candles:
        d = (c.start + 19800) // 86400
        opened = ist_epoch(date(1970, 1, 1), dtime(9, 15)) + d * 86400
        if opened <= c.start < opened + 60 * minutes:
            days.setdefault(d, []).append(c)
    return {d: Range(max(c.high for c in cs), min(c.low for c in cs)) for d, cs in days.items()}


@pytest.mark.parametrize("minutes", [1, 15, 30])
def test_opening_range(minutes):
    pre = random_candles(9, 10, at(9, 5))     # pre-open candles are not part of it
    candles = pre + two_days(5)
    got = series(OpeningRange(minutes), candles)
    want = opening_range_batch(candles, minutes)
    for i, (c, g) in enumerate(zip(candles, got, strict=True)):
        d = (c.start + 19800) // 86400
        end = at(9, 15, DAY if d == (at(9, 15) + 19800) // 86400 else DAY2) + 60 * minutes
        assert g == (want[d] if c.start + 60 >= end else None), f"candle {i}"


def test_opening_range_of_a_late_start_is_not_trusted():
    late = series(OpeningRange(15), random_candles(2, 30, at(9, 17)))
    assert set(late) == {None}
    ok = series(OpeningRange(15, grace_s=120), random_candles(2, 30, at(9, 17)))
    assert ok[-1] is not None


# ---------------------------------------------------------------- warm-up, state, registry

@pytest.mark.parametrize("make", [lambda: Sma(7), lambda: Ema(7), lambda: Rsi(7), lambda: Atr(7),
                                  lambda: Bollinger(7), lambda: Macd(3, 7, 4), lambda: Highest(7),
                                  lambda: Lowest(7), lambda: RateOfChange(7)])
def test_first_value_comes_at_warmup(make):
    ind = make()
    got = series(ind, CANDLES[:40])
    first = next(i for i, g in enumerate(got) if g is not None)
    assert first == ind.warmup - 1 and ind.ready
    ind.reset()
    assert not ind.ready and series(ind, CANDLES[:40]) == got


ALL = [lambda: Sma(7), lambda: Ema(5), lambda: Rsi(6), lambda: Atr(4), lambda: Bollinger(6, 1.5),
       lambda: Macd(3, 8, 4), lambda: Highest(5), lambda: Lowest(5), lambda: RateOfChange(3), lambda: Vwap(),
       lambda: OpeningRange(20)]


def restored(ind: Indicator[Any], make) -> Indicator[Any]:
    state = json.loads(json.dumps(ind.state_dict(), allow_nan=False))
    fresh = make()
    fresh.load_state(state)
    assert fresh.state_dict() == ind.state_dict() and fresh.value == ind.value
    return fresh


@pytest.mark.parametrize("make", ALL)
def test_restore_mid_series_continues_identically(make):
    candles = two_days(11)
    want = series(make(), candles)
    for cut in (0, 1, 3, 7, 33, 199, 200, 201, 350):
        ind = make()
        got = series(ind, candles[:cut])
        got += series(restored(ind, make), candles[cut:])
        assert got == want, f"diverged after restoring at candle {cut}"


def test_state_refuses_another_indicator_or_params():
    with pytest.raises(ValueError, match="state"):
        Sma(5).load_state(Sma(6).state_dict())
    with pytest.raises(ValueError, match="state"):
        Ema(5).load_state(Sma(5).state_dict())


@pytest.mark.parametrize("bad", [lambda: Sma(0), lambda: Ema(True), lambda: Rsi(2, "vwap"),
                                 lambda: Bollinger(20, 0), lambda: Macd(26, 12), lambda: OpeningRange(15, "9"),
                                 lambda: OpeningRange(15, grace_s=-1)])
def test_bad_parameters_are_refused(bad):
    with pytest.raises(ValueError, match=" -- "):
        bad()


def test_registry_names_every_kind():
    assert set(INDICATORS) == {"sma", "ema", "rsi", "atr", "bollinger", "macd", "highest", "lowest", "roc",
                               "vwap", "opening_range"}
    assert all(cls.kind == k for k, cls in INDICATORS.items())


# ---------------------------------------------------------------- properties on random series

steps = st.lists(st.tuples(st.integers(-40, 40), st.integers(0, 8), st.integers(0, 8),
                           st.integers(0, 10_000)), min_size=1, max_size=120)


@settings(max_examples=60, deadline=None)
@given(steps, st.integers(2, 30), st.floats(50, 5000))
@example([(0, 0, 0, 0)] * 3, 2, 50.0)  # flat: the RSI's two conventions (hypothesis found it)
def test_incremental_equals_batch_on_random_series(s, period, base):
    candles = build(s, at(9, 15), base)
    c, h, lo = arr(candles, "close"), arr(candles, "high"), arr(candles, "low")
    same(series(Sma(period), candles), talib.SMA(c, period), rel=1e-12)
    same(series(Ema(period), candles), talib.EMA(c, period), rel=1e-12)
    rsi = series(Rsi(period), candles)
    ref = talib.RSI(c, period)
    # a window without a move: ours is 50 (neither side), TA-Lib's 0; either is taken
    same([w if r == 50.0 and w == 0.0 else r for r, w in zip(rsi, ref, strict=True)], ref, rel=1e-9)
    pad = [Candle("SBIN", candles[0].start - 60, 60, lo[0], h[0], lo[0], lo[0], 0)] + candles
    same(series(Atr(period), candles),
         talib.ATR(arr(pad, "high"), arr(pad, "low"), arr(pad, "close"), period)[1:], rel=1e-12)
    same(series(Highest(period), candles), talib.MAX(h, period), rel=0, abs_=0)
    same(series(Lowest(period), candles), talib.MIN(lo, period), rel=0, abs_=0)
    same([None if b is None else b.middle for b in series(Bollinger(period), candles)], talib.SMA(c, period))
    if period >= 4:  # TA-Lib wants fast >= 2
        m = series(Macd(period // 2, period, 3), candles)
        same([None if x is None else x.histogram for x in m], talib.MACD(c, period // 2, period, 3)[2],
             rel=1e-9, abs_=1e-9)
    assert series(Vwap(), candles) == vwap_batch(candles)


@settings(max_examples=40, deadline=None)
@given(steps, st.integers(0, 120), st.sampled_from(range(len(ALL))))
def test_save_and_restore_anywhere_continues_identically(s, cut, which):
    make = ALL[which]
    candles = build(s, at(9, 15))
    cut = min(cut, len(candles))
    want = series(make(), candles)
    ind = make()
    got = series(ind, candles[:cut]) + series(restored(ind, make), candles[cut:])
    assert got == want

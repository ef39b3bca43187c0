"""CandleAggregator bucketing, gaps and volume; the shared time helpers."""
from __future__ import annotations

import json
from datetime import date
from datetime import time as dtime

import pytest

from core.clock import ist_epoch
from core.types import Tick
from strategies.base import Candle
from strategies.candles import CandleAggregator, TradingDay, parse_hhmm

DAY = date(2024, 1, 15)  # a Monday


def at(hh: int, mm: int, ss: int = 0, d: date = DAY) -> int:
    return ist_epoch(d, dtime(hh, mm)) + ss


def tick(t: int, ltp: float, vol: int | None = None, *, feed_time: bool = True) -> Tick:
    """The record of a Fyers full-mode SymbolUpdate."""
    d = {"ltp": ltp, "last_traded_time": t, "bid_size": 10, "ask_size": 12, "bid_price": ltp - 0.05,
         "ask_price": ltp + 0.05, "last_traded_qty": 1, "tot_buy_qty": 1000, "tot_sell_qty": 900,
         "avg_trade_price": ltp, "low_price": ltp, "high_price": ltp, "lower_ckt": 0, "upper_ckt": 0,
         "open_price": ltp, "prev_close_price": ltp, "type": "sf", "symbol": "NSE:SBIN-EQ", "ch": 0.0, "chp": 0.0}
    if vol is not None:
        d["vol_traded_today"] = vol
    if feed_time:
        d["exch_feed_time"] = t
    return Tick.from_feed(d)


def feed(agg: CandleAggregator, ticks: list[Tick]) -> list[Candle]:
    out: list[Candle] = []
    for tk in ticks:
        out.extend(agg.update(tk))
    return out


def test_minute_candles_start_at_zero_seconds_and_close_on_next_bucket():
    agg = CandleAggregator("SBIN", 60)
    assert agg.update(tick(at(9, 15, 7), 100.0, 1000)) == []
    assert feed(agg, [tick(at(9, 15, 20), 101.5, 1010), tick(at(9, 15, 40), 99.0, 1030),
                      tick(at(9, 15, 59), 100.5, 1031)]) == []
    closed = agg.update(tick(at(9, 16, 0), 100.7, 1040))
    assert closed == [Candle("SBIN", at(9, 15), 60, 100.0, 101.5, 99.0, 100.5, 31)]
    assert closed[0].start % 60 == 0
    assert agg.flush() == [Candle("SBIN", at(9, 16), 60, 100.7, 100.7, 100.7, 100.7, 9)]
    assert agg.flush() == []


def test_five_minute_buckets_align_to_the_clock():
    agg = CandleAggregator("SBIN", 300)
    closed = feed(agg, [tick(at(9, 17, 30), 10.0), tick(at(9, 19, 59), 11.0), tick(at(9, 20, 0), 12.0),
                        tick(at(9, 24, 59), 9.0), tick(at(9, 25, 1), 9.5)])
    assert [(c.start, c.open, c.high, c.low, c.close) for c in closed] == [
        (at(9, 15), 10.0, 11.0, 10.0, 11.0), (at(9, 20), 12.0, 12.0, 9.0, 9.0)]


def test_gap_closes_the_open_candle_without_inventing_empty_ones():
    agg = CandleAggregator("SBIN", 60)
    closed = feed(agg, [tick(at(9, 15, 10), 100.0, 500), tick(at(9, 18, 5), 103.0, 600),
                        tick(at(9, 18, 30), 102.0, 650), tick(at(9, 19, 0), 102.5, 650)])
    assert [c.start for c in closed] == [at(9, 15), at(9, 18)]
    assert closed[0] == Candle("SBIN", at(9, 15), 60, 100.0, 100.0, 100.0, 100.0, 0)
    assert closed[1] == Candle("SBIN", at(9, 18), 60, 103.0, 103.0, 102.0, 102.0, 150)


def test_volume_is_the_non_negative_increase_of_vol_traded_today():
    agg = CandleAggregator("SBIN", 60)
    closed = feed(agg, [
        tick(at(9, 15, 0), 100.0, 5000),   # first sight: volume before it is unknown -> 0
        tick(at(9, 15, 1), 100.0, 5100),   # +100
        tick(at(9, 15, 2), 100.0),         # no volume key: +0
        tick(at(9, 15, 3), 100.0, 4000),   # drop (resubscribe snapshot, glitch): rebase, +0
        tick(at(9, 15, 4), 100.0, 4050),   # +50
        tick(at(9, 15, 5), 100.0, 4050),   # quote-only update: +0
        tick(at(9, 16, 0), 100.0, 4075),   # +25 goes to the new candle
    ])
    assert [c.volume for c in closed] == [150]
    assert agg.flush()[0].volume == 25


def test_falls_back_to_last_traded_time_and_skips_ticks_without_time_or_price():
    agg = CandleAggregator("SBIN", 60)
    assert agg.update(tick(at(9, 15, 5), 100.0, feed_time=False)) == []
    assert agg.update(Tick(ltp=500.0, symbol="NSE:SBIN-EQ")) == []
    assert agg.update(Tick(exch_feed_time=at(9, 15, 6), symbol="NSE:SBIN-EQ")) == []
    closed = agg.update(tick(at(9, 16, 1), 101.0, feed_time=False))
    assert closed == [Candle("SBIN", at(9, 15), 60, 100.0, 100.0, 100.0, 100.0, 0)]


def test_late_tick_is_folded_into_the_open_candle():
    agg = CandleAggregator("SBIN", 60)
    closed = feed(agg, [tick(at(9, 15, 50), 100.0), tick(at(9, 16, 1), 101.0), tick(at(9, 15, 59), 104.0),
                        tick(at(9, 17, 0), 102.0)])
    assert [(c.start, c.high, c.close) for c in closed] == [(at(9, 15), 100.0, 100.0), (at(9, 16), 104.0, 104.0)]


def test_state_round_trip_continues_identically():
    ticks = [tick(at(9, 15, s), 100.0 + (s * 7919 % 13) / 10, 1000 + s * 3) for s in range(0, 400, 3)]
    whole = CandleAggregator("SBIN", 60)
    expected = feed(whole, ticks) + whole.flush()
    first = CandleAggregator("SBIN", 60)
    got = feed(first, ticks[:50])
    second = CandleAggregator("SBIN", 60)
    second.load_state(json.loads(json.dumps(first.state_dict())))
    got += feed(second, ticks[50:]) + second.flush()
    assert got == expected and len(expected) == 7
    with pytest.raises(ValueError, match="seconds"):
        CandleAggregator("SBIN", 300).load_state(first.state_dict())


@pytest.mark.parametrize("bad", [0, -60, 1.5, True, "60"])
def test_resolution_must_be_a_positive_int(bad):
    with pytest.raises(ValueError, match="seconds"):
        CandleAggregator("SBIN", bad)


def test_trading_day_bounds_are_ist_midnights():
    day = TradingDay()
    assert not day.start <= at(9, 15) < day.end
    day.move_to(at(9, 15))
    assert day.date == DAY
    assert day.start == at(0, 0) and day.end == at(0, 0, d=date(2024, 1, 16))
    assert day.at(dtime(15, 5)) == at(15, 5)
    day.restore(day.iso())
    assert day.date == DAY
    day.restore(None)
    assert day.date is None and day.start == day.end


@pytest.mark.parametrize("value, want", [("15:05", dtime(15, 5)), ("9:15", dtime(9, 15)), (905, dtime(15, 5)),
                                         (" 09:15 ", dtime(9, 15)), ("25:00", None), ("15:60", None),
                                         ("15:5", None), ("3pm", None), (True, None), (1.5, None), (1440, None)])
def test_parse_hhmm(value, want):
    assert parse_hhmm(value) == want

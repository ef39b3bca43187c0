"""The synthetic day generator: deterministic, Fyers-shaped, time-ordered, plausible."""
from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import date, time

import pytest

from core.clock import ist_epoch
from core.config import SessionConfig
from core.types import TICK_FIELDS
from feeds.recorded import FLOAT_FIELDS, INT_FIELDS
from feeds.synthetic import SyntheticDay, _Symbol, base_price, day_columns, default_tickers, generate_day

DAY = date(2024, 3, 5)
TICKERS = ["NSE:SBIN-EQ", "NSE:TCS-EQ", "NSE:M&M-EQ"]


@pytest.fixture(scope="module")
def day_ticks():
    return list(generate_day(TICKERS, DAY, seed=7))


def test_same_inputs_give_the_same_ticks_and_other_seeds_or_days_do_not(day_ticks):
    assert list(generate_day(TICKERS, DAY, seed=7)) == day_ticks
    head = day_ticks[:2000]
    assert list(itertools.islice(generate_day(TICKERS, DAY, seed=8), 2000)) != head
    assert list(itertools.islice(generate_day(TICKERS, date(2024, 3, 6), seed=7), 2000)) != head


def test_a_symbol_day_does_not_depend_on_the_other_tickers(day_ticks):
    alone = list(generate_day(["NSE:TCS-EQ"], DAY, seed=7))
    assert alone == [t for t in day_ticks if t["symbol"] == "NSE:TCS-EQ"]


def test_every_tick_has_the_sdk_shape_and_types(day_ticks):
    for t in day_ticks:
        assert tuple(t) == TICK_FIELDS
    for t in day_ticks[::97]:
        for k, v in t.items():
            if k in INT_FIELDS:
                assert type(v) is int, k
            elif k in FLOAT_FIELDS:
                assert type(v) is float, k
        assert t["type"] == "sf" and t["lower_ckt"] == 0 and t["upper_ckt"] == 0


def test_time_order_and_session_bounds(day_ticks):
    times = [t["exch_feed_time"] for t in day_ticks]
    assert times == sorted(times)
    assert times[0] == ist_epoch(DAY, time(9, 15))  # the open is busy: ticks in the very first second
    assert times[-1] < ist_epoch(DAY, time(15, 30))
    short = SessionConfig(open=time(10, 0), close=time(10, 30))
    ts = [t["exch_feed_time"] for t in generate_day(TICKERS, DAY, seed=7, session=short)]
    assert ts[0] >= ist_epoch(DAY, time(10, 0)) and ts[-1] < ist_epoch(DAY, time(10, 30))


def test_running_day_values_are_consistent_per_symbol(day_ticks):
    by_sym = defaultdict(list)
    for t in day_ticks:
        by_sym[t["symbol"]].append(t)
    for ticks in by_sym.values():
        first = ticks[0]
        assert first["vol_traded_today"] > 0 and first["ltp"] == first["open_price"]
        prev_vol, high, low = 0, first["ltp"], first["ltp"]
        for t in ticks:
            assert t["vol_traded_today"] >= prev_vol
            prev_vol = t["vol_traded_today"]
            high, low = max(high, t["ltp"]), min(low, t["ltp"])
            assert t["high_price"] == high and t["low_price"] == low
            assert t["open_price"] == first["open_price"] and t["prev_close_price"] == first["prev_close_price"]
            assert t["last_traded_time"] <= t["exch_feed_time"]
            assert low - 0.01 <= t["avg_trade_price"] <= high + 0.01
            assert t["bid_price"] < t["ask_price"]
            for k in ("ltp", "bid_price", "ask_price", "open_price", "low_price", "high_price"):
                assert round(t[k] * 100) % 5 == 0, (k, t[k])  # the 0.05 tick
            pc = t["prev_close_price"]
            assert t["ch"] == round(t["ltp"] - pc, 4)
            assert t["chp"] == round(t["ch"] / pc * 100, 4)


def test_quotes_and_repeats_look_like_a_full_state_feed(day_ticks):
    inside = sum(t["bid_price"] <= t["ltp"] <= t["ask_price"] for t in day_ticks)
    assert inside / len(day_ticks) > 0.7
    last: dict[str, dict] = {}
    quote_only = identical = 0
    for t in day_ticks:
        p = last.get(t["symbol"])
        if p is not None:
            if (p["vol_traded_today"], p["ltp"]) == (t["vol_traded_today"], t["ltp"]):
                quote_only += 1
            if {k: v for k, v in p.items() if k != "exch_feed_time"} == \
                    {k: v for k, v in t.items() if k != "exch_feed_time"}:
                identical += 1
        last[t["symbol"]] = t
    assert 0.2 < quote_only / len(day_ticks) < 0.6
    assert identical == 0  # the SDK suppresses identical repeats, so a real feed has none


def test_tick_counts_and_intraday_shape(day_ticks):
    per_sym = defaultdict(int)
    for t in day_ticks:
        per_sym[t["symbol"]] += 1
    assert all(5_000 < n < 60_000 for n in per_sym.values()), per_sym
    t0 = ist_epoch(DAY, time(9, 15))
    first = sum(1 for t in day_ticks if t["exch_feed_time"] < t0 + 900)
    midday = sum(1 for t in day_ticks if t0 + 3 * 3600 <= t["exch_feed_time"] < t0 + 3 * 3600 + 900)
    last = sum(1 for t in day_ticks if t["exch_feed_time"] >= ist_epoch(DAY, time(15, 15)))
    assert first > 1.3 * midday and last > 1.3 * midday


def test_volatility_is_higher_at_the_open_than_at_midday():
    ticks = generate_day(default_tickers(12), DAY, seed=3)
    t0 = ist_epoch(DAY, time(9, 15))
    last_min: dict[tuple[str, int], float] = {}
    for t in ticks:
        last_min[(t["symbol"], (t["exch_feed_time"] - t0) // 60)] = t["ltp"]

    def mean_abs_move(minutes: range) -> float:
        moves = [abs(last_min[(s, m)] / last_min[(s, m - 1)] - 1)
                 for s in default_tickers(12) for m in minutes if (s, m) in last_min and (s, m - 1) in last_min]
        return sum(moves) / len(moves)
    assert mean_abs_move(range(1, 16)) > 1.5 * mean_abs_move(range(180, 195))


def test_days_mix_trending_and_mean_reverting_and_prices_are_plausible():
    names = default_tickers(40)
    kinds = {_Symbol(n, 7, DAY, 22_500).trending for n in names}
    assert kinds == {True, False}
    prices = [base_price(n, 7) for n in names]
    assert all(100 <= p <= 4000 and round(p * 100) % 5 == 0 for p in prices)
    assert max(prices) / min(prices) > 5  # spread over the range, not clustered


def test_start_after_gives_the_tail_of_the_same_day(day_ticks):
    cut = day_ticks[len(day_ticks) // 2]["exch_feed_time"]
    tail = list(generate_day(TICKERS, DAY, seed=7, start_after=cut))
    assert tail == [t for t in day_ticks if t["exch_feed_time"] > cut]


def test_bad_arguments_are_refused_at_call_time():
    with pytest.raises(ValueError, match="not after open"):
        generate_day(TICKERS, DAY, 1, session=SessionConfig(open=time(10, 0), close=time(10, 0)))
    assert list(generate_day([], DAY, 1)) == []


def test_the_day_is_pinned_to_the_last_bit():
    """The generator's arithmetic runs on all symbols at once since 2026-12-03; the day it gives must not move
    (replays, recordings and their tests depend on it): this digest is the per-symbol code's day."""
    import hashlib

    h = hashlib.sha256()
    for t in generate_day(default_tickers(12), date(2026, 11, 20), 7):
        h.update(repr(t).encode())
    assert h.hexdigest() == "f067296e8873b2de5cb9e396d15e6cda67da96cbe8f399fd46391b6c89cf1cc3"


def _digest_columns(windows) -> str:
    """sha256 over every yielded window in turn: its boundary, then each column's dtype and bytes (names by
    value), so a changed window split, dtype or last bit all show."""
    import hashlib

    import numpy as np

    h = hashlib.sha256()
    for w in windows:
        if isinstance(w, dict):
            cols = list(w.values())
        else:  # TickColumns
            cols = [w.values[k] for k in sorted(w.values)]
            cols += [w.symbol, repr(w.names), repr(sorted(w.constants.items()))]
        h.update(b"|W|")
        for a in cols:
            if isinstance(a, np.ndarray) and a.dtype != object:
                h.update(str(a.dtype).encode())
                h.update(np.ascontiguousarray(a).tobytes())
            else:
                h.update(repr(a.tolist() if isinstance(a, np.ndarray) else a).encode())
    return h.hexdigest()


def _digest_ticks(ticks) -> str:
    import hashlib

    h = hashlib.sha256()
    for t in ticks:
        h.update(repr(t).encode())
    return h.hexdigest()


_SHORT = SessionConfig(open=time(9, 15), close=time(10, 2, 7))   # 2,827 s: no whole number of windows
_PINNED = {
    # one symbol's whole day (the history's candles): one block of windows
    "SBIN 2025-03-03 seed 7": (lambda: _digest_columns(day_columns(["NSE:SBIN-EQ"], date(2025, 3, 3), 7)),
                               "81ca5c9b0066e313c0cef7997cd77779a81710761ba0700014f9be9f87490c12"),
    "SYM001 2025-06-17 seed 7": (lambda: _digest_columns(day_columns(["NSE:SYM001-EQ"], date(2025, 6, 17), 7)),
                                 "10daf3283ee31439b4ecdf4d1fba6ae7501c34cafe3f9e9f62a745af5ca120e9"),
    "LT 2024-12-31 seed 11": (lambda: _digest_columns(day_columns(["NSE:LT-EQ"], date(2024, 12, 31), 11)),
                              "40d845c7e1166efd4d780e15bdf825e8a6225300213af4efcb67bef7d2ef0e8b"),
    "an index 2025-01-02 seed 3": (
        lambda: _digest_columns(day_columns(["NSE:NIFTY50-INDEX"], date(2025, 1, 2), 3)),
        "edf1207f2ff351187f0317237b8a808cfe233de7e16d87b479d40120f028d584"),
    # several symbols, blocks of windows, a last window shorter than the others
    "5 symbols, short session, 7 s windows": (
        lambda: _digest_columns(day_columns(default_tickers(5), date(2025, 3, 4), 7, _SHORT, window_s=7)),
        "1548358f005e6a7f7ab6d9b7801acd208080d276fe09a421ae05d8b8e81b7c0e"),
    "3 symbols, 1,000 s windows": (
        lambda: _digest_columns(day_columns(["NSE:A-EQ", "NSE:B-EQ", "NSE:C-EQ"], date(2025, 3, 5), 9,
                                            window_s=1000)),
        "beeada4ffcd84a549880f0cee867529de072a382be94fa78ff067fedc8e1826c"),
    "4 symbols' dicts from 09:40:03": (
        lambda: _digest_ticks(generate_day(default_tickers(4), date(2025, 3, 6), 7, _SHORT,
                                           start_after=ist_epoch(date(2025, 3, 6), time(9, 40, 3)))),
        "d571dda87148914a989aae8383f241df67a87a7f0dddad26f0875e156e60ac2b"),
    "2 symbols' dicts, 1 s windows": (
        lambda: _digest_ticks(generate_day(default_tickers(2), date(2025, 3, 7), 5,
                                           SessionConfig(open=time(9, 15), close=time(9, 25)), window_s=1)),
        "0fb9dabe07d68b0a9090863b4a9fb4cc6555aaa4065ba525126fbb11381bbc12"),
    # the replay's shapes: 16 symbols (the default day's count), 200 symbols (one window per block)
    "16 symbols' TickColumns 2026-11-20": (
        lambda: _digest_columns(SyntheticDay(default_tickers(16), date(2026, 11, 20), 7).windows()),
        "b541ea0c18009bf0344391552c0be291edf29dcc33068f5ecdcc8cfba935d9f3"),
    "200 symbols' TickColumns, short session": (
        lambda: _digest_columns(SyntheticDay(default_tickers(200), date(2026, 11, 19), 7, _SHORT).windows()),
        "08f591f830f28b140b1109c043289a47e49fbc379309bacf6d36fc9b2d44312d"),
}


@pytest.mark.parametrize("case", list(_PINNED))
def test_the_generator_gives_the_window_by_window_codes_days_to_the_last_bit(case):
    """The generator computes blocks of windows at once since 2026-12-03 (a symbol's whole day for the history):
    these digests were taken with the window-by-window code (f34c791), over every shape the blocks split
    differently (one symbol, several, a short last window, 1 s windows, start_after, 200 symbols)."""
    compute, expected = _PINNED[case]
    assert compute() == expected

"""Malformed, extreme and out-of-order ticks thrown at the worker path: nothing crashes, and every tick is
either processed or counted as bad (property-based)."""
from __future__ import annotations

import copy
import math
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from core.config import parse_config
from core.types import Tick
from market_data_handler import MarketDataHandler

ROOT = Path(__file__).resolve().parent.parent
RAW = yaml.safe_load((ROOT / "config.yaml").read_text())
RAW = copy.deepcopy(RAW)
RAW["symbols"] = ["SBIN", {"symbol": "LT", "strategy": "mac"}]
CFG = parse_config(RAW)
T0 = 1_795_140_900  # 2026-11-20 09:15 IST

numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**12, 10**12),
                    st.text(max_size=5), st.none(), st.booleans())
good_tick = st.fixed_dictionaries({
    "symbol": st.sampled_from(["NSE:SBIN-EQ", "NSE:LT-EQ"]),
    "ltp": st.floats(min_value=1, max_value=5000),
    "exch_feed_time": st.integers(T0, T0 + 6 * 3600),
    "vol_traded_today": st.integers(0, 10**9),
    "bid_price": st.floats(min_value=0, max_value=5000), "ask_price": st.floats(min_value=0, max_value=5000),
    "type": st.just("sf"),
})
bad_tick = st.one_of(
    st.dictionaries(st.sampled_from(["symbol", "ltp", "exch_feed_time", "last_traded_time", "type", "junk"]),
                    st.one_of(numbers, st.sampled_from(["NSE:SBIN-EQ", "NSE:LT-EQ", "NSE:NOPE-EQ"])), max_size=6),
    st.lists(st.integers(), max_size=3), st.text(max_size=10), st.none(), st.integers(),
    good_tick.map(lambda t: {**t, "ltp": -abs(t["ltp"])}),
    good_tick.map(lambda t: {**t, "ltp": math.nan}),
    good_tick.map(lambda t: {**t, "exch_feed_time": "soon"}),
)


def record(t: object) -> object:
    """What the worker gets: the feed turns each dict into its Tick record; anything else goes as it is, to
    show the worker refuses it too."""
    return Tick.from_feed(t) if isinstance(t, dict) else t


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.one_of(good_tick, bad_tick), max_size=60))
def test_nothing_crashes_and_every_tick_is_counted(ticks):
    emitted = []
    h = MarketDataHandler(CFG, ["SBIN", "LT"], lambda sig, lat, held, pos: emitted.append(sig))
    for t in ticks:
        h.process(record(t), 0.0)
    assert h.stats.ticks + h.stats.bad_ticks == len(ticks)
    assert h.stats.bad_ticks == sum(h.stats.bad_by_reason.values())


def test_each_kind_of_bad_tick_has_its_reason():
    h = MarketDataHandler(CFG, ["SBIN", "LT"], lambda sig, lat, held, pos: None)
    good = {"symbol": "NSE:SBIN-EQ", "ltp": 600.0, "exch_feed_time": T0 + 10}
    for t in ([1, 2], {"ltp": 1.0}, {**good, "symbol": "NSE:NOPE-EQ"}, {**good, "ltp": "600"},
              {**good, "ltp": 0.0}, {**good, "ltp": math.inf}, {**good, "exch_feed_time": None}, good,
              {**good, "exch_feed_time": T0}):
        h.process(record(t), 0.0)
    assert h.stats.ticks == 1
    assert h.stats.bad_by_reason == {"not a tick record": 1, "missing symbol": 1, "unknown symbol": 1,
                                     "non-numeric price": 1, "zero, negative or non-finite price": 2,
                                     "missing or non-numeric timestamp": 1, "timestamp going backwards": 1}

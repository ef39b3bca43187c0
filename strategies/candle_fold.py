"""The indicator side of a candle strategy's bulk fold (the backtest's quiet and held stretches): copies of its
indicators run ahead over the day's next candles, so the strategy can test the values they would take, as
arrays, without touching its own state, and then take exactly the candles it proved quiet.

The copies run the indicators' own update(), the same float operations in the same order as on_candle runs
them, so every value tested and every state taken is bit for bit what candle-by-candle gives (a recursion such
as Wilder's RSI or an EMA cannot be summed out of order; its per-candle step is the price of exactness).
"""
from __future__ import annotations

import copy
from collections import deque
from collections.abc import Mapping
from datetime import date
from datetime import time as dtime
from typing import Any

import numpy as np

from strategies.base import Candle, CandleArrays
from strategies.indicators import Indicator

Series = dict[str, list[Any]]  # indicator name -> its value after each candle (None while warming up)
_IMMUTABLE = (int, float, str, type(None), tuple, date, dtime)  # tuple: the NamedTuple values, (index, price)


def clone(obj: Any) -> Any:
    """A copy of an indicator's state that shares nothing mutable with it, at a fraction of copy.deepcopy's cost
    (a fold copies the indicators once per stretch and per chunk): the strategies package's own classes
    attribute by attribute (slots and __dict__), their lists, deques and dicts one level down (they hold
    numbers and tuples of numbers), numbers, text, dates and tuples as they are; anything else deepcopied."""
    if isinstance(obj, _IMMUTABLE):
        return obj
    if isinstance(obj, deque):
        return deque(map(clone, obj), obj.maxlen)
    if isinstance(obj, list):
        return [clone(x) for x in obj]
    if isinstance(obj, dict):
        return {k: clone(v) for k, v in obj.items()}
    cls = type(obj)
    if not cls.__module__.startswith("strategies."):
        return copy.deepcopy(obj)
    new = object.__new__(cls)
    for klass in cls.__mro__:
        slots = getattr(klass, "__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if hasattr(obj, name):
                setattr(new, name, clone(getattr(obj, name)))
    if hasattr(obj, "__dict__"):
        new.__dict__.update({k: clone(v) for k, v in obj.__dict__.items()})
    return new


class IndicatorRun:
    """Private copies of a strategy's indicators, advanced over candles; `commit` hands their state back."""

    def __init__(self, indicators: Mapping[str, Indicator[Any]]):
        self._inds: dict[str, Indicator[Any]] = {k: clone(v) for k, v in indicators.items()}

    def advance(self, run: CandleArrays, a: int, b: int, symbol: str, seconds: int) -> Series:
        """Update the copies with run[a:b], in order, as on_candle does; each one's value after each candle."""
        return feed(self._inds, run, a, b, symbol, seconds)

    def commit(self, indicators: Mapping[str, Indicator[Any]]) -> None:
        """Give `indicators` (the strategy's own, the ones copied) the copies' state: their attributes are
        replaced whole, so every reference the strategy holds to an indicator sees it. The run is spent."""
        for k, ind in indicators.items():
            ind.__dict__.update(self._inds[k].__dict__)
        self._inds = {}


def feed(indicators: Mapping[str, Indicator[Any]], run: CandleArrays, a: int, b: int, symbol: str,
         seconds: int) -> Series:
    """Update `indicators` with run[a:b], in order, as on_candle does (each candle built as the worker builds
    it); each one's value after each candle."""
    out: Series = {k: [] for k in indicators}
    steps = [(ind, ind.update, out[k].append) for k, ind in indicators.items()]
    cols = zip(run.start[a:b].tolist(), run.open[a:b].tolist(), run.high[a:b].tolist(),
               run.low[a:b].tolist(), run.close[a:b].tolist(), run.volume[a:b].tolist(), strict=True)
    for t, o, h, lo, c, v in cols:
        candle = Candle(symbol, t, seconds, o, h, lo, c, v)
        for ind, update, keep in steps:
            update(candle)
            keep(ind.value)
    return out


def column(values: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """A series as a float64 array (NaN where None) and the mask of where it has a value: what the array tests
    read (a comparison with NaN is False, as the candle path's early return for a missing value is)."""
    has = np.fromiter((v is not None for v in values), dtype=bool, count=len(values))
    x = np.fromiter((np.nan if v is None else v for v in values), dtype=np.float64, count=len(values))
    return x, has


def carried(x: np.ndarray, has: np.ndarray, first: float | None) -> np.ndarray:
    """For each candle, the value at the last candle before it that had one (`first` before any: what the
    strategy remembered from earlier candles; None is NaN): a "previous value" a strategy only moves on known
    candles."""
    idx = np.where(has, np.arange(len(x)), -1)
    np.maximum.accumulate(idx, out=idx)
    before = np.empty(len(x), dtype=np.int64)
    before[:1] = -1
    before[1:] = idx[:-1]
    start = np.nan if first is None else float(first)
    return np.where(before >= 0, x[np.maximum(before, 0)], start)


def last_known(values: list[Any], has: np.ndarray, n: int, first: Any) -> Any:
    """The value at the last of the first n candles that had one, else `first`: what a strategy that moves its
    previous value only on known candles remembers after them."""
    known = np.flatnonzero(has[:n])
    return values[int(known[-1])] if len(known) else first

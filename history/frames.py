"""Candles to and from columns: ticks bucketed into candles, Parquet tables, and timestamps from files.

Why here: every source ends in the same columns (start, open, high, low, close, volume), and the cache
stores exactly those; strategies.base.Candle is built from them only at the edge.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa

from strategies.base import Candle

SCHEMA = pa.schema([("start", pa.int64()), ("open", pa.float64()), ("high", pa.float64()), ("low", pa.float64()),
                    ("close", pa.float64()), ("volume", pa.int64())])


def candles_from_ticks(symbol: str, times: np.ndarray, prices: np.ndarray, cum_volume: np.ndarray, seconds: int,
                       origin: int) -> list[Candle]:
    """One symbol's day of ticks (time order) as candles of `seconds`, buckets counted from `origin` (the
    session open, as brokers align intraday candles; IST midnight for daily ones). Volume is what traded in
    the bucket: the day's cumulative volume at its last tick minus that at the previous bucket's last tick
    (the first bucket counts from zero, so the opening auction is in it). Empty buckets make no candle."""
    n = times.shape[0]
    if n == 0:
        return []
    b = origin + (times.astype(np.int64) - origin) // seconds * seconds
    cut = np.flatnonzero(np.diff(b)) + 1
    first = np.concatenate(([0], cut))
    last = np.concatenate((cut - 1, [n - 1]))
    opens, closes = prices[first], prices[last]
    highs = np.maximum.reduceat(prices, first)
    lows = np.minimum.reduceat(prices, first)
    cum = cum_volume[last].astype(np.int64)
    vols = np.diff(np.concatenate(([0], cum)))
    return [Candle(symbol, int(t), seconds, float(o), float(h), float(lo), float(c), int(v))
            for t, o, h, lo, c, v in zip(b[first].tolist(), opens.tolist(), highs.tolist(), lows.tolist(),
                                         closes.tolist(), vols.tolist(), strict=True)]


@dataclass(frozen=True, slots=True, eq=False)
class CandleColumns:
    """One symbol-day's candles as numpy columns, in the source's order: the same candles as a list of Candle,
    kept in columns so a day is read, checked and handed out without a Python object per candle."""

    start: np.ndarray   # int64 epoch seconds
    open: np.ndarray    # float64
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray  # int64

    def __len__(self) -> int:
        return int(self.start.shape[0])

    def candles(self, symbol: str, seconds: int) -> list[Candle]:
        return [Candle(symbol, t, seconds, o, h, lo, c, v) for t, o, h, lo, c, v in zip(
            self.start.tolist(), self.open.tolist(), self.high.tolist(), self.low.tolist(), self.close.tolist(),
            self.volume.tolist(), strict=True)]

    @classmethod
    def of(cls, candles: Sequence[Candle]) -> CandleColumns:
        return cls(np.array([c.start for c in candles], dtype=np.int64),
                   np.array([c.open for c in candles], dtype=np.float64),
                   np.array([c.high for c in candles], dtype=np.float64),
                   np.array([c.low for c in candles], dtype=np.float64),
                   np.array([c.close for c in candles], dtype=np.float64),
                   np.array([c.volume for c in candles], dtype=np.int64))

    @classmethod
    def of_table(cls, table: pa.Table) -> CandleColumns:
        t = table.cast(SCHEMA) if table.schema != SCHEMA else table
        cols = [t.column(name).to_numpy() for name in SCHEMA.names]
        return cls(*cols)


def to_table(candles: Sequence[Candle]) -> pa.Table:
    """Candles as the cache's columns, in the order given (an out-of-order source stays out of order)."""
    return pa.table({"start": [c.start for c in candles], "open": [c.open for c in candles],
                     "high": [c.high for c in candles], "low": [c.low for c in candles],
                     "close": [c.close for c in candles], "volume": [c.volume for c in candles]}, schema=SCHEMA)




def whole_volume(v: object) -> int:
    """A volume cell as a whole number; ValueError for a missing or non-finite one."""
    if v is None or isinstance(v, bool):
        raise ValueError(f"volume {v!r} is not a number")
    x = float(v)  # type: ignore[arg-type]
    if not math.isfinite(x):
        raise ValueError(f"volume {v!r} is not a finite number")
    return int(round(x))


def epoch_of(value: object) -> int:
    """A timestamp cell as epoch seconds: a number (epoch seconds), a digit string, or ISO 8601 with a UTC offset
    ("2025-01-02T09:15:00+05:30", "...Z"). A time without an offset is refused: IST or UTC cannot be told."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"timestamp {value!r} is not epoch seconds or ISO 8601")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"timestamp {value!r} is not finite")
        return int(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"timestamp {value.isoformat()} has no UTC offset -- IST or UTC cannot be told")
        return int(value.timestamp())
    text = str(value).strip()
    if text.lstrip("-").replace(".", "", 1).isdigit():
        return int(float(text))
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"timestamp {text!r} is not epoch seconds or ISO 8601 (2025-01-02T09:15:00+05:30)") from None
    if dt.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset -- write +05:30 (IST) or Z (UTC)")
    return int(dt.timestamp())

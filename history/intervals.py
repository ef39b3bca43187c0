"""Candle intervals by OpenAlgo's names (1m, 5m, 1h, D ...) and how many days one request may span.

Why a table: each server limits a request's span by interval family, and a request within the limit is one
broker call upstream. OpenAlgo fetches Fyers minutes in 60-day chunks, daily in 300, seconds in 25; Fyers'
own history API allows 100 days of intraday candles and a year of daily ones per request.
Weekly and longer intervals are refused: a candle's length must be fixed for the backtest's clock.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

DAY_S = 86_400
_NAME = re.compile(r"^(\d{1,3})([smh])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True, slots=True)
class Interval:
    """`name` as OpenAlgo spells it; `seconds` the candle length (86,400 for D)."""

    name: str
    seconds: int

    @property
    def family(self) -> str:
        """seconds, minutes, hours or days: the key of OpenAlgo's /intervals answer."""
        if self.seconds >= DAY_S:
            return "days"
        if self.seconds % 3600 == 0:
            return "hours"
        return "minutes" if self.seconds % 60 == 0 else "seconds"

    @property
    def intraday(self) -> bool:
        return self.seconds < DAY_S


def parse_interval(text: str) -> Interval:
    """An Interval from "30s", "1m", "15m", "1h", "D"; ValueError naming what is allowed."""
    t = text.strip()
    if t in ("D", "1d", "1D"):
        return Interval("D", DAY_S)
    m = _NAME.match(t)
    if m is not None and int(m.group(1)) > 0:
        n, unit = int(m.group(1)), m.group(2)
        seconds = n * _UNIT_S[unit]
        if seconds < DAY_S and DAY_S % seconds == 0:
            return Interval(f"{n}{unit}", seconds)
    raise ValueError(f"interval {text!r} is not allowed -- use seconds (5s, 30s), minutes (1m, 5m, 15m), "
                     "hours (1h) or D; the length must divide a day, and W, M, Q, Y are not supported")


def openalgo_chunk_days(interval: Interval) -> int:
    """Days one OpenAlgo history request may span: what OpenAlgo itself fetches from Fyers in one call."""
    if interval.seconds < 60:
        return 25
    return 60 if interval.intraday else 300


def fyers_chunk_days(interval: Interval) -> int:
    """Days one Fyers history request may span (100 for intraday resolutions, 366 for daily)."""
    return 100 if interval.intraday else 366


def fyers_resolution(interval: Interval) -> str:
    """Fyers' resolution string: "5S" for seconds, minutes as a number ("1", "60", "240"), "1D" for daily."""
    if not interval.intraday:
        return "1D"
    if interval.seconds < 60:
        return f"{interval.seconds}S"
    if interval.seconds % 60:
        raise ValueError(f"interval {interval.name} has no Fyers resolution")
    return str(interval.seconds // 60)

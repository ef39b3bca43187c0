"""Candles from the seeded synthetic day generator: the paper broker's history and `--source synthetic`.

Why from the same generator as the replay: a candle backtest of a synthetic day and the tick replay of that
day then see the same prices. A symbol's day depends only on its ticker (NSE:SYMBOL-EQ, as config derives
it), the day and the seed, not on which other symbols are asked for. Weekends and holidays (the shipped NSE
calendar) have no candles; a special session uses its own hours.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import date
from datetime import time as dtime
from functools import lru_cache

import numpy as np

from core.clock import ist_epoch
from core.config import SessionConfig
from feeds.synthetic import day_columns
from history.frames import candles_from_ticks
from history.intervals import DAY_S, Interval, openalgo_chunk_days
from ops.calendar import MarketCalendar
from strategies.base import Candle

DEFAULT_SEED = 7  # config.yaml's replay.seed
NSE_SESSION = SessionConfig()  # 09:15-15:30 IST


@lru_cache(maxsize=4)
def _calendar(session: SessionConfig) -> MarketCalendar:
    return MarketCalendar(session)


def ticker_of(symbol: str, exchange: str) -> str:
    """The Fyers ticker the replay generates this symbol's ticks under (config's default derivation)."""
    return f"{exchange}:{symbol}-EQ"


@lru_cache(maxsize=256)
def synthetic_day(symbol: str, exchange: str, day: date, seconds: int, seed: int = DEFAULT_SEED,
                  session: SessionConfig = NSE_SESSION) -> tuple[Candle, ...]:
    """The day's candles of `seconds` (86,400: one daily candle stamped at IST midnight); () on a closed day.
    Cached: the paper broker is asked for the same days again and again."""
    hours = _calendar(session).hours(day)
    if hours is None:
        return ()
    sess = session if hours == (session.open, session.close) else replace(session, open=hours[0], close=hours[1])
    parts = list(day_columns([ticker_of(symbol, exchange)], day, seed, sess))
    if not parts:
        return ()
    times = np.concatenate([p["exch_feed_time"] for p in parts])
    prices = np.concatenate([p["ltp"] for p in parts])
    volume = np.concatenate([p["vol_traded_today"] for p in parts])
    origin = ist_epoch(day, hours[0]) if seconds < DAY_S else ist_epoch(day, dtime(0, 0))
    return tuple(candles_from_ticks(symbol, times, prices, volume, seconds, origin))


class SyntheticSource:
    """`--source synthetic`: the generator in this process, no server; one "request" per symbol-day."""

    def __init__(self, seed: int = DEFAULT_SEED, session: SessionConfig | None = None):
        self.seed = seed
        self.session = session or SessionConfig()
        # a day's ticks depend on the session's hours: another session's days are other data, cached apart (a
        # short test session's must never stand in for the NSE day's)
        s = self.session
        hours = "" if (s.open, s.close) == (NSE_SESSION.open, NSE_SESSION.close) else \
            f"-{s.open:%H%M}-{s.close:%H%M}"
        self.key = f"synthetic-seed{seed}{hours}"
        self.requests = 0

    def check_interval(self, interval: Interval) -> None:
        return None

    def chunk_days(self, interval: Interval) -> int:
        return openalgo_chunk_days(interval)

    def fingerprint(self, symbol: str, exchange: str) -> str | None:
        return None

    def fetch(self, symbol: str, exchange: str, interval: Interval, first: date, last: date) -> list[Candle]:
        out: list[Candle] = []
        for n in range(first.toordinal(), last.toordinal() + 1):
            self.requests += 1
            out.extend(synthetic_day(symbol, exchange, date.fromordinal(n), interval.seconds, self.seed,
                                     self.session))
        return out

"""The history layer's front: fetch what the cache lacks, then hand out a symbol's range a day at a time.

    store = HistoryStore(source, Path("data/history"))
    store.prefetch("SBIN", "NSE", interval, first, last)        # requests only for days not cached
    for day in store.days("SBIN", "NSE", interval, first, last): # one day's candles in memory at a time
        if not day.report.ok: ...                                 # the caller decides to skip it

Days missing from the cache are fetched in runs of consecutive days no longer than the source's chunk, and
every day of a fetched run is written, an empty marker where the source had nothing (a weekend, a holiday),
so the same range never asks again. Days from today on are never cached (their candles are still coming).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property
from pathlib import Path

from core.clock import ist_date, ist_epoch
from core.config import SessionConfig
from history.cache import CandleCache
from history.cached_days import CachedDays
from history.frames import CandleColumns
from history.intervals import Interval
from history.quality import JUMP_PCT, DayReport, check_with_close
from history.sources import HistorySource, by_day
from ops.calendar import MarketCalendar
from strategies.base import Candle

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class HistoryDay:
    """One symbol-day: its candles as columns (fast) or as Candles (`candles`, built on first use), and the
    quality report the caller reads before trading on it."""

    symbol: str
    day: date
    seconds: int
    columns: CandleColumns
    report: DayReport

    @cached_property
    def candles(self) -> list[Candle]:
        return self.columns.candles(self.symbol, self.seconds)


def _days(first: date, last: date) -> list[date]:
    return [date.fromordinal(n) for n in range(first.toordinal(), last.toordinal() + 1)]


class HistoryStore:
    def __init__(self, source: HistorySource, cache_root: Path, session: SessionConfig | None = None, *,
                 jump_pct: float = JUMP_PCT, today: date | None = None):
        self.source = source
        self.cache = CandleCache(cache_root, source.key)
        self.calendar = MarketCalendar(session or SessionConfig())
        self.jump_pct = jump_pct
        self.today = today
        self._sessions: dict[date, tuple[int, int] | None] = {}

    def _today(self) -> date:
        import time

        return self.today or ist_date(time.time())

    def missing(self, symbol: str, exchange: str, interval: Interval, first: date, last: date) -> list[date]:
        """Days of the range the cache cannot answer (before today; later days are always fetched)."""
        self.cache.check_fingerprint(symbol, exchange, interval, self.source.fingerprint(symbol, exchange))
        end = min(last, self._today() - timedelta(days=1))
        if first > end:
            return []
        cached = CachedDays(self.cache.folder(symbol, exchange, interval))  # one listing, not a stat per day
        return [d for d in _days(first, end) if not cached.has(d)]

    def session(self, day: date) -> tuple[int, int] | None:
        """The day's (open, close) epochs if it is a trading day, else None; worked out once per day, not once
        per symbol-day."""
        try:
            return self._sessions[day]
        except KeyError:
            pass
        hours = self.calendar.hours(day)
        s = None if hours is None else (ist_epoch(day, hours[0]), ist_epoch(day, hours[1]))
        self._sessions[day] = s
        return s

    def prefetch(self, symbol: str, exchange: str, interval: Interval, first: date, last: date,
                 on_days: Callable[[int], None] | None = None) -> int:
        """Fetch and cache the missing days; `on_days(n)` after each request with the days it covered.
        Returns the number of requests made."""
        todo = self.missing(symbol, exchange, interval, first, last)
        chunk = max(1, self.source.chunk_days(interval))
        made = 0
        i = 0
        while i < len(todo):
            j = i  # a run of consecutive days, at most `chunk` long
            while j + 1 < len(todo) and todo[j + 1] == todo[j] + timedelta(days=1) and j + 1 - i < chunk:
                j += 1
            run = todo[i:j + 1]
            got = by_day(self.source.fetch(symbol, exchange, interval, run[0], run[-1]))
            made += 1
            for d in run:
                self.cache.write(symbol, exchange, interval, d, got.get(d, []))
            if on_days is not None:
                on_days(len(run))
            i = j + 1
        return made

    def days(self, symbol: str, exchange: str, interval: Interval, first: date, last: date) -> Iterator[HistoryDay]:
        """Each trading day of the range (and any other day that has candles), in date order, with its report.
        Missing days are fetched first; the prefetch keeps one request's candles in memory, this one day's."""
        self.prefetch(symbol, exchange, interval, first, last)
        cached = CachedDays(self.cache.folder(symbol, exchange, interval))  # listed after the prefetch's writes
        prev: float | None = None
        for d in _days(first, last):
            cols = cached.read(d)
            if cols is None:  # today or later: not cached
                cols = CandleColumns.of(by_day(self.source.fetch(symbol, exchange, interval, d, d)).get(d, []))
            session = self.session(d)
            if not len(cols) and session is None:
                continue
            report, close = check_with_close(symbol, d, cols, interval.seconds, session, prev, self.jump_pct)
            if not report.ok:
                log.info("history quality: %s", report)
            prev = close or prev
            yield HistoryDay(symbol, d, interval.seconds, cols, report)


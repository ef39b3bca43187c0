"""What every history source offers the store, and the error it raises.

A source answers one request at a time for an inclusive range of IST days no longer than its chunk_days,
with the candles in the order it got them (the store splits them by day and the quality checks judge the
order). Rate limits, retries and timeouts are the source's business: it knows its server.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Protocol

from core.clock import ist_date
from history.intervals import Interval
from strategies.base import Candle


class HistoryError(Exception):
    """The source refused or could not answer; the message says what to do about it."""


class HistorySource(Protocol):
    key: str        # the cache folder of this source's data (another seed or data folder: another key)
    requests: int   # requests made to a server or files read, for tests and the summary

    def check_interval(self, interval: Interval) -> None:
        """ValueError naming what is offered when `interval` is not."""

    def chunk_days(self, interval: Interval) -> int:
        """The most days one fetch may span."""

    def fingerprint(self, symbol: str, exchange: str) -> str | None:
        """A string that changes when the source's data for the symbol changes (files); None for servers."""

    def fetch(self, symbol: str, exchange: str, interval: Interval, first: date, last: date) -> list[Candle]:
        """Candles from the start of `first` to the end of `last` (IST days), in the source's order."""


def by_day(candles: Iterable[Candle]) -> dict[date, list[Candle]]:
    """Candles grouped by the IST day of their start, each day in the order given."""
    out: dict[date, list[Candle]] = {}
    for c in candles:
        out.setdefault(ist_date(c.start), []).append(c)
    return out

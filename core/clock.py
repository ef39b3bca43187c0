"""One notion of time for the whole daemon: wall time when live, the ticks' own timestamps in replay.

Everything market-related is IST (Asia/Kolkata via pytz); the feed speaks epoch seconds.
"""
from __future__ import annotations

import functools
import threading
import time
from datetime import date, datetime
from datetime import time as dtime

import pytz

IST = pytz.timezone("Asia/Kolkata")


def to_ist(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, IST)


def ist_date(epoch: float) -> date:
    return to_ist(epoch).date()


@functools.lru_cache(maxsize=4096)
def ist_epoch(day: date, at: dtime) -> int:
    """Epoch seconds of `at` IST on `day`. Kept: a backtest asks for each day's few session times thousands of
    times (pytz's localize is ~15 us a call)."""
    return int(IST.localize(datetime.combine(day, at)).timestamp())


def fmt_ist(epoch: float) -> str:
    return to_ist(epoch).strftime("%Y-%m-%d %H:%M:%S IST")


class Clock:
    """Wall clock. `now()` is epoch seconds."""

    def now(self) -> float:
        return time.time()

    def advance(self, epoch: float) -> None:  # a wall clock ignores the feed
        pass


class ReplayClock(Clock):
    """Time is the latest tick timestamp seen; it never moves backwards."""

    def __init__(self, start: float = 0.0):
        self._now = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._now

    def advance(self, epoch: float) -> None:
        if epoch > self._now:
            with self._lock:
                if epoch > self._now:
                    self._now = float(epoch)

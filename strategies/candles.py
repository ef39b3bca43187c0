"""Time bucketing of the tick stream, shared by the strategies: OHLCV candles, IST trading days, and
the small helpers strategies need to keep their state JSON-safe.

Everything here runs per tick in the worker's hot path, so per-tick work is integer compares and a few
attribute writes; anything needing a datetime is done once per candle or once per day.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, timedelta
from datetime import time as dtime
from typing import Any

from core.clock import ist_date, ist_epoch
from core.enums import PositionSide
from core.types import Tick
from strategies.base import Candle

_MIDNIGHT = dtime(0, 0)
_HHMM = re.compile(r"^(\d{1,2}):(\d{2})$")


class CandleAggregator:
    """Builds candles of `seconds` from one symbol's ticks.

    Buckets are `exch_feed_time` floored to the resolution, aligned to the epoch (minute candles start
    at :00; any resolution dividing 1800 s also lines up with IST :00/:30). A candle closes when the
    first tick of a later bucket arrives; empty intervals (a gap in the feed) produce no candle, so a
    gap simply closes the open candle. Volume is the increase of `vol_traded_today` between consecutive
    ticks, never negative: a drop (new day, resubscribe snapshot) rebases without counting, and the very
    first tick counts 0 because what traded before it is unknown. A tick older than the open candle
    (out of order) is folded into the open candle rather than reopening a closed one.
    """

    __slots__ = ("symbol", "seconds", "_start", "_open", "_high", "_low", "_close", "_volume", "_last_cum")

    def __init__(self, symbol: str, seconds: int):
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds <= 0:
            raise ValueError(f"seconds: {seconds!r} is not allowed -- expected a positive whole number")
        self.symbol = symbol
        self.seconds = seconds
        self._start = -1          # start of the open candle; -1: none open
        self._open = self._high = self._low = self._close = 0.0
        self._volume = 0
        self._last_cum = -1       # last vol_traded_today seen; -1: none yet

    def update(self, tick: Tick) -> list[Candle]:
        """Feed one tick; returns the candles it closed (zero or one)."""
        t = tick.exch_feed_time
        if t is None:
            t = tick.last_traded_time
            if t is None:
                return []
        price = tick.ltp
        if price is None:
            return []
        if t.__class__ is not int:
            t = int(t)
        return self.add(t, price, tick.vol_traded_today)

    def in_open_candle(self, t: int) -> bool:
        """Whether a tick at `t` falls in the open candle (so it closes none)."""
        return self._start >= 0 and t - t % self.seconds == self._start

    @property
    def open_start(self) -> int:
        """Start of the open candle; -1: none open."""
        return self._start

    def open_values(self) -> tuple[int, float, float, float, float, int]:
        """The open candle as (start, open, high, low, close, volume) so far (start -1: none open)."""
        return self._start, self._open, self._high, self._low, self._close, self._volume

    def restart(self) -> None:
        """Forget the open candle and the last vol_traded_today, as before the first tick: the backtest's bulk
        fold then adds the ticks of the candle it jumped to, which leaves it as running every tick would."""
        self._start = -1
        self._last_cum = -1

    def add(self, t: int, price: float, cum: int | None) -> list[Candle]:
        """Feed one tick as plain values (whole epoch seconds, price, vol_traded_today); what update() does with
        a Tick, for a caller that has no Tick to build (the backtest's quiet candles)."""
        dv = 0
        if cum is not None:
            last = self._last_cum
            if last >= 0 and cum > last:
                dv = cum - last
            self._last_cum = cum
        start = t - t % self.seconds
        cur = self._start
        if start <= cur:  # same bucket, or a late tick folded into the open candle
            if price > self._high:
                self._high = price
            elif price < self._low:
                self._low = price
            self._close = price
            self._volume += dv
            return []
        closed = [] if cur < 0 else [Candle(self.symbol, cur, self.seconds, self._open, self._high, self._low,
                                            self._close, self._volume)]
        self._start = start
        self._open = self._high = self._low = self._close = price
        self._volume = dv
        return closed

    def flush(self) -> list[Candle]:
        """Close the open candle at the end of the stream (replay end, shutdown)."""
        if self._start < 0:
            return []
        c = Candle(self.symbol, self._start, self.seconds, self._open, self._high, self._low, self._close,
                   self._volume)
        self._start = -1
        return [c]

    def state_dict(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "seconds": self.seconds, "start": self._start, "open": self._open,
                "high": self._high, "low": self._low, "close": self._close, "volume": self._volume,
                "last_cum": self._last_cum}

    def load_state(self, state: Mapping[str, Any]) -> None:
        if state.get("seconds") != self.seconds:
            raise ValueError(f"seconds: saved candles are {state.get('seconds')!r} s, this aggregator builds "
                             f"{self.seconds} s -- start without the saved state")
        self._start = int(state["start"])
        self._open, self._high = float(state["open"]), float(state["high"])
        self._low, self._close = float(state["low"]), float(state["close"])
        self._volume, self._last_cum = int(state["volume"]), int(state["last_cum"])


class TradingDay:
    """Epoch bounds of the current IST calendar day, recomputed only when a tick leaves the day, so the
    per-tick test is `day.start <= t < day.end` on ints."""

    __slots__ = ("date", "start", "end")

    def __init__(self) -> None:
        self.date: date | None = None
        self.start = 0
        self.end = 0  # start == end: no day yet, every time is outside

    def move_to(self, epoch: int) -> None:
        self.set_date(ist_date(epoch))

    def set_date(self, d: date) -> None:
        self.date = d
        self.start = ist_epoch(d, _MIDNIGHT)
        self.end = ist_epoch(d + timedelta(days=1), _MIDNIGHT)

    def at(self, when: dtime) -> int:
        """Epoch seconds of `when` IST on this day."""
        assert self.date is not None
        return ist_epoch(self.date, when)

    def iso(self) -> str | None:
        return None if self.date is None else self.date.isoformat()

    def restore(self, iso: str | None) -> None:
        if iso is None:
            self.__init__()
        else:
            self.set_date(date.fromisoformat(iso))


def parse_hhmm(value: Any) -> dtime | None:
    """An IST time of day from "HH:MM", or from the integer YAML 1.1 makes of an unquoted 15:05 (905)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        hh, mm = divmod(value, 60)
    elif isinstance(value, str) and (m := _HHMM.match(value.strip())):
        hh, mm = int(m.group(1)), int(m.group(2))
    else:
        return None
    if not (0 <= hh < 24 and 0 <= mm < 60):
        return None
    return dtime(hh, mm)


def hhmm_problem(name: str, value: Any) -> list[str]:
    if parse_hhmm(value) is None:
        return [f"{name}: {value!r} is not allowed -- expected an IST time \"HH:MM\" such as \"15:05\""]
    return []


def side_from_state(v: str | None) -> PositionSide | None:
    return None if v is None else PositionSide(v)

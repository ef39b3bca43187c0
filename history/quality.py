"""What is wrong with a symbol's day of candles, as a value the caller reads before trading on it.

Nothing here drops, sorts or repairs a candle: a day with findings is reported, and the caller (the
backtest) decides to skip it. Checks, per symbol and IST day:
- missing_day: a trading day with no candles at all;
- gap: intervals of the session with no candle (intraday intervals only; alignment-free: it looks at the
  distance between consecutive candles and at the session's ends);
- duplicate / out_of_order: a candle start seen before, or earlier than the one before it;
- bad_price: an open, high, low or close that is zero, negative or not a number; bad_volume: below zero;
- bad_range: high below low, or open or close outside [low, high];
- jump: an open more than `jump_pct` away from the previous close (the day before's last close included),
  the mark of a split or bonus the data was not adjusted for.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from core.clock import to_ist
from strategies.base import Candle

JUMP_PCT = 30.0
_SHOWN = 3  # examples kept per finding


@dataclass(frozen=True, slots=True)
class Issue:
    """One kind of finding on a day: how many candles (or missing intervals) and a few examples."""

    kind: str
    count: int
    examples: tuple[str, ...] = ()

    def __str__(self) -> str:
        more = f" (e.g. {', '.join(self.examples)})" if self.examples else ""
        return f"{self.kind} x{self.count}{more}"


@dataclass(frozen=True, slots=True)
class DayReport:
    symbol: str
    day: date
    candles: int
    issues: tuple[Issue, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.issues

    def kinds(self) -> set[str]:
        return {i.kind for i in self.issues}

    def __str__(self) -> str:
        body = "ok" if self.ok else "; ".join(map(str, self.issues))
        return f"{self.symbol} {self.day.isoformat()}: {self.candles} candles, {body}"


def _hm(epoch: int) -> str:
    return f"{to_ist(epoch):%H:%M:%S}"


class _Findings:
    def __init__(self) -> None:
        self.by_kind: dict[str, tuple[int, list[str]]] = {}

    def add(self, kind: str, example: str, count: int = 1) -> None:
        n, ex = self.by_kind.get(kind, (0, []))
        if len(ex) < _SHOWN:
            ex.append(example)
        self.by_kind[kind] = (n + count, ex)

    def issues(self) -> tuple[Issue, ...]:
        return tuple(Issue(k, n, tuple(ex)) for k, (n, ex) in self.by_kind.items())


def check_day(symbol: str, day: date, candles: Sequence[Candle], session: tuple[int, int] | None,
              prev_close: float | None, jump_pct: float = JUMP_PCT) -> DayReport:
    """Findings for one day. `session`: the day's (open, close) epochs if it is a trading day, else None;
    `prev_close`: the last close before this day, for the jump check (None: first day seen)."""
    f = _Findings()
    if not candles:
        if session is not None:
            f.add("missing_day", "no candles on a trading day")
        return DayReport(symbol, day, 0, f.issues())
    seen: set[int] = set()
    last_start: int | None = None
    close_before = prev_close
    for c in candles:
        t = c.start
        if t in seen:
            f.add("duplicate", _hm(t))
        elif last_start is not None and t < last_start:
            f.add("out_of_order", f"{_hm(t)} after {_hm(last_start)}")
        seen.add(t)
        last_start = t if last_start is None else max(last_start, t)
        prices = (c.open, c.high, c.low, c.close)
        if any(not math.isfinite(p) or p <= 0 for p in prices):
            f.add("bad_price", f"{_hm(t)} {c.open}/{c.high}/{c.low}/{c.close}")
            continue
        if c.volume < 0:
            f.add("bad_volume", f"{_hm(t)} {c.volume}")
        if c.high < c.low or not (c.low <= c.open <= c.high) or not (c.low <= c.close <= c.high):
            f.add("bad_range", f"{_hm(t)} o{c.open} h{c.high} l{c.low} c{c.close}")
        if close_before is not None and close_before > 0 and abs(c.open / close_before - 1) * 100 > jump_pct:
            f.add("jump", f"{_hm(t)} {close_before} -> {c.open}")
        close_before = c.close
    seconds = candles[0].seconds
    if session is not None and seconds < 86_400:
        _gaps(f, sorted(seen), seconds, session)
    return DayReport(symbol, day, len(candles), f.issues())


def _gaps(f: _Findings, starts: list[int], seconds: int, session: tuple[int, int]) -> None:
    """Missing intervals inside [open, close): between consecutive candles, before the first, after the last."""
    opened, closed = session
    inside = [t for t in starts if opened - seconds < t < closed]
    if not inside:
        f.add("gap", f"{_hm(opened)}-{_hm(closed)} (no candle in the session)", (closed - opened) // seconds)
        return
    if inside[0] - opened >= seconds:
        f.add("gap", f"{_hm(opened)}-{_hm(inside[0])}", (inside[0] - opened) // seconds)
    for a, b in zip(inside, inside[1:], strict=False):
        if b - a > seconds:
            f.add("gap", f"{_hm(a + seconds)}-{_hm(b)}", (b - a) // seconds - 1)
    end = inside[-1] + seconds
    if closed - end >= seconds:
        f.add("gap", f"{_hm(end)}-{_hm(closed)}", (closed - end) // seconds)


def last_close(candles: Sequence[Candle]) -> float | None:
    """The close of the latest candle with a usable price (the next day's jump check compares with it)."""
    best: Candle | None = None
    for c in candles:
        if math.isfinite(c.close) and c.close > 0 and (best is None or c.start >= best.start):
            best = c
    return None if best is None else best.close

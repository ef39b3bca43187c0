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

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from core.clock import to_ist
from history.frames import CandleColumns
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
    """check_columns on a list of candles."""
    seconds = candles[0].seconds if candles else 60
    return check_columns(symbol, day, CandleColumns.of(candles), seconds, session, prev_close, jump_pct)


def check_columns(symbol: str, day: date, cols: CandleColumns, seconds: int, session: tuple[int, int] | None,
                  prev_close: float | None, jump_pct: float = JUMP_PCT) -> DayReport:
    """Findings for one day, in whole-column operations (a clean day costs no Python per candle).
    `session`: the day's (open, close) epochs if it is a trading day, else None; `prev_close`: the last close
    before this day, for the jump check (None: first day seen). A candle with a bad price is reported as that
    only, and the jump check skips it (the next candle is compared with the last good close)."""
    return check_with_close(symbol, day, cols, seconds, session, prev_close, jump_pct)[0]


def check_with_close(symbol: str, day: date, cols: CandleColumns, seconds: int, session: tuple[int, int] | None,
                     prev_close: float | None, jump_pct: float = JUMP_PCT) -> tuple[DayReport, float | None]:
    """check_columns' report and the day's last_close, for a reader going day by day: a day _plain accepts has
    it at its end, without last_close's search."""
    if len(cols) and _plain(cols):
        return _check_plain(symbol, day, cols, seconds, session, prev_close, jump_pct), float(cols.close[-1])
    return _check_all(symbol, day, cols, seconds, session, prev_close, jump_pct), last_close(cols)


def _plain(cols: CandleColumns) -> bool:
    """True when the day can have no finding but jumps and gaps: starts strictly rising (no duplicate, none out
    of order), every price finite and above zero, no volume below zero, open and close inside [low, high]. A
    handful of whole-column tests, where the full check (_check_all) sorts and tests each kind apart. A NaN
    fails them all: it fails every comparison, and min, max, minimum and maximum carry it."""
    t, o, h, lo, c = cols.start, cols.open, cols.high, cols.low, cols.close
    return bool((t[1:] > t[:-1]).all() and lo.min() > 0 and h.max() < np.inf and cols.volume.min() >= 0
                and (lo <= np.minimum(o, c)).all() and (np.maximum(o, c) <= h).all())


def _check_plain(symbol: str, day: date, cols: CandleColumns, seconds: int, session: tuple[int, int] | None,
                 prev_close: float | None, jump_pct: float) -> DayReport:
    """_check_all's answer on a day _plain accepts: every candle is good and the starts are sorted and unique,
    so only the jump and gap checks can find anything, and they run on the columns as they are."""
    f = _Findings()
    t, o, c = cols.start, cols.open, cols.close
    # any jump at all: the open against the close before is furthest from 1 at the ratios' max or min (the
    # rounding of o / c - 1 and of x * 100 never reverses an order), so this is the test below, exactly
    jumps = prev_close is not None and prev_close > 0 and abs(float(o[0]) / prev_close - 1) * 100 > jump_pct
    if not jumps and len(o) > 1:
        r = o[1:] / c[:-1]
        jumps = max(float(r.max()) - 1, 1 - float(r.min())) * 100 > jump_pct
    if jumps:
        before = np.concatenate(([np.nan if prev_close is None else prev_close], c[:-1]))
        with np.errstate(invalid="ignore", divide="ignore"):
            jumped = (before > 0) & (np.abs(o / before - 1) * 100 > jump_pct)
        for k in np.flatnonzero(jumped).tolist():
            f.add("jump", f"{_hm(int(t[k]))} {before[k]} -> {o[k]}")
    if session is not None and seconds < 86_400:
        _gaps(f, t, seconds, session)
    return DayReport(symbol, day, len(cols), f.issues())


def _check_all(symbol: str, day: date, cols: CandleColumns, seconds: int, session: tuple[int, int] | None,
               prev_close: float | None, jump_pct: float) -> DayReport:
    """Every check, each kind tested apart (any day; check_columns takes it for a day _plain refuses)."""
    f = _Findings()
    n = len(cols)
    if n == 0:
        if session is not None:
            f.add("missing_day", "no candles on a trading day")
        return DayReport(symbol, day, 0, f.issues())
    t = cols.start
    o, h, lo, c = cols.open, cols.high, cols.low, cols.close
    order = np.argsort(t, kind="stable")
    dup = np.zeros(n, dtype=bool)
    dup[order[1:][t[order][1:] == t[order][:-1]]] = True          # a start seen earlier in the list
    ooo = np.zeros(n, dtype=bool)
    ooo[1:] = (t[1:] < np.maximum.accumulate(t)[:-1]) & ~dup[1:]
    for i in np.flatnonzero(dup).tolist():
        f.add("duplicate", _hm(int(t[i])))
    for i in np.flatnonzero(ooo).tolist():
        f.add("out_of_order", f"{_hm(int(t[i]))} after {_hm(int(np.max(t[:i])))}")
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(o) & np.isfinite(h) & np.isfinite(lo) & np.isfinite(c)) | (o <= 0) | (h <= 0) \
            | (lo <= 0) | (c <= 0)
    for i in np.flatnonzero(bad).tolist():
        f.add("bad_price", f"{_hm(int(t[i]))} {o[i]}/{h[i]}/{lo[i]}/{c[i]}")
    good = ~bad
    for i in np.flatnonzero(good & (cols.volume < 0)).tolist():
        f.add("bad_volume", f"{_hm(int(t[i]))} {cols.volume[i]}")
    rng = good & ((h < lo) | (o < lo) | (o > h) | (c < lo) | (c > h))
    for i in np.flatnonzero(rng).tolist():
        f.add("bad_range", f"{_hm(int(t[i]))} o{o[i]} h{h[i]} l{lo[i]} c{c[i]}")
    g = np.flatnonzero(good)
    if g.shape[0]:
        before = np.concatenate(([np.nan if prev_close is None else prev_close], c[g][:-1]))
        with np.errstate(invalid="ignore", divide="ignore"):
            jumped = (before > 0) & (np.abs(o[g] / before - 1) * 100 > jump_pct)
        for k in np.flatnonzero(jumped).tolist():
            f.add("jump", f"{_hm(int(t[g[k]]))} {before[k]} -> {o[g[k]]}")
    if session is not None and seconds < 86_400:
        _gaps(f, np.unique(t), seconds, session)
    return DayReport(symbol, day, n, f.issues())


def _gaps(f: _Findings, starts: np.ndarray, seconds: int, session: tuple[int, int]) -> None:
    """Missing intervals inside [open, close): between consecutive candles, before the first, after the last.
    `starts`: the day's candle starts, sorted and unique; tested as one array (a clean day: no Python per
    candle)."""
    opened, closed = session
    n = starts.shape[0]
    if n and int(starts[0]) > opened - seconds and int(starts[-1]) < closed:
        inside = starts  # every candle is inside (a day's usual case): no mask
    else:
        inside = starts[(starts > opened - seconds) & (starts < closed)]
    if not inside.shape[0]:
        f.add("gap", f"{_hm(opened)}-{_hm(closed)} (no candle in the session)", (closed - opened) // seconds)
        return
    first, last = int(inside[0]), int(inside[-1])
    if first - opened >= seconds:
        f.add("gap", f"{_hm(opened)}-{_hm(first)}", (first - opened) // seconds)
    steps = np.diff(inside)
    if steps.shape[0] and int(steps.max()) > seconds:
        for k in np.flatnonzero(steps > seconds).tolist():
            a, b = int(inside[k]), int(inside[k + 1])
            f.add("gap", f"{_hm(a + seconds)}-{_hm(b)}", (b - a) // seconds - 1)
    end = last + seconds
    if closed - end >= seconds:
        f.add("gap", f"{_hm(end)}-{_hm(closed)}", (closed - end) // seconds)


def last_close(cols: CandleColumns) -> float | None:
    """The close of the latest candle with a usable price (the next day's jump check compares with it)."""
    with np.errstate(invalid="ignore"):
        ok = np.flatnonzero(np.isfinite(cols.close) & (cols.close > 0))
    if ok.shape[0] == 0:
        return None
    t = cols.start[ok]
    return float(cols.close[ok[np.flatnonzero(t == t.max())[-1]]])

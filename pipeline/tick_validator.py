"""Every tick is judged once, where it enters the daemon (the feed process), before it can move the feed's
clock, reach a strategy or reach the paper broker. Live (Fyers) and replay ticks go through the same checks.

Rejected ticks are counted by reason (REASONS); the first few of each reason are logged with the tick.

The feed clock is the latest timestamp of the ticks accepted so far, starting from `start` (the replay's
start, or the session's open), and never behind the wall clock when `wall` is given (live). A tick stamped
more than `max_ahead_s` ahead of it is quarantined: it never moves the clock, and is dropped and counted
(unless it proves a gap, below). One bad
stamp (a 15:20 tick at 10:00) therefore cannot end the day early. A real gap in the data (a replayed feed
that reconnects after a drop, a recording that resumes after a pause) looks the same at first, so quarantined
ticks are held, at most `gap_confirm_ticks` - 1 of them: when `gap_confirm_ticks` of them in a row, from at
least two symbols (one if only one is configured), agree within `max_ahead_s` of the first, the data has a gap,
the clock jumps and they all go on, in order. A held tick is counted (and dropped) as soon as a tick within the
clock comes, a quarantined tick disagrees with it, or the feed ends.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from core.types import TickColumns

log = logging.getLogger(__name__)

NOT_A_DICT = "not a dict"
MISSING_SYMBOL = "missing symbol"
UNKNOWN_SYMBOL = "unknown symbol"
NON_NUMERIC_PRICE = "non-numeric price"
BAD_PRICE = "zero, negative or non-finite price"
PRICE_OUT_OF_RANGE = "price out of range"
BAD_TIMESTAMP = "missing or non-numeric timestamp"
BACKWARDS = "timestamp going backwards"
AHEAD = "ahead of the feed clock"
DUPLICATE = "duplicate"
REASONS = (NOT_A_DICT, MISSING_SYMBOL, UNKNOWN_SYMBOL, NON_NUMERIC_PRICE, BAD_PRICE, PRICE_OUT_OF_RANGE,
           BAD_TIMESTAMP, BACKWARDS, AHEAD, DUPLICATE)

LOGGED_PER_REASON = 5
_NUM = (int, float)


class TickValidator:
    """Pure: state is the feed clock and each symbol's last accepted tick; no I/O except a few log lines.

    `symbols`: the Fyers names the daemon trades. `max_price_move_pct`: a price further than this from the
    tick's own prev_close_price (the reference NSE's price bands use; at most 20% for equities) is out of
    range; without a usable prev_close, the symbol's last accepted price is the reference; the first tick of
    a symbol without either is accepted on the other checks.
    """

    def __init__(self, symbols: set[str] | frozenset[str], *, max_ahead_s: float, gap_confirm_ticks: int,
                 max_price_move_pct: float, start: float | None = None,
                 wall: Callable[[], float] | None = None):
        self.symbols = frozenset(symbols)
        self.max_ahead_s = max_ahead_s
        self.gap_confirm = gap_confirm_ticks
        self.gap_symbols = min(2, len(self.symbols)) or 1
        self.max_move = max_price_move_pct / 100.0
        self.clock = float(start) if start is not None else None
        self.wall = wall
        # each symbol's last accepted tick: (its time, its price, the tick), one lookup per tick
        self.last: dict[str, tuple[float, float, dict]] = {}
        self.counts: dict[str, int] = {}
        self.accepted = 0
        # quarantined ticks in a row, held (at most gap_confirm_ticks - 1) until they prove a gap or are dropped
        self._held: list[tuple[dict, str, float]] = []
        self._ts = 0.0              # the timestamp _judge read
        self._sym = ""              # the symbol _judge read (when it got that far)
        self._verdict: str | None = None  # the last tick's verdict, for check()

    @property
    def rejected(self) -> int:
        return sum(self.counts.values())

    def admit_plain(self, tick: dict) -> bool:
        """True if this dict passes every check with nothing left to decide: a known symbol, a price and a time
        that are plain positive numbers, the price within its prev_close band, the time not before the symbol's
        last tick nor the tick a duplicate of it, not ahead of the clock, nothing in quarantine. It is then
        accepted as admit() would have. False: nothing has changed, and admit() must judge it. Why: nearly
        every tick is such a dict, and this judges it without admit()'s list, verdict and second look-ups."""
        sym = tick.get("symbol")
        ltp = tick.get("ltp")
        ts = tick.get("exch_feed_time")
        ref = tick.get("prev_close_price")
        if (sym not in self.symbols or type(ltp) not in _NUM or type(ts) not in _NUM or type(ref) not in _NUM
                or self._held):
            return False
        if not (0 < ltp < math.inf and 0 < ts < math.inf and 0 < ref < math.inf
                and abs(ltp - ref) <= ref * self.max_move):
            return False
        clock = self.clock if self.wall is None else self._clock()
        if clock is not None and ts > clock + self.max_ahead_s:
            return False
        last = self.last.get(sym)
        if last is not None and (ts < last[0] or (ts == last[0] and tick == last[2])):  # admit() counts it
            return False
        self._verdict = None
        self.accepted += 1
        self.last[sym] = (ts, ltp, tick)
        if self.clock is None or ts > self.clock:
            self.clock = ts
        return True

    def admit_columns(self, cols: TickColumns, lo: int, hi: int) -> int:
        """admit_plain for rows lo..hi-1 of `cols` at once: how many rows from lo it accepts in a row (each as
        admit_plain would, state and counts alike); the row after them, if any, is for admit() to judge as a
        dict (tick(i)). Why: the synthetic day comes as columns, and judging them with numpy costs a small
        part of a dict per tick. Live (a wall clock) nothing is accepted here."""
        if self._held or self.wall is not None or lo >= hi:
            return 0
        codes = cols.symbol[lo:hi]
        ltp = cols.values["ltp"][lo:hi]
        ts = cols.values["exch_feed_time"][lo:hi]
        ref = cols.values["prev_close_price"][lo:hi]
        known = np.fromiter((n in self.symbols for n in cols.names), dtype=bool, count=len(cols.names))
        with np.errstate(invalid="ignore", over="ignore"):
            ok = known[codes] & (ltp > 0) & (ltp < math.inf) & (ts > 0) & (ts < math.inf) & (ref > 0) \
                & (ref < math.inf) & (np.abs(ltp - ref) <= ref * self.max_move)
            # the clock each row meets: the latest time accepted before it (every earlier row of the run is)
            run_max = np.maximum.accumulate(ts)
            before = np.empty(len(ts), dtype=np.float64)
            before[1:] = run_max[:-1]
            if self.clock is None:
                before[0] = math.inf  # no clock yet: the first row is not judged against one
            else:
                before[0] = self.clock
                np.maximum(before, self.clock, out=before)
            ok &= ~(ts > before + self.max_ahead_s)
        n = len(ts)
        # each row's previous row of its symbol in this run: neither before its time nor a duplicate of it
        order = np.argsort(codes.astype(np.uint16) if len(cols.names) < 1 << 16 else codes, kind="stable")  # radix
        same = codes[order[1:]] == codes[order[:-1]]
        prev = np.full(n, -1, dtype=np.int64)
        prev[order[1:][same]] = order[:-1][same]
        has = prev >= 0
        pv = np.where(has, prev, 0)
        ok &= ~(has & (ts < ts[pv]))
        tie = np.nonzero(has & (ts == ts[pv]))[0]
        if len(tie):
            dup = np.ones(len(tie), dtype=bool)
            for col in cols.values.values():
                c = col[lo:hi]
                dup &= c[tie] == c[pv[tie]]
            ok[tie[dup]] = False
        firsts = order[np.concatenate(([True], ~same))] if n else order
        for i in firsts.tolist():  # a symbol's first row here meets the last tick accepted before
            last = self.last.get(cols.names[int(codes[i])])
            if last is not None and ok[i] and (ts[i] < last[0] or (ts[i] == last[0]
                                                                 and cols.tick(lo + i) == last[2])):
                ok[i] = False
        bad = np.flatnonzero(~ok)
        k = int(bad[0]) if len(bad) else n
        if not k:
            return 0
        self._verdict = None
        self.accepted += k
        top = int(run_max[k - 1])
        if self.clock is None or top > self.clock:
            self.clock = top
        run = codes[:k]
        rev_first = np.unique(run[::-1], return_index=True)[1]
        for j in (k - 1 - rev_first).tolist():  # each symbol's last accepted row, remembered as admit_plain does
            t = cols.tick(lo + j)
            self.last[t["symbol"]] = (t["exch_feed_time"], t["ltp"], t)
        return k

    def admit(self, tick: Any) -> list[Any]:
        """The ticks to route now, in feed order: [] (refused, or held in quarantine), [tick], or the held
        ticks of a gap this tick confirms, then the tick."""
        reason = self._verdict = self._judge(tick)
        if reason is None:
            if self._held:
                self._drop_held()
            ts = self._ts  # _accept, inlined: this is every good tick's path
            self.accepted += 1
            self.last[self._sym] = (ts, tick["ltp"], tick)
            if self.clock is None or ts > self.clock:
                self.clock = ts
            return [tick]
        if reason != AHEAD:
            self._count(reason, tick)
            return []
        sym, ts = tick["symbol"], self._ts
        held = self._held
        if held and abs(ts - held[0][2]) > self.max_ahead_s:
            self._drop_held()
        held.append((tick, sym, ts))
        if len(held) < self.gap_confirm or len({s for _, s, _ in held}) < self.gap_symbols:
            if len(held) >= self.gap_confirm:  # enough ticks, but from one symbol: the oldest is dropped
                t, _, _ = held.pop(0)
                self._count(AHEAD, t)
            return []
        log.warning("feed clock jumps %.0fs ahead: %d ticks in a row agree (a gap in the data, not bad stamps)",
                    held[0][2] - (self._clock() or held[0][2]), len(held))
        out = []
        for t, s, ts in held:
            last = self.last.get(s)
            if last is not None and ts < last[0]:
                self._count(BACKWARDS, t)
            elif last is not None and t == last[2]:
                self._count(DUPLICATE, t)
            else:
                self._accept(t, s, ts)
                out.append(t)
        held.clear()
        return out

    def check(self, tick: Any) -> str | None:
        """admit() for one tick: None if it went on at once, AHEAD if quarantined (counted once it is dropped),
        else the reason it was counted and dropped."""
        out = self.admit(tick)
        return None if any(t is tick for t in out) else self._verdict

    def finish(self) -> None:
        """The feed has ended: ticks still in quarantine are counted."""
        self._drop_held()

    def _drop_held(self) -> None:
        for t, _, _ in self._held:
            self._count(AHEAD, t)
        self._held.clear()

    def _count(self, reason: str, tick: Any) -> None:
        n = self.counts.get(reason, 0) + 1
        self.counts[reason] = n
        if n <= LOGGED_PER_REASON:
            log.warning("tick rejected (%s): %.200r%s", reason, tick,
                        " (further ones of this kind are counted, not logged)" if n == LOGGED_PER_REASON else "")

    def _accept(self, tick: dict, sym: str, ts: float) -> None:
        """`sym` and `ts` as _judge read them from the tick."""
        self.accepted += 1
        self.last[sym] = (ts, tick["ltp"], tick)
        if self.clock is None or ts > self.clock:
            self.clock = ts

    def _judge(self, tick: Any) -> str | None:
        """The first reason this tick cannot go on as it is, or None."""
        if type(tick) is not dict:
            return NOT_A_DICT
        sym = tick.get("symbol")
        if sym is None or sym == "":
            return MISSING_SYMBOL
        if sym not in self.symbols:
            return UNKNOWN_SYMBOL
        self._sym = sym
        ltp = tick.get("ltp")
        if type(ltp) not in _NUM:
            return NON_NUMERIC_PRICE
        if not 0 < ltp < math.inf:  # also false for NaN
            return BAD_PRICE
        last = self.last.get(sym)
        ref = tick.get("prev_close_price")
        if type(ref) not in _NUM or not 0 < ref < math.inf:
            ref = None if last is None else last[1]
        if ref is not None and abs(ltp - ref) > ref * self.max_move:
            return PRICE_OUT_OF_RANGE
        ts = tick.get("exch_feed_time")  # as the workers read it: else last_traded_time
        if ts is None:
            ts = tick.get("last_traded_time")
        if type(ts) not in _NUM or not 0 < ts < math.inf:
            return BAD_TIMESTAMP
        if last is not None and ts < last[0]:
            return BACKWARDS
        self._ts = ts
        clock = self.clock if self.wall is None else self._clock()
        if clock is not None and ts > clock + self.max_ahead_s:
            return AHEAD
        # equal dicts have equal times: only a tick of the last one's time can be its duplicate
        if last is not None and ts == last[0] and tick == last[2]:
            return DUPLICATE
        return None

    def _clock(self) -> float | None:
        if self.wall is None:
            return self.clock
        now = self.wall()
        return now if self.clock is None or now > self.clock else self.clock

"""Opening range breakout: trade the first break of the high/low the market set in its first minutes.

Rules (all times IST, compared as epoch ints computed once per day):
- The range is the high/low of `ltp` over [session.open, session.open + range_minutes). It is only
  trusted if this strategy saw the day from (nearly) the start: the first tick of the day must come no
  later than `range_start_grace_s` after the open, otherwise a worker that started late would trade a
  partial, too-narrow range, so the day is skipped.
- From the range end until session.entry_cutoff (and exit_at, whichever is earlier): a tick above the
  range high enters long with the stop at the range low; below the range low enters short with the stop
  at the range high. Take-profit price = entry +/- take_profit_r x R, R = |entry - stop|.
- Once a breakout direction is used, it re-arms only after the price comes back through that side of
  the range, so a stop-out or a rejected entry does not fire again on the very next tick.
  At most `max_entries_per_day` entries are emitted per day (a rejected entry still counts).
- In a position: first tick at/after exit_at exits ("end of day"); a tick at/through the stop exits;
  the first tick at/through the take-profit price closes `take_profit_fraction` of the position.
  With `breakeven_after_take_profit` (default) the stop then moves to the entry price: the rest of the
  trade can no longer lose, at the cost of being shaken out by a retest of the breakout level.
- A new IST date resets the range and the counters. A position still believed open when the date
  changes (no tick came between exit_at and midnight) is exited on the first tick of the new day.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from core.enums import PositionSide, SignalType
from core.types import Signal, Tick
from strategies.base import (
    CandleArrays,
    HeldPosition,
    SessionHours,
    Strategy,
    leading,
    reach_after_first,
    tick_time_and_price,
)
from strategies.candles import TradingDay, hhmm_problem, parse_hhmm, side_from_state

log = logging.getLogger(__name__)

_LONG, _SHORT = PositionSide.LONG, PositionSide.SHORT
_ENTRY, _EXIT, _TP = SignalType.ENTRY, SignalType.EXIT, SignalType.TAKE_PROFIT
_STATE_VERSION = 1


@dataclass(frozen=True)
class OrbParams:
    range_minutes: int = 15
    take_profit_r: float = 1.0
    take_profit_fraction: float = 0.5
    exit_at: str = "15:05"
    max_entries_per_day: int = 1
    breakeven_after_take_profit: bool = True
    range_start_grace_s: int = 60


class OpeningRangeBreakout(Strategy):
    kind = "opening_range_breakout"
    Params = OrbParams

    def __init__(self, symbol: str, name: str, params: Mapping[str, Any], session: SessionHours):
        problems = self.validate_params(params)
        if problems:
            raise ValueError("; ".join(problems))
        super().__init__(symbol, name, params, session)
        p = self.params
        self._exit_time = parse_hhmm(p.exit_at)
        self._range_seconds = p.range_minutes * 60
        self._tp_fraction = float(p.take_profit_fraction)
        self._day = TradingDay()
        # per-day epochs (derived from the day; not part of the saved state)
        self._open = self._range_end = self._no_entry_after = self._exit_ts = 0
        self._reset_day_state()

    # ------------------------------------------------------------------ parameters
    @classmethod
    def check_params(cls, p: OrbParams) -> list[str]:
        out = hhmm_problem("exit_at", p.exit_at)
        if not 1 <= p.range_minutes <= 375:
            out.append(f"range_minutes: {p.range_minutes!r} is not allowed -- must be from 1 to 375 "
                       "(the length of the NSE day)")
        if not p.take_profit_r > 0:
            out.append(f"take_profit_r: {p.take_profit_r!r} is not allowed -- must be greater than 0")
        if not 0 < p.take_profit_fraction <= 1:
            out.append(f"take_profit_fraction: {p.take_profit_fraction!r} is not allowed -- "
                       "must be greater than 0 and at most 1")
        if p.max_entries_per_day < 1:
            out.append(f"max_entries_per_day: {p.max_entries_per_day!r} is not allowed -- must be at least 1")
        if p.range_start_grace_s < 0:
            out.append(f"range_start_grace_s: {p.range_start_grace_s!r} is not allowed -- must be at least 0")
        return out

    # ------------------------------------------------------------------ state
    def _reset_day_state(self) -> None:
        self._first_ts: int | None = None      # first tick of the day
        self._range_high: float | None = None
        self._range_low: float | None = None
        self._entries = 0
        self._armed_long = True
        self._armed_short = True
        self._clear_position()

    def _clear_position(self) -> None:
        self.position = None
        self._entry_price = 0.0
        self._entry_time = 0
        self._stop = 0.0
        self._tp_price = 0.0
        self._tp_done = False

    def _set_day_epochs(self) -> None:
        day, s = self._day, self.session
        self._open = day.at(s.open)
        self._range_end = self._open + self._range_seconds
        self._exit_ts = day.at(self._exit_time)
        self._no_entry_after = min(day.at(s.entry_cutoff), self._exit_ts)

    def _new_day(self, t: int, price: float) -> Signal | None:
        stale = None
        if self.position is not None:
            stale = self.signal(t, price, _EXIT, self.position,
                                note="end of day: no tick came between exit_at and the end of the day")
        self._day.move_to(t)
        self._set_day_epochs()
        self._reset_day_state()
        self._first_ts = t
        return stale

    def resume_position(self, held: HeldPosition, now: int) -> None:
        """Hold `held` as if this strategy had entered it: the entry signal's stop and take-profit (a position
        whose take-profit already closed part of it has it done, and its stop at break-even if configured so),
        exit_at. It counts as the day's entry and uses its direction; with no range seen from the open (a cold
        restart) no further entry is taken, as for any late start."""
        if self._day.date is None or not self._day.start <= now < self._day.end:
            self._day.move_to(now)
            self._set_day_epochs()
            self._reset_day_state()
        self._clear_position()
        long = held.side is _LONG
        stop = held.stop_loss if held.stop_loss is not None else 0.0 if long else math.inf
        tp = held.take_profit_price
        self._tp_done = tp is None or held.remaining < held.quantity
        if self._tp_done and held.remaining < held.quantity and self.params.breakeven_after_take_profit:
            stop = held.entry_price
        self.position = held.side
        self._entry_price, self._entry_time = held.entry_price, held.entry_time
        self._stop, self._tp_price = float(stop), float(tp or 0.0)
        self._entries = max(self._entries, 1)
        if long:
            self._armed_long = False
        else:
            self._armed_short = False

    def reset_position_tracking(self) -> None:
        """Flat again (entry failed or force-exited): no exits for the old position; the breakout direction
        stays used until the price re-arms it."""
        self._clear_position()

    def discard_signal(self) -> None:
        """A discarded entry was never a position: believe flat. Discarded exits and take-profits keep their
        effect (the TradeManager retries incomplete exits; re-emitting them per tick would flood)."""
        sig = self.pending
        super().discard_signal()
        if (sig is not None and sig.type is _ENTRY and self.position is not None
                and sig.time == self._entry_time):
            self._clear_position()

    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "version": _STATE_VERSION, "params": asdict(self.params),
            "day": self._day.iso(), "first_ts": self._first_ts,
            "range_high": self._range_high, "range_low": self._range_low,
            "entries": self._entries, "armed_long": self._armed_long, "armed_short": self._armed_short,
            "position": None if self.position is None else self.position.value,
            "entry_price": self._entry_price, "entry_time": self._entry_time, "stop": self._stop,
            "tp_price": self._tp_price, "tp_done": self._tp_done,
            "pending": None if self.pending is None else self.pending.to_state(),
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Rebuild from state_dict(); refuses state saved by another kind, version or parameter set."""
        if state.get("kind") != self.kind or state.get("version") != _STATE_VERSION:
            raise ValueError(f"state: kind {state.get('kind')!r} version {state.get('version')!r} is not allowed "
                             f"-- expected {self.kind!r} version {_STATE_VERSION}")
        if state.get("params") != asdict(self.params):
            raise ValueError("state: saved with different params -- start this strategy without saved state")
        self._day.restore(state["day"])
        if self._day.date is not None:
            self._set_day_epochs()
        self._first_ts = state["first_ts"]
        self._range_high, self._range_low = state["range_high"], state["range_low"]
        self._entries = int(state["entries"])
        self._armed_long, self._armed_short = bool(state["armed_long"]), bool(state["armed_short"])
        self.position = side_from_state(state["position"])
        self._entry_price, self._entry_time = float(state["entry_price"]), int(state["entry_time"])
        self._stop, self._tp_price = float(state["stop"]), float(state["tp_price"])
        self._tp_done = bool(state["tp_done"])
        self.pending = None if state["pending"] is None else Signal.from_state(state["pending"])

    # ------------------------------------------------------------------ ticks
    def quiet_at(self, t: int) -> bool:
        """Flat, within the day, the range over, both sides armed and no entry possible any more (cut-off passed,
        entries used up, or no range): _flat below then changes nothing and enters nothing, whatever the price
        (a class that overrides on_tick or run proves nothing here)."""
        cls = type(self)
        return (self.position is None and self._day.start <= t < self._day.end and t >= self._range_end
                and self._armed_long and self._armed_short
                and (t >= self._no_entry_after or self._entries >= self.params.max_entries_per_day
                     or self._range_high is None)
                and cls.on_tick is OpeningRangeBreakout.on_tick and cls.run is Strategy.run)

    def absorb_quiet(self, run: CandleArrays, seconds: int) -> int:
        """Flat: the candles after run[0] that only widen the forming range (_absorb_range), then those whose
        every price stays within the range (or that come when no entry is possible any more: cut-off passed,
        entries used up, no range) enter nothing; the first one that reaches past the range is run tick by
        tick. What they change is only the re-arming of a breakout side used earlier today (_flat: a price back
        at or inside that side's edge), set here from their extremes: so the rest of a day whose entry is spent
        (a side disarmed) is folded too."""
        cls = type(self)
        if (self.position is not None or cls.on_tick is not OpeningRangeBreakout.on_tick
                or cls.run is not Strategy.run or cls._flat is not OpeningRangeBreakout._flat
                or cls._enter is not OpeningRangeBreakout._enter):
            return 0
        start = run.start
        if len(start) < 2:
            return 0
        a = 0
        if start[1] + seconds <= self._range_end:
            if not (self._armed_long and self._armed_short):
                return 0  # a side used before the range ended (a resumed position): run as it comes
            a = self._absorb_range(run, seconds)
            if a == 0 or a + 1 >= len(start):
                return a
        # the candles after run[a], the range (widened by any taken above) now being final
        return a + self._absorb_after_range(run, a, seconds)

    def _absorb_after_range(self, run: CandleArrays, a: int, seconds: int) -> int:
        """absorb_quiet's part after the range: how many candles after run[a] enter nothing, re-arming a used
        side from their extremes (what _flat does with their ticks)."""
        tail, day = run.start[a + 1:], self._day
        ok = (tail >= self._range_end) & (tail >= day.start) & (tail + seconds <= day.end)
        hi, lo = self._range_high, self._range_low
        if hi is None or lo is None:
            return leading(ok)
        top, bottom = reach_after_first(run, a)
        if self._entries < self.params.max_entries_per_day:
            ok &= (tail >= self._no_entry_after) | ((top <= hi) & (bottom >= lo))
        n = leading(ok)
        if n:
            # _flat re-arms a side at any price at or inside its edge, and disarms none without an entry
            if not self._armed_long and float(bottom[:n].min()) <= hi:
                self._armed_long = True
            if not self._armed_short and float(top[:n].max()) >= lo:
                self._armed_short = True
        return n

    def held_span(self, run: CandleArrays, seconds: int) -> int:
        """In a position: the candles after run[0] whose every price stays strictly inside the stop and (until
        it is done) the take-profit price, before exit_at, change nothing and signal nothing (_manage); the
        first one that reaches either is run tick by tick. Nothing to take: this strategy has no candles."""
        cls = type(self)
        side = self.position
        if (side is None or cls.on_tick is not OpeningRangeBreakout.on_tick or cls.run is not Strategy.run
                or cls._manage is not OpeningRangeBreakout._manage):
            return 0
        start = run.start
        if len(start) < 2:
            return 0
        tail, day = start[1:], self._day
        top, bottom = reach_after_first(run)
        long = side is _LONG
        ok = (tail >= day.start) & (tail + seconds <= day.end) & (tail + seconds <= self._exit_ts)
        ok &= (bottom > self._stop) if long else (top < self._stop)
        if not self._tp_done:
            ok &= (top < self._tp_price) if long else (bottom > self._tp_price)
        return leading(ok)

    def _absorb_range(self, run: CandleArrays, seconds: int) -> int:
        """The candles after run[0] whose every tick comes from the open to before the range's end only widen the
        range to their extremes (_flat, whatever the order of their ticks): taken in bulk, up to the first that
        does not."""
        tail, day = run.start[1:], self._day
        ok = ((tail >= self._open) & (tail >= day.start) & (tail + seconds <= self._range_end)
              & (tail + seconds <= day.end))
        n = leading(ok)
        if n == 0:
            return 0
        o, h, lw, c = run.open[1:n + 1], run.high[1:n + 1], run.low[1:n + 1], run.close[1:n + 1]
        top = float(max(o.max(), h.max(), lw.max(), c.max()))
        bottom = float(min(o.min(), h.min(), lw.min(), c.min()))
        hi, lo = self._range_high, self._range_low
        self._range_high = top if hi is None else max(hi, top)
        self._range_low = bottom if lo is None else min(lo, bottom)
        return n

    def on_tick(self, tick: Tick) -> Signal | None:
        tp = tick_time_and_price(tick)
        if tp is None:
            return None
        t, price = tp
        day = self._day
        if not day.start <= t < day.end:
            if t < day.start:
                return None  # a tick from an earlier day, out of order
            stale = self._new_day(t, price)
            self._flat(t, price)  # feeds the fresh range; cannot enter, the range is empty until now
            return stale
        if self.position is not None:
            return self._manage(t, price)
        return self._flat(t, price)

    def _flat(self, t: int, price: float) -> Signal | None:
        if t < self._range_end:
            if t >= self._open:
                if self._range_high is None:
                    self._range_high = self._range_low = price
                elif price > self._range_high:
                    self._range_high = price
                elif price < self._range_low:
                    self._range_low = price
            return None

        hi, lo = self._range_high, self._range_low
        if hi is None:
            return None
        if price > hi:
            if self._armed_long and t < self._no_entry_after:
                return self._enter(t, price, _LONG)
        else:
            self._armed_long = True
        if price < lo:
            if self._armed_short and t < self._no_entry_after:
                return self._enter(t, price, _SHORT)
        else:
            self._armed_short = True
        return None

    def _enter(self, t: int, price: float, side: PositionSide) -> Signal | None:
        p = self.params
        if self._entries >= p.max_entries_per_day:
            return None
        if self._first_ts is None or self._first_ts > self._open + p.range_start_grace_s:
            return None  # saw only part of the range
        hi, lo = self._range_high, self._range_low
        if side is _LONG:
            stop = lo
            tp = price + p.take_profit_r * (price - stop)
            self._armed_long = False
            note = f"breakout above the opening range high {hi} (range {lo}-{hi})"
        else:
            stop = hi
            tp = price - p.take_profit_r * (stop - price)
            self._armed_short = False
            note = f"breakdown below the opening range low {lo} (range {lo}-{hi})"
        self._entries += 1
        self.position = side
        self._entry_price, self._entry_time = price, t
        self._stop, self._tp_price, self._tp_done = stop, tp, False
        log.debug("%s %s entry %s at %s stop %s tp %s", self.name, self.symbol, side, price, stop, tp)
        return self.signal(t, price, _ENTRY, side, stop_loss=stop, take_profit_price=tp, note=note,
                           extra={"range_high": hi, "range_low": lo})

    def _manage(self, t: int, price: float) -> Signal | None:
        side = self.position
        if t >= self._exit_ts:
            self._clear_position()
            return self.signal(t, price, _EXIT, side, note="end of day")
        long = side is _LONG
        stop = self._stop
        if (price <= stop) if long else (price >= stop):
            how = "break-even stop after take-profit" if self._tp_done and stop == self._entry_price else "stop"
            self._clear_position()
            return self.signal(t, price, _EXIT, side, stop_loss=stop, note=f"{how} hit at {price} (stop {stop})")
        if not self._tp_done and ((price >= self._tp_price) if long else (price <= self._tp_price)):
            frac = self._tp_fraction
            tp = self._tp_price
            if frac >= 1.0:
                self._clear_position()
                return self.signal(t, price, _TP, side, take_profit_price=tp, close_fraction=1.0,
                                   note=f"take-profit {tp} reached: closing all")
            self._tp_done = True
            if self.params.breakeven_after_take_profit:
                self._stop = self._entry_price
            return self.signal(t, price, _TP, side, stop_loss=self._stop, take_profit_price=tp,
                               close_fraction=frac,
                               note=f"take-profit {tp} reached: closing {frac:g} of the position")
        return None


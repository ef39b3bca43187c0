"""What the candle-driven indicator strategies (rsi, momentum, rules) share: the day, the ATR stop, optional ATR
target, and acting on a candle's decision with the tick that closed it.

Rules (times IST, compared as epoch ints computed once per day), as the MA crossover's:
- Indicators see only candles that start within today's session [session.open, session.close) and are
  reset at each new IST date (the pre-open auction would otherwise dominate them), so a day met in the tick
  stream warms up afresh. At start, warm_up() feeds them history instead (pipeline/warmup.py): the last
  `warmup_candles` session candles of earlier days, then the day's own up to the restart, so they are ready
  at the open (the overnight gap then counts in the first true range, as it does on a daily chart).
- A subclass reads each such candle and may want an entry (long or short, with a note) and/or an exit of
  the position held. Both are acted on by the tick that closed the candle (the worker calls on_candle just
  before run(tick)), so a signal carries that tick's time and price. An unused entry lapses when the next
  candle closes; a wanted exit stays until a tick acts on it or the position is gone.
- Entry: stop = candle close -/+ atr_multiple x ATR (long/short), fixed for the trade; with
  take_profit_atr > 0 a target = close +/- take_profit_atr x ATR (entry_levels; the rules kind sets them its
  own way). No entry before the ATR is ready, none if the tick is already through the stop, none before
  session.open or at/after session.entry_cutoff / exit_at.
- In a position: the first tick at/after exit_at exits ("end of day"); a tick at/through the stop exits; a
  tick at/through the target exits; a wanted exit exits. An exit and an entry wanted by the same candle:
  the tick exits and the next one may enter.
- The backtest's bulk fold (absorb_quiet, held_span, take_held): this class bounds the stretch (the day, the
  session, the stop, target and exit_at) and a subclass proves its own rule over it by writing fold_read (array
  tests over its indicators' values, computed ahead on copies by strategies/candle_fold.py); one that does not
  write it folds nothing.
"""
from __future__ import annotations

import logging
import math
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any, ClassVar

import numpy as np

from core.enums import PositionSide, SignalType
from core.types import Signal, Tick
from strategies.base import (
    Candle,
    CandleArrays,
    HeldPosition,
    SessionHours,
    Strategy,
    leading,
    reach_after_first,
    tick_time_and_price,
)
from strategies.candle_fold import IndicatorRun, Series, feed
from strategies.candles import TradingDay, hhmm_problem, parse_hhmm, side_from_state
from strategies.indicators import Atr, Indicator

log = logging.getLogger(__name__)

_LONG, _SHORT = PositionSide.LONG, PositionSide.SHORT
_ENTRY, _EXIT = SignalType.ENTRY, SignalType.EXIT


def common_param_problems(p: Any) -> list[str]:
    """Checks of the parameters every CandleStrategy has: candle_seconds, atr_period, atr_multiple,
    take_profit_atr, exit_at."""
    out = hhmm_problem("exit_at", p.exit_at)
    if not 0 < p.candle_seconds <= 3600 or 3600 % p.candle_seconds:
        out.append(f"candle_seconds: {p.candle_seconds!r} is not allowed -- must divide 3600 "
                   "(e.g. 15, 60, 300, 900) so candles line up with the clock")
    if p.atr_period < 1:
        out.append(f"atr_period: {p.atr_period!r} is not allowed -- must be at least 1")
    if not p.atr_multiple > 0:
        out.append(f"atr_multiple: {p.atr_multiple!r} is not allowed -- must be greater than 0")
    if not p.take_profit_atr >= 0:
        out.append(f"take_profit_atr: {p.take_profit_atr!r} is not allowed -- must be 0 (no target) or more")
    return out


class CandleStrategy(Strategy):
    """Base of rsi, momentum and rules; a subclass makes its indicators and reads each in-session candle."""

    state_version: ClassVar[int] = 1

    def __init__(self, symbol: str, name: str, params: Mapping[str, Any], session: SessionHours):
        problems = self.validate_params(params)
        if problems:
            raise ValueError("; ".join(problems))
        super().__init__(symbol, name, params, session)
        p = self.params
        exit_time = parse_hhmm(p.exit_at)
        assert exit_time is not None  # validated above
        self._exit_time = exit_time
        self._warmed: Sequence[Candle] = ()  # the history candles, until resume_position reads them again
        self._span_memo: _SpanMemo | None = None  # bulk_span's day, derived from the candles: no state
        self._day = TradingDay()
        self._open = self._close_ts = self._no_entry_after = self._exit_ts = 0
        self._atr = Atr(p.atr_period)
        self._indicators: dict[str, Indicator[Any]] = {"atr": self._atr, **self.make_indicators()}
        self._reset_indicators()
        self._clear_position()

    @property
    def candle_seconds(self) -> int | None:
        return int(self.params.candle_seconds)

    # ------------------------------------------------------------------ what a subclass writes
    @abstractmethod
    def make_indicators(self) -> dict[str, Indicator[Any]]:
        """The subclass's indicators by name (saved and reset with the strategy's state)."""

    @abstractmethod
    def read_candle(self, candle: Candle) -> tuple[int, str, str]:
        """Update the indicators with an in-session candle and decide: (entry, entry note, exit note), entry
        +1 long / -1 short / 0 none, exit note "" for no exit of the position held."""

    def reset_day(self) -> None:
        """Forget what the subclass remembers between candles (a new day starts cold)."""

    def extra_state(self) -> dict[str, Any]:
        """JSON-safe data the subclass remembers between candles."""
        return {}

    def load_extra(self, state: Mapping[str, Any]) -> None:
        """Rebuild what extra_state() saved."""

    # ------------------------------------------------------------------ state
    def _reset_indicators(self) -> None:
        for ind in self._indicators.values():
            ind.reset()
        self.reset_day()
        self._entry = 0               # +1 / -1: an entry waiting for the next tick; 0: none
        self._entry_note = ""
        self._entry_stop = self._entry_target = 0.0
        self._exit_note = ""          # an exit of the position waiting for the next tick

    def _clear_position(self) -> None:
        self.position = None
        self._entry_price = 0.0
        self._entry_time = 0
        self._stop = 0.0
        self._target = 0.0            # 0: no target
        self._exit_note = ""

    def _set_day_epochs(self) -> None:
        day, s = self._day, self.session
        self._open = day.at(s.open)
        self._close_ts = day.at(s.close)
        self._exit_ts = day.at(self._exit_time)
        self._no_entry_after = min(day.at(s.entry_cutoff), self._exit_ts)

    def _new_day(self, t: int, price: float) -> Signal | None:
        stale = None
        if self.position is not None:
            stale = self.signal(t, price, _EXIT, self.position,
                                note="end of day: no tick came between exit_at and the end of the day")
        self._day.move_to(t)
        self._set_day_epochs()
        self._reset_indicators()
        self._clear_position()
        return stale

    @property
    def warmup_candles(self) -> int:
        """The longest indicator warm-up, and one candle more: a cross needs the candle before it."""
        return max(ind.warmup for ind in self._indicators.values()) + 1

    def warm_up(self, candles: Sequence[Candle], now: int) -> None:
        """Start the day of `now` with indicators fed `candles` (earlier days' included: with history the
        indicators carry over the night instead of starting cold at the open). Flat, nothing wanted: a decision
        of the last history candle lapses, as a live candle's does when no tick acts on it."""
        self._day.move_to(now)
        self._set_day_epochs()
        self._reset_indicators()
        self._clear_position()
        self._read_history(candles)
        self._warmed = candles  # until the first tick: resume_position reads them again with the position

    def _read_history(self, candles: Sequence[Candle]) -> None:
        atr, read = self._atr.update, self.read_candle
        for candle in candles:
            atr(candle)
            read(candle)
        self._entry, self._exit_note = 0, ""

    def resume_position(self, held: HeldPosition, now: int) -> None:
        """Hold `held` as if this strategy had entered it: its stop and target are the entry signal's (a position
        without a stop gets atr_multiple ATRs from its entry price, or none while the ATR is not ready), so the
        stop, the target, the subclass's exit rule and exit_at manage it. The history candles that closed after
        the entry are read again holding it, so an exit they wanted while the daemon was down (a reversal, an RSI
        back at its level) is acted on by the first tick, as a live candle's would be. Without history the
        indicators start cold and only the stop, the target and exit_at act until they are ready."""
        history = [c for c in self._warmed if c.start + c.seconds <= now]
        if history or self._day.date is None or not self._day.start <= now < self._day.end:
            self.warm_up([c for c in history if c.start + c.seconds <= held.entry_time], now)
        long = held.side is _LONG
        stop = held.stop_loss
        if stop is None:
            atr = self._atr.value
            stop = (held.entry_price - (1 if long else -1) * self.params.atr_multiple * atr if atr is not None
                    else 0.0 if long else math.inf)
        self.position = held.side
        self._entry_price, self._entry_time = held.entry_price, held.entry_time
        self._stop, self._target = float(stop), float(held.take_profit_price or 0.0)
        wanted = ""
        for candle in history:
            if candle.start + candle.seconds > held.entry_time:
                self._atr.update(candle)
                wanted = wanted or self.read_candle(candle)[2]
        self._entry, self._exit_note = 0, wanted
        self._warmed = ()

    def reset_position_tracking(self) -> None:
        """Flat again (entry failed or force-exited): no exits for the old position; a new entry needs a new
        decision from a candle."""
        self._clear_position()

    def discard_signal(self) -> None:
        """A discarded entry was never a position: believe flat. Discarded exits keep their effect (the
        TradeManager retries incomplete exits)."""
        sig = self.pending
        super().discard_signal()
        if (sig is not None and sig.type is _ENTRY and self.position is not None
                and sig.time == self._entry_time):
            self._clear_position()

    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "version": self.state_version, "params": asdict(self.params),
            "day": self._day.iso(), "indicators": {k: v.state_dict() for k, v in self._indicators.items()},
            "extra": self.extra_state(), "entry": self._entry, "entry_note": self._entry_note,
            "entry_stop": self._entry_stop, "entry_target": self._entry_target, "exit_note": self._exit_note,
            "position": None if self.position is None else self.position.value,
            "entry_price": self._entry_price, "entry_time": self._entry_time, "stop": self._stop,
            "target": self._target, "pending": None if self.pending is None else self.pending.to_state(),
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Rebuild from state_dict(); refuses state saved by another kind, version or parameter set."""
        if state.get("kind") != self.kind or state.get("version") != self.state_version:
            raise ValueError(f"state: kind {state.get('kind')!r} version {state.get('version')!r} is not allowed "
                             f"-- expected {self.kind!r} version {self.state_version}")
        if state.get("params") != asdict(self.params):
            raise ValueError("state: saved with different params -- start this strategy without saved state")
        self._day.restore(state["day"])
        if self._day.date is not None:
            self._set_day_epochs()
        for k, ind in self._indicators.items():
            ind.load_state(state["indicators"][k])
        self.load_extra(state["extra"])
        self._entry, self._entry_note = int(state["entry"]), str(state["entry_note"])
        self._entry_stop, self._entry_target = float(state["entry_stop"]), float(state["entry_target"])
        self.position = side_from_state(state["position"])
        self._entry_price, self._entry_time = float(state["entry_price"]), int(state["entry_time"])
        self._stop, self._target = float(state["stop"]), float(state["target"])
        self._exit_note = str(state["exit_note"])
        self.pending = None if state["pending"] is None else Signal.from_state(state["pending"])

    # ------------------------------------------------------------------ candles
    def on_candle(self, candle: Candle) -> Signal | None:
        """Update the indicators; a decision is remembered and acted on by the next run(tick)."""
        if not self._open <= candle.start < self._close_ts:
            return None  # outside today's session (pre-open, closing session, or another day)
        self._entry = 0
        atr = self._atr.update(candle)
        entry, entry_note, exit_note = self.read_candle(candle)
        if self.position is not None and exit_note:
            self._exit_note = exit_note
        if entry == 0:
            return None
        levels = self.entry_levels(entry, candle.close, atr)
        if levels is None:
            return None
        self._entry = entry
        self._entry_stop, self._entry_target, how = levels
        self._entry_note = f"{entry_note}; {how}"
        return None

    def entry_levels(self, entry: int, close: float, atr: float | None) -> tuple[float, float, str] | None:
        """Stop and target (0.0: none) of an entry (+1 long / -1 short) wanted at the candle `close`, and a note
        on how they were set; None: no entry on this candle. This default: atr_multiple and take_profit_atr
        ATRs from the close, no entry before the ATR is ready. The rules kind overrides it."""
        if atr is None:
            return None
        p = self.params
        stop = close - entry * p.atr_multiple * atr
        target = close + entry * p.take_profit_atr * atr if p.take_profit_atr > 0 else 0.0
        return stop, target, f"ATR({p.atr_period}) {atr:.4f}"

    # ------------------------------------------------------------------ the backtest's bulk fold
    def paths_known(self) -> bool:
        """Whether the tick and candle paths are this class's (what bulk_span and held_bound prove things of): a
        subclass that overrides on_tick, run or on_candle proves nothing, unless it says here that its own
        override changes nothing while flat with nothing wanted or holding with nothing wanted (the rules kind)."""
        cls = type(self)
        return (cls.on_tick is CandleStrategy.on_tick and cls.run is Strategy.run
                and cls.on_candle is CandleStrategy.on_candle)

    def bulk_span(self, run: CandleArrays, seconds: int) -> int:
        """How many of `run`'s leading candles on_candle may take in bulk as far as this base class goes (a
        subclass's absorb_quiet then finds the first its own rule could act on): flat with nothing wanted, the
        tick and candle paths this class's, candles of `seconds`, run[j] in today's session and each skipped
        candle run[j + 1] within the day (its ticks then do nothing: on_tick is flat with no entry)."""
        if (self.position is not None or self._entry or self._exit_note or self.params.candle_seconds != seconds
                or not self.paths_known()):
            return 0
        start = run.start
        m = len(start)
        if m < 2:
            return 0
        day = self._day
        bounds = (self._open, self._close_ts, day.start, day.end, seconds)
        memo = self._span_memo
        if memo is not None and memo.bounds == bounds:
            n = memo.span(start)
            if n >= 0:
                return n
        memo = self._span_memo = _SpanMemo(start, bounds)
        return memo.span(start)

    def held_bound(self, run: CandleArrays, seconds: int) -> int:
        """How many of `run`'s leading candles may be taken while holding as far as this base class goes (a
        subclass's held_span then finds the first its own rule could act on): in a position with nothing wanted,
        the tick and candle paths this class's, candles of `seconds`, run[j] in today's session, and each candle
        run[j + 1] within the day, before exit_at, and with every price strictly inside the stop (and target):
        its ticks then do nothing in _manage, nor flat after a forced exit (no entry is wanted)."""
        cls = type(self)
        side = self.position
        if (side is None or self._entry or self._exit_note or self.params.candle_seconds != seconds
                or not self.paths_known() or cls._manage is not CandleStrategy._manage):
            return 0
        start = run.start
        m = len(start)
        if m < 2:
            return 0
        day, head, tail = self._day, start[:-1], start[1:]
        top, bottom = reach_after_first(run)
        stop, target = self._stop, self._target
        inside = (bottom > stop) if side is _LONG else (top < stop)
        if target:
            inside &= (top < target) if side is _LONG else (bottom > target)
        ok = ((head >= self._open) & (head < self._close_ts) & (tail >= day.start) & (tail + seconds <= day.end)
              & (tail + seconds <= self._exit_ts) & inside)
        return leading(ok)

    def fold_read(self, run: CandleArrays, a: int, b: int, values: Series, extra: dict[str, Any],
                  side: PositionSide | None) -> tuple[int, dict[str, Any]] | None:
        """The subclass's part of the bulk fold (absorb_quiet, held_span, take_held below): `values` holds each
        indicator's value (by the names make_indicators gives, and "atr") after each of run[a:b], as on_candle
        would compute them, and `extra` what extra_state() would say before run[a]. Return n, the leading
        candles of run[a:b] whose read_candle, tested as arrays, wants no entry (and, `side` given, no exit of a
        position of that side), and the extra_state() read_candle would leave after those n; None: this
        subclass proves nothing (this default, and what a subclass says when its own rules were overridden)."""
        return None

    def absorb_quiet(self, run: CandleArrays, seconds: int) -> int:
        """Flat with nothing wanted (bulk_span): take in bulk the candles before the first whose read_candle
        could want an entry (fold_read), their indicators exactly as on_candle updates them."""
        return self._fold(run, seconds, self.bulk_span(run, seconds), None, take=True)

    def held_span(self, run: CandleArrays, seconds: int) -> int:
        """In a position with nothing wanted (held_bound: the stop, target, exit_at and the day out of reach): the
        candles before the first whose read_candle could want an entry or an exit of the side held (fold_read).
        Changes nothing."""
        side = self.position
        return self._fold(run, seconds, self.held_bound(run, seconds), side, take=False) if side else 0

    def take_held(self, run: CandleArrays, seconds: int, m: int) -> None:
        """on_candle for run[:m], none of which wants anything (held_span proved it): the same indicators and
        subclass state whether the position is still held or was closed meanwhile."""
        if m <= 0:
            return
        n = self._fold(run, seconds, m, None, take=True)
        if n != m:
            raise ValueError(f"take_held: {m} candles asked, only {n} proven quiet")

    def _fold(self, run: CandleArrays, seconds: int, span: int, side: PositionSide | None, take: bool) -> int:
        """How many of run[:span] fold_read proves quiet, looked at in chunks of 8, 16, ... 512 candles (most
        stretches are short, and every candle looked at past the first that acts is work thrown away) on copies
        of the indicators. With `take`, each chunk proven whole is taken at once (the copies' state and the
        subclass's extra state, no entry wanted) and the next one starts from fresh copies; in the chunk where
        the stretch ends, the candles before the one that acts are fed to the strategy's own indicators."""
        if span <= 0 or type(self).fold_read is CandleStrategy.fold_read:
            return 0
        ahead: IndicatorRun | None = None
        extra: dict[str, Any] = {}
        taken, chunk = 0, 8
        while taken < span:
            end = min(span, taken + chunk)
            if ahead is None:
                ahead, extra = IndicatorRun(self._indicators), self.extra_state()
            read = self.fold_read(run, taken, end, ahead.advance(run, taken, end, self.symbol, seconds), extra, side)
            if read is None:
                return taken
            n, after = read
            if not 0 <= n <= end - taken:
                raise ValueError(f"fold_read returned {n!r}: allowed are 0 to {end - taken}")
            if n and take:
                if n == end - taken:
                    ahead.commit(self._indicators)
                    ahead = None
                else:
                    feed(self._indicators, run, taken, taken + n, self.symbol, seconds)
                self.load_extra(after)
                self._entry = 0
            extra = after
            taken += n
            if taken < end:
                break
            chunk = min(2 * chunk, 512)
        return taken

    def absorb_common(self, run: CandleArrays, a: int, b: int) -> None:
        """What on_candle does to this base class's state for run[a:b] when none of them wants anything."""
        self._atr.absorb(run.high[a:b].tolist(), run.low[a:b].tolist(), run.close[a:b].tolist())
        self._entry = 0

    # ------------------------------------------------------------------ ticks
    def quiet_at(self, t: int) -> bool:
        """Flat with no entry wanted, within the strategy's day: on_tick below returns None and changes nothing
        until a candle closes (a class that overrides on_tick or run proves nothing here)."""
        cls = type(self)
        return (self.position is None and not self._entry and self._day.start <= t < self._day.end
                and cls.on_tick is CandleStrategy.on_tick and cls.run is Strategy.run)

    def on_tick(self, tick: Tick) -> Signal | None:
        tp = tick_time_and_price(tick)
        if tp is None:
            return None
        t, price = tp
        day = self._day
        if not day.start <= t < day.end:
            if t < day.start:
                return None  # a tick from an earlier day, out of order
            return self._new_day(t, price)  # indicators were just reset: nothing else can happen
        if self.position is not None:
            return self._manage(t, price)

        entry = self._entry
        if not entry or t < self._open or t >= self._no_entry_after:
            return None
        self._entry = 0
        stop, target = self._entry_stop, self._entry_target
        if entry > 0:
            if price <= stop or (target and price >= target):
                return None
            side = _LONG
        else:
            if price >= stop or (target and price <= target):
                return None
            side = _SHORT
        self.position = side
        self._entry_price, self._entry_time, self._stop, self._target = price, t, stop, target
        log.debug("%s %s entry %s at %s stop %s target %s", self.name, self.symbol, side, price, stop, target)
        return self.signal(t, price, _ENTRY, side, stop_loss=stop, take_profit_price=target or None,
                           note=f"{self._entry_note}; stop {stop:.4f}", extra={"atr": self._atr.value})

    def _manage(self, t: int, price: float) -> Signal | None:
        side = self.position
        assert side is not None
        long = side is _LONG
        if t >= self._exit_ts:
            self._clear_position()
            return self.signal(t, price, _EXIT, side, note="end of day")
        stop, target = self._stop, self._target
        if (price <= stop) if long else (price >= stop):
            self._clear_position()
            return self.signal(t, price, _EXIT, side, stop_loss=stop, note=f"stop hit at {price} (stop {stop})")
        if target and ((price >= target) if long else (price <= target)):
            self._clear_position()
            return self.signal(t, price, _EXIT, side, take_profit_price=target,
                               note=f"target reached at {price} (target {target})")
        note = self._exit_note
        if note:
            self._clear_position()
            return self.signal(t, price, _EXIT, side, note=note)
        return None


class _SpanMemo:
    """bulk_span's test over a symbol-day's candles (each run[j] in the session, run[j + 1] within the day), made
    once for the day's run and answered for each later fold's run, a tail of it (checked by value), by lookup:
    a fold asks at every quiet stretch, and the whole rest of the day each time."""

    __slots__ = ("bounds", "starts", "bad")

    def __init__(self, start: Any, bounds: tuple[int, int, int, int, int]):
        opened, closed, day_start, day_end, seconds = bounds
        self.bounds = bounds
        self.starts: list[int] = start.tolist()
        head, tail = start[:-1], start[1:]
        ok = (head >= opened) & (head < closed) & (tail >= day_start) & (tail + seconds <= day_end)
        n = len(ok)
        at = np.where(ok, n, np.arange(n))
        self.bad: list[int] = np.minimum.accumulate(at[::-1])[::-1].tolist()  # first failing index at or after

    def span(self, start: Any) -> int:
        """leading(ok) for `start`, a tail of the memo's candles; -1 when it is not one."""
        at = len(self.starts) - len(start)
        if at < 0 or at >= len(self.bad):
            return -1
        n = self.bad[at] - at
        # the answer rests on start[0 .. n] (run[n]'s start ends the last candle tested)
        return n if start[:n + 1].tolist() == self.starts[at:at + n + 1] else -1

"""Everything a worker does with one tick: validate it, build candles, run the symbol's strategy, apply
signal management (seed chart 2), and hold a symbol while its last signal is being acted on. (Signals are
written by the TradeManager, which sees each one exactly once; ticks by the feed process's TickWriter,
pipeline.tick_writer, so persisting them costs the worker nothing.)

The hold is what makes a replay trade exactly as the day would have: after a strategy emits a signal,
its later ticks wait in a backlog until the TradeManager says what became of the signal (an Outcome), so
the strategy always learns the fate of its order before it sees the next tick, whatever the wall clock
and queue timings were. Other symbols keep flowing meanwhile.

No Manager round trip happens here: incomplete-trade records arrive as Outcome messages and are kept in
local dicts with the seed's names.

Strategy code is contained: the first exception a symbol's strategy raises is logged once with its
traceback, and that strategy is disabled for the rest of the day (it is called no more; its ticks still
count, persist and price the paper broker). The driver hears it once, as a StrategyDisabled message; the
TradeManager keeps managing the symbol's position.

This is the per-tick part of the worker's job; worker.run_worker is the process loop that feeds it, and
pipeline.workers.WorkerPool is the driver's side that starts and restarts the worker processes.
"""
from __future__ import annotations

import logging
import math
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import msgspec

from core.clock import to_ist
from core.config import Config
from core.enums import ExitReason, PositionSide, SignalType
from core.types import Signal, Tick
from pipeline.messages import CapTriggers, DayHalted, ForceExit, Marks, Outcome, StrategyDisabled, WorkerStats
from strategies import strategy_class
from strategies.base import Candle, CandleArrays, HeldPosition, Strategy
from strategies.candles import CandleAggregator

log = logging.getLogger(__name__)
_STATE_WIRE = msgspec.msgpack.Encoder()  # what a checkpoint crosses as (pipeline.messages.CheckpointTaken)

# Keys an exit or take-profit signal inherits from the incomplete one it retries (seed chart 2).
MERGE_KEYS = ("stop_loss", "take_profit_price", "position_size", "close_fraction", "note")
_NUM = (int, float)


class _HeldFold:
    """A held fold under way: the candles proven (run[1..n]), the strategy and side it holds, and the candle of
    run its ticks got to (m, 0: none yet) with those ticks as (time, price, vol_traded_today)."""

    __slots__ = ("run", "seconds", "n", "strat", "side", "m", "ticks")

    def __init__(self, run: CandleArrays, seconds: int, n: int, strat: Strategy, side: PositionSide | None):
        self.run, self.seconds, self.n, self.strat, self.side = run, seconds, n, strat, side
        self.m = 0
        self.ticks: list[tuple[int, float, int]] = []


class MarketDataHandler:
    def __init__(self, cfg: Config, symbols: Iterable[str], emit: Callable[[Signal, float, bool, int], None],
                 emit_marks: Callable[[Marks, int], None] | None = None,
                 on_disabled: Callable[[StrategyDisabled], None] | None = None,
                 disabled: Mapping[str, str] | None = None):
        """`disabled`: symbols whose strategy was disabled earlier today (symbol -> reason); not run again."""
        self.cfg = cfg
        self.emit = emit
        self.emit_marks = emit_marks
        self.on_disabled = on_disabled or (lambda ev: None)
        # called with (symbol, tick, time, position) once a tick has run, held ones when released: what the
        # worker sends the paper broker as quotes, so an order never fills at a tick its strategy has not seen
        self.on_ran: Callable[[str, Tick, float, int], None] | None = None
        self.stats = WorkerStats()
        self.strategies: dict[str, Strategy] = {}
        self.candles: dict[str, CandleAggregator] = {}
        self.by_fyers: dict[str, str] = {}
        self.disabled: dict[str, str] = {}  # symbol -> why its strategy is off for the day
        self.unsaved: set[str] = set()  # symbols whose strategy state cannot be checkpointed (told once)
        self.last_ts: dict[str, float] = {}
        for sym in symbols:
            spec = cfg.symbol(sym)
            self.by_fyers[spec.fyers] = sym
            if disabled and sym in disabled:
                self.disabled[sym] = disabled[sym]
                log.warning("%s: strategy disabled earlier today (%s); not run again", sym, disabled[sym])
                continue
            strat = cfg.strategies[spec.strategy]
            try:
                s = strategy_class(strat.kind)(sym, strat.name, strat.params, cfg.session)
                seconds = s.candle_seconds
            except Exception as e:  # noqa: BLE001 - one broken strategy must not stop the worker
                self._disable(sym, "start-up", e, 0.0)
                continue
            self.strategies[sym] = s
            if seconds:
                self.candles[sym] = CandleAggregator(sym, seconds)
        # seed chart 2 state, fed by Outcome messages instead of per-tick Manager reads
        self.incomplete_entry_trades: dict[str, dict] = {}
        self.incomplete_exit_trades: dict[str, dict] = {}
        self.incomplete_takeprofit_trades: dict[str, dict] = {}
        self.force_exit_triggered_symbols: set[str] = set()
        # symbol -> (signal_id, signal time, feed position) awaiting its Outcome; backlog of ticks held meanwhile
        self.awaiting: dict[str, tuple[str, int, int]] = {}
        self.backlog: dict[str, deque] = {}
        self._releasing = False
        # open positions (from the TradeManager's CapTriggers): symbol -> (side, loss price, profit price, since)
        self.triggers: dict[str, tuple[str, float | None, float | None, int]] = {}
        # the data-second each open position was last marked in (MARKS, for the global caps)
        self.mark_second: dict[str, int] = {}
        # the backtest's held folds (fold_held): symbol -> the candles its strategy proved it acts on none of
        self.held: dict[str, _HeldFold] = {}
        self._warned: dict[str, int] = {}
        self.halted: str | None = None  # why trading is halted for the day (DayHalted), None: it is not
        self.parked: set[str] = set()  # symbols whose strategy stopped for the halted day (park)

    # ------------------------------------------------------------------ ticks
    def process_batch(self, ticks: list[Tick], t_wall: float, positions: list[int]) -> None:
        """process() for each tick, with its checks inlined for a record that passes them all (nearly every
        tick: the feed process judged it already); anything else goes through process() itself."""
        by_fyers, last_ts, awaiting, stats = self.by_fyers, self.last_ts, self.awaiting, self.stats
        run = self._run
        inf = math.inf
        for tick, pos in zip(ticks, positions, strict=False):
            if type(tick) is Tick:
                sym = by_fyers.get(tick.symbol)  # None: no such symbol
                ltp, ts = tick.ltp, tick.exch_feed_time
                if (sym is not None and type(ltp) in _NUM and type(ts) in _NUM and 0 < ltp < inf
                        and 0 < ts < inf and not ts < last_ts.get(sym, 0)):
                    stats.ticks += 1
                    last_ts[sym] = ts
                    if sym in awaiting:
                        self.backlog[sym].append((tick, ts, t_wall, pos))
                    else:
                        run(sym, tick, ts, t_wall, pos)
                    continue
            self.process(tick, t_wall, pos)

    def process(self, tick: Tick, t_wall: float = 0.0, pos: int = 0) -> str | None:
        """`pos`: the tick's feed position, which orders its signal among every worker's (pipeline.sequencer).
        Returns the tick's symbol if it was accepted, None if it was counted as bad."""
        reason, sym, ts = self._validate(tick)
        if reason is not None:
            self._bad(reason, tick)
            return None
        self.stats.ticks += 1
        self.last_ts[sym] = ts
        if sym in self.awaiting:  # the record itself: frozen, and a third of a dict's memory
            self.backlog[sym].append((tick, ts, t_wall, pos))
            return sym
        self._run(sym, tick, ts, t_wall, pos)
        return sym

    def _foldable(self, sym: str) -> bool:
        """Whether ticks of `sym` may be folded at all: not held behind a signal, no cap trigger, forced exit or
        incomplete entry to act on."""
        return not (sym in self.awaiting or sym in self.triggers
                    or sym in self.force_exit_triggered_symbols or sym in self.incomplete_entry_trades)

    def fold_quiet(self, sym: str, t: int, price: float, cum: int) -> bool:
        """A tick of `sym` as plain values (whole epoch seconds, price, vol_traded_today) that provably does
        nothing but grow the open candle: folded into it, counted, and True. False (nothing done) unless the
        symbol is neither held, capped nor flagged, its strategy says it is quiet at `t` (strategies.base
        Strategy.quiet_at) and the tick closes no candle; the caller then runs it as a Tick through process().
        The backtest's way to skip the strategy call per tick where it cannot matter."""
        strat = self.strategies.get(sym)
        if strat is None:
            return False
        try:
            if not strat.quiet_at(t):
                return False
        except Exception as e:  # noqa: BLE001 - strategy code: contained as in _run; the tick then runs as usual
            self._disable(sym, "quiet_at", e, t)
            return False
        if not self._foldable(sym) or not 0 < price < math.inf or t < self.last_ts.get(sym, 0):
            return False
        agg = self.candles.get(sym)
        if agg is not None and not agg.in_open_candle(t):
            return False
        if agg is not None:
            agg.add(t, price, cum)
        self.stats.ticks += 1
        self.last_ts[sym] = t
        return True

    def fold_candles(self, sym: str, run: CandleArrays, seconds: int,
                     ticks_of: Callable[[int], Sequence[tuple[int, float, int]]]) -> int:
        """The backtest's bulk fold: at the first tick after the open candle run[0] (every tick of it seen), let
        the symbol's strategy take as many of the next candles as it can prove change nothing but its state
        (strategies.base Strategy.absorb_quiet); returns that n, the candles run[1..n] then being folded whole:
        their ticks are counted, the open candle becomes run[n] (`ticks_of(n)`: its ticks as (time, price,
        vol_traded_today)), and the caller skips them. 0 (nothing done) unless the symbol is neither held, capped
        nor flagged, its candles (if any) are of `seconds` and the open one is run[0], value for value."""
        strat = self.strategies.get(sym)
        if strat is None or not self._foldable(sym):
            return 0
        agg = self.candles.get(sym)
        n = self._span(sym, agg, run, seconds, strat.absorb_quiet, "absorb_quiet")
        if n == 0:
            return 0
        last = ticks_of(n)
        if agg is not None:
            agg.restart()
            for t, price, cum in last:
                agg.add(t, price, cum)
        self.stats.ticks += n * len(last)
        self.last_ts[sym] = last[-1][0]
        return n

    def _span(self, sym: str, agg: CandleAggregator | None, run: CandleArrays, seconds: int,
              ask: Callable[[CandleArrays, int], int], what: str) -> int:
        """How many candles past run[0] the strategy's `ask` (absorb_quiet, held_span) proves it acts on none
        of; 0 where the handler's open candle is not run[0] value for value (a tick it missed: a cap's crossing
        tick runs no strategy) or the strategy failed or answered out of range (it is then disabled, contained
        as in _run, and the ticks run as usual)."""
        if agg is not None and (agg.seconds != seconds or agg.open_values() != (
                int(run.start[0]), float(run.open[0]), float(run.high[0]), float(run.low[0]), float(run.close[0]),
                int(run.volume[0]))):
            return 0
        try:
            n = ask(run, seconds)
            if type(n) is not int or not 0 <= n < len(run.start):
                raise ValueError(f"{what} returned {n!r}: allowed are whole numbers 0 to {len(run.start) - 1}")
        except Exception as e:  # noqa: BLE001 - strategy code
            self._disable(sym, what, e, self.last_ts.get(sym, 0.0))
            return 0
        return n

    def fold_held(self, sym: str, run: CandleArrays, seconds: int) -> int:
        """The backtest's fold while a position is open: at the first tick after the open candle run[0] (as for
        fold_candles), how many of the next candles the symbol's strategy proves it acts on none of while it
        holds (strategies.base Strategy.held_span). Their ticks then come to held_tick, which does everything
        process() would but call the strategy, until one of them could matter (end_held). 0: nothing done."""
        strat = self.strategies.get(sym)
        if (strat is None or strat.position is None or self.on_ran is not None
                or sym in self.awaiting or sym in self.force_exit_triggered_symbols
                or sym in self.incomplete_entry_trades or sym in self.held):
            return 0
        n = self._span(sym, self.candles.get(sym), run, seconds, strat.held_span, "held_span")
        if n:
            self.held[sym] = _HeldFold(run, seconds, n, strat, strat.position)
        return n

    def held_tick(self, sym: str, m: int, t: int, price: float, cum: int) -> bool:
        """A tick of run[m] (1 <= m) of the symbol's held fold, as plain values: True when it was run as process()
        would run it, the strategy aside (it proved the tick changes nothing in it): counted, marked for the
        global caps and checked against the symbol's caps. False (the fold ended, nothing done with the tick: the
        caller runs it through process()) when it could matter: past the proven candles, a cap it crosses, a
        pending signal, a forced exit or the strategy's position changed."""
        h = self.held.get(sym)
        if h is None:
            return False
        trig = self.triggers.get(sym)
        marked = trig is not None and t >= trig[3]
        if (m > h.n or self.strategies.get(sym) is not h.strat or h.strat.position is not h.side
                or sym in self.awaiting or sym in self.force_exit_triggered_symbols
                or sym in self.incomplete_entry_trades or not 0 < price < math.inf
                or t < self.last_ts.get(sym, 0) or (marked and self._cap_crossed(sym, price) is not None)):
            self.end_held(sym)
            return False
        if m != h.m:
            h.m, h.ticks = m, []
        h.ticks.append((t, price, cum))
        self.stats.ticks += 1
        self.last_ts[sym] = t
        if marked:
            self._mark(sym, price, t, 0)
        return True

    def end_held(self, sym: str) -> None:
        """End the symbol's held fold where its ticks got to: the strategy takes the candles they closed
        (take_held) and the open candle is rebuilt from the ticks of it held_tick saw, as process() would have
        left them."""
        h = self.held.pop(sym, None)
        if h is None or self.strategies.get(sym) is not h.strat:
            return
        if h.m:
            try:
                h.strat.take_held(h.run, h.seconds, h.m)
            except Exception as e:  # noqa: BLE001 - strategy code: contained as in _run
                self._disable(sym, "take_held", e, self.last_ts.get(sym, 0.0))
                return
            agg = self.candles.get(sym)
            if agg is not None:
                agg.restart()
                for t, price, cum in h.ticks:
                    agg.add(t, price, cum)

    def _validate(self, tick: Any) -> tuple[str | None, str, float]:
        """A cheap second look: every tick was judged in the feed process (pipeline.tick_validator), so nothing
        that passed there trips these; they guard a worker fed by anything else."""
        if type(tick) is not Tick:
            return "not a tick record", "", 0.0
        fy = tick.symbol
        if fy is None:
            return "missing symbol", "", 0.0
        sym = self.by_fyers.get(fy)
        if sym is None:
            return "unknown symbol", "", 0.0
        ltp = tick.ltp
        if type(ltp) not in _NUM:
            return "non-numeric price", sym, 0.0
        if not 0 < ltp < math.inf:  # also false for NaN
            return "zero, negative or non-finite price", sym, 0.0
        ts = tick.exch_feed_time
        if ts is None:
            ts = tick.last_traded_time
        if type(ts) not in _NUM or not 0 < ts < math.inf:
            return "missing or non-numeric timestamp", sym, 0.0
        if ts < self.last_ts.get(sym, 0):
            return "timestamp going backwards", sym, 0.0
        return None, sym, ts

    def _bad(self, reason: str, tick: Any) -> None:
        st = self.stats
        st.bad_ticks += 1
        st.bad_by_reason[reason] = st.bad_by_reason.get(reason, 0) + 1
        n = self._warned.get(reason, 0)
        if n < 5:
            self._warned[reason] = n + 1
            log.warning("skipped a bad tick (%s): %.200r%s", reason, tick,
                        " (further ones of this kind are counted, not logged)" if n == 4 else "")

    def _mark(self, sym: str, ltp: float, ts: float, pos: int) -> None:
        """An open position's price on its first tick of each data-second, for the global caps. Marked from the
        ticks the symbol runs (after any hold), one symbol at a time, and applied by the driver in feed order
        (pos): what a mark carries and where it lands never depends on timing, so a replay halts alike."""
        sec = int(ts)
        if sec > self.mark_second.get(sym, -1):
            self.mark_second[sym] = sec
            if self.emit_marks is not None:
                self.emit_marks(Marks(sec, {sym: ltp}), pos)

    def _cap_crossed(self, sym: str, ltp: float) -> str | None:
        side, loss_at, profit_at, _since = self.triggers[sym]
        if side == PositionSide.LONG.value:
            if loss_at is not None and ltp <= loss_at:
                return ExitReason.SYMBOL_LOSS_CAP.value
            if profit_at is not None and ltp >= profit_at:
                return ExitReason.SYMBOL_PROFIT_CAP.value
        else:
            if loss_at is not None and ltp >= loss_at:
                return ExitReason.SYMBOL_LOSS_CAP.value
            if profit_at is not None and ltp <= profit_at:
                return ExitReason.SYMBOL_PROFIT_CAP.value
        return None

    def _run(self, sym: str, tick: Tick, ts: float, t_wall: float, pos: int) -> None:
        self._step(sym, tick, ts, t_wall, pos)
        if self.on_ran is not None:
            self.on_ran(sym, tick, ts, pos)

    def _step(self, sym: str, tick: Tick, ts: float, t_wall: float, pos: int) -> None:
        trig = self.triggers.get(sym)
        if trig is not None and ts >= trig[3]:  # caps act on every tick, whatever the strategy does
            ltp = tick.ltp
            self._mark(sym, ltp, ts, pos)
            reason = self._cap_crossed(sym, ltp)
            if reason is not None:  # on the crossing tick, before the strategy: a forced exit
                self.triggers[sym] = (trig[0], None, None, trig[3])  # fires once; re-armed if still open
                log.info("%s: %s crossed at %s; forcing an exit", sym, reason.replace("_", " "), ltp)
                strat = self.strategies.get(sym)
                name = strat.name if strat is not None else self.cfg.symbol(sym).strategy
                self._signal(sym, Signal(symbol=sym, time=int(ts), price=ltp, type=SignalType.EXIT,
                                         current_position=PositionSide(trig[0]), strategy=name, forced=True,
                                         note=reason), t_wall, pos)
                return
        strat = self.strategies.get(sym)
        if strat is None:  # disabled for the day
            return
        try:
            signal = self._strategy_step(sym, strat, tick)
            if signal is not None:
                signal = signal.checked()
        except Exception as e:  # noqa: BLE001 - contained: this symbol's strategy stops, nothing else does
            self._disable(sym, "run", e, ts)
            return
        if signal is None:
            return
        signal = self.apply_signal_management(sym, signal)
        if signal is None:
            return
        self._signal(sym, signal, t_wall, pos)

    def _signal(self, sym: str, signal: Signal, t_wall: float, pos: int) -> None:
        self.stats.signals += 1
        self.awaiting[sym] = (signal.signal_id, signal.time, pos)
        self.backlog.setdefault(sym, deque())
        # latency from the batch's arrival; `held`: the tick waited for an earlier signal's outcome (by design)
        self.emit(signal, (time.time() - t_wall) * 1000.0 if t_wall else 0.0, self._releasing, pos)

    def _strategy_step(self, sym: str, strat: Strategy, tick: Tick) -> Signal | None:
        """Every call into the strategy for one tick; what it signals (None: nothing)."""
        # seed chart 2: force-exit triggered symbols reset; an incomplete entry discards before run
        if sym in self.force_exit_triggered_symbols:
            self.force_exit_triggered_symbols.discard(sym)
            log.info("%s: force exit triggered; strategy reset", sym)
            strat.discard_signal()
            strat.reset_position_tracking()
        if sym in self.incomplete_entry_trades:
            strat.discard_signal()
            strat.reset_position_tracking()
            return None
        signal = None
        agg = self.candles.get(sym)
        if agg is not None:
            for candle in agg.update(tick):
                signal = strat.on_candle(candle) or signal
        tick_signal = strat.run(tick)
        return tick_signal or signal

    def _disable(self, sym: str, where: str, exc: BaseException, ts: float) -> None:
        """The symbol's strategy raised: log it once with its traceback, stop calling it for the day, and tell
        the driver. Its position (if any) is the TradeManager's to manage and square off."""
        strat = self.strategies.pop(sym, None)
        self.candles.pop(sym, None)
        name = strat.name if strat is not None else self.cfg.symbol(sym).strategy
        reason = f"{type(exc).__name__} in {where}: {exc}"[:200]
        self.disabled[sym] = reason
        log.error("%s: strategy %s raised (%s); disabled for the rest of the day, its open position (if any) stays "
                  "managed and is squared off as usual\n%s", sym, name, reason,
                  "".join(traceback.format_exception(exc)).rstrip())
        self.on_disabled(StrategyDisabled(sym, name, reason, int(ts)))

    def _call(self, sym: str, where: str, fn: Callable[[], Any]) -> bool:
        """A call into the strategy outside the tick path; False (and the strategy disabled) if it raised."""
        try:
            fn()
            return True
        except Exception as e:  # noqa: BLE001 - contained as in _run
            self._disable(sym, where, e, self.last_ts.get(sym, 0.0))
            return False

    def apply_signal_management(self, sym: str, signal: Signal) -> Signal | None:
        """Seed chart 2: entries pass (already screened before run); an exit or take-profit that retries an
        incomplete one inherits its keys and counts the attempt."""
        if signal.type is SignalType.ENTRY:
            return signal
        book = self.incomplete_exit_trades if signal.type is SignalType.EXIT else self.incomplete_takeprofit_trades
        prev = book.get(sym)
        if not prev:
            return signal
        prev_sig = prev.get("signal") or {}
        changes = {k: prev_sig[k] for k in MERGE_KEYS
                   if prev_sig.get(k) not in (None, "", 0) and getattr(signal, k) in (None, "", 0)}
        attempt = int(prev.get("attempt_count", 1)) + 1
        log.info("%s: retrying %s signal, attempt %d (merged %s)", sym, signal.type.value, attempt,
                 ", ".join(changes) or "nothing")
        return signal.replace(attempt_count=attempt, **changes)

    # ------------------------------------------------------------------ warm-up
    def warm_up(self, candles: Mapping[str, Sequence[Candle]], now: int) -> None:
        """Before the first tick: each strategy takes its history candles (pipeline.warmup), all in one go."""
        for sym, strat in list(self.strategies.items()):
            got = candles.get(sym)
            if got:
                self._call(sym, "warm_up", lambda: strat.warm_up(got, now))  # noqa: B023 - called at once
        if candles:
            log.info("warmed up %d strategies from history", sum(1 for s in candles if s in self.strategies))

    def resume_positions(self, held: Mapping[str, HeldPosition], now: int) -> None:
        """After warm-up, before the first tick: each strategy takes up the open position the books hold for its
        symbol from before the run started (pipeline.resume), so its own exits manage it."""
        for sym, h in held.items():
            strat = self.strategies.get(sym)
            if strat is None:
                continue  # disabled for the day, or not this worker's: the TradeManager manages it
            if self._call(sym, "resume_position", lambda: strat.resume_position(h, now)):  # noqa: B023 - at once
                log.info("%s: strategy %s resumed its %s position of %d from %s at %s (stop %s, target %s)",
                         sym, strat.name, h.side.value, h.remaining, f"{to_ist(h.entry_time):%H:%M:%S}",
                         h.entry_price, h.stop_loss, h.take_profit_price)

    # ------------------------------------------------------------------ feedback
    def apply_control(self, msg: Outcome | ForceExit | CapTriggers | DayHalted) -> None:
        """The TradeManager's feedback for one symbol; on a halted day, then park the symbol if it is flat."""
        if isinstance(msg, DayHalted):
            if self.halted is None:
                self.halted = msg.reason
                log.debug("trading halted for the day (%s): flat symbols' strategies stop", msg.reason)
        else:
            self._apply(msg)
        if self.halted is not None:
            self.park(msg.symbol)

    def park(self, sym: str) -> bool:
        """On a halted day, stop the symbol's strategy once it is flat by its own account, with nothing pending
        (no signal awaiting its outcome, no incomplete trade): all it could still signal is an entry, to be
        refused. A position the TradeManager holds meanwhile (a halt's or a cap's forced exit working) keeps its
        cap triggers and marks, which run without the strategy. True if it is (now) parked."""
        if sym in self.parked:
            return True
        strat = self.strategies.get(sym)
        if (self.halted is None or strat is None or sym in self.awaiting
                or sym in self.incomplete_entry_trades or sym in self.incomplete_exit_trades
                or sym in self.incomplete_takeprofit_trades):
            return False
        # a forced exit's flag resets the strategy's position at its next tick: parked, it has no next tick
        if strat.position is not None and sym not in self.force_exit_triggered_symbols:
            return False
        # a backtest's held fold (fold_held) is only a way of running the held position's ticks: a symbol parks
        # whether or not one is under way, as it would with every tick run (the fold's ticks then run as usual)
        self.held.pop(sym, None)
        del self.strategies[sym]
        self.candles.pop(sym, None)
        self.force_exit_triggered_symbols.discard(sym)
        self.parked.add(sym)
        log.debug("%s: strategy %s stopped for the halted day (flat)", sym, strat.name)
        return True

    def _apply(self, msg: Outcome | ForceExit | CapTriggers) -> None:
        if isinstance(msg, CapTriggers):
            if msg.side is None:
                self.triggers.pop(msg.symbol, None)
                self.mark_second.pop(msg.symbol, None)
            else:
                self.triggers[msg.symbol] = (msg.side, msg.loss_at, msg.profit_at, msg.since)
            return
        if isinstance(msg, ForceExit):
            self.force_exit_triggered_symbols.add(msg.symbol)
            strat = self.strategies.get(msg.symbol)
            if strat is not None:
                self._call(msg.symbol, "force exit",
                           lambda: (strat.discard_signal(), strat.reset_position_tracking()))
            return
        sym = msg.symbol
        strat = self.strategies.get(sym)
        if strat is None and sym not in self.disabled and sym not in self.parked:
            return
        pending = self.awaiting.get(sym)
        if pending is None or pending[0] != msg.signal_id:
            # after a restart the outcome of a signal may come before the resent ticks emit it again; the
            # TradeManager answers the signal again when it comes, in its place
            log.debug("%s: outcome of %s ignored: not the signal this symbol waits for", sym, msg.signal_id)
            return
        kind = msg.signal_type
        if msg.force_exit:
            self.force_exit_triggered_symbols.add(sym)
        if msg.status == "failed" and kind == SignalType.ENTRY.value and strat is not None:
            self._call(sym, "outcome", lambda: (strat.discard_signal(), strat.reset_position_tracking()))
        book = {SignalType.ENTRY.value: self.incomplete_entry_trades,
                SignalType.EXIT.value: self.incomplete_exit_trades,
                SignalType.TAKE_PROFIT.value: self.incomplete_takeprofit_trades}.get(kind)
        if book is not None:
            if msg.incomplete:
                book[sym] = msg.incomplete
            else:
                book.pop(sym, None)
        del self.awaiting[sym]
        if self.halted is not None:
            # before the held ticks run: on a halted day they would only signal entries to be refused, one
            # after another, for as many ticks as waited (the daemon's backlog, not the backtest's)
            self.park(sym)
        self._release(sym)

    def _release(self, sym: str) -> None:
        """Run the ticks held while the symbol's signal was pending, until one of them signals again."""
        q = self.backlog.get(sym)
        self._releasing = True
        try:
            while q and sym not in self.awaiting:
                tick, ts, t_wall, pos = q.popleft()
                self._run(sym, tick, ts, t_wall, pos)
        finally:
            self._releasing = False

    def held_cap(self) -> tuple[float, float]:
        """How far this handler can be said to have got, in feed time and position: a held symbol has not
        finished past its pending signal, so signals up to that one may be acted on, later ones must wait."""
        cap_ts = cap_pos = float("inf")
        for _sid, t, pos in self.awaiting.values():
            cap_ts, cap_pos = min(cap_ts, t), min(cap_pos, pos)
        return cap_ts, cap_pos

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict[str, Any]:
        """What a restarted worker needs to rebuild this handler. Ticks held back for a pending signal are
        not included (copying them every second would cost more than the rest of the work): a restart counts
        them as dropped."""
        saved = {}
        for s, st in list(self.strategies.items()):
            try:
                one = st.state_dict()
            except Exception as e:  # noqa: BLE001 - strategy code: contained like any other call into it
                self._disable(s, "state_dict", e, self.last_ts.get(s, 0.0))
                continue
            try:
                _STATE_WIRE.encode(one)
            except (TypeError, ValueError, OverflowError) as e:
                # One strategy's state the wire cannot carry must not stop every checkpoint: the worker's frames
                # would then be kept since the last good one, for the rest of the day.
                if s not in self.unsaved:
                    self.unsaved.add(s)
                    log.error("%s: strategy %s's state_dict() is not JSON-safe (%s); it is left out of checkpoints, "
                              "so a restarted worker starts this strategy fresh", s, st.name, e)
                continue
            saved[s] = one
        return {
            "strategies": saved,
            "disabled": dict(self.disabled),
            "halted": self.halted,
            "parked": sorted(self.parked),
            "candles": {s: agg.state_dict() for s, agg in self.candles.items()},
            "last_ts": dict(self.last_ts),
            "awaiting": dict(self.awaiting),
            "held_ticks": sum(len(q) for q in self.backlog.values()),
            "incomplete": [self.incomplete_entry_trades, self.incomplete_exit_trades,
                           self.incomplete_takeprofit_trades],
            "force_exit": sorted(self.force_exit_triggered_symbols),
            "triggers": dict(self.triggers),
            "mark_second": dict(self.mark_second),
        }

    def restore(self, state: dict[str, Any]) -> None:
        for s, why in state.get("disabled", {}).items():  # disabled before the checkpoint: stays disabled
            if s in self.strategies:
                self.strategies.pop(s)
                self.candles.pop(s, None)
                self.disabled[s] = why
                log.warning("%s: strategy stays disabled for the day (%s)", s, why)
        self.halted = state.get("halted")
        for s in state.get("parked", ()):  # parked before the checkpoint: stays parked
            if self.strategies.pop(s, None) is not None:
                self.candles.pop(s, None)
                self.parked.add(s)
        for s, st in state.get("strategies", {}).items():
            if s in self.strategies:
                try:
                    self.strategies[s].load_state(st)
                except (ValueError, KeyError, TypeError) as e:  # parameters changed since the checkpoint
                    log.warning("%s: strategy state not restored (%s); starting it fresh", s, e)
                except Exception as e:  # noqa: BLE001 - strategy code: contained like any other call into it
                    self._disable(s, "load_state", e, self.last_ts.get(s, 0.0))
        for s, st in state.get("candles", {}).items():
            if s in self.candles:
                try:
                    self.candles[s].load_state(st)
                except (ValueError, KeyError, TypeError) as e:
                    log.warning("%s: candle state not restored (%s); starting fresh", s, e)
        self.last_ts.update(state.get("last_ts", {}))
        self.awaiting.update({s: tuple(v) for s, v in state.get("awaiting", {}).items()})
        for s in self.awaiting:
            self.backlog.setdefault(s, deque())
        inc = state.get("incomplete")
        if inc:
            self.incomplete_entry_trades, self.incomplete_exit_trades, self.incomplete_takeprofit_trades = (
                dict(inc[0]), dict(inc[1]), dict(inc[2]))
        self.force_exit_triggered_symbols = set(state.get("force_exit", ()))
        self.triggers = {s: tuple(v) for s, v in state.get("triggers", {}).items()}
        self.mark_second = dict(state.get("mark_second", {}))

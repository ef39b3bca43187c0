"""Everything a worker does with one tick: validate it, build candles, run the symbol's strategy, apply
signal management (seed chart 2), batch tick rows for the database, and hold a symbol while its last
signal is being acted on. (Signals are written by the TradeManager, which sees each one exactly once.)

The hold is what makes a replay trade exactly as the day would have: after a strategy emits a signal,
its later ticks wait in a backlog until the TradeManager says what became of the signal (an Outcome), so
the strategy always learns the fate of its order before it sees the next tick, whatever the wall clock
and queue timings were. Other symbols keep flowing meanwhile.

No Manager round trip happens here: incomplete-trade records arrive as Outcome messages and are kept in
local dicts with the seed's names.
"""
from __future__ import annotations

import logging
import math
import time
from collections import deque
from typing import Any, Callable, Iterable

from core.config import Config
from core.enums import SignalType, TickPersistence
from core.types import TICK_FIELDS, Signal, Tick
from db import MARKET_DATA_COLUMNS, DBHandler, MarketData
from pipeline.messages import ForceExit, Outcome, WorkerStats
from strategies import strategy_class
from strategies.base import Strategy
from strategies.candles import CandleAggregator

log = logging.getLogger(__name__)

# Keys an exit or take-profit signal inherits from the incomplete one it retries (seed chart 2).
MERGE_KEYS = ("stop_loss", "take_profit_price", "position_size", "close_fraction", "note")
_NUM = (int, float)


class MarketDataHandler:
    def __init__(self, cfg: Config, symbols: Iterable[str], emit: Callable[[Signal, float, bool, int], None],
                 db: DBHandler | None = None):
        self.cfg = cfg
        self.emit = emit
        self.db = db
        self.stats = WorkerStats()
        self.strategies: dict[str, Strategy] = {}
        self.candles: dict[str, CandleAggregator] = {}
        self.by_fyers: dict[str, str] = {}
        for sym in symbols:
            spec = cfg.symbol(sym)
            strat = cfg.strategies[spec.strategy]
            s = strategy_class(strat.kind)(sym, strat.name, strat.params, cfg.session)
            self.strategies[sym] = s
            self.by_fyers[spec.fyers] = sym
            if s.candle_seconds:
                self.candles[sym] = CandleAggregator(sym, s.candle_seconds)
        self.last_ts: dict[str, float] = {}
        # seed chart 2 state, fed by Outcome messages instead of per-tick Manager reads
        self.incomplete_entry_trades: dict[str, dict] = {}
        self.incomplete_exit_trades: dict[str, dict] = {}
        self.incomplete_takeprofit_trades: dict[str, dict] = {}
        self.force_exit_triggered_symbols: set[str] = set()
        # symbol -> (signal_id, signal time, feed position) awaiting its Outcome; backlog of ticks held meanwhile
        self.awaiting: dict[str, tuple[str, int, int]] = {}
        self.backlog: dict[str, deque] = {}
        self._releasing = False
        # persistence
        persist = cfg.market_data.persist
        self.persist_ticks = db is not None and persist is not TickPersistence.OFF
        self.sample_s = cfg.market_data.sample_seconds if persist is TickPersistence.SAMPLED else 0.0
        self.last_sampled: dict[str, float] = {}
        self.md_rows: list[tuple] = []
        self.last_flush = time.monotonic()
        self._warned: dict[str, int] = {}

    # ------------------------------------------------------------------ ticks
    def process_batch(self, ticks: list[Any], t_wall: float, positions: list[int]) -> None:
        for tick, pos in zip(ticks, positions):
            self.process(tick, t_wall, pos)

    def process(self, tick: Any, t_wall: float = 0.0, pos: int = 0) -> str | None:
        """`pos`: the tick's feed position, which orders its signal among every worker's (pipeline.sequencer).
        Returns the tick's symbol if it was accepted, None if it was counted as bad."""
        reason, sym, ts = self._validate(tick)
        if reason is not None:
            self._bad(reason, tick)
            return None
        self.stats.ticks += 1
        self.last_ts[sym] = ts
        if self.persist_ticks:
            self._persist_tick(tick, sym, ts)
        if sym in self.awaiting:  # kept as a tuple of values: a third of a dict's memory
            self.backlog[sym].append((tuple(map(tick.get, TICK_FIELDS)), ts, t_wall, pos))
            return sym
        self._run(sym, tick, ts, t_wall, pos)
        return sym

    def _validate(self, tick: Any) -> tuple[str | None, str, float]:
        """A cheap second look: every tick was judged in the feed process (pipeline.tick_validator), so nothing
        that passed there trips these; they guard a worker fed by anything else."""
        if type(tick) is not dict:
            return "not a dict", "", 0.0
        fy = tick.get("symbol")
        if fy is None:
            return "missing symbol", "", 0.0
        sym = self.by_fyers.get(fy)
        if sym is None:
            return "unknown symbol", "", 0.0
        ltp = tick.get("ltp")
        if type(ltp) not in _NUM:
            return "non-numeric price", sym, 0.0
        if not 0 < ltp < math.inf:  # also false for NaN
            return "zero, negative or non-finite price", sym, 0.0
        ts = tick.get("exch_feed_time")
        if ts is None:
            ts = tick.get("last_traded_time")
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

    def _run(self, sym: str, tick: Tick, ts: float, t_wall: float, pos: int) -> None:
        strat = self.strategies[sym]
        # seed chart 2: force-exit triggered symbols reset; an incomplete entry discards before run
        if sym in self.force_exit_triggered_symbols:
            self.force_exit_triggered_symbols.discard(sym)
            log.info("%s: force exit triggered; strategy reset", sym)
            strat._discard_signal()
            strat._reset_position_tracking()
        if sym in self.incomplete_entry_trades:
            strat._discard_signal()
            strat._reset_position_tracking()
            return
        signal = None
        agg = self.candles.get(sym)
        if agg is not None:
            for candle in agg.update(tick):
                signal = strat.on_candle(candle) or signal
        tick_signal = strat.run(tick)
        signal = tick_signal or signal
        if signal is None:
            return
        signal = self.apply_signal_management(sym, signal)
        if signal is None:
            return
        self.stats.signals += 1
        self.awaiting[sym] = (signal.signal_id, signal.time, pos)
        self.backlog.setdefault(sym, deque())
        # latency from the batch's arrival; `held`: the tick waited for an earlier signal's outcome (by design)
        self.emit(signal, (time.time() - t_wall) * 1000.0 if t_wall else 0.0, self._releasing, pos)

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

    # ------------------------------------------------------------------ feedback
    def apply_control(self, msg: Outcome | ForceExit) -> None:
        if isinstance(msg, ForceExit):
            self.force_exit_triggered_symbols.add(msg.symbol)
            strat = self.strategies.get(msg.symbol)
            if strat is not None:
                strat._discard_signal()
                strat._reset_position_tracking()
            return
        sym = msg.symbol
        strat = self.strategies.get(sym)
        if strat is None:
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
        if msg.status == "failed" and kind == SignalType.ENTRY.value:
            strat._discard_signal()
            strat._reset_position_tracking()
        book = {SignalType.ENTRY.value: self.incomplete_entry_trades, SignalType.EXIT.value: self.incomplete_exit_trades,
                SignalType.TAKE_PROFIT.value: self.incomplete_takeprofit_trades}.get(kind)
        if book is not None:
            if msg.incomplete:
                book[sym] = msg.incomplete
            else:
                book.pop(sym, None)
        del self.awaiting[sym]
        self._release(sym)

    def _release(self, sym: str) -> None:
        """Run the ticks held while the symbol's signal was pending, until one of them signals again."""
        q = self.backlog.get(sym)
        self._releasing = True
        try:
            while q and sym not in self.awaiting:
                values, ts, t_wall, pos = q.popleft()
                tick = {k: v for k, v in zip(TICK_FIELDS, values) if v is not None}
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

    # ------------------------------------------------------------------ persistence
    def _persist_tick(self, tick: dict, sym: str, ts: float) -> None:
        if self.sample_s:
            if ts - self.last_sampled.get(sym, -1e18) < self.sample_s:
                return
            self.last_sampled[sym] = ts
        self.md_rows.append(tuple(map(tick.get, MARKET_DATA_COLUMNS)))

    def flush(self, force: bool = False) -> None:
        if self.db is None:
            return
        now = time.monotonic()
        if not force and len(self.md_rows) < self.cfg.market_data.batch_rows \
                and now - self.last_flush < self.cfg.market_data.flush_seconds:
            return
        self.last_flush = now
        if self.md_rows:
            rows, self.md_rows = self.md_rows, []
            self.db.bulk_insert_tuples(MarketData, MARKET_DATA_COLUMNS, rows)
            self.stats.rows_persisted += len(rows)

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict[str, Any]:
        """What a restarted worker needs to rebuild this handler. Ticks held back for a pending signal are
        not included (copying them every second would cost more than the rest of the work): a restart counts
        them as dropped."""
        return {
            "strategies": {s: st.state_dict() for s, st in self.strategies.items()},
            "candles": {s: agg.state_dict() for s, agg in self.candles.items()},
            "last_ts": dict(self.last_ts),
            "awaiting": dict(self.awaiting),
            "held_ticks": sum(len(q) for q in self.backlog.values()),
            "incomplete": [self.incomplete_entry_trades, self.incomplete_exit_trades,
                           self.incomplete_takeprofit_trades],
            "force_exit": sorted(self.force_exit_triggered_symbols),
        }

    def restore(self, state: dict[str, Any]) -> None:
        for s, st in state.get("strategies", {}).items():
            if s in self.strategies:
                try:
                    self.strategies[s].load_state(st)
                except (ValueError, KeyError, TypeError) as e:  # parameters changed since the checkpoint
                    log.warning("%s: strategy state not restored (%s); starting it fresh", s, e)
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

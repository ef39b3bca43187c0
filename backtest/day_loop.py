"""A candle day's loop with quiet stretches folded whole: the backtest's fast path for backtest.ticks' four ticks
per candle.

Why: most of a day a symbol's strategy is flat and provably waiting (an MA crossover between crosses, an
opening range breakout inside its range), and running its ticks one by one, even folded into the candle
(MarketDataHandler.fold_quiet), costs Python steps per tick. Here, at the first tick of each candle of a flat
symbol, the strategy is shown the rest of the day's candles as arrays (Strategy.absorb_quiet, through
MarketDataHandler.fold_candles) and takes in bulk those it proves change nothing but its own state; their ticks
are then not generated at all. Everything else is backtest.ticks.day_ticks run by backtest.runner's loop, tick
for tick: the same ticks, times, extreme order and vol_traded_today, the clock stepped at every tick time of the
day (so the TradeManager's session rules fire at the same instants), and the fill model's clock kept as running
every tick leaves it. A symbol with an open trade, a pending signal, cap triggers or a flag is never folded so.

While a position is open, the strategy may instead prove a stretch of candles it acts on none of while it holds
(Strategy.held_span: mac's stop, exit_at and reversal out of reach, orb's stop and take-profit): their ticks are
still made and go to MarketDataHandler.held_tick, which does all process() does but call the strategy (the fill
model's price, the marks that feed the global caps once per data-second, the symbol's caps), so the TradeManager
sees exactly the same ticks. The first tick that could matter (past the stretch, a cap crossed, a forced exit
by a halt or the square-off, a pending signal) ends the stretch: the strategy takes the candles closed so far
(take_held), its open candle is rebuilt from the ticks seen, and that tick runs the whole path.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import numpy as np

from core.enums import PositionSide
from core.types import Tick
from history.frames import CandleColumns
from history.store import HistoryDay

if TYPE_CHECKING:
    from backtest.runner import DayRun


def run_candle_day(run: DayRun, good: list[HistoryDay], fyers: Mapping[str, str]) -> int:
    """Feed the day's candles of `good` to the day's handler and TradeManager as backtest.ticks.day_ticks would,
    folding quiet stretches whole, then close the day; returns how many ticks ran the whole path."""
    broker = run.broker
    broker.new_day()
    mdh, clock, tm = run.mdh, run.clock, run.tm
    mark, fold, process, fold_candles = broker.mark, mdh.fold_quiet, mdh.process, mdh.fold_candles
    fold_held, held_tick, end_held = mdh.fold_held, mdh.held_tick, mdh.end_held
    position, triggers, parked = tm.rm.trade_for, mdh.triggers, mdh.parked
    ran = 0
    if not good:
        run.close()
        return ran
    seconds = good[0].seconds
    tc_off = max(seconds - 1, 0)
    t2_off = min(2 * seconds // 3, tc_off)
    t1_off = min(seconds // 3, t2_off)
    names = [h.symbol for h in good]
    fy = [fyers[n] for n in names]
    cols = [h.columns for h in good]
    # a candle's values are read one at a time, as numpy scalars: a symbol-day runs a few of its candles (the
    # rest fold whole or are parked), where lists of every column cost more than all those reads
    o_a = [c.open for c in cols]
    h_a = [c.high for c in cols]
    lo_a = [c.low for c in cols]
    c_a = [c.close for c in cols]
    v_a = [c.volume for c in cols]
    starts = [c.start for c in cols]
    lens = [len(c) for c in cols]
    # each symbol is due at one candle at a time, the next it must look at: its candles before that were folded
    # whole or ran, and its parked ones are never due again. A symbol whose starts do not strictly rise (a day
    # traded despite duplicate or out-of-order candles) is due at every candle, in time order as day_ticks runs
    # them, and never folds: a fold takes the candles after it in the file's order.
    rising = [bool((st[1:] > st[:-1]).all()) for st in starts]
    # the day's candle times in order, every symbol's (one rising grid when all have the same candles)
    grid = starts[0]
    same = rising[0] and all(np.array_equal(grid, st) for st in starts)
    times = (grid if same else np.unique(np.concatenate(starts))).tolist()
    due: dict[int, list[tuple[int, int]]] = {}
    for s, st in enumerate(starts):
        for k, t in enumerate(st.tolist() if not rising[s] else st[:1].tolist()):
            due.setdefault(t, []).append((s, k))

    def later(s: int, k: int) -> None:
        """Symbol s is next due at its k-th candle."""
        if rising[s] and k < lens[s]:
            due.setdefault(int(starts[s][k]), []).append((s, k))

    cum = [0] * len(good)
    resume = [0] * len(good)  # each symbol's first candle not folded whole
    # where a fold stopped short: the strategy said that candle may act, so asking again there (its state unmoved
    # since) would take nothing; the candle runs tick by tick
    stopped = [-1] * len(good)
    # a held fold under way (MarketDataHandler.fold_held): its run[0]'s index and its last candle's, -1: none
    h_base = [-1] * len(good)
    h_end = [-1] * len(good)
    long_ = PositionSide.LONG

    def step(t: int) -> None:
        if t > clock.now():
            clock.advance(t)
            tm.on_clock(t)
            run.drain()
        broker.now = t  # as the first tick at t marks it (a symbol folded whole marks nothing)

    def one(s: int, k: int, t: int, price: float, c: int) -> int:
        sym = names[s]
        mark(sym, price, t)
        if h_end[s] >= 0:
            if held_tick(sym, k - h_base[s], t, price, c):
                if run.inbox or run.controls:
                    run.drain()
                return 0
            h_end[s] = -1  # the fold ended at this tick, which runs the whole path
        if fold(sym, t, price, c):
            return 0
        process(Tick(ltp=price, vol_traded_today=c, last_traded_time=t, exch_feed_time=t, symbol=fy[s]))
        if run.inbox or run.controls:
            run.drain()
        return 1

    def ticks_from(s: int, k: int) -> Callable[[int], list[tuple[int, float, int]]]:
        """The ticks of the symbol's m-th candle after its k-th (the open one), with the volume before it."""
        def of(m: int) -> list[tuple[int, float, int]]:
            j = k + m
            return _candle_ticks(int(starts[s][j]), float(o_a[s][j]), float(h_a[s][j]), float(lo_a[s][j]),
                                 float(c_a[s][j]), cum[s] + _volume(v_a[s], k + 1, j), int(v_a[s][j]),
                                 t1_off, t2_off, tc_off)
        return of

    for t0 in times:
        step(t0)
        live = []
        here = due.pop(t0, [])
        for s, k in sorted(here) if len(here) > 1 else here:
            if k < resume[s]:
                continue
            sym = names[s]
            if sym in parked and position(sym) is None:
                # its strategy stopped for the halted day and nothing is held: none of the rest can act
                resume[s] = lens[s]
                run.candles_parked += resume[s] - k
                continue
            if h_end[s] >= 0 and k > h_end[s]:
                end_held(sym)  # every proven candle ran held: the strategy takes them
                h_end[s] = -1
            if k and h_end[s] < 0 and rising[s]:
                if k != stopped[s] and sym not in triggers and position(sym) is None:
                    n = fold_candles(sym, _from(cols[s], k - 1), seconds, ticks_from(s, k - 1))
                    if n:
                        resume[s] = stopped[s] = k + n
                        cum[s] += _volume(v_a[s], k, k + n)
                        later(s, k + n)
                        continue
                elif position(sym) is not None and fold_held(sym, _from(cols[s], k - 1), seconds):
                    h_base[s], h_end[s] = k - 1, k - 1 + mdh.held[sym].n
            ran += one(s, k, t0, float(o_a[s][k]), cum[s])
            live.append((s, k))
        firsts = []
        for s, k in live:
            trade = position(names[s])
            o, hi, lo = float(o_a[s][k]), float(h_a[s][k]), float(lo_a[s][k])
            low_first = trade.side is long_ if trade is not None else o - lo <= hi - o
            firsts.append((lo, hi) if low_first else (hi, lo))
        for m, t in ((0, t0 + t1_off), (1, t0 + t2_off)):
            step(t)
            for (s, k), pair in zip(live, firsts, strict=True):
                ran += one(s, k, t, pair[m], cum[s])
        tc = t0 + tc_off
        step(tc)
        for s, k in live:
            cum[s] += int(v_a[s][k])
            ran += one(s, k, tc, float(c_a[s][k]), cum[s])
            later(s, k + 1)
    for s in range(len(good)):
        if h_end[s] >= 0:
            end_held(names[s])
    run.close()
    return ran


def _from(c: CandleColumns, k: int) -> CandleColumns:
    """The symbol-day's candles from the k-th on (views, no copy)."""
    return CandleColumns(c.start[k:], c.open[k:], c.high[k:], c.low[k:], c.close[k:], c.volume[k:])


def _volume(v: np.ndarray, a: int, b: int) -> int:
    """What candles a..b-1 traded, as their ticks carry it: whole numbers (a float column's values truncated
    one by one)."""
    if v.dtype.kind in "iu":
        return int(v[a:b].sum())
    return sum(int(x) for x in v[a:b].tolist())


def _candle_ticks(t0: int, o: float, hi: float, lo: float, c: float, cum: int, v: int, t1_off: int, t2_off: int,
                  tc_off: int) -> list[tuple[int, float, int]]:
    """A flat symbol's four ticks of one candle as backtest.ticks makes them: (time, price, vol_traded_today)."""
    first, second = (lo, hi) if o - lo <= hi - o else (hi, lo)
    return [(t0, o, cum), (t0 + t1_off, first, cum), (t0 + t2_off, second, cum), (t0 + tc_off, c, cum + v)]

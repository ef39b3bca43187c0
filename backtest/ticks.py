"""A day of candles as the ticks a worker would have seen: how the backtest feeds candles to live code.

Each candle [start, start + s) becomes four ticks: the open at `start`, the two extremes at start + s/3 and
start + 2s/3, the close at start + s - 1. Which extreme comes first is the path's one unknown, so it is chosen
against the position: with a long open the low comes first, with a short the high (a stop and a target both
inside one candle: the stop, the worse of the two, is hit); flat, the extreme nearer the open comes first.
Symbols are interleaved tick by tick in time order, so every symbol's open of a minute is run before any
symbol's extreme of it (the global caps and halts see prices in time order).
The close carries the candle's volume (vol_traded_today grows by it), so a strategy's candles rebuilt from
these ticks (strategies.candles.CandleAggregator) have the source's open, high, low, close and volume.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from core.enums import PositionSide
from history.store import HistoryDay


def day_ticks(days: Sequence[HistoryDay], position: Callable[[str], Any]) -> Iterator[tuple[int, str, float, int]]:
    """(time, symbol, price, vol_traded_today) for the day's candles of every symbol in `days`, in time order:
    plain values, so that a tick the runner folds into a quiet candle costs no Tick (backtest.runner builds the
    Tick of those it runs). `position(symbol)`: the open trade (with .side) or None, read when a candle's
    extremes are ordered."""
    if not days:
        return
    seconds = days[0].seconds
    sym_idx = np.concatenate([np.full(len(h.columns), i, dtype=np.int64) for i, h in enumerate(days)])
    start = np.concatenate([h.columns.start for h in days])
    cols = [np.concatenate([getattr(h.columns, f) for h in days]) for f in ("open", "high", "low", "close")]
    vol = np.concatenate([h.columns.volume for h in days])
    order = np.lexsort((sym_idx, start))
    start_l = start[order].tolist()
    idx_l = sym_idx[order].tolist()
    o_l, h_l, lo_l, c_l = (c[order].tolist() for c in cols)
    v_l = vol[order].tolist()
    names = [h.symbol for h in days]
    cum = [0] * len(days)
    tc_off = max(seconds - 1, 0)
    t2_off = min(2 * seconds // 3, tc_off)
    t1_off = min(seconds // 3, t2_off)
    n = len(start_l)
    i = 0
    long_ = PositionSide.LONG
    while i < n:
        j = i
        t0 = start_l[i]
        while j < n and start_l[j] == t0:
            j += 1
        group = range(i, j)
        for k in group:
            s, p = idx_l[k], o_l[k]
            yield t0, names[s], p, cum[s]
        firsts = []
        for k in group:
            s = idx_l[k]
            trade = position(names[s])
            o, hi, lo = o_l[k], h_l[k], lo_l[k]
            if trade is not None:
                low_first = trade.side is long_
            else:
                low_first = o - lo <= hi - o
            firsts.append((lo, hi) if low_first else (hi, lo))
        for step, t in ((0, t0 + t1_off), (1, t0 + t2_off)):
            for k, pair in zip(group, firsts, strict=True):
                s, p = idx_l[k], pair[step]
                yield t, names[s], p, cum[s]
        tc = t0 + tc_off
        for k in group:
            s, p = idx_l[k], c_l[k]
            cum[s] += int(v_l[k])
            yield tc, names[s], p, cum[s]
        i = j

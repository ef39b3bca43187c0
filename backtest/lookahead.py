"""`backtest lookahead`: does any signal depend on data after its own time?

The run is made once over all the data; then, for every time a signal was emitted, its day is run again with
only the candles that started at or before that time, and the signals up to that time must be the same (same
symbol, strategy, time, type, side, price, stop and target). A difference means something (a strategy, or the
way candles are fed) used data the live feed would not yet have had: the first one found is reported with the
strategy and the time. Days are independent (each starts from the configured capital and fresh strategies,
warmed only from days before it: backtest.warm), so a cut run needs only its own day.
"""
from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from backtest.runner import BacktestSpec, TickBuilder, close_run_db, lead_in, open_run_db, run_days, signal_key
from backtest.ticks import day_ticks
from core.clock import fmt_ist, ist_date
from core.types import Signal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lookahead:
    """The first signal that changed when the data was cut at `cut_at`."""

    strategy: str
    symbol: str
    time: int
    cut_at: int
    full: Signal | None      # the signal of the whole run (None: the cut run had one the whole run did not)
    cut: Signal | None       # the cut run's (None: it had none there)

    def __str__(self) -> str:
        what = ("appears only with later data" if self.cut is None else
                "is missing with the whole data" if self.full is None else "differs with later data")
        return (f"strategy {self.strategy} on {self.symbol} at {fmt_ist(self.time)}: its signal {what} "
                f"(data cut at {fmt_ist(self.cut_at)})")


@dataclass(frozen=True)
class LookaheadReport:
    signals: int
    cuts: int
    found: Lookahead | None


def check(spec: BacktestSpec, ticks: TickBuilder = day_ticks,
          on_cut: Callable[[int, int], None] | None = None) -> LookaheadReport:
    """Run the spec, then each cut; stops at the first difference. `on_cut(done, total)` reports progress."""
    with tempfile.TemporaryDirectory(prefix="lookahead-") as tmp:
        spec = replace(spec, workers=1, progress=None, keep_signals=True)
        full = Path(tmp) / "full.sqlite"
        try:
            signals = run_days(spec, open_run_db(full), ticks=ticks).signals
        finally:
            close_run_db(full)
        times = sorted({int(s.time) for s in signals})
        for n, t in enumerate(times):
            d = ist_date(t)
            day_spec = replace(spec, first=lead_in(spec, d), last=d, trade_from=d)
            cut = Path(tmp) / f"cut-{n}.sqlite"
            try:
                cut_signals = run_days(day_spec, open_run_db(cut), cut_at=t, ticks=ticks).signals
            finally:
                close_run_db(cut)
            want = [s for s in signals if ist_date(int(s.time)) == d and int(s.time) <= t]
            got = [s for s in cut_signals if int(s.time) <= t]
            found = _first_difference(want, got, t)
            if on_cut is not None:
                on_cut(n + 1, len(times))
            if found is not None:
                return LookaheadReport(len(signals), n + 1, found)
        return LookaheadReport(len(signals), len(times), None)


def _first_difference(want: list[Signal], got: list[Signal], cut_at: int) -> Lookahead | None:
    for i in range(max(len(want), len(got))):
        a = want[i] if i < len(want) else None
        b = got[i] if i < len(got) else None
        if a is not None and b is not None and signal_key(a) == signal_key(b):
            continue
        ref = a if a is not None else b
        assert ref is not None
        return Lookahead(ref.strategy, ref.symbol, int(ref.time), cut_at, a, b)
    return None

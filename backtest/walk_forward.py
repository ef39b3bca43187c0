"""Walk-forward: optimise on a stretch of history, then trade the best point on the stretch that follows, which
the search never saw; K times, rolling forward. What the out-of-sample stretches earn, stitched together, is
the honest estimate of the search's worth (the in-sample best is always flattering).

The split (README "Optimisation and walk-forward"): the range's trading days are cut into one in-sample
window followed by K out-of-sample windows of equal length that tile the rest of the range. With an
in-sample ratio r (default 0.75) each in-sample window is r / (1 - r) times an out-of-sample one (3x at 0.75).
Rolling (the default): fold k's in-sample window is the stretch just before its out-of-sample one, the same
length every fold. Anchored (--anchored): it starts at the range's first day and grows.
Stitching compounds: each out-of-sample run starts from the configured capital, and its daily equity is
scaled so it starts where the previous fold ended.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from backtest.metrics import cagr, daily_returns, drawdown, ratios
from backtest.optimize import Evaluate, Fold, Outcome, PointResult, Settings, best_point, judge

log = logging.getLogger(__name__)


LEAD_IN_DAYS = 7   # a fold reads a week before its first day (not past the range's start), as the runner's blocks do


class WalkForwardError(ValueError):
    """The range cannot be cut as asked (too few days for K folds)."""


@dataclass(frozen=True)
class FoldResult:
    index: int
    in_sample: Fold
    out_sample: Fold
    results: tuple[PointResult, ...]            # every in-sample point
    best: PointResult | None                    # None: no point passed in-sample; the fold is not traded
    oos: PointResult | None                     # the best point's verdict out of sample (not rejected for trades)
    oos_equity: tuple[tuple[date, Decimal], ...]
    oos_capital: Decimal | None = None          # the out-of-sample run's starting capital


@dataclass(frozen=True)
class Stitched:
    """The out-of-sample equity of every fold, compounded into one series, and its figures."""

    start_capital: Decimal
    equity: tuple[tuple[date, Decimal], ...]
    total_return: float
    cagr: float | None
    sharpe: float | None
    max_drawdown: float


def split(days: Sequence[date], k: int, in_sample_ratio: float, anchored: bool) -> list[tuple[Fold, Fold]]:
    """(in-sample, out-of-sample) folds over the trading days, as described in the module doc."""
    if k < 1:
        raise WalkForwardError(f"--walk-forward: {k} is not allowed -- expected at least 1 fold")
    if not 0 < in_sample_ratio < 1:
        raise WalkForwardError(f"--in-sample-ratio: {in_sample_ratio} is not allowed -- expected a fraction "
                               "between 0 and 1 (0.75: in-sample three times out-of-sample)")
    ds = sorted(set(days))
    n = len(ds)
    per = in_sample_ratio / (1 - in_sample_ratio)
    oos = int(n / (k + per))
    first = n - k * oos
    if oos < 1 or first < 1:
        raise WalkForwardError(f"--walk-forward: {k} folds are not allowed over {n} trading days at in-sample "
                               f"ratio {in_sample_ratio} -- each out-of-sample window would be empty; "
                               "use fewer folds or a longer range")
    def lead(d: date) -> date | None:
        back = max(ds[0], d - timedelta(days=LEAD_IN_DAYS))
        return back if back < d else None

    out = []
    for j in range(k):
        o0, o1 = first + j * oos, first + (j + 1) * oos - 1
        i0 = 0 if anchored else o0 - first
        out.append((Fold(ds[i0], ds[o0 - 1], j, "in", lead(ds[i0])), Fold(ds[o0], ds[o1], j, "out", lead(ds[o0]))))
    return out


def run(evaluate: Evaluate, search: Callable[[Fold], list[PointResult]], folds: Sequence[tuple[Fold, Fold]],
        settings: Settings) -> list[FoldResult]:
    """Optimise each in-sample window with `search`, then backtest its best point out of sample."""
    out = []
    for ins, oos in folds:
        results = search(ins)
        best = best_point(results)
        verdict: PointResult | None = None
        equity: tuple[tuple[date, Decimal], ...] = ()
        capital: Decimal | None = None
        if best is None:
            log.warning("fold %d: no point passed in-sample (%s to %s); its out-of-sample window is not traded",
                        ins.index, ins.start, ins.end)
        else:
            outcome: Outcome = evaluate(best.point, oos)
            verdict = judge(best.index, best.point, outcome, Settings(settings.objective, 0, 1))
            equity, capital = outcome.equity, outcome.summary.starting_capital
        out.append(FoldResult(ins.index, ins, oos, tuple(results), best, verdict, tuple(equity), capital))
    return out


def stitch(folds: Sequence[FoldResult], risk_free_rate: float = 0.0) -> Stitched:
    """Each fold's out-of-sample equity scaled to start where the previous ended (compounded), from the first
    traded fold's starting capital. A fold without a point holds the capital flat: its days are not in the
    series."""
    start_capital = next((f.oos_capital for f in folds if f.oos_capital), Decimal(1))
    level = start_capital
    series: list[tuple[date, Decimal]] = []
    for f in folds:
        if not f.oos_equity or not f.oos_capital:
            continue
        scale = level / f.oos_capital
        for d, eq in f.oos_equity:
            series.append((d, eq * scale))
        level = series[-1][1]
    _, sharpe, _ = ratios(daily_returns(start_capital, series), risk_free_rate) if series else (None, None, None)
    return Stitched(start_capital, tuple(series), float(level / start_capital - 1),
                    cagr(start_capital, level, len(series)), sharpe, drawdown(start_capital, series).pct)

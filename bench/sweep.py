"""A parameter sweep's throughput on the local process pool; ONE JSON line.

    .venv/bin/python bench/sweep.py [--points 100] [--from 2025-01-01 --to 2025-12-31] [--symbol LT]
        [--workers 1,2] [--source synthetic] [--cache DIR] [--stand-in]

`points` moving-average crossover points (mac.fast x mac.slow, all valid) over one symbol's range, each one
backtest, run with each worker count; `sweep_candle_runs_per_s` is candles run per second summed over the
points (a point over a year of 1-minute candles is about 94,000). The backtest is backtest.runner when it
imports (the output says "runner"), else the pure stand-in of tests/optimize_fixtures.py (the output says so
and why): then the figure measures the pool, not the trading code. The results of every worker count are
compared: `identical` is false if any point's net P&L or trade count differs. `candle_runs_per_cpu_s` divides
by the CPU time the backtests themselves used: on a busy machine, where the wall-clock figure cannot show
scaling, equal figures for 1 and 2 workers say the pool adds no work per point.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from backtest.optimize import Evaluate, Fold, Outcome, worker_pool  # noqa: E402
from backtest.sweep_params import Point  # noqa: E402


def points(n: int) -> list[Point]:
    """fast 5..24 by slow 30..70: 100 points, every one valid; the first n."""
    grid: list[Point] = [{"mac.fast": f, "mac.slow": s} for f in range(5, 25) for s in range(30, 80, 10)]
    if not 1 <= n <= len(grid):
        raise SystemExit(f"--points {n} is not allowed -- expected 1 to {len(grid)}")
    return grid[:n]


def one(evaluate: Evaluate, point: Point, fold: Fold) -> tuple[int, str, int, float]:
    """(candles, net P&L, positions, CPU seconds) of one point: only these cross back."""
    c0 = time.process_time()
    o: Outcome = evaluate(point, fold)
    return o.candles, str(o.summary.net_pnl), o.summary.trades.positions, time.process_time() - c0


def warm() -> int:
    """Run in each pool process before the clock starts: the imports a backtest needs, paid once per process."""
    import os

    import backtest.optimize_runner  # noqa: F401
    import tests.optimize_fixtures  # noqa: F401

    try:
        import backtest.runner  # noqa: F401  # the trading code's modules, as the parent has them
    except ImportError:
        pass
    return os.getpid()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--points", type=int, default=100)
    p.add_argument("--from", dest="first", default="2025-01-01")
    p.add_argument("--to", dest="last", default="2025-12-31")
    p.add_argument("--symbol", default="LT", help="a symbol config.yaml trades with mac (default LT)")
    p.add_argument("--workers", default="1,2", help="worker counts to measure (default 1,2)")
    p.add_argument("--source", default="synthetic")
    p.add_argument("--cache", default=None, help="candle cache (default data/history)")
    p.add_argument("--stand-in", action="store_true", help="measure the pure stand-in even if the runner imports")
    args = p.parse_args(argv)
    fold = Fold(date.fromisoformat(args.first), date.fromisoformat(args.last))
    counts = [int(w) for w in args.workers.split(",")]
    evaluate: Any
    why = None
    if not args.stand_in:
        try:
            import backtest.runner  # noqa: F401
        except ImportError as e:
            why = f"backtest.runner does not import ({e}): measured the pure stand-in, not the trading code"
    else:
        why = "--stand-in: measured the pure stand-in, not the trading code"
    if why is None:
        import logging

        from backtest.optimize_runner import RunnerEvaluate

        logging.basicConfig(level=logging.ERROR)
        evaluate = RunnerEvaluate(str(ROOT / "config.yaml"), (args.symbol,), args.source, "1m", None, args.cache)
        evaluate.prefetch(fold.start, fold.end)
    else:
        from tests.optimize_fixtures import evaluate as stand_in

        evaluate = stand_in
    pts = points(args.points)
    rates: dict[str, float] = {}
    seconds: dict[str, float] = {}
    outcomes: list[list[tuple[int, str, int]]] = []
    per_cpu: dict[str, float] = {}
    candles = 0
    startup: dict[str, float] = {}
    for w in counts:
        t_start = time.perf_counter()
        with worker_pool(w) as pool:
            if pool is not None:    # every process started and imported before timing (startup is reported)
                pids: set[int] = set()
                for _ in range(20):
                    pids |= {f.result() for f in [pool.submit(warm) for _ in range(2 * w)]}
                    if len(pids) >= w:
                        break
            t0 = time.perf_counter()
            startup[str(w)] = round(t0 - t_start, 2)
            if pool is None:
                got = [one(evaluate, pt, fold) for pt in pts]
            else:
                got = [f.result() for f in [pool.submit(one, evaluate, pt, fold) for pt in pts]]
        took = time.perf_counter() - t0
        candles = sum(g[0] for g in got)
        rates[str(w)] = round(candles / took, 1)
        seconds[str(w)] = round(took, 2)
        per_cpu[str(w)] = round(candles / max(sum(g[3] for g in got), 1e-9), 1)
        outcomes.append([g[:3] for g in got])
    out: dict[str, Any] = {
        "sweep_candle_runs_per_s": rates, "seconds": seconds, "pool_startup_s": startup,
        "candle_runs_per_cpu_s": per_cpu, "points": len(pts),
        "candles": candles,
        "from": args.first, "to": args.last, "symbol": args.symbol,
        "evaluate": "runner" if why is None else "stand-in", "identical": all(o == outcomes[0] for o in outcomes),
    }
    if len(counts) > 1 and rates[str(counts[0])]:
        out["scaling"] = round(rates[str(counts[-1])] / rates[str(counts[0])], 2)
    if why is not None:
        out["note"] = why
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

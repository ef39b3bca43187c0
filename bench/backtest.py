"""The backtest runner's speed, printed as one JSON line.

    .venv/bin/python bench/backtest.py [--symbols 4] [--days 10] [--workers 1] [--out DIR]

Generated 1-minute candles (the synthetic history source, cached to Parquet first and not timed) for N symbols
over D calendar days (and the fortnight before, which the first day's warm-up from history reads), half of
them on orb and half on mac (config.yaml's strategies), run through the whole live path: the worker's handler
and the strategies, the TradeManager with its risk checks, caps and halts, the ledger on the run's SQLite
database, the cost table and the fill model.
- candles: candles run; candles_per_s: over the run's wall time (reading the cache included; with --workers N,
  N processes over blocks of days, each on its own database, merged);
- candles_per_cpu_s: over the CPU time of the process and its workers (steadier on a shared machine);
- trades: closed trades; peak_rss_mb: the process's peak resident memory;
- ticks_run / ticks_folded: of the four ticks per candle, those run through the worker's whole path and those
  folded into a quiet strategy's candle without calling it, one by one or in quiet stretches of candles folded
  whole (backtest.runner, backtest.day_loop).
--out DIR keeps the run's summary.json, trades.csv and report.html in DIR/bench (after the timing), so two
versions of the code can be compared file by file (summary.json's run.elapsed_s aside).
"""
from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backtest.runner import BacktestSpec, run_backtest  # noqa: E402
from core.config import SymbolSpec, load_config  # noqa: E402
from history.intervals import parse_interval  # noqa: E402
from history.store import HistoryStore  # noqa: E402
from history.synthetic import SyntheticSource  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the workers): what a run costs on a shared
    machine, where wall time also counts the other processes' turns."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=4)
    ap.add_argument("--days", type=int, default=10)
    ap.add_argument("--workers", type=int, default=1, help="processes over blocks of days")
    ap.add_argument("--out", type=Path, default=None, help="keep the run's outputs in OUT/bench")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger().setLevel(logging.ERROR)
    cfg = load_config(ROOT / "config.yaml")
    names = [f"SYM{i:03d}" for i in range(args.symbols)]
    cfg = replace(cfg, symbols=tuple(SymbolSpec(n, f"NSE:{n}-EQ", "orb" if i % 2 == 0 else "mac")
                                     for i, n in enumerate(names)))
    first = date(2025, 3, 3)
    last = first + timedelta(days=args.days - 1)
    m1 = parse_interval("1m")
    with tempfile.TemporaryDirectory() as tmp:
        source = SyntheticSource(cfg.replay.seed, cfg.session)
        store = HistoryStore(source, Path(tmp) / "cache", cfg.session)
        for n in names:  # with the fortnight before: the first day's warm-up from history reads it
            store.prefetch(n, cfg.exchange, m1, first - timedelta(days=14), last)
        spec = BacktestSpec(cfg=cfg, source=source, interval=m1, first=first, last=last, symbols=tuple(names),
                            cache_dir=Path(tmp) / "cache", out_root=Path(tmp) / "out", run_id="bench",
                            workers=args.workers)
        t0, c0 = time.perf_counter(), _cpu()
        res = run_backtest(spec)
        elapsed, cpu = time.perf_counter() - t0, _cpu() - c0
        if args.out is not None:
            from backtest.outputs import write_outputs

            write_outputs(spec, replace(res, out_dir=args.out / "bench"), record_run=False)
    print(json.dumps({"candles": res.candles, "candles_per_s": round(res.candles / elapsed),
                      "symbols": args.symbols, "days": len(res.days), "trades": len(res.trades),
                      "workers": args.workers, "elapsed_s": round(elapsed, 2), "cpu_s": round(cpu, 2),
                      "candles_per_cpu_s": round(res.candles / cpu), "ticks_run": res.ticks_run,
                      "ticks_folded": 4 * res.candles - res.ticks_run,
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


if __name__ == "__main__":
    main()

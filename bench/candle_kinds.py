"""The backtest's speed with the rsi, momentum and rules kinds (the candle strategies traders write), printed as
one JSON line.

    .venv/bin/python bench/candle_kinds.py [--symbols 12] [--days 10] [--cache DIR] [--out DIR]

As bench/backtest.py (generated 1-minute candles, the whole live path, the figures it prints), but the symbols
take turns on three strategies: rsi (Wilder's RSI, period 14, 30 / 70, exit at 50), momentum (ROC 10 over 0.5%
with EMA 50) and a rules strategy (config.yaml's commented trend_or_fade: EMA 9 / 21 crosses, RSI 14, Bollinger
20). --cache DIR keeps the generated history between runs (generating it is not timed, but takes minutes on a
loaded machine); --out DIR keeps summary.json and trades.csv in DIR/bench, to compare two versions file by file.
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
from core.config import StrategySpec, SymbolSpec, load_config  # noqa: E402
from history.intervals import parse_interval  # noqa: E402
from history.store import HistoryStore  # noqa: E402
from history.synthetic import SyntheticSource  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
KINDS = {
    "rsi": StrategySpec("rsi", "rsi", {}),
    "momentum": StrategySpec("momentum", "momentum", {}),
    "trend_or_fade": StrategySpec("trend_or_fade", "rules", {
        "atr_period": 14, "stop": "2 atr",
        "indicators": {"fast": {"ema": 9}, "slow": {"ema": 21}, "rsi14": {"rsi": 14}, "bb": {"bollinger": [20, 2]}},
        "rules": {"trend_long": {"side": "long", "when": "fast crosses_above slow and rsi14 < 70",
                                 "exit": "fast crosses_below slow", "target": "3 atr"},
                  "stretched_short": {"side": "short", "when": "close > bb.upper and rsi14 > 70",
                                      "exit": "close <= bb.middle", "stop": "1%"}}}),
}


def _cpu() -> float:
    """CPU seconds of this process and its finished children."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=12)
    ap.add_argument("--days", type=int, default=10)
    ap.add_argument("--cache", type=Path, default=None, help="keep the generated history here")
    ap.add_argument("--out", type=Path, default=None, help="keep the run's outputs in OUT/bench")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger().setLevel(logging.ERROR)
    cfg = load_config(ROOT / "config.yaml")
    names = [f"SYM{i:03d}" for i in range(args.symbols)]
    kinds = list(KINDS)
    cfg = replace(cfg, strategies={**cfg.strategies, **KINDS},
                  symbols=tuple(SymbolSpec(n, f"NSE:{n}-EQ", kinds[i % len(kinds)]) for i, n in enumerate(names)))
    first = date(2025, 3, 3)
    last = first + timedelta(days=args.days - 1)
    m1 = parse_interval("1m")
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache if args.cache is not None else Path(tmp) / "cache"
        source = SyntheticSource(cfg.replay.seed, cfg.session)
        store = HistoryStore(source, cache, cfg.session)
        for n in names:  # with the fortnight before: the first day's warm-up from history reads it
            store.prefetch(n, cfg.exchange, m1, first - timedelta(days=14), last)
        spec = BacktestSpec(cfg=cfg, source=source, interval=m1, first=first, last=last, symbols=tuple(names),
                            cache_dir=cache, out_root=Path(tmp) / "out", run_id="bench")
        t0, c0 = time.perf_counter(), _cpu()
        res = run_backtest(spec)
        elapsed, cpu = time.perf_counter() - t0, _cpu() - c0
        if args.out is not None:
            from backtest.outputs import write_outputs

            write_outputs(spec, replace(res, out_dir=args.out / "bench"), record_run=False)
    print(json.dumps({"candles": res.candles, "candles_per_s": round(res.candles / elapsed),
                      "symbols": args.symbols, "days": len(res.days), "trades": len(res.trades),
                      "elapsed_s": round(elapsed, 2), "cpu_s": round(cpu, 2),
                      "candles_per_cpu_s": round(res.candles / cpu), "ticks_run": res.ticks_run,
                      "ticks_folded": 4 * (res.candles - res.candles_parked) - res.ticks_run,
                      "candles_parked": res.candles_parked,
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


if __name__ == "__main__":
    main()

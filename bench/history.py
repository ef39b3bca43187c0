"""The history layer's speed, printed as one JSON line.

    .venv/bin/python bench/history.py [--symbols 4] [--days 60]

- fetch_candles_per_s: synthetic 1-minute candles generated and written to a fresh cache (one Parquet file
  per symbol-day), the paper broker's cost per candle served;
- read_candles_per_s: HistoryStore.days() over the cached range, one day in memory at a time, with the
  quality checks: what a backtest reading the cache's columns pays before its own work;
- read_as_candles_per_s: the same, building a Candle per candle (HistoryDay.candles);
- peak_rss_mb: the process's peak resident memory.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from history.intervals import parse_interval  # noqa: E402
from history.store import HistoryStore  # noqa: E402
from history.synthetic import SyntheticSource  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=4)
    ap.add_argument("--days", type=int, default=60)
    args = ap.parse_args()
    symbols = [f"SYM{i:03d}" for i in range(args.symbols)]
    first = date(2025, 1, 1)
    last = first + timedelta(days=args.days - 1)
    m1 = parse_interval("1m")
    with tempfile.TemporaryDirectory() as tmp:
        store = HistoryStore(SyntheticSource(7), Path(tmp), today=date(2026, 12, 1))
        t = time.perf_counter()
        for s in symbols:
            store.prefetch(s, "NSE", m1, first, last)
        fetch_s = time.perf_counter() - t
        t = time.perf_counter()
        candles = days = 0
        for s in symbols:
            for d in store.days(s, "NSE", m1, first, last):
                days += 1
                candles += len(d.columns)
        read_s = time.perf_counter() - t
        t = time.perf_counter()
        for s in symbols:
            for d in store.days(s, "NSE", m1, first, last):
                _ = d.candles
        objects_s = time.perf_counter() - t
    print(json.dumps({"symbols": args.symbols, "days": days, "candles": candles,
                      "fetch_candles_per_s": round(candles / fetch_s), "read_candles_per_s": round(candles / read_s),
                      "read_as_candles_per_s": round(candles / objects_s),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


if __name__ == "__main__":
    main()

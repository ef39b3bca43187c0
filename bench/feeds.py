"""Throughput of the tick sources, printed as one JSON line.

    .venv/bin/python bench/feeds.py [--symbols 200] [--slice 500000]

- generate_ticks_per_s: a full synthetic session (09:15-15:30) for --symbols tickers, dicts built and
  consumed (the pipeline target is 100,000 ticks/s end to end, so the source must be well above it);
- columns_ticks_per_s: the same day as TickColumns windows (what the feed process takes at full speed);
- replay_ticks_per_s: SimulatedWebSocket at speed max delivering to a trivial on_message;
- feed_client_ticks_per_s: the live client code (consumer thread, batches) over the simulated socket;
- csv_gz_write/read_ticks_per_s: the recording format, on --slice ticks.
"""
from __future__ import annotations

import argparse
import collections
import itertools
import json
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from feeds.recorded import read_ticks, write_ticks  # noqa: E402
from feeds.simulated import SimulatedWebSocket, simulated_feed  # noqa: E402
from feeds.synthetic import SyntheticDay, default_tickers, generate_day  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=200)
    ap.add_argument("--slice", type=int, default=500_000)
    args = ap.parse_args()
    tickers = default_tickers(args.symbols)
    day = date(2024, 1, 2)
    out: dict[str, float | int | str] = {"symbols": args.symbols}

    t = time.perf_counter()
    n = 0
    for _ in generate_day(tickers, day, seed=7):
        n += 1
    dt = time.perf_counter() - t
    out.update(day_ticks=n, generate_s=round(dt, 2), generate_ticks_per_s=round(n / dt))

    t = time.perf_counter()
    n = sum(len(w) for w in SyntheticDay(tickers, day, seed=7).windows())
    dt = time.perf_counter() - t
    out.update(columns_s=round(dt, 2), columns_ticks_per_s=round(n / dt))

    ticks = list(itertools.islice(generate_day(tickers, day, seed=7), args.slice))
    count = [0]

    def on_message(m: dict) -> None:
        count[0] += 1
    ws = SimulatedWebSocket(ticks, on_message=on_message, on_connect=lambda: ws.subscribe(tickers))
    t = time.perf_counter()
    ws.connect()
    ws.wait_done()
    out["replay_ticks_per_s"] = round(ws.delivered / (time.perf_counter() - t))
    ws.close_connection()

    got: collections.deque[object] = collections.deque(maxlen=1)
    feed = simulated_feed(ticks, tickers, on_ticks=got.append)
    t = time.perf_counter()
    feed.start()
    feed.socket.wait_done()
    feed.wait_delivered(60)
    out["feed_client_ticks_per_s"] = round(feed.delivered / (time.perf_counter() - t))
    feed.stop()

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bench.csv.gz"
        t = time.perf_counter()
        write_ticks(path, ticks)
        out["csv_gz_write_ticks_per_s"] = round(len(ticks) / (time.perf_counter() - t))
        t = time.perf_counter()
        k = sum(1 for _ in read_ticks(path))
        out["csv_gz_read_ticks_per_s"] = round(k / (time.perf_counter() - t))
        out["csv_gz_bytes_per_tick"] = round(path.stat().st_size / len(ticks), 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()

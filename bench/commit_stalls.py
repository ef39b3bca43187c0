"""An order-sized SQLite commit's latency while ticks are persisted alongside; prints ONE JSON line.

    .venv/bin/python bench/commit_stalls.py [--commits 2000] [--tick-batch 2000]

A thread writes tick batches (as tick persistence does) while the main thread makes small commits (an
UPDATE and an INSERT, an order's acknowledgement). `inline`: SQLite's default, a commit that takes the
write-ahead log past 1,000 pages checkpoints it itself; `background`: the project's set-up (db_wal), the
commits' own threshold pushed out and a thread checkpointing the log once it is 1,000 pages long (looked at
every 0.5 s). Reports the small commits'
p50 / p99 / max for each.
"""
from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from db_wal import AUTOCHECKPOINT_PAGES, JOURNAL_SIZE_LIMIT, WalCheckpointer  # noqa: E402


def _connect(path: str, autocheckpoint: int) -> sqlite3.Connection:
    c = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", f"wal_autocheckpoint={autocheckpoint}",
                   f"journal_size_limit={JOURNAL_SIZE_LIMIT}"):
        c.execute(f"PRAGMA {pragma}")
    return c


def run(mode: str, commits: int, tick_batch: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-commit-") as d:
        path = str(Path(d) / "x.sqlite")
        auto = 1000 if mode == "inline" else AUTOCHECKPOINT_PAGES
        main, ticks = _connect(path, auto), _connect(path, auto)
        main.execute("CREATE TABLE orders(id INTEGER PRIMARY KEY, status TEXT, broker_id TEXT, updated REAL)")
        main.execute("CREATE TABLE events(id INTEGER PRIMARY KEY, order_id INTEGER, detail TEXT)")
        main.execute("CREATE TABLE ticks(id INTEGER PRIMARY KEY, symbol TEXT, ltp REAL, t REAL, v INTEGER)")
        main.executemany("INSERT INTO orders(status) VALUES ('SENT')", [()] * commits)
        ck = WalCheckpointer(path) if mode == "background" else None
        if ck is not None:
            ck.start()
        stop = threading.Event()

        def write_ticks() -> None:
            n = 0
            while not stop.is_set():
                rows = [(f"S{i % 200}", 100.0 + i / 100, time.time(), i) for i in range(n, n + tick_batch)]
                ticks.execute("BEGIN IMMEDIATE")
                ticks.executemany("INSERT INTO ticks(symbol, ltp, t, v) VALUES (?, ?, ?, ?)", rows)
                ticks.execute("COMMIT")
                n += tick_batch
                time.sleep(0.02)

        writer = threading.Thread(target=write_ticks, daemon=True)
        writer.start()
        lat = []
        try:
            for i in range(1, commits + 1):
                t0 = time.perf_counter()
                main.execute("BEGIN IMMEDIATE")
                main.execute("UPDATE orders SET status = 'OPEN', broker_id = ?, updated = ? WHERE id = ?",
                             (f"B{i}", time.time(), i))
                main.execute("INSERT INTO events(order_id, detail) VALUES (?, 'acknowledged')", (i,))
                main.execute("COMMIT")
                lat.append(time.perf_counter() - t0)
                time.sleep(0.002)
        finally:
            stop.set()
            writer.join()
            if ck is not None:
                ck.stop()
            main.close()
            ticks.close()
    lat.sort()
    return {f"{mode}_p50_ms": round(lat[len(lat) // 2] * 1000, 3),
            f"{mode}_p99_ms": round(lat[int(0.99 * (len(lat) - 1))] * 1000, 3),
            f"{mode}_max_ms": round(lat[-1] * 1000, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commits", type=int, default=2000)
    ap.add_argument("--tick-batch", type=int, default=2000)
    args = ap.parse_args()
    out: dict[str, object] = {"bench": "commit_stalls", "commits": args.commits, "tick_batch": args.tick_batch}
    for mode in ("inline", "background", "inline", "background"):  # alternated; the second pair is reported
        out.update(run(mode, args.commits, args.tick_batch))
    print(json.dumps(out, separators=(",", ":")))


if __name__ == "__main__":
    main()

"""CPU per row of the tick record's SQLite insert, variant by variant; prints ONE JSON line.

    .venv/bin/python bench/tick_insert.py [--rows 600000] [--batch 20000]

The rows are the synthetic 200-symbol day's first ticks as the feed's writer builds them (TICK_FIELDS tuples),
written in transactions of --batch rows into a fresh file each time. Variants: through SQLAlchemy's
exec_driver_sql (the writer's path before) or the sqlite3 cursor; with the (symbol, exch_feed_time) index, the
(exch_feed_time) one or none; with the connection's default page cache or a larger one. CPU time, not wall time:
the figure barely moves with the machine's load. `build_us` is the cost of making the tuples from columns.
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from datetime import date
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from core.enums import TickPersistence  # noqa: E402
from core.types import TICK_FIELDS  # noqa: E402
from feeds.synthetic import SyntheticDay, default_tickers  # noqa: E402

INSERT = f"INSERT INTO market_data ({', '.join(TICK_FIELDS)}) VALUES ({', '.join('?' * len(TICK_FIELDS))})"


def day_rows(n: int) -> tuple[list[tuple], float]:
    """The day's first n ticks as tuples, and the CPU microseconds per row it took to build them."""
    from pipeline.tick_writer import TickWriter

    class _NoDb:
        pass
    w = TickWriter.__new__(TickWriter)  # add_columns only: no database, no thread
    w.rows = []
    cpu = 0.0
    day = SyntheticDay(default_tickers(200), date(2026, 11, 20), 7)
    for cols in islice(day.windows(), 1000):
        t0 = time.process_time()
        w.add_columns(cols, np.arange(len(cols)))
        cpu += time.process_time() - t0
        if len(w.rows) >= n:
            break
    assert TickPersistence.EVERY_TICK
    return w.rows[:n], cpu / max(len(w.rows), 1) * 1e6


def fresh(path: Path, index: str | None) -> None:
    import db
    url = f"sqlite:///{path}"
    db.initialize_database(url)
    con = sqlite3.connect(path)
    con.execute("DROP INDEX IF EXISTS ix_market_data_symbol_time")
    if index:
        con.execute(f"CREATE INDEX ix_bench ON market_data ({index})")
    con.commit()
    con.close()


def raw_us(path: Path, rows: list[tuple], batch: int, cache_kib: int | None) -> float:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    if cache_kib:
        con.execute(f"PRAGMA cache_size=-{cache_kib}")
    cur = con.cursor()
    t0 = time.process_time()
    for i in range(0, len(rows), batch):
        cur.execute("BEGIN IMMEDIATE")
        cur.executemany(INSERT, rows[i:i + batch])
        cur.execute("COMMIT")
    us = (time.process_time() - t0) / len(rows) * 1e6
    con.close()
    return round(us, 2)


def sqlalchemy_us(path: Path, rows: list[tuple], batch: int) -> float:
    import db
    from db import MarketData
    h = db.DBHandler(db.setup(f"sqlite:///{path}")[0])
    t0 = time.process_time()
    for i in range(0, len(rows), batch):
        h.bulk_insert_tuples(MarketData, TICK_FIELDS, rows[i:i + batch])
    us = (time.process_time() - t0) / len(rows) * 1e6
    db.stop_checkpointer(f"sqlite:///{path}")
    return round(us, 2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=600_000)
    ap.add_argument("--batch", type=int, default=20_000)
    a = ap.parse_args()
    rows, build = day_rows(a.rows)
    out: dict = {"bench": "tick_insert", "rows": len(rows), "batch": a.batch, "build_us": round(build, 2),
                 "load": os.getloadavg()[0]}
    variants = [("sqlalchemy_symbol_time", "symbol, exch_feed_time", None, True),
                ("cursor_symbol_time", "symbol, exch_feed_time", None, False),
                ("cursor_symbol_time_cache64m", "symbol, exch_feed_time", 65536, False),
                ("cursor_time", "exch_feed_time", None, False),
                ("cursor_symbol", "symbol", None, False),
                ("cursor_no_index", None, None, False)]
    with tempfile.TemporaryDirectory() as tmp:
        for name, index, cache, via_sa in variants:
            path = Path(tmp) / f"{name}.sqlite"
            fresh(path, index)
            out[f"{name}_us"] = sqlalchemy_us(path, rows, a.batch) if via_sa else raw_us(path, rows, a.batch, cache)
    print(json.dumps(out))


if __name__ == "__main__":
    main()

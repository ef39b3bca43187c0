"""CPU per row of the tick record's SQLite insert, variant by variant; prints ONE JSON line.

    .venv/bin/python bench/tick_insert.py [--rows 600000] [--batch 20000]

The rows are the synthetic 200-symbol day's first ticks (TICK_FIELDS tuples), written in transactions of
--batch rows into a fresh file each time. Variants: through an ORM session's exec_driver_sql (`sqlalchemy_*`,
the writer's path before), DBHandler.bulk_insert_tuples as it is (`handler_*`) or a bare sqlite3 cursor
(`cursor_*`); with the (symbol, exch_feed_time) index, the (exch_feed_time) one, the (symbol) one or none; with
SQLite's default page cache or 64 MiB. CPU time of this process, not wall time: it barely moves with the
machine's load. The hand-over's costs per row come first (see day_rows).
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from core.types import TICK_FIELDS  # noqa: E402
from feeds.synthetic import SyntheticDay, default_tickers  # noqa: E402

INSERT = f"INSERT INTO market_data ({', '.join(TICK_FIELDS)}) VALUES ({', '.join('?' * len(TICK_FIELDS))})"


def day_rows(n: int) -> tuple[list[tuple], dict[str, float]]:
    """The day's first n ticks as the tuples the writer binds, and the CPU microseconds per row of the
    hand-over: `take_us` the feed's gather of the rows' msgpack already encoded for the workers, `decode_us` the
    writer process's typed decode of those bytes into the tuples it binds."""
    from pipeline.column_encoding import ColumnRows, array_header
    from pipeline.tick_writer_process import decode_rows

    rows: list[tuple] = []
    take = decode = 0.0
    day = SyntheticDay(default_tickers(200), date(2026, 11, 20), 7)
    for cols in islice(day.windows(), 1000):
        idx = np.arange(len(cols))
        encoded = ColumnRows(cols)  # made for the workers' batches anyway
        t1 = time.process_time()
        body = array_header(len(idx)) + encoded.take(idx)
        t2 = time.process_time()
        rows.extend(decode_rows(body))
        t3 = time.process_time()
        take, decode = take + t2 - t1, decode + t3 - t2
        if len(rows) >= n:
            break
    m = max(len(rows), 1)
    return rows[:n], {"take_us": round(take / m * 1e6, 2), "decode_us": round(decode / m * 1e6, 2)}


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
    """The insert as the writer ran it before: exec_driver_sql in an ORM session's transaction."""
    import db
    h = db.DBHandler(db.setup(f"sqlite:///{path}")[0])
    t0 = time.process_time()
    for i in range(0, len(rows), batch):
        part = rows[i:i + batch]

        def insert(s: Any, part: list[tuple] = part) -> None:
            s.connection().exec_driver_sql(INSERT, part)
        h.transaction("bench insert", insert)
    us = (time.process_time() - t0) / len(rows) * 1e6
    db.stop_checkpointer(f"sqlite:///{path}")
    return round(us, 2)


def handler_us(path: Path, rows: list[tuple], batch: int) -> float:
    """DBHandler.bulk_insert_tuples: the writer's own path (SQLAlchemy's session before, the driver's cursor
    with a larger page cache now)."""
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
    rows, handover = day_rows(a.rows)
    out: dict = {"bench": "tick_insert", "rows": len(rows), "batch": a.batch, **handover,
                 "load": round(os.getloadavg()[0], 2)}
    variants = [("sqlalchemy_symbol_time", "symbol, exch_feed_time", None, "sqlalchemy"),
                ("handler_symbol_time", "symbol, exch_feed_time", None, "handler"),
                ("cursor_symbol_time", "symbol, exch_feed_time", None, "cursor"),
                ("cursor_symbol_time_cache64m", "symbol, exch_feed_time", 65536, "cursor"),
                ("cursor_time", "exch_feed_time", None, "cursor"),
                ("cursor_symbol", "symbol", None, "cursor"),
                ("cursor_no_index", None, None, "cursor")]
    with tempfile.TemporaryDirectory() as tmp:
        for name, index, cache, via in variants:
            path = Path(tmp) / f"{name}.sqlite"
            fresh(path, index)
            out[f"{name}_us"] = (sqlalchemy_us(path, rows, a.batch) if via == "sqlalchemy" else
                                 handler_us(path, rows, a.batch) if via == "handler" else
                                 raw_us(path, rows, a.batch, cache))
    print(json.dumps(out))


if __name__ == "__main__":
    main()

"""Bulk MarketData inserts on SQLite and PostgreSQL through DBHandler's tick path; prints ONE JSON line.

    .venv/bin/python bench/db.py [--rows 200000] [--batch 2000]

PostgreSQL: TEST_DATABASE_URL if set, else a throwaway server started from the installed binaries (as the
tests do); skipped (null figures) when neither is possible.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import db  # noqa: E402
from feeds.synthetic import default_tickers, generate_day  # noqa: E402

DAY = __import__("datetime").date(2026, 11, 20)


def rows_per_s(url: str, rows: list[tuple], batch: int) -> float:
    db.initialize_database(url)
    db.delete_database_tables(url, ["market_data"])
    engine = db.initialize_database(url)
    h = db.DBHandler(engine)
    t0 = time.perf_counter()
    for i in range(0, len(rows), batch):
        h.bulk_insert_tuples(db.MarketData, db.MARKET_DATA_COLUMNS, rows[i:i + batch])
    dt = time.perf_counter() - t0
    n = h.execute_sql("SELECT COUNT(*) FROM market_data")[0][0]
    assert n == len(rows), (n, len(rows))
    return len(rows) / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=2000)
    a = ap.parse_args()
    ticks = generate_day(default_tickers(50), DAY, 7)
    rows = [tuple(t.get(c) for c in db.MARKET_DATA_COLUMNS) for _, t in zip(range(a.rows), ticks, strict=False)]
    out: dict = {"bench": "db", "rows": len(rows), "batch": a.batch}
    with tempfile.TemporaryDirectory(prefix="bench-db-") as d:
        out["sqlite_rows_per_s"] = round(rows_per_s(f"sqlite:///{Path(d) / 'b.sqlite'}", rows, a.batch))
    url, server = os.environ.get("TEST_DATABASE_URL"), None
    if not url:
        try:
            from tests.conftest import _ThrowawayPostgres
            server = _ThrowawayPostgres()
            url = server.url
        except Exception as e:  # noqa: BLE001 - reported in the output
            out["postgresql"] = f"skipped: {e}"
    if url:
        try:
            out["postgresql_rows_per_s"] = round(rows_per_s(url, rows, a.batch * 5))
        finally:
            db.dispose_engines()
            if server is not None:
                server.stop()
    print(json.dumps(out))


if __name__ == "__main__":
    main()

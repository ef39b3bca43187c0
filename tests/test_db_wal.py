"""The write-ahead log's checkpointer (db_wal): a short log is left alone, so no commit pays the log's restart;
a long one is checkpointed off the committing threads; several processes writing at once keep the file sound."""
import multiprocessing as mp
import os
import sqlite3
import struct
import time
from pathlib import Path

import db
from db import DBHandler, MarketData, StockSignal
from db_wal import JOURNAL_SIZE_LIMIT, WalCheckpointer
from tests.db_rows import insert

TICK_COLS = ["symbol", "ltp", "vol_traded_today", "exch_feed_time", "bid_price", "ask_price", "high_price",
             "low_price"]


def _connect(path: Path) -> sqlite3.Connection:
    c = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "wal_autocheckpoint=10000",
                   f"journal_size_limit={JOURNAL_SIZE_LIMIT}"):
        c.execute(f"PRAGMA {pragma}")
    return c


def _log_restarts(path: Path) -> int:
    """The log header's checkpoint sequence number: SQLite adds one each time a commit restarts the log."""
    with open(f"{path}-wal", "rb") as f:
        return struct.unpack(">I", f.read(16)[12:16])[0]


def _wait(cond, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def _after_looks(ck: WalCheckpointer, n: int = 2) -> None:
    start = ck.looks
    _wait(lambda: ck.looks >= start + n)


def test_short_log_is_not_checkpointed_so_no_commit_restarts_it(tmp_path):
    path = tmp_path / "x.sqlite"
    c = _connect(path)
    c.execute("CREATE TABLE orders(id INTEGER PRIMARY KEY, status TEXT)")
    ck = WalCheckpointer(str(path), every_s=0.01)
    ck.start()
    try:
        restarts = _log_restarts(path)
        for i in range(20):  # orders far apart: the checkpointer looks at the log between every two
            _after_looks(ck)
            c.execute("INSERT INTO orders(status) VALUES (?)", (f"SENT {i}",))
        assert ck.passes == 0
        assert _log_restarts(path) == restarts
    finally:
        ck.stop()
        c.close()


def test_long_log_is_checkpointed_and_the_next_commit_restarts_it_short(tmp_path):
    path = tmp_path / "x.sqlite"
    c = _connect(path)
    c.execute("CREATE TABLE ticks(id INTEGER PRIMARY KEY, body TEXT)")
    c.execute("BEGIN")
    c.executemany("INSERT INTO ticks(body) VALUES (?)", [("x" * 200,) for _ in range(4000)])  # ~200 pages
    c.execute("COMMIT")
    long_size = os.path.getsize(f"{path}-wal")
    ck = WalCheckpointer(str(path), every_s=0.01, min_pages=100)
    ck.start()
    try:
        _wait(lambda: ck.passes >= 1)
        db_size = os.path.getsize(path)
        assert db_size > 100 * 4096  # the pages reached the database file
        restarts = _log_restarts(path)
        c.execute("INSERT INTO ticks(body) VALUES ('after')")
        assert _log_restarts(path) == restarts + 1  # this commit began the log again...
        assert os.path.getsize(f"{path}-wal") < long_size // 10  # ...and cut its file to what it wrote
        passes = ck.passes
        _after_looks(ck, 3)
        assert ck.passes == passes  # the short log is left alone
        assert c.execute("SELECT COUNT(*) FROM ticks").fetchone() == (4001,)
    finally:
        ck.stop()
        c.close()


def _ticks(url: str, batches: int) -> None:
    h = DBHandler(db.setup(url)[0])
    for b in range(batches):
        rows = [(f"S{i % 200}", 100.0 + i / 100, i, b * 10_000 + i, 99.9, 100.1, 101.0, 99.0) for i in range(5000)]
        h.bulk_insert_tuples(MarketData, TICK_COLS, rows)
        time.sleep(0.03)


def _orders(url: str, n: int) -> None:
    h = DBHandler(db.setup(url)[0])
    for i in range(n):
        insert(h, StockSignal(signal_id=f"o-{i}", symbol="SBIN", strategy="orb", time=i, price=1.0, type="entry",
                              current_position="long"))
        time.sleep(0.01)


def test_ticks_and_orders_from_two_processes_with_checkpoints_keep_the_database_sound(sqlite_url):
    """Each process checkpoints the shared file on its own thread while the other commits: ticks in bulk from
    one, order-sized commits from another (as the tick writer and the TradeManager do), a reader in a third."""
    h = DBHandler(db.initialize_database(sqlite_url))
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    db.dispose_engines()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_ticks, args=(sqlite_url, 60)), ctx.Process(target=_orders, args=(sqlite_url, 200))]
    for p in procs:
        p.start()
    try:
        while any(p.is_alive() for p in procs):
            h.execute_sql("SELECT COUNT(*) FROM market_data")
            time.sleep(0.05)
    finally:
        for p in procs:
            p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    # the log was checkpointed and begun again meanwhile: how often depends on timing (a PASSIVE checkpoint
    # cannot finish past a snapshot the reader still holds), so once is what is asked
    assert _log_restarts(path) >= 1
    assert h.execute_sql("PRAGMA integrity_check") == [("ok",)]
    assert h.execute_sql("SELECT COUNT(*) FROM market_data") == [(300_000,)]
    assert h.execute_sql("SELECT COUNT(*) FROM stock_signals") == [(200,)]

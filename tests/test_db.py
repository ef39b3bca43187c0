"""The database layer against SQLite and a real PostgreSQL server (the same tests on both)."""
import multiprocessing as mp
from datetime import date
from decimal import Decimal

import pytest

import db
from db import DatabaseError, DBHandler, MarketData, Order, StockSignal, TradeLog
from db_wal import AUTOCHECKPOINT_PAGES, CHECKPOINT_EVERY_S, CHECKPOINT_LOG_PAGES
from tests.db_rows import insert, select_rows


def handler(url: str) -> DBHandler:
    engine = db.initialize_database(url)
    return DBHandler(engine)


def make_order(**kw) -> Order:
    base = dict(client_order_id="c-1", trading_date=date(2026, 11, 20), symbol="SBIN", side="BUY",
                purpose="entry", quantity=10, strategy_tag="t", price=Decimal("612.35"))
    base.update(kw)
    return Order(**base)


def test_constraint_violation_rolls_back_and_raises_a_clear_error(db_url):
    h = handler(db_url)
    insert(h, make_order())
    with pytest.raises(DatabaseError, match="insert into orders failed"):
        insert(h, [make_order(client_order_id="c-3"), make_order()])  # second duplicates c-1
    # the whole batch rolled back: c-3 is not there, and the handler still works
    assert [o.client_order_id for o in select_rows(h, Order)] == ["c-1"]
    insert(h, make_order(client_order_id="c-4"))
    assert len(select_rows(h, Order)) == 2


def test_money_is_exact(db_url):
    h = handler(db_url)
    insert(h, TradeLog(trade_id=1, trade_date=date(2026, 11, 20), symbol="SBIN", strategy="orb", side="long",
                       trade_type="full", quantity=3, entry_time=1, entry_price=Decimal("0.10"),
                       exit_time=2, exit_price=Decimal("0.30"), gross_pnl=Decimal("0.60"),
                       costs=Decimal("0.0001"), net_pnl=Decimal("0.5999"), capital_employed=Decimal("0.3"),
                       capital_at_exit=Decimal("1000000.5999"), percent_change=1.0, exit_reason="signal"))
    t = select_rows(h, TradeLog)[0]
    assert t.net_pnl == Decimal("0.5999") and t.capital_at_exit == Decimal("1000000.5999")


def test_bulk_insert_market_data_and_raw_sql(db_url):
    h = handler(db_url)
    cols = ("symbol", "ltp", "vol_traded_today", "exch_feed_time", "type", "bid_price")
    rows = [("NSE:SBIN-EQ", 600 + i * 0.05, 1000 + i, 1_700_000_000 + i, "sf", None) for i in range(2500)]
    assert h.bulk_insert_tuples(MarketData, cols, rows) == 2500
    n, hi = h.execute_sql("SELECT COUNT(*), MAX(exch_feed_time) FROM market_data")[0]
    assert n == 2500 and hi == 1_700_002_499
    assert h.execute_sql("SELECT COUNT(*) FROM market_data WHERE bid_price IS NULL")[0][0] == 2500


def test_state_documents(db_url):
    h = handler(db_url)
    assert h.get_state("trading_state") is None
    h.set_state("trading_state", {"state": "HALTED", "reason": "reconciling"})
    h.set_state("trading_state", {"state": "ACTIVE", "reason": ""})
    assert h.get_state("trading_state") == {"state": "ACTIVE", "reason": ""}
    assert h.get_state("schema_version") == db.SCHEMA_VERSION


def _writer(url: str, tag: str, n: int) -> None:
    h = DBHandler(db.setup(url)[0])
    for i in range(n):
        insert(h, StockSignal(signal_id=f"{tag}-{i}", symbol="SBIN", strategy="orb", time=i, price=1.0,
                              type="entry", current_position="long"))
        h.bulk_insert_tuples(MarketData, ("symbol", "ltp"), [(tag, float(i))] * 20)


def test_concurrent_writers_from_two_processes(db_url):
    h = handler(db_url)
    db.dispose_engines()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(db_url, tag, 60)) for tag in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len(select_rows(h, StockSignal)) == 120
    counts = h.execute_sql("SELECT symbol, COUNT(*) FROM market_data GROUP BY symbol ORDER BY symbol")
    assert counts == [("a", 1200), ("b", 1200)]


def test_sqlite_defaults_wal_and_foreign_keys(sqlite_url):
    engine = db.initialize_database(sqlite_url)
    with engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() == 15000
        # a commit checkpoints only when the background checkpointer fell far behind (db_wal)
        assert c.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == AUTOCHECKPOINT_PAGES


def test_sqlite_log_is_checkpointed_off_the_committing_thread(sqlite_url):
    """A log far shorter than the commits' own threshold but past the checkpointer's reaches the database file
    anyway, from the checkpointer's thread; the rows are all there."""
    import os
    import time

    engine = db.initialize_database(sqlite_url)
    path = sqlite_url.removeprefix("sqlite:///")
    h = DBHandler(engine)
    size0 = os.path.getsize(path)
    rows = [("CKPT", 100.0 + i / 100, i, i, 99.9, 100.1, 101.0, 99.0) for i in range(60_000)]  # ~1,250 pages
    h.bulk_insert_tuples(MarketData, ["symbol", "ltp", "vol_traded_today", "exch_feed_time", "bid_price",
                                      "ask_price", "high_price", "low_price"], rows)
    wal_pages = os.path.getsize(path + "-wal") // 4096
    assert CHECKPOINT_LOG_PAGES < wal_pages < AUTOCHECKPOINT_PAGES
    deadline = time.monotonic() + 10 * CHECKPOINT_EVERY_S + 5
    while os.path.getsize(path) <= size0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert os.path.getsize(path) > size0, "the log was not checkpointed into the database file"
    assert h.execute_sql("SELECT COUNT(*) FROM market_data WHERE symbol = 'CKPT'") == [(60_000,)]


def test_sqlite_locked_database_is_retried_not_lost(sqlite_url, caplog):
    """Another process holds the write lock longer than busy_timeout; the handler retries and the row lands."""
    import sqlite3
    import threading

    import sqlalchemy

    engine = db.initialize_database(sqlite_url)
    blocker = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    # an engine that gives up waiting on the lock after 50 ms, so the retry path is what saves the write
    impatient = sqlalchemy.create_engine(sqlite_url, connect_args={"timeout": 0.05})
    sqlalchemy.event.listen(impatient, "connect", lambda c, r: setattr(c, "isolation_level", None))
    sqlalchemy.event.listen(impatient, "begin", db._sqlite_begin)
    timer = threading.Timer(0.4, lambda: blocker.execute("COMMIT"))
    timer.start()
    insert(DBHandler(impatient, retries=40, backoff_s=0.05), make_order(client_order_id="locked-1"))
    timer.join()
    assert [o.client_order_id for o in select_rows(DBHandler(engine), Order)] == ["locked-1"]
    assert any("database busy" in r.getMessage() for r in caplog.records)


def test_a_database_from_before_the_charge_breakdown_is_upgraded_in_place(db_url):
    """Version 1 stored only `costs` (the flat brokerage); start-up adds the charge columns and keeps every row."""
    from datetime import date as _date

    from core.costs import CHARGE_NAMES
    from db import ActiveTrade

    h = handler(db_url)
    insert(h, [
        TradeLog(trade_id=1, trade_date=_date(2026, 11, 19), symbol="SBIN", strategy="orb", side="long",
                 trade_type="full", quantity=10, entry_time=1, entry_price=Decimal("600"), exit_time=2,
                 exit_price=Decimal("610"), gross_pnl=Decimal("100"), costs=Decimal("40"), net_pnl=Decimal("60"),
                 capital_employed=Decimal("1200"), capital_at_exit=Decimal("1000060"), percent_change=5.0,
                 exit_reason="signal"),
        ActiveTrade(trade_id=2, symbol="INFY", strategy="orb", side="long", trading_date=_date(2026, 11, 20),
                    entry_time=1, entry_price=Decimal("1500"), position_size=5, remaining_quantity=5,
                    allocated=Decimal("1500"), margin_multiplier=Decimal(5), costs=Decimal("20"))])
    for table in ("trade_log", "active_trades"):  # back to version 1's tables
        for name in CHARGE_NAMES:
            h.execute_sql(f"ALTER TABLE {table} DROP COLUMN {name}", fetch=False)
    h.set_state("schema_version", 1)

    db.initialize_database(db_url)
    assert h.get_state("schema_version") == db.SCHEMA_VERSION == 3
    (log,) = select_rows(h, TradeLog)
    (open_,) = select_rows(h, ActiveTrade)
    for row, costs in ((log, Decimal("40")), (open_, Decimal("20"))):
        # the old flat commission was brokerage, so the breakdown still adds up to costs
        assert {n: getattr(row, n) for n in CHARGE_NAMES} == {n: (costs if n == "brokerage" else 0)
                                                               for n in CHARGE_NAMES}
        assert row.costs == costs
    db.initialize_database(db_url)  # a second start changes nothing
    assert select_rows(h, TradeLog)[0].brokerage == Decimal("40")


def test_a_database_from_before_the_outcome_enum_keeps_its_outcomes_as_status_and_note(db_url):
    """Version 2 stored an outcome as "status: note"; start-up splits it once into the status (an
    OutcomeStatus value) and outcome_note, so a restart reads the status back as it is, never by parsing."""
    from core.enums import OutcomeStatus
    from db import StockSignal

    h = handler(db_url)
    insert(h, [StockSignal(signal_id=f"orb:SBIN:{t}:entry:long", symbol="SBIN", strategy="orb", time=t,
                           price=600.0, type="entry", current_position="long") for t in (1, 2, 3)])
    h.execute_sql("ALTER TABLE stock_signals DROP COLUMN outcome_note", fetch=False)
    h.execute_sql("UPDATE stock_signals SET outcome = 'executed: filled 10/10' WHERE time = 1", fetch=False)
    h.execute_sql("UPDATE stock_signals SET outcome = 'ignored' WHERE time = 2", fetch=False)
    h.set_state("schema_version", 2)

    db.initialize_database(db_url)
    got = [(r.time, r.outcome, r.outcome_note) for r in sorted(select_rows(h, StockSignal), key=lambda r: r.time)]
    assert got == [(1, "executed", "filled 10/10"), (2, "ignored", None), (3, None, None)]
    assert OutcomeStatus(got[0][1]) is OutcomeStatus.EXECUTED
    db.initialize_database(db_url)  # a second start changes nothing
    assert {r.time: r.outcome for r in select_rows(h, StockSignal)} == {1: "executed", 2: "ignored", 3: None}


def test_a_database_from_before_the_signal_time_index_gets_it_at_start_up(db_url, caplog):
    """create_all adds no index to a table that exists: start-up adds the missing ones (a start reads the day's
    signals by time alone, which only this index serves), says so once, and a second start adds nothing."""
    import logging

    from sqlalchemy import inspect

    h = handler(db_url)
    h.execute_sql("DROP INDEX ix_stock_signals_time", fetch=False)
    assert "ix_stock_signals_time" not in {i["name"] for i in inspect(h.engine).get_indexes("stock_signals")}
    with caplog.at_level(logging.INFO, logger="db"):
        engine = db.initialize_database(db_url)
    assert "ix_stock_signals_time" in {i["name"] for i in inspect(engine).get_indexes("stock_signals")}
    assert [r.getMessage() for r in caplog.records if "upgraded" in r.getMessage()] == \
        ["database upgraded: added index ix_stock_signals_time"]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="db"):
        db.initialize_database(db_url)
    assert not [r for r in caplog.records if "upgraded" in r.getMessage()]


def test_an_index_another_start_made_first_counts_as_made(db_url, monkeypatch, caplog):
    """Two starts upgrading one database: on PostgreSQL both can find an index missing, and the second CREATE
    fails. Here the check does not see an index another start has made (it looked before), and the CREATE fails
    as the loser's does: the start goes on, and does not say it added it."""
    import logging

    from sqlalchemy.schema import CreateIndex

    handler(db_url)
    tried: list[str] = []
    real = db.inspect

    class Before:
        """The inspector as it was before the other start made the index."""

        def __init__(self, conn):
            self.insp = real(conn)

        def __getattr__(self, name):
            return getattr(self.insp, name)

        def get_indexes(self, table):
            got = self.insp.get_indexes(table)
            return got if tried else [i for i in got if i["name"] != "ix_stock_signals_time"]

    def plain(index, if_not_exists=False):
        tried.append(index.name)
        return CreateIndex(index)                      # without IF NOT EXISTS: fails, as the race's loser does
    monkeypatch.setattr(db, "inspect", Before)
    monkeypatch.setattr(db, "CreateIndex", plain)
    with caplog.at_level(logging.INFO, logger="db"):
        db.initialize_database(db_url)
    assert tried == ["ix_stock_signals_time"]
    assert not [r for r in caplog.records if "upgraded" in r.getMessage()]


def test_an_index_on_a_column_that_could_not_be_added_is_left_with_a_warning(tmp_path, caplog):
    """A column start-up cannot add (NOT NULL, no default) is warned about, not added; its indexes are left too,
    with a warning each, and start-up goes on."""
    import logging

    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    h = handler(url)
    for ddl in ("DROP INDEX ix_stock_signals_time", "DROP INDEX ix_stock_signals_symbol_time",
                "ALTER TABLE stock_signals DROP COLUMN time"):
        h.execute_sql(ddl, fetch=False)
    with caplog.at_level(logging.WARNING, logger="db"):
        db.initialize_database(url)
    said = [r.getMessage() for r in caplog.records]
    assert "stock_signals.time is missing and cannot be added without a default; recreate the table" in said
    assert "index ix_stock_signals_symbol_time not made: stock_signals.time is missing" in said
    assert "index ix_stock_signals_time not made: stock_signals.time is missing" in said

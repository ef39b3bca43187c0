"""Tick persistence, against real databases: the writer's transactions are bounded and in order, a database
error is counted and logged, not raised into the feed; and the real daemon: market_data holds exactly the
dispatched ticks, on SQLite and PostgreSQL. The tick writer process and the feed's side of it (columns and dicts,
refused ticks, sampled, flush_seconds, odd values, a database behind, a killed writer):
tests/test_tick_writer_process.py."""
from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path
from typing import Any

from core.config import load_config
from core.enums import TickPersistence
from core.types import TICK_FIELDS
from feeds.synthetic import generate_day
from pipeline.tick_writer import TickWriter
from tests.daemon_harness import DAY, rows, run_daemon, short_day_config

COLUMNS = ", ".join(TICK_FIELDS)
TICKERS = ["NSE:SBIN-EQ", "NSE:INFY-EQ", "NSE:TCS-EQ"]
SESSION = {"pre_open": "09:00", "open": "09:15", "entry_cutoff": "09:25", "square_off": "09:28", "close": "09:30"}


def handler(url: str):
    import db
    db.initialize_database(url)
    return db.DBHandler(db.setup(url)[0])


def tick(sym: str, t: int, ltp: float = 100.0, **over) -> dict:
    d: dict[str, Any] = dict.fromkeys(TICK_FIELDS)
    d.update(symbol=sym, ltp=ltp, exch_feed_time=t, last_traded_time=t, vol_traded_today=t, type="sf",
             prev_close_price=100.0, **over)
    return d


def table(url: str) -> list[tuple]:
    return rows(url, f"SELECT {COLUMNS} FROM market_data ORDER BY id")


def short_day(tmp_path: Path):
    cfg = load_config(short_day_config(tmp_path, session=SESSION))
    return cfg, date.fromisoformat(DAY)


def test_a_backlog_is_written_in_bounded_transactions_in_order(tmp_path, monkeypatch):
    from pipeline import tick_writer

    monkeypatch.setattr(tick_writer, "MAX_TRANSACTION_ROWS", 3)
    url = f"sqlite:///{tmp_path / 'chunks.sqlite'}"
    w = TickWriter(handler(url), TickPersistence.EVERY_TICK, batch_rows=100)
    sent = [tuple(tick("NSE:SBIN-EQ", 1_700_000_000 + i).values()) for i in range(10)]
    w.rows.extend(sent)
    assert w.hand_off(final=True) == 10
    assert table(url) == sent
    w.close()


def test_a_database_error_is_counted_and_logged_not_raised_into_the_feed(tmp_path, caplog):
    url = f"sqlite:///{tmp_path / 'gone.sqlite'}"
    h = handler(url)
    h.execute_sql("DROP TABLE market_data", fetch=False)
    w = TickWriter(h, TickPersistence.EVERY_TICK, batch_rows=10)
    w.rows.extend(tuple(tick("NSE:SBIN-EQ", 1_700_000_000 + i).values()) for i in range(5))
    with caplog.at_level(logging.ERROR, logger="pipeline.tick_writer"):
        assert w.hand_off(final=True) == 0
    assert (w.written, w.failed) == (0, 5)
    assert "5 ticks not written" in caplog.text
    w.close()


def test_the_daemon_persists_exactly_the_dispatched_ticks(db_url, tmp_path):
    """A signals-only replay of a short day with every tick persisted and bad ticks slipped in: the table holds
    each dispatched tick once, none refused, and the day's tick counts say how many."""
    cfg = short_day_config(tmp_path, mode="signals_only", workers=2, session=SESSION,
                           market_data={"persist": "every_tick", "warmup_from_history": False})
    day = load_config(cfg)
    good = next(iter(generate_day(["NSE:SBIN-EQ"], date.fromisoformat(DAY), day.replay.seed, day.session)))
    inject = tmp_path / "inject.jsonl"
    inject.write_text("".join(json.dumps({"before": n, "tick": t}) + "\n" for n, t in [
        (50, {**good, "symbol": "NSE:NOPE-EQ"}), (60, {**good, "ltp": 0}), (70, {**good, "ltp": "x"})]))
    run = run_daemon(cfg, db_url, {"HOST_SERVER": "http://127.0.0.1:9", "DAEMON_INJECT_TICKS": str(inject)},
                     timeout=240)
    assert run.returncode == 0, run.output[-3000:]
    assert "Traceback" not in run.output, run.output[-3000:]
    counts = json.loads(rows(db_url, "SELECT value FROM daemon_state WHERE key = 'tick_counts'")[0][0])
    n, bad = rows(db_url, "SELECT COUNT(*), SUM(CASE WHEN ltp <= 0 OR symbol = 'NSE:NOPE-EQ' THEN 1 ELSE 0 END) "
                          "FROM market_data")[0]
    assert counts["rejected"] + counts["unroutable"] == 3, counts
    assert n == counts["dispatched"] == counts["rows_persisted"] > 1000, (n, counts)
    assert not bad

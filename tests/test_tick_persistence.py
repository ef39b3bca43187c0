"""Tick persistence by the feed process's one writer (pipeline.tick_writer), against real databases: what the
TickBatcher routes is written once, in feed order, as the ticks' own values, whether they came as columns (the
synthetic day at full speed) or one dict at a time; refused ticks never; `sampled` keeps a symbol's first tick per
sample_seconds; a batch waits at most flush_seconds; a database error is counted and logged, not raised into the
feed. And the real daemon: market_data holds exactly the dispatched ticks, on SQLite and PostgreSQL."""
from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from core.config import load_config
from core.enums import TickPersistence
from core.types import TICK_FIELDS
from feeds.synthetic import SyntheticDay, generate_day
from pipeline.batcher import TickBatcher
from pipeline.tick_validator import TickValidator
from pipeline.tick_writer import TickWriter
from tests.conftest import wait_for
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


def batcher_with_writer(cfg, url: str, **writer_kw: Any) -> tuple[TickBatcher, TickWriter]:
    md = cfg.market_data
    writer = TickWriter(handler(url), TickPersistence.EVERY_TICK, **writer_kw)
    validator = TickValidator(set(TICKERS), max_ahead_s=md.max_ahead_s, gap_confirm_ticks=md.gap_confirm_ticks,
                              max_price_move_pct=md.max_price_move_pct)
    worker_of = {t: i % 2 for i, t in enumerate(TICKERS)}
    return TickBatcher(worker_of, 2, lambda cycle: None, validator=validator, writer=writer), writer


@pytest.mark.parametrize("inline", [False, True], ids=["thread", "inline"])
def test_columns_and_dicts_write_the_same_rows_and_never_a_refused_tick(tmp_path, inline):
    cfg, day = short_day(tmp_path)
    by_cols, by_dicts = f"sqlite:///{tmp_path / 'cols.sqlite'}", f"sqlite:///{tmp_path / 'dicts.sqlite'}"
    b1, w1 = batcher_with_writer(cfg, by_cols, batch_rows=500, inline=inline)
    for cols in SyntheticDay(TICKERS, day, cfg.replay.seed, cfg.session).windows():
        b1.dispatch_columns(cols)
    b1.flush(final=True)
    b2, w2 = batcher_with_writer(cfg, by_dicts, batch_rows=500, inline=inline)
    stream = list(generate_day(TICKERS, day, cfg.replay.seed, cfg.session))
    for i, t in enumerate(stream):
        if i == 100:  # refused: no price, an unknown symbol, a price far from its previous close
            b2.dispatch(tick(TICKERS[0], t["exch_feed_time"], ltp=0.0))
            b2.dispatch(tick("NSE:NOPE-EQ", t["exch_feed_time"]))
            b2.dispatch(tick(TICKERS[1], t["exch_feed_time"], ltp=1e6))
        b2.dispatch(t)
    b2.flush(final=True)
    assert sum(b2.validator.counts.values()) >= 2 and b2.unroutable + sum(b2.validator.counts.values()) == 3
    got = table(by_cols)
    assert len(got) == b1.dispatched == w1.written == len(stream) > 1000
    assert got == table(by_dicts) == [tuple(t[f] for f in TICK_FIELDS) for t in stream]
    assert w2.written == b2.dispatched == len(stream)
    w1.close()
    w2.close()


def test_rows_wait_at_most_flush_seconds_and_odd_values_are_written_as_null(db_url):
    w = TickWriter(handler(db_url), TickPersistence.EVERY_TICK, batch_rows=1000, flush_seconds=0.05)
    try:
        w.rows.extend(tuple(tick("NSE:SBIN-EQ", 1_700_000_000 + i).values()) for i in range(3))
        odd = tick("NSE:SBIN-EQ", 1_700_000_003, bid_size="12", ask_size=True, tot_buy_qty=2**70)
        w.rows.append(tuple(odd.values()))
        w.unchecked = True
        assert w.hand_off() == 0  # fewer than batch_rows: not yet, but within flush_seconds
        wait_for(lambda: len(table(db_url)) == 4, timeout=10, what="the rows written after flush_seconds")
        assert w.written == 4
        last = dict(zip(TICK_FIELDS, table(db_url)[-1], strict=True))
        assert last["bid_size"] is last["ask_size"] is last["tot_buy_qty"] is None
        assert last["ltp"] == 100.0 and last["exch_feed_time"] == 1_700_000_003
    finally:
        w.close()


@pytest.mark.parametrize("inline", [False, True], ids=["thread", "inline"])
def test_sampled_keeps_each_symbols_first_tick_per_sample_seconds(db_url, inline):
    w = TickWriter(handler(db_url), TickPersistence.SAMPLED, sample_seconds=2, batch_rows=3, inline=inline)
    t0 = 1_700_000_000
    times = {"NSE:SBIN-EQ": [0, 1, 2, 3, 5, 6], "NSE:INFY-EQ": [1, 1, 4]}
    for i in range(7):  # interleaved, across hand-offs
        for sym, ts in times.items():
            if i < len(ts):
                w.rows.append(tuple(tick(sym, t0 + ts[i]).values()))
        w.hand_off()
    assert w.hand_off(final=True) == 5
    got = [(r[TICK_FIELDS.index("symbol")], r[TICK_FIELDS.index("exch_feed_time")] - t0) for r in table(db_url)]
    assert got == [("NSE:SBIN-EQ", 0), ("NSE:INFY-EQ", 1), ("NSE:SBIN-EQ", 2), ("NSE:INFY-EQ", 4),
                   ("NSE:SBIN-EQ", 5)]
    w.close()


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


def test_live_a_database_far_behind_costs_ticks_of_the_record_never_a_wait_of_the_feed(tmp_path, caplog):
    import sqlite3
    import time

    path = tmp_path / "behind.sqlite"
    url = f"sqlite:///{path}"
    w = TickWriter(handler(url), TickPersistence.EVERY_TICK, batch_rows=5, max_pending_rows=5, flush_seconds=0.01,
                   drop_when_behind=True)
    batch = [[tuple(tick("NSE:SBIN-EQ", 1_700_000_000 + 5 * k + i).values()) for i in range(5)] for k in range(3)]
    holder = sqlite3.connect(path, timeout=0)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the database: the writer thread waits on it
    try:
        w.rows.extend(batch[0])
        w.hand_off()
        wait_for(lambda: w._pending == 5, timeout=10, what="the first batch waiting for the database")
        w.rows.extend(batch[1])
        with caplog.at_level(logging.ERROR, logger="pipeline.tick_writer"):
            t0 = time.monotonic()
            w.hand_off()  # 5 rows behind: this cycle is left out, and the feed goes on at once
            assert time.monotonic() - t0 < 2.0
        assert w.dropped == 5 and "ticks behind" in caplog.text
    finally:
        holder.rollback()
        holder.close()
    wait_for(lambda: w.written == 5, timeout=30, what="the first batch written once the database is free")
    w.rows.extend(batch[2])
    assert w.hand_off(final=True) == 10
    assert table(url) == batch[0] + batch[2]
    assert w.dropped == 5
    w.close()

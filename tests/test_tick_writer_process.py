"""The tick writer process (pipeline.tick_writer_process), spawned for real and fed by the feed's WriterLink:
the routed ticks reach market_data as they came, from columns or dicts, refused ones never, odd values as NULL,
sampled as the in-process writer samples; `final` means written; live, a database far behind costs cycles of
the record, not a wait; a killed writer process is seen, counted and logged, and the feed's side goes on."""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import sqlite3
import time
from typing import Any

from core.enums import TickPersistence
from core.types import TICK_FIELDS
from feeds.synthetic import SyntheticDay, generate_day
from pipeline.batcher import TickBatcher
from pipeline.tick_validator import TickValidator
from pipeline.tick_writer_process import WriterLink, run_tick_writer
from tests.conftest import wait_for
from tests.test_tick_persistence import TICKERS, handler, short_day, table, tick


def start_writer(url: str, persist: TickPersistence = TickPersistence.EVERY_TICK, sample_seconds: float = 1.0,
                 batch_rows: int = 500, flush_seconds: float = 1.0, **link_kw: Any) -> tuple[WriterLink, Any]:
    handler(url)  # the tables
    ctx = mp.get_context("spawn")
    inbox, out = ctx.Pipe(duplex=False)
    acks_in, acks_out = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=run_tick_writer, daemon=True, args=(
        url, persist, sample_seconds, batch_rows, flush_seconds, inbox, acks_out, "WARNING", None, [], None))
    proc.start()
    inbox.close()
    acks_out.close()
    return WriterLink(out, acks_in, **link_kw), proc


def batcher(cfg: Any, link: WriterLink) -> TickBatcher:
    md = cfg.market_data
    validator = TickValidator(set(TICKERS), max_ahead_s=md.max_ahead_s, gap_confirm_ticks=md.gap_confirm_ticks,
                              max_price_move_pct=md.max_price_move_pct)
    return TickBatcher({t: i % 2 for i, t in enumerate(TICKERS)}, 2, lambda cycle: None, validator=validator,
                       writer=link)


def test_columns_and_dicts_reach_the_table_as_they_came_and_never_a_refused_tick(tmp_path, db_url):
    cfg, day = short_day(tmp_path)
    cols_url = f"sqlite:///{tmp_path / 'cols.sqlite'}"
    w1, p1 = start_writer(cols_url)
    b1 = batcher(cfg, w1)
    for cols in SyntheticDay(TICKERS, day, cfg.replay.seed, cfg.session).windows():
        b1.dispatch_columns(cols)
    b1.flush(final=True)
    w2, p2 = start_writer(db_url)
    b2 = batcher(cfg, w2)
    stream = list(generate_day(TICKERS, day, cfg.replay.seed, cfg.session))
    for i, t in enumerate(stream):
        if i == 100:  # refused: no price, an unknown symbol, a price far from its previous close
            b2.dispatch(tick(TICKERS[0], t["exch_feed_time"], ltp=0.0))
            b2.dispatch(tick("NSE:NOPE-EQ", t["exch_feed_time"]))
            b2.dispatch(tick(TICKERS[1], t["exch_feed_time"], ltp=1e6))
        b2.dispatch(t)
    b2.flush(final=True)
    expected = [tuple(t[f] for f in TICK_FIELDS) for t in stream]
    assert w1.written == b1.dispatched == len(stream) > 1000  # final: written when hand_off returns
    assert table(cols_url) == expected
    assert w2.written == b2.dispatched == len(stream)
    assert table(db_url) == expected
    for w, p in ((w1, p1), (w2, p2)):
        w.close()
        p.join(30)
        assert p.exitcode == 0 and not w.failed


def test_odd_values_go_as_null_and_rows_wait_at_most_flush_seconds(db_url):
    w, p = start_writer(db_url, batch_rows=1000, flush_seconds=0.05)
    try:
        w.rows.extend(tuple(tick("NSE:SBIN-EQ", 1_700_000_000 + i).values()) for i in range(3))
        odd = tick("NSE:SBIN-EQ", 1_700_000_003, bid_size="12", ask_size=True, tot_buy_qty=2**70)
        w.rows.append(tuple(odd.values()))
        w.unchecked = True
        w.hand_off()  # fewer than batch_rows: written once flush_seconds have passed, with no further word
        wait_for(lambda: len(table(db_url)) == 4, timeout=20, what="the rows written after flush_seconds")
        last = dict(zip(TICK_FIELDS, table(db_url)[-1], strict=True))
        assert last["bid_size"] is last["ask_size"] is last["tot_buy_qty"] is None
        assert last["ltp"] == 100.0 and last["exch_feed_time"] == 1_700_000_003
        assert w.hand_off(final=True) == 4
    finally:
        w.close()
        p.join(30)


def test_sampled_keeps_each_symbols_first_tick_per_sample_seconds(tmp_path):
    url = f"sqlite:///{tmp_path / 'sampled.sqlite'}"
    w, p = start_writer(url, TickPersistence.SAMPLED, sample_seconds=2, batch_rows=3)
    t0 = 1_700_000_000
    times = {"NSE:SBIN-EQ": [0, 1, 2, 3, 5, 6], "NSE:INFY-EQ": [1, 1, 4]}
    for i in range(7):
        for sym, ts in times.items():
            if i < len(ts):
                w.rows.append(tuple(tick(sym, t0 + ts[i]).values()))
        w.hand_off()
    assert w.hand_off(final=True) == 5
    got = [(r[TICK_FIELDS.index("symbol")], r[TICK_FIELDS.index("exch_feed_time")] - t0) for r in table(url)]
    assert got == [("NSE:SBIN-EQ", 0), ("NSE:INFY-EQ", 1), ("NSE:SBIN-EQ", 2), ("NSE:INFY-EQ", 4),
                   ("NSE:SBIN-EQ", 5)]
    w.close()
    p.join(30)


def test_the_rest_is_written_when_the_feeds_end_of_the_pipe_closes(tmp_path):
    """The feed process gone without a final cycle (its pipe ends): the writer writes what it was sent."""
    url = f"sqlite:///{tmp_path / 'eof.sqlite'}"
    w, p = start_writer(url, batch_rows=1000, flush_seconds=60)
    sent = [tuple(tick("NSE:SBIN-EQ", 1_700_000_000 + i).values()) for i in range(10)]
    w.rows.extend(sent)
    w.hand_off()
    w.out.close()
    p.join(30)
    assert p.exitcode == 0
    assert table(url) == sent


def test_live_a_database_far_behind_costs_cycles_of_the_record_never_a_wait(tmp_path, caplog):
    path = tmp_path / "behind.sqlite"
    url = f"sqlite:///{path}"
    w, p = start_writer(url, batch_rows=5, flush_seconds=0.01, max_pending_rows=5, drop_when_behind=True)
    batch = [[tuple(tick("NSE:SBIN-EQ", 1_700_000_000 + 5 * k + i).values()) for i in range(5)] for k in range(3)]
    holder = sqlite3.connect(path, timeout=0)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the database: the writer process waits on it
    try:
        w.rows.extend(batch[0])
        w.hand_off()
        w.rows.extend(batch[1])
        with caplog.at_level(logging.ERROR, logger="pipeline.tick_writer_process"):
            t0 = time.monotonic()
            w.hand_off()  # 5 rows unconfirmed: this cycle is left out, and the feed goes on at once
            assert time.monotonic() - t0 < 2.0
        assert w.dropped == 5 and "ticks behind" in caplog.text
    finally:
        holder.rollback()
        holder.close()
    wait_for(lambda: w.hand_off() == 5, timeout=30, what="the first batch written once the database is free")
    w.rows.extend(batch[2])
    assert w.hand_off(final=True) == 10
    assert table(url) == batch[0] + batch[2]
    w.close()
    p.join(30)


def test_a_killed_writer_process_is_seen_counted_and_logged_and_the_feed_goes_on(tmp_path, caplog):
    url = f"sqlite:///{tmp_path / 'killed.sqlite'}"
    w, p = start_writer(url, batch_rows=3)
    w.rows.extend(tuple(tick("NSE:SBIN-EQ", 1_700_000_000 + i).values()) for i in range(3))
    assert w.hand_off(final=True) == 3
    os.kill(p.pid, signal.SIGKILL)
    p.join(10)
    with caplog.at_level(logging.ERROR, logger="pipeline.tick_writer_process"):
        for k in range(3):  # cycles go on: nothing raised, nothing waited for
            w.rows.extend(tuple(tick("NSE:SBIN-EQ", 1_700_000_010 + 4 * k + i).values()) for i in range(4))
            t0 = time.monotonic()
            assert w.hand_off(final=k == 2) == 3
            assert time.monotonic() - t0 < 2.0
    assert w.gone and w.failed == 12 and w.written == 3
    assert caplog.text.count("tick writer process is gone") == 1
    assert len(table(url)) == 3
    w.close()

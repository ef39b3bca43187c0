"""TickWriter: the one writer of the day's ticks (db.MarketData). The daemon runs it inline in the tick writer
process (pipeline.tick_writer_process), fed by the feed process; its thread mode is the same writer in the
caller's process.

Why one writer fed from the feed, and not the workers: the feed process already holds every tick the validator
admitted, in feed order, and for the synthetic day as numpy columns. Eight workers each inserting their own
ticks contended for SQLite's single write lock (its busy handler sleeps), paid an insert per tick on the
strategy path, and could not fold a persisted symbol's quiet ticks. Here the ticks go as plain tuples (no Tick
record, no dict per row), one executemany (SQLite) or COPY (PostgreSQL) per batch, on a thread of its own: the
database's own work runs without the GIL, beside the feed's routing.

What is written: every tick the TickBatcher routes to a worker (a tick the validator refused, or one for a
symbol no worker trades, never is), with `market_data.persist` every_tick, or the first tick of each symbol per
`sample_seconds` of feed time with `sampled`. Rows are handed over at each cycle and written once
`batch_rows` have gathered or `flush_seconds` have passed since the last write; the final cycle waits until
all are written, and so does close(). A crash (the feed process killed) loses what was not written yet: at
most about one flush interval of ticks, as before. Live (`drop_when_behind`), a database that falls
MAX_PENDING_ROWS behind costs the record, never the trading path: the cycles meanwhile are left out of
market_data (counted, logged) rather than holding up the ticks the workers' strategies and caps act on. A
replay waits for the database instead, so its record is whole.

Columns are in TICK_FIELDS order (every one a MarketData column; `instrument` is left NULL), so a routed
tick's values go to the database as they are.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from itertools import repeat
from typing import Annotated, Any

import msgspec
import numpy as np

from core.enums import TickPersistence
from core.types import TICK_FIELDS, TickColumns
from db import DBHandler, MarketData

log = logging.getLogger(__name__)

_SYMBOL = TICK_FIELDS.index("symbol")
_EXCH_TIME = TICK_FIELDS.index("exch_feed_time")
_TRADED_TIME = TICK_FIELDS.index("last_traded_time")
# rows waiting for the database before the feed waits for it (memory: a few hundred bytes per row)
MAX_PENDING_ROWS = 200_000
# rows per transaction at most, when a backlog has gathered: SQLite has one write lock, and the TradeManager's
# order units wait while a transaction holds it (a row costs a few microseconds: ~0.1 s at most)
MAX_TRANSACTION_ROWS = 20_000
# a row of values that can stand in its Tick field, as a worker's record would hold them
_TEXT = frozenset({"type", "symbol"})
_INT64 = Annotated[int, msgspec.Meta(ge=-2**63, le=2**63 - 1)]  # what a BIGINT column (and SQLite) can hold
_ROW_TYPES: tuple[Any, ...] = tuple(str | None if f in _TEXT else _INT64 | float | None for f in TICK_FIELDS)
_ROWS: Any = list.__class_getitem__(tuple.__class_getitem__(_ROW_TYPES))


def _fits(v: Any, text: bool) -> bool:
    if text:
        return type(v) is str
    return type(v) is float or (type(v) is int and -2**63 <= v < 2**63)


def fitted(rows: list[tuple]) -> list[tuple]:
    """Rows whose every value can stand in its column: as they are (one C check for the lot, as nearly always),
    else each value that cannot (a string or bool where a number belongs, an int past 64 bits) as NULL, as the
    Tick record a worker gets has it (core.types.Tick.fitted). One odd field must not lose a batch."""
    try:
        msgspec.convert(rows, _ROWS)
        return rows
    except msgspec.ValidationError:
        text = [f in _TEXT for f in TICK_FIELDS]
        return [tuple(v if v is None or _fits(v, x) else None for v, x in zip(r, text, strict=True)) for r in rows]


class TickWriter:
    """Rows gathered by the feed thread (`rows`, appended to under the batcher's lock), handed to the writer
    thread a cycle at a time (hand_off) and written in batches."""

    def __init__(self, db: DBHandler, persist: TickPersistence, sample_seconds: float = 1.0,
                 batch_rows: int = 2000, flush_seconds: float = 1.0, max_pending_rows: int = MAX_PENDING_ROWS,
                 inline: bool = False, drop_when_behind: bool = False):
        """`inline`: write in the caller's thread, at hand_off, with no thread of its own (a replay at full speed:
        a writer thread would take the GIL back from the busy feed thread once per row, and sleep for it).
        `drop_when_behind` (live): past max_pending_rows waiting, a cycle's rows are dropped, not waited for."""
        if persist is TickPersistence.OFF:
            raise ValueError("TickWriter needs market_data.persist every_tick or sampled")
        self.db = db
        self.sample_s = sample_seconds if persist is TickPersistence.SAMPLED else 0.0
        self.batch_rows = batch_rows
        self.flush_seconds = flush_seconds
        self.max_pending = max(max_pending_rows, batch_rows)
        self.rows: list[tuple] = []  # the current cycle's ticks, each its values in TICK_FIELDS order
        self.unchecked = False  # rows came one by one (a feed's dicts): fitted before they are written
        self.written = 0  # rows in the database (after sampling)
        self.failed = 0   # rows the database refused for good (logged)
        self.dropped = 0  # rows left out while the database was behind (drop_when_behind; logged)
        self.drop_when_behind = drop_when_behind
        self._behind = False
        self._last_sampled: dict[str, float] = {}
        self._queue: deque[tuple[list[tuple], bool]] = deque()
        self._pending = 0  # rows handed over and not yet written (or given up)
        self._drains = 0   # hand_off(final=True) / close() calls waiting for everything to be written
        self._closing = False
        self._cond = threading.Condition()
        self.inline = inline
        self._last = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="tick-writer", daemon=True)
        if not inline:
            self._thread.start()

    # ------------------------------------------------------------------ the feed thread's side
    def add_columns(self, cols: TickColumns, rows: np.ndarray, encoded: Any = None) -> None:
        """Rows `rows` (indices, in feed order) of `cols` as tuples, built a column at a time (`encoded`, the
        rows as encoded for the workers, is the writer process's way: pipeline.tick_writer_process)."""
        n = len(rows)
        if not n:
            return
        parts: list[Any] = []
        for f in TICK_FIELDS:
            if f == "symbol":
                names = cols.names
                parts.append([names[c] for c in cols.symbol[rows].tolist()])
            elif f in cols.constants:
                parts.append(repeat(cols.constants[f], n))
            else:
                parts.append(cols.values[f][rows].tolist())
        self.rows.extend(zip(*parts, strict=False))

    def hand_off(self, final: bool = False) -> int:
        """At each cycle: the rows gathered go to the writer thread (the caller waits while MAX_PENDING_ROWS
        are already waiting: the database sets the pace). `final`: return only once every row is written.
        The rows written so far."""
        rows = self.rows
        if self.inline:
            if rows:
                self.rows = []
                self._queue.append((rows, self.unchecked))
                self.unchecked = False
                self._pending += len(rows)
            if self._pending and (final or self._pending >= self.batch_rows
                                  or time.monotonic() - self._last >= self.flush_seconds):
                self._write_queued()
            return self.written
        with self._cond:
            if rows:
                self.rows = []
                if self.drop_when_behind:
                    rows = self._unless_behind(rows)
                while not self.drop_when_behind and self._pending >= self.max_pending and self._thread.is_alive():
                    self._cond.wait(1.0)
            if rows:
                self._queue.append((rows, self.unchecked))
                self.unchecked = False
                self._pending += len(rows)
                if self._pending >= self.batch_rows or self._pending == len(rows):  # full, or the clock starts
                    self._cond.notify_all()
            if final:
                self._wait_written()
            return self.written

    def _unless_behind(self, rows: list[tuple]) -> list[tuple]:
        """`rows`, or none while the database is max_pending rows behind (called under the lock)."""
        if self._pending >= self.max_pending:
            if not self._behind:
                self._behind = True
                log.error("market data: the database is %d ticks behind; ticks are left out of market_data until "
                          "it catches up (trading goes on)", self._pending)
            self.dropped += len(rows)
            self.unchecked = False
            return []
        if self._behind:
            self._behind = False
            log.warning("market data: the database caught up; %d ticks were left out of market_data so far",
                        self.dropped)
        return rows

    def close(self) -> None:
        """Write what is left and stop the thread."""
        if self.inline:
            self.hand_off(final=True)
            return
        with self._cond:
            if self.rows:
                self._queue.append((self.rows, self.unchecked))
                self._pending += len(self.rows)
                self.rows, self.unchecked = [], False
            self._wait_written()
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout=60)

    def _wait_written(self) -> None:
        self._drains += 1
        self._cond.notify_all()
        try:
            while self._pending and self._thread.is_alive():
                self._cond.wait(1.0)
        finally:
            self._drains -= 1

    # ------------------------------------------------------------------ the writer thread
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closing:
                    if self._pending and (self._pending >= self.batch_rows or self._drains
                                          or time.monotonic() - self._last >= self.flush_seconds):
                        break
                    self._cond.wait(max(0.0, self.flush_seconds - (time.monotonic() - self._last))
                                    if self._pending else None)
                if self._closing and not self._pending:
                    return
            self._write_queued()

    def _write_queued(self) -> None:
        """Write every row handed over so far: sampled, fitted, in transactions of MAX_TRANSACTION_ROWS at most."""
        with self._cond:
            taken = list(self._queue)
            self._queue.clear()
        chunks = [fitted(c) if unchecked else c for c, unchecked in taken]
        n = sum(len(c) for c in chunks)
        rows = self._sampled(chunks) if self.sample_s else chunks[0] if len(chunks) == 1 else [
            r for c in chunks for r in c]
        self._last = time.monotonic()
        for i in range(0, len(rows), MAX_TRANSACTION_ROWS):
            part = rows[i:i + MAX_TRANSACTION_ROWS] if len(rows) > MAX_TRANSACTION_ROWS else rows
            try:
                self.db.bulk_insert_tuples(MarketData, TICK_FIELDS, part)
                ok = True
            except Exception as e:  # noqa: BLE001 - the record of ticks must not stop the feed: logged, counted
                ok = False
                log.error("market data: %d ticks not written: %s", len(part), e)
            with self._cond:
                if ok:
                    self.written += len(part)
                else:
                    self.failed += len(part)
        with self._cond:
            self._pending -= n
            self._cond.notify_all()

    def _sampled(self, chunks: list[list[tuple]]) -> list[tuple]:
        """The first tick of each symbol per sample_seconds of its feed time (exch_feed_time, else
        last_traded_time)."""
        out = []
        last, every = self._last_sampled, self.sample_s
        for chunk in chunks:
            for r in chunk:
                ts = r[_EXCH_TIME]
                if ts is None:
                    ts = r[_TRADED_TIME]
                if ts is None:
                    continue  # no time (nothing the validator admits): a worker would refuse it too
                sym = r[_SYMBOL]
                if ts - last.get(sym, -1e18) >= every:
                    last[sym] = ts
                    out.append(r)
        return out


__all__ = ["MAX_PENDING_ROWS", "MAX_TRANSACTION_ROWS", "TickWriter", "fitted"]

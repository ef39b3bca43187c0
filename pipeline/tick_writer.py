"""TickWriter: the one writer of the day's ticks (db.MarketData), run by the tick writer process
(pipeline.tick_writer_process) on the rows the feed process sends it.

Why one writer fed from the feed, and not the workers: the feed process already holds every tick the validator
admitted, in feed order, and for the synthetic day as numpy columns. Eight workers each inserting their own
ticks contended for SQLite's single write lock (its busy handler sleeps), paid an insert per tick on the
strategy path, and could not fold a persisted symbol's quiet ticks. Here the ticks go as plain tuples (no Tick
record, no dict per row), one executemany (SQLite) or COPY (PostgreSQL) per batch, in a process of its own:
the insert runs on the other core, beside the feed's routing.

What is written: every tick the TickBatcher routes to a worker (a tick the validator refused, or one for a
symbol no worker trades, never is), with `market_data.persist` every_tick, or the first tick of each symbol per
`sample_seconds` of feed time with `sampled`. Rows are handed over at each cycle and written once
`batch_rows` have gathered or `flush_seconds` have passed since the last write; the final cycle writes them
all, and so does close(). The feed's side (WriterLink: what waits for the database in a replay and what is left
out live when it falls MAX_PENDING_ROWS behind) is in pipeline.tick_writer_process.

Columns are in TICK_FIELDS order (every one a MarketData column; `instrument` is left NULL), so a routed
tick's values go to the database as they are.
"""
from __future__ import annotations

import logging
import time
from typing import Annotated, Any

import msgspec

from core.enums import TickPersistence
from core.types import TICK_FIELDS
from db import DBHandler, MarketData

log = logging.getLogger(__name__)

_SYMBOL = TICK_FIELDS.index("symbol")
_EXCH_TIME = TICK_FIELDS.index("exch_feed_time")
_TRADED_TIME = TICK_FIELDS.index("last_traded_time")
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
    """The tick writer process's engine (pipeline.tick_writer_process): rows handed over a cycle at a time
    (`rows`, `unchecked`, hand_off) and written in batches, in the caller's thread."""

    def __init__(self, db: DBHandler, persist: TickPersistence, sample_seconds: float = 1.0,
                 batch_rows: int = 2000, flush_seconds: float = 1.0):
        if persist is TickPersistence.OFF:
            raise ValueError("TickWriter needs market_data.persist every_tick or sampled")
        self.db = db
        self.sample_s = sample_seconds if persist is TickPersistence.SAMPLED else 0.0
        self.batch_rows = batch_rows
        self.flush_seconds = flush_seconds
        self.rows: list[tuple] = []  # the current cycle's ticks, each its values in TICK_FIELDS order
        self.unchecked = False  # rows came one by one (a feed's dicts): fitted before they are written
        self.written = 0  # rows in the database (after sampling)
        self.failed = 0   # rows the database refused for good (logged)
        self.pending = 0  # rows handed over and not yet written (or given up)
        self.last_write = time.monotonic()
        self._last_sampled: dict[str, float] = {}
        self._queue: list[tuple[list[tuple], bool]] = []

    def hand_off(self, final: bool = False) -> int:
        """At each cycle: the rows gathered join the queue, written once batch_rows are waiting or
        flush_seconds have passed since the last write (`final`: now). The rows written so far."""
        if self.rows:
            self._queue.append((self.rows, self.unchecked))
            self.pending += len(self.rows)
            self.rows, self.unchecked = [], False
        if self.pending and (final or self.pending >= self.batch_rows
                             or time.monotonic() - self.last_write >= self.flush_seconds):
            self._write_queued()
        return self.written

    def close(self) -> None:
        """Write what is left."""
        self.hand_off(final=True)

    def _write_queued(self) -> None:
        """Write every row handed over so far: sampled, fitted, in transactions of MAX_TRANSACTION_ROWS at most."""
        taken, self._queue = self._queue, []
        chunks = [fitted(c) if unchecked else c for c, unchecked in taken]
        rows = self._sampled(chunks) if self.sample_s else chunks[0] if len(chunks) == 1 else [
            r for c in chunks for r in c]
        self.last_write = time.monotonic()
        for i in range(0, len(rows), MAX_TRANSACTION_ROWS):
            part = rows[i:i + MAX_TRANSACTION_ROWS] if len(rows) > MAX_TRANSACTION_ROWS else rows
            try:
                self.db.bulk_insert_tuples(MarketData, TICK_FIELDS, part)
                self.written += len(part)
            except Exception as e:  # noqa: BLE001 - the record of ticks must not stop the feed: logged, counted
                self.failed += len(part)
                log.error("market data: %d ticks not written: %s", len(part), e)
        self.pending = 0

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


__all__ = ["MAX_TRANSACTION_ROWS", "TickWriter", "fitted"]

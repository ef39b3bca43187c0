"""The tick writer process: the day's ticks (db.MarketData) written on a core of their own, beside the feed.

Why a process: the insert (~5 us of SQLite per row) ran in the feed process, whose one core also validates,
routes and encodes every tick; persisted, the feed was the pipeline's bottleneck. Here the feed process only
gathers the routed ticks of each cycle as msgpack rows (for the synthetic day one numpy gather of the rows it
already encoded for the workers: ColumnRows.take; ticks that came as dicts are encoded once with msgspec) and
sends them down a pipe as bytes, never pickled objects. The writer process decodes them straight into the
tuples the insert binds (typed: the decode is also the check that every value fits its column) and runs the
TickWriter (pipeline.tick_writer) on them: every_tick or sampled, in transactions, COPY on
PostgreSQL.

The feed's side (WriterLink) is the batcher's writer: rows are handed over at each cycle;
`final` returns once every row handed over is written (the end of a replay, the feed's shutdown); a replay
waits while MAX_PENDING_ROWS are unconfirmed (its record is whole); live, a cycle is left out then (counted,
logged), never waited for. The writer process confirms after each write (rows done, written, refused), so
rows_persisted in the feed's report is what the database holds. If the writer process dies, the feed logs it,
counts what it had handed over unconfirmed and everything after as not written, and goes on routing: the
record is lost, trading is not. The driver starts a new writer with each new feed process.
"""
from __future__ import annotations

import logging
import signal as signals
import struct
import threading
import time
from collections import deque
from typing import Any

import msgspec
import numpy as np

from core.enums import TickPersistence
from core.types import TickColumns
from pipeline.column_encoding import ColumnRows, array_header
from pipeline.tick_writer import _ROWS, MAX_TRANSACTION_ROWS, TickWriter, fitted

# rows unconfirmed before a replay's feed waits for the database (live: later cycles are left out); memory:
# a few hundred bytes per row
MAX_PENDING_ROWS = 200_000

log = logging.getLogger(__name__)

ACK = struct.Struct("<qqq")  # rows done (written, refused or sampled out), written, refused: running totals
FLUSH = b""  # "write everything you have, then confirm"
MIN_ROW_BYTES = 100  # an encoded tick row takes ~200 bytes: one per 100 errs towards fewer decoded at once
_encoder = msgspec.msgpack.Encoder()
_typed = msgspec.msgpack.Decoder(_ROWS)
_untyped = msgspec.msgpack.Decoder()


def encode_rows(rows: list[tuple]) -> bytes:
    """Rows of values in TICK_FIELDS order as the body of a msgpack array (no header); a value msgpack cannot
    carry (an object of another type, an int past 64 bits) goes as NULL, as TickWriter would write it."""
    try:
        body = _encoder.encode(rows)
    except (TypeError, ValueError, OverflowError):
        body = _encoder.encode(fitted(rows))
    return body[len(array_header(len(rows))):]


def decode_rows(buf: bytes) -> list[tuple]:
    """One message of rows as tuples ready to bind; a row whose value cannot stand in its column has it
    NULL (fitted), the rest are checked in the same C pass that decodes them."""
    try:
        return _typed.decode(buf)
    except msgspec.ValidationError:
        return fitted([tuple(r) for r in _untyped.decode(buf)])


class WriterLink:
    """The feed process's end: the batcher's writer interface (rows, unchecked, add_columns, hand_off, close and the
    written / failed / dropped counts) over the pipes to the writer process."""

    def __init__(self, out: Any, acks: Any, max_pending_rows: int = MAX_PENDING_ROWS,
                 drop_when_behind: bool = False):
        self.out = out    # Connection: message bytes to the writer process
        self.acks = acks  # Connection: ACK records back
        self.max_pending = max_pending_rows
        self.drop_when_behind = drop_when_behind
        self.rows: list[tuple] = []  # ticks routed one by one (dicts' values), appended by the batcher
        self.unchecked = False       # kept for the batcher; the writer process checks every row
        self._parts: list[bytes] = []
        self._count = 0  # rows in _parts
        self.sent = 0    # rows handed to the writer process
        self.done = 0    # of them, confirmed done
        self.written = 0
        self._refused = 0  # rows the database refused (the writer process's count)
        self._lost = 0     # rows never confirmed because the writer process died, or handed over after that
        self.dropped = 0   # rows left out while the database was behind (drop_when_behind)
        self.gone = False  # the writer process died
        self._behind = False

    @property
    def failed(self) -> int:
        """Rows not written: refused by the database, or lost with the writer process."""
        return self._refused + self._lost

    def add_columns(self, cols: TickColumns, rows: np.ndarray, encoded: ColumnRows | None = None) -> None:
        """Rows `rows` of `cols`, taken from their encoding for the workers (`encoded`) when given."""
        if not len(rows):
            return
        self._rows_to_part()
        self._parts.append((encoded if encoded is not None else ColumnRows(cols)).take(rows))
        self._count += len(rows)

    def _rows_to_part(self) -> None:
        if self.rows:
            self._parts.append(encode_rows(self.rows))
            self._count += len(self.rows)
            self.rows = []

    def hand_off(self, final: bool = False) -> int:
        """The cycle's rows go to the writer process (a replay waits while max_pending rows are unconfirmed;
        live leaves the cycle out then). `final`: return once every row handed over is written. The rows
        written so far."""
        self._rows_to_part()
        self.unchecked = False
        self._read_acks(0.0)
        n = self._count
        if n:
            parts = self._parts
            self._parts, self._count = [], 0
            if self.drop_when_behind:
                n = self._unless_behind(n)
            else:
                while not self.gone and self.sent - self.done >= self.max_pending:
                    self._read_acks(1.0)
            if n:
                self._send(b"".join((array_header(n), *parts)), n)
        if final and not self.gone:
            self._send(FLUSH, 0)
            while not self.gone and self.done < self.sent:
                self._read_acks(1.0)
        return self.written

    def _unless_behind(self, n: int) -> int:
        if self.sent - self.done >= self.max_pending:
            if not self._behind:
                self._behind = True
                log.error("market data: the database is %d ticks behind; ticks are left out of market_data until "
                          "it catches up (trading goes on)", self.sent - self.done)
            self.dropped += n
            return 0
        if self._behind:
            self._behind = False
            log.warning("market data: the database caught up; %d ticks were left out of market_data so far",
                        self.dropped)
        return n

    def _send(self, msg: bytes, n: int) -> None:
        if self.gone:
            self._lost += n
            return
        try:
            self.out.send_bytes(msg)
            self.sent += n
        except (OSError, ValueError):
            self._lost += n
            self._writer_gone()

    def _read_acks(self, timeout: float) -> None:
        """Take the writer process's confirmations (waiting up to `timeout` for the first)."""
        if self.gone:
            return
        try:
            while self.acks.poll(timeout):
                self.done, self.written, self._refused = ACK.unpack(self.acks.recv_bytes())
                timeout = 0.0
        except (EOFError, OSError):
            self._writer_gone()

    def _writer_gone(self) -> None:
        if self.gone:
            return
        self.gone = True
        unconfirmed = self.sent - self.done
        self._lost += unconfirmed
        log.error("market data: the tick writer process is gone; %d ticks handed to it were not confirmed "
                  "written, and ticks are no longer written to market_data (trading goes on)", unconfirmed)

    def close(self) -> None:
        """Write what is left, then let the writer process end (it stops at the pipe's end)."""
        try:
            self.hand_off(final=True)
        finally:
            for c in (self.out, self.acks):
                try:
                    c.close()
                except OSError:
                    pass


def run_tick_writer(db_url: str, persist: TickPersistence, sample_seconds: float, batch_rows: int,
                    flush_seconds: float, inbox: Any, acks: Any, log_level: str, log_dir: Any,
                    log_secrets: list[str], log_sink: Any = None) -> None:
    """Process entry point (spawned by the driver with each feed process): write what the feed sends until
    its pipe ends (the feed stopped or died), then write the rest and exit."""
    from core.faults import die_with_parent
    from core.logs import setup_logging
    from db import DBHandler, setup

    signals.signal(signals.SIGINT, signals.SIG_IGN)  # the feed decides when the record ends
    die_with_parent()
    setup_logging(log_level, log_dir, log_secrets, filename="tick_writer.log", sink=log_sink)
    writer = TickWriter(DBHandler(setup(db_url)[0]), persist, sample_seconds=sample_seconds,
                        batch_rows=batch_rows, flush_seconds=flush_seconds)
    queue: deque[bytes] = deque()
    cond = threading.Condition()
    ended = False

    def receive() -> None:
        """On a thread: the pipe is read while the main thread is in a transaction, so the feed never waits
        on a full pipe."""
        nonlocal ended
        try:
            while True:
                msg = inbox.recv_bytes()
                with cond:
                    queue.append(msg)
                    cond.notify()
        except (EOFError, OSError):
            pass
        with cond:
            ended = True
            cond.notify()

    threading.Thread(target=receive, name="tick-inbox", daemon=True).start()
    received = 0
    confirmed = (0, 0, 0)
    while True:
        with cond:
            while not queue and not ended:
                if not writer.pending:  # rows waiting for their batch or flush_seconds
                    cond.wait()
                    continue
                left = flush_seconds - (time.monotonic() - writer.last_write)
                if left <= 0 or not cond.wait(left):
                    break
            msgs = []  # a backlog stays as bytes: decoded a transaction's worth at a time (memory)
            taken = 0
            while queue and taken < MAX_TRANSACTION_ROWS:
                msgs.append(queue.popleft())
                taken += len(msgs[-1]) // MIN_ROW_BYTES
            at_end = ended and not msgs
        final = at_end
        for msg in msgs:
            if msg == FLUSH:
                final = True
                continue
            rows = decode_rows(msg)
            writer.rows.extend(rows)
            received += len(rows)
        writer.hand_off(final=final)
        state = (received - writer.pending, writer.written, writer.failed)
        if state != confirmed or final:  # rows that only gathered need no word: the feed waits on none of them
            confirmed = state
            try:
                acks.send_bytes(ACK.pack(*state))
            except OSError:
                pass  # the feed is gone: what it sent is written all the same
        if at_end:
            break
    log.info("tick writer stopped: %d ticks written%s", writer.written,
             f", {writer.failed} not written (database errors)" if writer.failed else "")


__all__ = ["ACK", "FLUSH", "WriterLink", "decode_rows", "encode_rows", "run_tick_writer"]

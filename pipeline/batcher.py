"""TickBatcher: the feed's side of the DataDispatcher. Sorts each tick into its worker's buffer and hands
out a Cycle when the buffers are full, a few milliseconds old, or the feed pauses.

It runs where the feed runs (the feed process), so the per-tick work -- taking each admitted Fyers dict's
values in Tick field order (the feed edge: nothing past here sees the dict; the worker decodes them as Tick
records), routing, and encoding each batch once -- is off the driver's GIL. A Cycle carries each worker's
batch already encoded (pipeline.messages.encode_batch); the DataDispatcher (pipeline.dispatcher) writes it
into that worker's pipe.

Seed chart 1 puts one tick per queue `put`; that caps the daemon near 85,000 ticks/s and costs a pickle and a
pipe write per tick. A batch per worker per cycle costs one of each per cycle.
"""
from __future__ import annotations

import logging
import operator
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.types import TICK_FIELDS, TickColumns, tick_values
from pipeline.column_encoding import ColumnRows, rows_body
from pipeline.column_encoding import batch as column_batch
from pipeline.messages import END_OF_FEED, encode_batch
from pipeline.tick_validator import TickValidator
from pipeline.tick_writer import TickWriter
from pipeline.tick_writer_process import WriterLink

log = logging.getLogger(__name__)

_all_fields = operator.itemgetter(*TICK_FIELDS)
BULK_ROWS = 16384  # rows judged at once by the validator's bulk check (dispatch_columns)


@dataclass(frozen=True, slots=True)
class Cycle:
    """One flush: an encoded batch (or None) per worker, and how far the feed has got.

    `through`: every tick with exch_feed_time <= through is in this cycle or an earlier one (END_OF_FEED on
    the last); `through_pos` the same in feed positions (every routed tick is numbered in the order it came).
    A batch is the encoded pair (Tick records, their positions). The counters are for this cycle only, so a restarted
    feed process simply adds to them.
    """

    through: int
    batches: tuple[bytes | None, ...]
    counts: tuple[int, ...]
    first_wall: tuple[float, ...]   # wall time the first tick of each batch arrived (latency figures)
    final: bool = False
    unroutable: int = 0
    not_ticks: int = 0
    feed_time: int = 0              # the latest tick time seen
    through_pos: int = 0
    rejected: tuple[tuple[str, int], ...] = ()  # (reason, count) of the ticks the validator refused
    persisted: int = 0              # ticks written to the database so far (a running total; the final: all)


class TickBatcher:
    def __init__(self, worker_of: dict[str, int], n_workers: int, emit: Callable[[Cycle], None],
                 cycle_ticks: int = 4096, max_delay_s: float = 0.001, max_age_s: float = 0.05, first_pos: int = 0,
                 validator: TickValidator | None = None, writer: TickWriter | WriterLink | None = None):
        self.worker_of = worker_of
        self.validator = validator  # judges each tick before it is numbered, routed or moves max_ts
        self.writer = writer  # persists every routed tick (market_data.persist), handed over a cycle at a time
        self.n = n_workers
        self.emit = emit
        self.cycle_ticks = cycle_ticks
        self.max_delay_s = max_delay_s
        # a busy feed's cycle goes out at this age even if not full: short for a feed running in real time
        # (latency), long for a replay at full speed (fewer, fuller cycles: throughput)
        self.max_age_s = max_age_s
        self.lock = threading.Lock()
        self.buffers: list[list[tuple]] = [[] for _ in range(n_workers)]  # each tick's tick_values()
        self.positions: list[list[int]] = [[] for _ in range(n_workers)]
        # rows routed in bulk (dispatch_columns), already encoded, before the tuples in buffers
        self.parts: list[list[bytes]] = [[] for _ in range(n_workers)]
        self.part_pos: list[list[np.ndarray]] = [[] for _ in range(n_workers)]
        self.part_count = [0] * n_workers
        self._col_warned = 0
        self.first_pos = first_pos  # a restarted feed process numbers its ticks on from its predecessor's
        self.first_wall = [0.0] * n_workers
        self.pending = 0
        self.first_pending = 0.0  # when the oldest tick of the cycle being filled arrived (monotonic)
        self.dispatched = 0
        self.max_ts = 0
        self.complete = 0  # the feed said every tick up to this time has come (replay pacing)
        self.unroutable = 0
        self.not_ticks = 0
        self._reported: dict[str, int] = {}  # the validator's running counts as of the last cycle
        self.finished = False
        self._warned = 0
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None

    @property
    def pos(self) -> int:
        """The last feed position given out."""
        return self.first_pos + self.dispatched

    def dispatch(self, msg: Any) -> None:
        """on_message for the feed: route one tick. Control messages are counted, not routed; so is junk, or,
        with a validator, every tick it refuses (by reason)."""
        plain = type(msg) is dict
        if (plain and "s" in msg) or (self.validator is None and not plain):
            with self.lock:  # the counters are reset by a flush, maybe on the flusher's thread
                self.not_ticks += 1
            return
        with self.lock:  # one acquisition per tick: the validator's feed clock, the buffers and counters
            validator = self.validator
            if validator is None:
                self._route_locked(msg)
            elif plain and validator.admit_plain(msg):  # nearly every tick: judged and routed without a list
                self._route_locked(msg)
            else:
                for tick in validator.admit(msg):
                    self._route_locked(tick)

    def dispatch_columns(self, cols: TickColumns) -> None:
        """on_columns for a feed that delivers ticks as columns (the synthetic day): the same verdicts, counts,
        numbering and batches as dispatch() on each row's dict, judged, routed and encoded in bulk. A row the
        bulk check does not pass goes through dispatch() as its dict (tick(i)), so every rule stays in one place."""
        n = len(cols)
        with self.lock:
            rows = ColumnRows(cols)
            # small ints: numpy's stable sort of them (routing by worker) is a radix sort
            workers = np.array([self.worker_of.get(s, -1) for s in cols.names],
                               dtype=np.int16 if self.n < 1 << 15 else np.int64)
            i = 0
            while i < n:
                if self.validator is None:
                    self._route_columns_locked(cols, rows, workers, i, n)
                    break
                hi = min(n, i + BULK_ROWS)  # bounded: the rows after a refused one are judged again
                k = self.validator.admit_columns(cols, i, hi)
                if k:
                    self._route_columns_locked(cols, rows, workers, i, i + k)
                    i += k
                if i < hi:  # the row the bulk check did not pass: judged as its dict
                    self._dispatch_locked(cols.tick(i))
                    i += 1

    def _dispatch_locked(self, msg: dict) -> None:
        validator = self.validator
        assert validator is not None
        if validator.admit_plain(msg):
            self._route_locked(msg)
        else:
            for tick in validator.admit(msg):
                self._route_locked(tick)

    def _route_columns_locked(self, cols: TickColumns, rows: ColumnRows, workers: np.ndarray, lo: int,
                              hi: int) -> None:
        """Rows lo..hi-1, all admitted: numbered, sorted by worker, encoded; cycles flushed as _route_locked
        would (full, or max_age_s old)."""
        w_all = workers[cols.symbol[lo:hi]]
        routable = np.cumsum(w_all >= 0)  # how many of rows lo..lo+j have a worker
        ts_col = cols.values["exch_feed_time"]
        at = 0
        while at < hi - lo:
            if not self.pending:
                self.first_pending = time.monotonic()
            done = int(routable[at - 1]) if at else 0
            # the cycle fills at the row that brings its routable ticks to cycle_ticks (rows without a worker
            # are counted in the cycle they come in, as one by one)
            end = int(np.searchsorted(routable, done + self.cycle_ticks - self.pending)) + 1
            end = min(end, hi - lo)
            pw_all = w_all[at:end]
            keep = pw_all >= 0
            lost = len(keep) - int(keep.sum())
            if lost:
                for j in np.flatnonzero(~keep)[:max(0, 5 - self._warned)].tolist():
                    self._warned += 1
                    log.warning("no worker for symbol %.60r; tick counted as unroutable",
                                cols.names[int(cols.symbol[lo + at + j])])
                self.unroutable += lost
            piece = np.arange(lo + at, lo + end)[keep]
            pw = pw_all[keep]
            take = len(piece)
            at = end
            if not take:
                continue
            if self.writer is not None:
                self.writer.add_columns(cols, piece, rows)
            positions = np.arange(self.pos + 1, self.pos + 1 + take, dtype=np.int64)
            self.dispatched += take
            order = np.argsort(pw, kind="stable")
            bounds = np.searchsorted(pw[order], np.arange(self.n + 1))
            wall = time.time()
            for j in range(self.n):
                a, b = int(bounds[j]), int(bounds[j + 1])
                if a == b:
                    continue
                sel = order[a:b]
                if not self.buffers[j] and not self.part_count[j]:
                    self.first_wall[j] = wall
                self._tuples_to_parts(j)
                self.parts[j].append(rows.take(piece[sel]))
                self.part_pos[j].append(positions[sel])
                self.part_count[j] += b - a
            top = int(ts_col[piece].max())
            if top > self.max_ts:
                self.max_ts = top
            self.pending += take
            if self.pending >= self.cycle_ticks or time.monotonic() - self.first_pending >= self.max_age_s:
                self._flush_locked(final=False)

    def _tuples_to_parts(self, j: int) -> None:
        """Worker j's tick values routed one by one go before what comes next in bulk, encoded."""
        if self.buffers[j]:
            self.parts[j].append(rows_body(self.buffers[j]))
            self.part_pos[j].append(np.array(self.positions[j], dtype=np.int64))
            self.part_count[j] += len(self.buffers[j])
            self.buffers[j] = []
            self.positions[j] = []

    def _batch(self, j: int) -> bytes | None:
        """Worker j's batch of this cycle, encoded (None: it has no ticks)."""
        if not self.part_count[j]:
            b = self.buffers[j]
            return encode_batch(b, self.positions[j]) if b else None
        self._tuples_to_parts(j)
        out = column_batch(self.parts[j], self.part_count[j], np.concatenate(self.part_pos[j]))
        self.parts[j], self.part_pos[j], self.part_count[j] = [], [], 0
        return out

    def _route_locked(self, msg: dict) -> None:
        sym = msg.get("symbol")
        i = self.worker_of.get(sym)
        if i is None:
            self.unroutable += 1
            if self._warned < 5:
                self._warned += 1
                log.warning("no worker for symbol %.60r; tick counted as unroutable", sym)
            return
        ts = msg.get("exch_feed_time")
        buf = self.buffers[i]
        if not buf and not self.part_count[i]:
            self.first_wall[i] = time.time()
        try:  # tick_values(msg), inlined; its Tick record is built with the batch's (the worker's decode_frame)
            values = _all_fields(msg)
        except KeyError:
            values = tick_values(msg)
        buf.append(values)
        writer = self.writer
        if writer is not None:
            writer.rows.append(values)
            writer.unchecked = True
        n = self.dispatched = self.dispatched + 1
        self.positions[i].append(self.first_pos + n)
        if type(ts) is int and ts > self.max_ts:
            self.max_ts = ts
        now = time.monotonic()
        pending = self.pending
        if not pending:
            self.first_pending = now
        self.pending = pending = pending + 1
        if pending >= self.cycle_ticks or now - self.first_pending >= self.max_age_s:
            self._flush_locked(final=False)

    def flush(self, final: bool = False) -> None:
        with self.lock:
            if not self.finished:
                self._flush_locked(final)

    def idle(self, complete_through: int | None = None) -> None:
        """The feed has handed on everything it has: flush now rather than when the flusher notices. A replay
        also knows every tick up to `complete_through` has come, so the marker may say so."""
        with self.lock:
            if self.finished:
                return
            if complete_through is not None and complete_through > self.complete:
                self.complete = complete_through
                if not self.pending:  # nothing new to send, but the marker moves on
                    self._flush_locked(final=False, force=True)
                    return
            self._flush_locked(final=False)

    def _flush_locked(self, final: bool, force: bool = False) -> None:
        if not self.pending and not final and not force:
            return
        rejected: tuple[tuple[str, int], ...] = ()
        if self.validator is not None:
            if final:
                self.validator.finish()  # what is still in quarantine is counted now
            counts = self.validator.counts
            if counts != self._reported:
                rejected = tuple((r, n - self._reported.get(r, 0)) for r, n in counts.items()
                                 if n != self._reported.get(r, 0))
                self._reported = dict(counts)
        # the ticks of this cycle go to the writer first: the final cycle says how many were written in all
        persisted = self.writer.hand_off(final) if self.writer is not None else 0
        counts = tuple(len(b) + k for b, k in zip(self.buffers, self.part_count, strict=True))
        batches = tuple(self._batch(j) for j in range(self.n))  # values: the workers build the records
        self.buffers = [[] for _ in range(self.n)]
        self.positions = [[] for _ in range(self.n)]
        self.pending = 0
        # everything at or before max_ts - 1 is out: later ticks may still share the latest second
        through = END_OF_FEED if final else max(self.max_ts - 1, min(self.complete, self.max_ts))
        cycle = Cycle(through, batches, counts, tuple(self.first_wall), final, self.unroutable, self.not_ticks,
                      self.max_ts, END_OF_FEED if final else self.pos, rejected, persisted)
        self.unroutable = self.not_ticks = 0
        self.finished = final
        self.emit(cycle)

    def start_flusher(self) -> None:
        """Flush when the feed pauses without saying so (feed.idle() is the quick way), so no tick waits for
        a full cycle. A busy feed flushes its own cycles (full, or max_age_s old): this thread then only looks."""
        def loop() -> None:
            seen = -1
            while not self._stop.wait(self.max_delay_s / 2):
                paused, seen = self.dispatched == seen, self.dispatched
                if paused and self.pending:  # no tick since the last look
                    self.flush()
        self._flusher = threading.Thread(target=loop, name="batch-flusher", daemon=True)
        self._flusher.start()

    def stop(self) -> None:
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join(timeout=1)

"""DataDispatcher: routes each tick to the worker that owns its symbol, in batches.

Seed chart 1 puts one tick per queue `put`; that caps the daemon near 85,000 ticks/s and costs a pickle and
a pipe write per tick. Here ticks collect in one buffer per worker and go out as one pickled batch when the
buffers are full or a couple of milliseconds old, followed by a MARKER to every worker saying how far the
feed has got. A batch is pickled once, by the thread that flushes it: the queue's own feeder thread then only
copies bytes, and what is kept for a restart is one bytes object per batch, cheap to keep and to free.

It also keeps what each worker has been sent since its last checkpoint, so a worker that dies can be
restarted from that checkpoint and sent the same ticks again: nothing is routed into a dead queue, and
nothing is silently lost (what cannot be kept is counted as dropped).
"""
from __future__ import annotations

import logging
import pickle
import threading
import time
from collections import deque
from typing import Any, Callable

from pipeline.messages import CONTROL, END_OF_FEED, MARKER, TICKS

log = logging.getLogger(__name__)


class DataDispatcher:
    def __init__(self, worker_of: dict[str, int], queues: list[Any], cycle_ticks: int = 4096,
                 max_delay_s: float = 0.002, max_lag_markers: int = 16, max_lead_s: float = 900.0,
                 control_queues: list[Any] | None = None, retain_limit_ticks: int = 2_000_000,
                 on_tick_time: Callable[[float], None] | None = None):
        self.worker_of = worker_of
        self.queues = list(queues)
        # feedback goes on its own queue so it does not wait behind a worker's backlog of ticks
        self.control_queues = list(control_queues) if control_queues is not None else self.queues
        self.n = len(queues)
        self.cycle_ticks = cycle_ticks
        self.max_delay_s = max_delay_s
        self.max_age_s = 10 * max_delay_s  # a busy feed's cycle goes out at this age even if not full
        self.max_lag = max_lag_markers
        self.max_lead_s = max_lead_s
        self.low_watermark = float("inf")  # set by the driver from the sequencer
        self.retain_limit = retain_limit_ticks
        self.on_tick_time = on_tick_time
        self.lock = threading.Lock()
        self.buffers: list[list] = [[] for _ in range(self.n)]
        self.first_wall: list[float] = [0.0] * self.n
        self.up = [True] * self.n
        self.retained: list[deque] = [deque() for _ in range(self.n)]
        self.retained_ticks = [0] * self.n
        self.acked = [0] * self.n
        self.checkpoint_seq = [0] * self.n
        self.seq = 0
        self.max_ts = 0.0
        self.pending = 0
        self.last_flush = time.monotonic()
        self.dispatched = 0
        self.unroutable = 0
        self.not_ticks = 0
        self.dropped = 0
        self.finished = False
        self._warned = 0
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None

    # ---------------------------------------------------------------- the feed's callback
    def dispatch(self, msg: Any) -> None:
        """on_message for the feed: route one tick (control messages and junk are counted, not routed)."""
        if type(msg) is not dict or "s" in msg:
            self.not_ticks += 1
            return
        i = self.worker_of.get(msg.get("symbol"))
        if i is None:
            self.unroutable += 1
            if self._warned < 5:
                self._warned += 1
                log.warning("no worker for symbol %.60r; tick counted as unroutable", msg.get("symbol"))
            return
        ts = msg.get("exch_feed_time")
        with self.lock:
            buf = self.buffers[i]
            if not buf:
                self.first_wall[i] = time.time()
            buf.append(msg)
            if type(ts) is int and ts > self.max_ts:
                self.max_ts = ts
            self.pending += 1
            self.dispatched += 1
            if self.pending >= self.cycle_ticks or (
                    not self.dispatched & 63 and time.monotonic() - self.last_flush >= self.max_age_s):
                self._flush_locked(final=False)
        if self.pending == 0 and self.max_lag:
            self._wait_for_workers()

    # ---------------------------------------------------------------- flushing
    def flush(self, final: bool = False) -> None:
        with self.lock:
            self._flush_locked(final)
        if final:
            self.finished = True

    def _flush_locked(self, final: bool) -> None:
        self.last_flush = time.monotonic()
        if not self.pending and not final:
            return
        self.pending = 0
        self.seq += 1
        # everything at or before max_ts - 1 is out: later ticks may still share the latest second
        through = END_OF_FEED if final else self.max_ts - 1
        marker = (MARKER, self.seq, through)
        for i in range(self.n):
            buf = self.buffers[i]
            if buf:
                self.buffers[i] = []
                self._send(i, (TICKS, pickle.dumps(buf, pickle.HIGHEST_PROTOCOL), self.first_wall[i]), len(buf))
            self._send(i, marker, 0)

    def _send(self, i: int, msg: tuple, nticks: int) -> None:
        r = self.retained[i]
        r.append((self.seq, msg, nticks))  # tagged with the marker that closes its cycle
        self.retained_ticks[i] += nticks
        while self.retained_ticks[i] > self.retain_limit and r:
            _tag, _old, k = r.popleft()
            self.retained_ticks[i] -= k
            self.dropped += k
        if self.up[i]:
            self.queues[i].put(msg)

    def _wait_for_workers(self) -> None:
        """Backpressure, so memory stays flat: the feed waits while a live worker is too far behind, or while
        the signals' low watermark (how far trading decisions have got) trails the feed by more than
        max_lead_s of feed time -- ticks of symbols waiting on a decision are held meanwhile."""
        while not self._stop.is_set():
            with self.lock:
                behind = any(self.up[i] and self.seq - self.acked[i] > self.max_lag for i in range(self.n))
            if not behind and self.max_ts - self.low_watermark <= self.max_lead_s:
                return
            time.sleep(0.001)

    def start_flusher(self) -> None:
        """Flush when the feed pauses (live, paced replay), so no tick waits for a full cycle. A busy feed
        flushes its own cycles (full, or max_age_s old): this thread then only looks and sleeps, and the
        pickling stays on the feed's thread instead of fighting it for the GIL."""
        def loop() -> None:
            seen = -1
            while not self._stop.wait(self.max_delay_s / 2):
                paused, seen = self.dispatched == seen, self.dispatched
                if paused and self.pending:  # no tick since the last look
                    with self.lock:
                        self._flush_locked(final=False)
        self._flusher = threading.Thread(target=loop, name="dispatch-flusher", daemon=True)
        self._flusher.start()

    def stop(self) -> None:
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join(timeout=1)

    # ---------------------------------------------------------------- worker lifecycle
    def ack(self, i: int, seq: int) -> None:
        """A worker has processed everything up to marker `seq`."""
        if seq > self.acked[i]:
            self.acked[i] = seq

    def checkpointed(self, i: int, seq: int) -> None:
        """Worker i saved its state as of marker `seq`: what it was sent up to that marker need not be kept."""
        with self.lock:
            r = self.retained[i]
            while r and r[0][0] <= seq:
                self.retained_ticks[i] -= r.popleft()[2]
            self.checkpoint_seq[i] = max(self.checkpoint_seq[i], seq)

    def send_control(self, i: int, ctl: Any) -> None:
        """Feedback for worker i: sent at once on its control queue, and kept with its ticks so a restarted
        worker gets it too."""
        msg = (CONTROL, ctl)
        with self.lock:
            self.retained[i].append((self.seq + 1, msg, 0))
            if self.up[i]:
                self.control_queues[i].put(msg)

    def mark_down(self, i: int) -> None:
        with self.lock:
            self.up[i] = False
        log.warning("worker %d is down; its ticks are kept for its restart", i)

    def replace_queue(self, i: int, q: Any, ctl_q: Any | None = None) -> int:
        """Point worker i at fresh queues and resend what it was sent since its last checkpoint."""
        with self.lock:
            self.queues[i] = q
            if ctl_q is not None:
                self.control_queues[i] = ctl_q
            resent = 0
            for _tag, msg, k in self.retained[i]:
                q.put(msg)
                resent += k
            self.up[i] = True
            self.acked[i] = self.checkpoint_seq[i]
        return resent

    def count_dropped(self, n: int) -> None:
        with self.lock:
            self.dropped += n

    def stats(self) -> dict[str, int]:
        return {"dispatched": self.dispatched, "unroutable": self.unroutable, "control_or_junk": self.not_ticks,
                "dropped": self.dropped}

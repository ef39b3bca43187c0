"""DataDispatcher: the driver's side of routing ticks to the worker that owns their symbol.

The feed's side (pipeline.batcher.TickBatcher, in the feed process) sorts ticks into one pickled batch per
worker per cycle. Here each Cycle goes into the worker queues, followed by a MARKER to every worker saying how
far the feed has got; the feed waits while a worker is too far behind.

It also keeps what each worker has been sent since its last checkpoint, so a worker that dies can be
restarted from that checkpoint and sent the same ticks again: nothing is routed into a dead queue, and
nothing is silently lost (what cannot be kept is counted as dropped). A batch is kept as the bytes it was
sent as: cheap to keep and to free.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

from pipeline.batcher import Cycle
from pipeline.messages import CONTROL, END_OF_FEED, MARKER, TICKS

log = logging.getLogger(__name__)


class DataDispatcher:
    def __init__(self, queues: list[Any], max_lag_markers: int = 16, max_lead_s: float = 900.0,
                 control_queues: list[Any] | None = None, retain_limit_ticks: int = 2_000_000):
        self.queues = list(queues)
        # feedback goes on its own queue so it does not wait behind a worker's backlog of ticks
        self.control_queues = list(control_queues) if control_queues is not None else self.queues
        self.n = len(queues)
        self.max_lag = max_lag_markers
        self.max_lead_s = max_lead_s
        self.low_watermark = float("inf")  # set by the driver from the sequencer
        self.retain_limit = retain_limit_ticks
        self.lock = threading.Lock()
        self.up = [True] * self.n
        self.retained: list[deque] = [deque() for _ in range(self.n)]
        self.retained_ticks = [0] * self.n
        self.acked = [0] * self.n
        self.checkpoint_seq = [0] * self.n
        self.seq = 0
        self.through = 0
        self.max_ts = 0
        self.dispatched = 0
        self.unroutable = 0
        self.not_ticks = 0
        self.dropped = 0
        self.finished = False
        self._stop = threading.Event()

    # ---------------------------------------------------------------- cycles from the feed
    def deliver(self, cycle: Cycle) -> None:
        """Send one cycle's batches to their workers, then a marker to every worker."""
        with self.lock:
            if self.finished:
                return
            self.seq += 1
            # a restarted feed process starts its own count again: the marker never goes backwards
            self.through = max(self.through, cycle.through)
            self.max_ts = max(self.max_ts, cycle.feed_time)
            self.dispatched += sum(cycle.counts)
            self.unroutable += cycle.unroutable
            self.not_ticks += cycle.not_ticks
            marker = (MARKER, self.seq, self.through)
            for i in range(self.n):
                if cycle.batches[i] is not None:
                    self._send(i, (TICKS, cycle.batches[i], cycle.first_wall[i]), cycle.counts[i])
                self._send(i, marker, 0)
            self.finished = cycle.final

    def finish(self) -> None:
        """The last marker (END_OF_FEED), at shutdown, if the feed never sent its own."""
        if not self.finished:
            self.deliver(Cycle(END_OF_FEED, (None,) * self.n, (0,) * self.n, (0.0,) * self.n, final=True))

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

    def wait_for_workers(self) -> None:
        """Backpressure, so memory stays flat: the feed waits while a live worker is too far behind, or while
        the signals' low watermark (how far trading decisions have got) trails the feed by more than
        max_lead_s of feed time -- ticks of symbols waiting on a decision are held meanwhile."""
        while not self._stop.is_set():
            with self.lock:
                behind = any(self.up[i] and self.seq - self.acked[i] > self.max_lag for i in range(self.n))
            if not behind and self.max_ts - self.low_watermark <= self.max_lead_s:
                return
            time.sleep(0.001)

    def stop(self) -> None:
        self._stop.set()

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

"""DataDispatcher: writes each cycle's batches straight into the workers' tick pipes, from the feed process.

The feed's TickBatcher (pipeline.batcher) sorts ticks into one encoded batch per worker per cycle; here a
worker gets a frame (pipeline.messages.encode_frame) for a cycle that has ticks for it or moves the marker (how far
the feed has got): the marker, with the worker's batch behind it. Live, a cycle may hold a single tick, so
waking all eight workers for each would cost more than the tick. The driver is not on this path: a relay through
it cost a hop, its GIL and eight queue feeder threads, about 2 ms of every tick's latency.

It also keeps the frames each worker was sent since its last checkpoint, so a worker that dies can be restarted
from that checkpoint and sent the same ticks again: nothing is written into a dead worker's pipe (the write
fails at once, since only the worker holds the reading end) and nothing is silently lost (what cannot be kept
is counted as dropped). The driver says what happened (checkpointed, down, replace) through `command`.

Backpressure, so memory stays flat: a worker that is behind fills its pipe (1 MB where the system allows) and
the write waits; and the feed waits while the signals' low watermark (how far trading decisions have got)
trails it by more than max_lead_s of feed time, since ticks of symbols waiting on a decision are held.
"""
from __future__ import annotations

import fcntl
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from pipeline.batcher import Cycle
from pipeline.messages import (
    CycleDelivered,
    FeedCommand,
    ForgetThrough,
    MarkWorkerDown,
    ReplaceTickPipe,
    SetLowWatermark,
    TicksResent,
    encode_frame,
)

log = logging.getLogger(__name__)

PIPE_BYTES = 1 << 20
_F_SETPIPE_SZ = 1031  # Linux


def widen(conn: Any) -> None:
    """A bigger pipe lets a worker fall a few thousand ticks behind before the feed has to wait for it."""
    try:
        fcntl.fcntl(conn.fileno(), _F_SETPIPE_SZ, PIPE_BYTES)
    except OSError:
        pass  # above the system's pipe-max-size: the default 64 KB works, with more waiting


class DataDispatcher:
    def __init__(self, pipes: list[Any], report: Callable[[Any], None], max_lead_s: float = 900.0,
                 retain_limit_ticks: int = 2_000_000, first_seq: int = 0):
        self.pipes = list(pipes)
        for p in self.pipes:
            widen(p)
        self.report = report
        self.n = len(pipes)
        self.max_lead_s = max_lead_s
        self.retain_limit = retain_limit_ticks
        self.lock = threading.Lock()
        self.up = [True] * self.n
        self.retained: list[deque] = [deque() for _ in range(self.n)]
        self.retained_ticks = [0] * self.n
        self.seq = first_seq  # a restarted feed process numbers its frames on from its predecessor's
        self.through = 0
        self.through_pos = 0
        self.marked = [-1] * self.n  # the marker each worker was last sent
        self.max_ts = 0
        self.dropped = 0
        self.finished = False
        self._low = threading.Condition()
        self.low_watermark = float("inf")
        self._stopping = False

    def deliver(self, cycle: Cycle) -> None:
        """A frame to each worker with ticks in the cycle or whose marker moves (its batch, if any, behind the
        marker), then a report to the driver saying which workers got one."""
        with self.lock:
            if self.finished:
                return
            self.seq += 1
            self.through = max(self.through, cycle.through)
            self.through_pos = max(self.through_pos, cycle.through_pos)
            self.max_ts = max(self.max_ts, cycle.feed_time)
            sent = []
            for i in range(self.n):
                batch = cycle.batches[i]
                if batch is None and self.marked[i] == self.through and not cycle.final:
                    continue  # nothing new for this worker: do not wake it (the driver knows it is caught up)
                self.marked[i] = self.through
                sent.append(i)
                frame = encode_frame(self.seq, self.through, self.through_pos,
                                     cycle.first_wall[i] if batch else 0.0, batch)
                self._retain(i, frame, cycle.counts[i])
                if self.up[i]:
                    self._write(i, frame)
            self.finished = cycle.final
            report = CycleDelivered(self.seq, self.through, self.through_pos, tuple(sent), sum(cycle.counts),
                                    cycle.unroutable, cycle.not_ticks, cycle.feed_time, cycle.final, self.dropped,
                                    cycle.rejected, cycle.persisted)
        self.report(report)
        if not cycle.final:
            self._wait_for_decisions()

    def _retain(self, i: int, frame: bytes, nticks: int) -> None:
        r = self.retained[i]
        r.append((self.seq, frame, nticks))
        self.retained_ticks[i] += nticks
        while self.retained_ticks[i] > self.retain_limit and r:
            _seq, _old, k = r.popleft()
            self.retained_ticks[i] -= k
            self.dropped += k

    def _write(self, i: int, frame: bytes) -> bool:
        try:
            self.pipes[i].send_bytes(frame)
            return True
        except OSError as e:  # the worker is gone: the driver restarts it and hands over its new pipe
            self.up[i] = False
            log.warning("worker %d's tick pipe is closed (%s); keeping its ticks for its restart", i, e)
            return False

    def _wait_for_decisions(self) -> None:
        with self._low:
            while not self._stopping and self.max_ts - self.low_watermark > self.max_lead_s:
                self._low.wait(0.1)

    # ---------------------------------------------------------------- from the driver
    def command(self, msg: FeedCommand) -> None:
        """One of the driver's commands (pipeline.messages); StopFeed is the feed process's own to act on."""
        if isinstance(msg, SetLowWatermark):
            with self._low:
                self.low_watermark = msg.ts
                self._low.notify_all()
        elif isinstance(msg, ForgetThrough):
            self.checkpointed(msg.worker, msg.seq)
        elif isinstance(msg, MarkWorkerDown):
            with self.lock:
                self.up[msg.worker] = False
        elif isinstance(msg, ReplaceTickPipe):
            self.replace(msg.worker, msg.pipe)
        else:
            log.warning("feed process: unexpected command %r ignored", msg)

    def checkpointed(self, i: int, seq: int) -> None:
        """Worker i saved its state as of frame `seq`: what it was sent up to there need not be kept."""
        with self.lock:
            r = self.retained[i]
            while r and r[0][0] <= seq:
                self.retained_ticks[i] -= r.popleft()[2]

    def replace(self, i: int, conn: Any) -> int:
        """Worker i was restarted from its last checkpoint: send what it was sent since then into its new
        pipe, then carry on. The feed waits meanwhile (it needs the lock), so no new frame overtakes these."""
        widen(conn)
        with self.lock:
            old, self.pipes[i] = self.pipes[i], conn
            old.close()
            self.up[i] = True
            resent = 0
            for _seq, frame, k in self.retained[i]:
                if not self._write(i, frame):
                    break
                resent += k
        self.report(TicksResent(i, resent))
        return resent

    def stop(self) -> None:
        """The feed is stopping: a wait for decisions lets go."""
        with self._low:
            self._stopping = True
            self._low.notify_all()

    def close(self) -> None:
        for p in self.pipes:
            p.close()

"""Acts on signals in feed order, whichever worker they came from.

Workers run in parallel, so their signals reach the driver in an order that depends on scheduling. Every
routed tick has a feed position (the order it came in); the sequencer holds each signal until every worker has
processed the feed up to its tick's position, then releases signals in position order. A replayed day
therefore sizes and sends its orders in the same order every run, and a signal waits only for the ticks that
came before it -- milliseconds -- not for its second to end.

How far a worker has got: its last WatermarkReached, or, if it has processed every frame the feed process sent it,
as far as the feed has got (a worker is not sent frames that hold nothing for it). Either way no further than
its cap: the earliest of its signals still awaiting an outcome (its later ticks wait for that) or quotes it
has not yet given the paper broker.
"""
from __future__ import annotations

import heapq
from collections.abc import Iterator

from core.types import Signal
from pipeline.messages import Marks

INF = float("inf")


class SignalSequencer:
    def __init__(self, n_workers: int):
        n = n_workers
        self.heap: list[tuple] = []
        self._n = 0
        # per worker, from its watermarks: the last frame processed, how far (feed time, position), its caps
        self.acked = [0] * n
        self.ts = [-1.0] * n
        self.pos = [-1.0] * n
        self.cap_ts = [INF] * n
        self.cap_pos = [INF] * n
        # from the feed process's reports: the last frame sent to each worker, and how far the feed has got
        self.sent = [0] * n
        self.feed_ts = -1.0
        self.feed_pos = -1.0

    def add(self, sig: Signal | Marks, pos: int) -> None:
        """A signal, or an open position's marks, at its tick's feed position."""
        self._n += 1
        heapq.heappush(self.heap, (pos, self._n, sig))

    def watermark(self, worker: int, seq: int, ts: float, pos: float, cap_ts: float, cap_pos: float) -> None:
        self.acked[worker] = max(self.acked[worker], seq)
        self.ts[worker] = max(self.ts[worker], ts)
        self.pos[worker] = max(self.pos[worker], pos)
        self.cap_ts[worker] = cap_ts
        self.cap_pos[worker] = cap_pos

    def delivered(self, seq: int, ts: float, pos: float, sent: tuple[int, ...]) -> None:
        """The feed process sent frame `seq` to the workers in `sent`; the others had nothing new."""
        for i in sent:
            self.sent[i] = seq
        self.feed_ts = max(self.feed_ts, ts)
        self.feed_pos = max(self.feed_pos, pos)

    def reset_worker(self, worker: int, ts: float, pos: float) -> None:
        """A restarted worker resumes from its checkpoint; until it reports, it is taken to be there."""
        self.acked[worker] = -1  # not caught up until it says so
        self.ts[worker], self.pos[worker] = ts, pos
        self.cap_ts[worker] = self.cap_pos[worker] = INF

    def _through(self, i: int) -> tuple[float, float]:
        ts, pos = self.ts[i], self.pos[i]
        if self.acked[i] >= self.sent[i]:  # nothing sent to it is unprocessed
            ts, pos = max(ts, min(self.feed_ts, self.cap_ts[i])), max(pos, min(self.feed_pos, self.cap_pos[i]))
        return ts, pos

    @property
    def low_watermark(self) -> float:
        """The feed time every worker has got to (the replay clock, session events)."""
        return _lowest(self.feed_ts, self.acked, self.sent, self.ts, self.cap_ts)

    def low_position(self) -> float:
        return _lowest(self.feed_pos, self.acked, self.sent, self.pos, self.cap_pos)

    @property
    def through(self) -> list[tuple[float, float]]:
        return [self._through(i) for i in range(len(self.ts))]

    def release(self) -> Iterator[Signal | Marks]:
        if not self.heap:
            return
        w = self.low_position()
        while self.heap and self.heap[0][0] <= w:
            yield heapq.heappop(self.heap)[-1]

    def drain(self) -> Iterator[Signal]:
        while self.heap:
            yield heapq.heappop(self.heap)[-1]

    def __len__(self) -> int:
        return len(self.heap)


def _lowest(feed: float, acked: list[int], sent: list[int], marks: list[float], caps: list[float]) -> float:
    """The lowest of the workers' marks (times or positions), each raised as _through raises it: one loop, not a
    call per worker (the driver's loop asks once a turn, thousands of times a second when paced)."""
    low = INF
    for a, s, mark, cap in zip(acked, sent, marks, caps, strict=True):
        if a >= s:
            caught = feed if feed < cap else cap
            if caught > mark:
                mark = caught
        if mark < low:
            low = mark
    return low

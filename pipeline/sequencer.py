"""Acts on signals in time order, whichever worker they came from.

Workers run in parallel, so their signals reach the driver in an order that depends on scheduling. The
sequencer holds each signal until every worker has reported (by WATERMARK) that it has processed the feed
up to the signal's time, then releases signals sorted by (time, symbol, type). A replayed day therefore
sizes and sends its orders in the same order every run.
"""
from __future__ import annotations

import heapq
from typing import Iterator

from core.types import Signal

_TYPE_RANK = {"exit": 0, "take_profit": 1, "entry": 2}  # free capital before committing it


class SignalSequencer:
    def __init__(self, n_workers: int):
        self.through = [-1.0] * n_workers
        self.heap: list[tuple] = []
        self._n = 0

    def add(self, sig: Signal) -> None:
        self._n += 1
        heapq.heappush(self.heap, (sig.time, sig.symbol, _TYPE_RANK.get(sig.type.value, 3), self._n, sig))

    def watermark(self, worker: int, through: float) -> None:
        if through > self.through[worker]:
            self.through[worker] = through

    def reset_worker(self, worker: int, through: float) -> None:
        """A restarted worker resumes from its checkpoint; its watermark goes back there."""
        self.through[worker] = through

    @property
    def low_watermark(self) -> float:
        return min(self.through)

    def release(self) -> Iterator[Signal]:
        w = self.low_watermark
        while self.heap and self.heap[0][0] <= w:
            yield heapq.heappop(self.heap)[-1]

    def drain(self) -> Iterator[Signal]:
        while self.heap:
            yield heapq.heappop(self.heap)[-1]

    def __len__(self) -> int:
        return len(self.heap)

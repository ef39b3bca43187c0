"""Moving-window rate limits: the client side queues callers, the paper broker's side refuses them.

OpenAlgo's Flask-Limiter uses a *moving* one-second window per route and client IP: a call is allowed when
fewer than `limit` calls were accepted in the last `window_s` seconds. Refused calls are not counted. The
same arithmetic serves both ends so the client can stay exactly under what the server enforces.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable, Hashable


class MovingWindow:
    """At most `limit` events in any `window_s` seconds. Thread-safe."""

    def __init__(self, limit: float, window_s: float = 1.0, clock: Callable[[], float] = time.monotonic):
        if limit < 1:
            raise ValueError(f"rate limit must be at least 1 per window, got {limit}")
        self.limit = int(limit)
        self.window_s = float(window_s)
        self._clock = clock
        self._hits: deque[float] = deque()
        self._lock = threading.Lock()

    def _wait_needed(self, now: float) -> float:
        cutoff = now - self.window_s
        hits = self._hits
        while hits and hits[0] <= cutoff:
            hits.popleft()
        if len(hits) < self.limit:
            return 0.0
        return hits[0] + self.window_s - now

    def try_acquire(self) -> bool:
        """Take a slot if one is free now (server side: refuse otherwise)."""
        with self._lock:
            now = self._clock()
            if self._wait_needed(now) > 0:
                return False
            self._hits.append(now)
            return True

    def acquire(self, timeout_s: float | None = None) -> float:
        """Block until a slot frees, then take it. Returns the seconds waited.

        Raises TimeoutError when `timeout_s` passes first (the caller decides; nothing was sent).
        """
        start = self._clock()
        while True:
            with self._lock:
                now = self._clock()
                wait = self._wait_needed(now)
                if wait <= 0:
                    self._hits.append(now)
                    return now - start
            if timeout_s is not None and now + wait - start > timeout_s:
                raise TimeoutError(f"no rate-limit slot within {timeout_s:.3f}s")
            time.sleep(min(wait, 0.05) + 1e-4)


class KeyedMovingWindows:
    """One MovingWindow per key (route, client address), created on first use."""

    def __init__(self, limit: float, window_s: float = 1.0):
        self.limit = limit
        self.window_s = window_s
        self._windows: dict[Hashable, MovingWindow] = {}
        self._lock = threading.Lock()

    def try_acquire(self, key: Hashable) -> bool:
        w = self._windows.get(key)
        if w is None:
            with self._lock:
                w = self._windows.setdefault(key, MovingWindow(self.limit, self.window_s))
        return w.try_acquire()

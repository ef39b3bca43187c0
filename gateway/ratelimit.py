"""Moving-window rate limits: the client side queues callers, the paper broker's side refuses them.

OpenAlgo's Flask-Limiter uses a *moving* one-second window per route and client IP: a call is allowed when
fewer than `limit` calls were accepted in the last `window_s` seconds. Refused calls are not counted. The
same arithmetic serves both ends so the client can stay exactly under what the server enforces.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable


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

    def wait_s(self) -> float:
        """Seconds until a slot frees (0 when one is free now)."""
        with self._lock:
            return max(0.0, self._wait_needed(self._clock()))

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


ORDERS = 0  # placements and cancels: served first
POLLS = 1   # everything else (order status, orderbook, positions, funds, margin...): served when no order waits


class RequestBudget:
    """At most `limit` requests to the broker in any `window_s` seconds as the broker counts them, shared by
    every request the daemon makes (Fyers allows 10/s per API key across all endpoints).

    A request holds its slot from the moment it may go until `window_s` after its answer came back: the broker
    saw it somewhere in between, so however late it arrived, no window of the broker's can hold more than
    `limit` (a window on send times alone is overrun when requests queue on the way). Stricter than a token
    bucket of `limit`, which lets 2 x limit through across a window's edge. Orders come first: a poll takes a
    free slot only while no order is waiting and `order_reserve` slots stay free for orders, so polls never
    make an order wait. Thread-safe; `clock` and `sleep` are injectable for tests."""

    def __init__(self, limit: int, window_s: float = 1.0, order_reserve: int = 0,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        if limit < 1:
            raise ValueError(f"the request budget must allow at least 1 request per window, got {limit}")
        if not 0 <= order_reserve < limit:
            raise ValueError(f"order_reserve must be 0 to {limit - 1}, got {order_reserve}")
        self.limit = int(limit)
        self.order_reserve = int(order_reserve)
        self.window_s = float(window_s)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._in_flight: set[int] = set()
        self._ended: deque[float] = deque()  # answer times of finished requests, in order
        self._next_token = 0
        self.orders_waiting = 0
        self.taken = 0

    def _used(self, now: float) -> int:
        ended = self._ended
        while ended and ended[0] <= now - self.window_s:
            ended.popleft()
        return len(self._in_flight) + len(ended)

    def _take(self, priority: int) -> int | None:
        """Under the lock: a token if a slot is free for this priority now."""
        if priority != ORDERS and self.orders_waiting:
            return None
        if self._used(self._clock()) >= (self.limit if priority == ORDERS else self.limit - self.order_reserve):
            return None
        self._next_token += 1
        self._in_flight.add(self._next_token)
        self.taken += 1
        return self._next_token

    def try_acquire(self, priority: int = POLLS) -> int | None:
        """A token if a slot is free now and no order waits ahead of this poll; else None."""
        with self._lock:
            return self._take(priority)

    def acquire(self, priority: int = POLLS, timeout_s: float | None = None) -> int:
        """Wait for a slot, orders ahead of polls; returns the token to release once the answer is in.
        TimeoutError when `timeout_s` passes first (nothing may be sent)."""
        start = self._clock()
        if priority == ORDERS:
            with self._lock:
                self.orders_waiting += 1
        try:
            while True:
                with self._lock:
                    token = self._take(priority)
                    wait = self._ended[0] + self.window_s - self._clock() if self._ended else 0.001
                if token is not None:
                    return token
                if timeout_s is not None and self._clock() - start >= timeout_s:
                    raise TimeoutError(f"no request slot within {timeout_s:.3f}s")
                self._sleep(min(max(wait, 0.001), 0.01))
        finally:
            if priority == ORDERS:
                with self._lock:
                    self.orders_waiting -= 1

    def release(self, token: int) -> None:
        """The request's answer came back (or it failed): its slot frees `window_s` from now."""
        with self._lock:
            if token in self._in_flight:
                self._in_flight.discard(token)
                self._ended.append(self._clock())

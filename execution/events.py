"""Applying the broker threads' events on the TradeManager's thread: an event is applied or stays queued.

An event whose application raised (the database away for longer than its wait, or a bug) is kept, with every
later event of the same order queued behind it, and the whole held queue is retried in arrival order after a
back-off that doubles up to a ceiling. Events of other orders go on meanwhile. Nothing is dropped, and nothing
of one order is applied out of order, so an acknowledged order always ends up tracked and its symbol released.
"""
from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any

log = logging.getLogger(__name__)


def _key(ev: Any) -> Hashable:
    """Events of one order must stay in order; events without an order (probes) form one group."""
    return getattr(ev, "order_id", None)


class EventApplier:
    """Applies events through `fn`; holds and retries the ones that fail (not thread-safe: one thread)."""

    def __init__(self, first_delay_s: float = 0.5, max_delay_s: float = 10.0):
        self.first_delay_s = first_delay_s
        self.max_delay_s = max_delay_s
        self.held: deque[Any] = deque()
        self._held_keys: set[Hashable] = set()
        self.retries = 0  # retry passes since the queue was last empty
        self.next_try = 0.0

    def __len__(self) -> int:
        return len(self.held)

    def apply(self, ev: Any, fn: Callable[[Any], None], now: float) -> bool:
        """Apply a new event now, unless an earlier event of its order is held: then it waits behind it."""
        key = _key(ev)
        if key in self._held_keys:
            self.held.append(ev)
            return False
        try:
            fn(ev)
            return True
        except Exception as e:  # noqa: BLE001 - kept and retried; the order stays followed
            self._hold(ev, key, now)
            log.error("could not apply %s of order %s (%s: %s); kept, %d event(s) held, retry in %.1fs",
                      type(ev).__name__, key, type(e).__name__, e, len(self.held), self.next_try - now)
            return False

    def retry_due(self, fn: Callable[[Any], None], now: float) -> int:
        """Retry the held events in arrival order once the back-off has passed; returns how many applied."""
        if not self.held or now < self.next_try:
            return 0
        keep: deque[Any] = deque()
        blocked: dict[Hashable, str] = {}
        applied = 0
        while self.held:
            ev = self.held.popleft()
            key = _key(ev)
            if key in blocked:
                keep.append(ev)
                continue
            try:
                fn(ev)
                applied += 1
            except Exception as e:  # noqa: BLE001 - kept for the next pass
                blocked[key] = f"{type(e).__name__}: {e}"
                keep.append(ev)
        self.held = keep
        self._held_keys = {_key(ev) for ev in keep}
        if keep:
            self.retries += 1
            self.next_try = now + self._delay()
            log.warning("retry %d: %d broker event(s) of order(s) %s still cannot be applied (%s); next try in %.1fs",
                        self.retries, len(keep), ", ".join(str(k) for k in blocked), "; ".join(set(blocked.values())),
                        self.next_try - now)
        else:
            log.info("held broker events applied (retry %d)", self.retries + 1)
            self.retries = 0
        return applied

    def _hold(self, ev: Any, key: Hashable, now: float) -> None:
        if not self.held:
            self.next_try = now + self._delay()
        self.held.append(ev)
        self._held_keys.add(key)

    def _delay(self) -> float:
        delay: float = min(self.first_delay_s * 2 ** self.retries, self.max_delay_s)
        return delay

"""Stops new entries after N consecutive broker failures (seed 004) until the broker answers again."""
from __future__ import annotations

import logging
import time

import notify
from notify.events import BreakerClosed, BreakerOpened

log = logging.getLogger(__name__)


class CircuitBreaker:
    def __init__(self, max_failures: int, cooldown_s: float):
        self.max_failures = max_failures
        self.cooldown_s = cooldown_s
        self.failures = 0
        self.opened_at: float | None = None
        self.last_reason = ""

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None

    def failure(self, reason: str) -> None:
        self.failures += 1
        self.last_reason = reason
        if self.opened_at is None and self.failures >= self.max_failures:
            self.opened_at = time.monotonic()
            log.error("broker circuit breaker OPEN after %d consecutive failures (last: %s): new entries stop "
                      "until the broker answers again; exits continue", self.failures, reason)
            notify.emit(BreakerOpened(self.failures, reason))

    def success(self) -> None:
        if self.opened_at is not None:
            log.warning("broker answering again: circuit breaker closed, entries resume")
            notify.emit(BreakerClosed())
        self.failures = 0
        self.opened_at = None

    def probe_due(self) -> bool:
        """Time to check whether the broker is back (the caller probes and reports success or failure)."""
        if self.opened_at is None:
            return False
        if time.monotonic() - self.opened_at >= self.cooldown_s:
            self.opened_at = time.monotonic()  # next probe after another cooldown unless it succeeds
            return True
        return False

"""What the TradeManager told the workers about positions during a replayed day, kept so that running the day
again tells them the same.

A rerun (or a resumed replay) answers the day's signals from the database instead of trading them again, so
no order fills and nothing re-arms a worker's cap triggers or resets its strategy after a square-off or a
halt. Without that, the strategies drift from what the first run's strategies knew: a position a cap closed
stays open in the strategy, whose later stop-loss exit becomes a new "no open position" signal. This log
keeps, per day, the last cap triggers sent before each signal's outcome (keyed by the signal the worker
emitted) and each forced exit not tied to a signal (square-off, loss halt) with its time. It is written
when a fill or a forced exit happens (never per tick) and read once at start-up.
"""
from __future__ import annotations

import logging
from datetime import date
from typing import Any

from db import DBHandler
from pipeline.messages import CapTriggers, ForceExit

log = logging.getLogger(__name__)


def control_log_key(day: date) -> str:
    """The daemon_state row of a day's worker controls."""
    return f"worker_controls:{day.isoformat()}"


class ControlLog:
    """Records the worker controls of a replayed day and gives them back on a rerun of that day."""

    def __init__(self, db: DBHandler, day: date):
        self.db, self.key = db, control_log_key(day)
        self.caps: dict[str, list[Any]] = {}  # signal id -> [symbol, side, loss_at, profit_at, since]
        self.forced: list[list[Any]] = []  # [time, symbol, reason], in the order they were sent
        self.replayed: set[tuple[int, str, str]] = set()

    def load(self) -> None:
        doc = self.db.get_state(self.key) or {}
        self.caps = dict(doc.get("caps") or {})
        self.forced = [list(f) for f in doc.get("forced") or []]
        if self.caps or self.forced:
            log.info("rerun of a replayed day: %d cap trigger(s) and %d forced exit(s) recorded earlier will be "
                     "sent to the workers again in their place", len(self.caps), len(self.forced))

    def _save(self) -> None:
        self.db.set_state(self.key, {"caps": self.caps, "forced": self.forced})

    def caps_sent(self, signal_id: str, msg: CapTriggers) -> None:
        """The triggers sent before `signal_id`'s outcome (the last one counts: the worker keeps the last)."""
        row = [msg.symbol, msg.side, msg.loss_at, msg.profit_at, msg.since]
        if self.caps.get(signal_id) != row:
            self.caps[signal_id] = row
            self._save()

    def caps_for(self, signal_id: str) -> CapTriggers | None:
        """The triggers to send again before answering `signal_id` from the database, if it had any."""
        row = self.caps.get(signal_id)
        return None if row is None else CapTriggers(row[0], row[1], row[2], row[3], int(row[4] or 0))

    def forced_sent(self, t: int, msg: ForceExit) -> None:
        """A forced exit at daemon time `t` that no signal carried (square-off, loss halt)."""
        entry = (int(t), msg.symbol, msg.reason)
        self.replayed.add(entry)  # sent now: not to be sent again by `due`
        if list(entry) not in self.forced:
            self.forced.append(list(entry))
            self._save()

    def due(self, now: float) -> list[ForceExit]:
        """Forced exits of an earlier run of the day whose time has come and that this run has not sent."""
        out = []
        for t, sym, reason in self.forced:
            entry = (int(t), sym, reason)
            if t <= now and entry not in self.replayed:
                self.replayed.add(entry)
                out.append(ForceExit(sym, reason))
        return out

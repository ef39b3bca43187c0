"""What the TradeManager told the workers about positions during a replayed day, kept so that running the day
again tells them the same.

A rerun (or a resumed replay) answers the day's signals from the database instead of trading them again, so
no order fills and nothing re-arms or clears a worker's cap triggers or resets its strategy after a cap, a
square-off or a halt. Without that, the strategies drift from what the first run's strategies knew: a
position a cap closed stays open in the strategy, whose later stop-loss exit becomes a new "no open position"
signal. This log keeps, per day:

- the last cap triggers sent before each signal's outcome, keyed by the signal the worker emitted;
- the signals whose outcome told the worker to reset its strategy (the TradeManager forced an exit);
- the controls no signal carried (a square-off's or halt's forced exit, the triggers cleared when its order
  filled) with the daemon time they were decided at.

It is written when a fill or a forced exit happens (never per tick) and read once at start-up.
"""
from __future__ import annotations

import logging
from datetime import date
from typing import Any

from db import DBHandler
from pipeline.messages import CapTriggers, ForceExit

log = logging.getLogger(__name__)

Control = CapTriggers | ForceExit


def control_log_key(day: date) -> str:
    """The daemon_state row of a day's worker controls."""
    return f"worker_controls:{day.isoformat()}"


def _row(msg: Control) -> list[Any]:
    if isinstance(msg, ForceExit):
        return ["force_exit", msg.symbol, msg.reason]
    return ["caps", msg.symbol, msg.side, msg.loss_at, msg.profit_at, msg.since]


def _msg(row: list[Any]) -> Control:
    if row[0] == "force_exit":
        return ForceExit(row[1], row[2])
    return CapTriggers(row[1], row[2], row[3], row[4], int(row[5] or 0))


class ControlLog:
    """Records the worker controls of a replayed day and gives them back on a rerun of that day."""

    def __init__(self, db: DBHandler, day: date):
        self.db, self.key = db, control_log_key(day)
        self.caps: dict[str, list[Any]] = {}  # signal id -> a "caps" row
        self.forced_outcomes: list[str] = []  # signals the TradeManager turned into a forced exit
        self.timed: list[list[Any]] = []  # [time, *row] of controls no signal carried, in the order sent
        self.replayed: set[str] = set()  # timed entries this run has sent (or sent itself)
        self.earlier: list[list[Any]] = []  # timed entries of an earlier run not yet sent by this one

    def load(self) -> None:
        doc = self.db.get_state(self.key) or {}
        self.caps = dict(doc.get("caps") or {})
        self.forced_outcomes = list(doc.get("forced_outcomes") or [])
        self.timed = [list(t) for t in doc.get("timed") or []]
        self.earlier = list(self.timed)
        if self.caps or self.timed:
            log.info("rerun of a replayed day: %d signal(s) with cap triggers and %d control(s) at set times "
                     "recorded earlier will be sent to the workers again in their place", len(self.caps),
                     len(self.timed))

    def _save(self) -> None:
        self.db.set_state(self.key, {"caps": self.caps, "forced_outcomes": self.forced_outcomes,
                                     "timed": self.timed})

    def caps_sent(self, signal_id: str, msg: CapTriggers) -> None:
        """The triggers sent before `signal_id`'s outcome (the last one counts: the worker keeps the last)."""
        row = _row(msg)
        if self.caps.get(signal_id) != row:
            self.caps[signal_id] = row
            self._save()

    def caps_for(self, signal_id: str) -> CapTriggers | None:
        """The triggers to send again before answering `signal_id` from the database, if it had any."""
        row = self.caps.get(signal_id)
        return None if row is None else _msg(row)  # type: ignore[return-value]

    def outcome_forced(self, signal_id: str) -> None:
        """`signal_id`'s outcome told the worker to reset its strategy (its signal became a forced exit)."""
        if signal_id not in self.forced_outcomes:
            self.forced_outcomes.append(signal_id)
            self._save()

    def was_forced(self, signal_id: str) -> bool:
        return signal_id in self.forced_outcomes

    def sent_at(self, t: int, msg: Control) -> None:
        """A control no signal carried, decided at daemon time `t` (square-off, halt, their fills)."""
        entry = [int(t), *_row(msg)]
        self.replayed.add(repr(entry))  # sent now: not to be sent again by `due`
        if entry not in self.timed:
            self.timed.append(entry)
            self._save()

    def due(self, now: float) -> list[Control]:
        """Controls of an earlier run of the day whose time has come and that this run has not sent. Called on
        every clock step: only the earlier run's entries still waiting are looked at (none on a first run)."""
        if not self.earlier:
            return []
        out, waiting = [], []
        for entry in self.earlier:
            key = repr(entry)
            if key in self.replayed:
                continue  # sent by this run itself meanwhile: never again
            if entry[0] <= now:
                self.replayed.add(key)
                out.append(_msg(entry[1:]))
            else:
                waiting.append(entry)
        self.earlier = waiting
        return out

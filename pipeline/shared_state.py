"""The seed's shared state, held by a multiprocessing Manager, with its one shared lock.

Only the TradeManager side writes it (never per tick); workers learn what they need from Outcome messages
instead of reading it per tick (a Manager round trip costs ~210 us). It is the live view that readers outside
the trading thread use while the daemon runs (pipeline.live_view: `status`, later the operator dashboard): the
seed's keys (active trade count, order ids, failed and incomplete trades) plus positions, P&L, trading state
and worker and feed health.

Writes go to a local mirror first and reach the Manager in one locked `update` per `flush` (the driver's
supervisor thread flushes at most every FLUSH_EVERY_S): a signal used to cost a dozen round trips here, a few
milliseconds of the TradeManager's time. The mirror is exact because only the driver's process writes it; the
flush runs on the supervisor's thread, so a Manager round trip never delays a trading decision, and `local`
guards the mirror between the two threads.
"""
from __future__ import annotations

import copy
import threading
import time
from typing import Any

FLUSH_EVERY_S = 0.1

SEED_KEYS: dict[str, Any] = {
    "active_trades": 0,
    "active_order_ids": [],
    "order_status_dict": {},
    "failed_trades": {},
    "incomplete_entry_trades": {},
    "incomplete_exit_trades": {},
    "incomplete_takeprofit_trades": {},
    "force_exit_triggered_symbols": {},
    "trading_state": "HALTED",
}
INCOMPLETE_KEYS = {"entry": "incomplete_entry_trades", "exit": "incomplete_exit_trades",
                   "take_profit": "incomplete_takeprofit_trades"}


class SharedState:
    def __init__(self, manager: Any, d: Any = None):
        """`d`: the Manager's dict to write (the live view's, which `status` finds by name); a new one if None."""
        self.d = manager.dict() if d is None else d
        self.lock = manager.Lock()
        self.mirror: dict[str, Any] = copy.deepcopy(SEED_KEYS)
        self.dirty: set[str] = set()
        self.local = threading.Lock()  # the mirror: written on the trading thread, flushed on the supervisor's
        self.last_flush = float("-inf")
        with self.lock:
            self.d.update(copy.deepcopy(SEED_KEYS))

    def validate(self) -> list[str]:
        """Problems with the shared state's shape (seed chart 1 'Validate Shared State')."""
        problems = []
        with self.lock:
            snap = dict(self.d)
        for k, v in SEED_KEYS.items():
            if k not in snap:
                problems.append(f"shared state lacks {k}")
            elif type(snap[k]) is not type(v):
                problems.append(f"shared state {k} is {type(snap[k]).__name__}, expected {type(v).__name__}")
        return problems

    def get(self, key: str, default: Any = None) -> Any:
        self.flush()
        with self.lock:
            return self.d.get(key, default)

    def set(self, **values: Any) -> None:
        with self.local:
            for k, v in values.items():
                self.mirror[k] = v
                self.dirty.add(k)

    def update_entry(self, key: str, sub: str, value: Any | None) -> None:
        """Set (or with None remove) one entry of a dict-valued key."""
        with self.local:
            cur = self.mirror.setdefault(key, {})
            if value is None:
                cur.pop(sub, None)
            else:
                cur[sub] = value
            self.dirty.add(key)

    def flush(self, min_interval_s: float = 0.0) -> None:
        """Write what changed since the last flush, in one round trip under the shared lock."""
        with self.local:
            if not self.dirty or time.monotonic() - self.last_flush < min_interval_s:
                return
            changes = {k: copy.deepcopy(self.mirror[k]) for k in self.dirty}
            self.dirty.clear()
            self.last_flush = time.monotonic()
        with self.lock:  # the round trip, outside `local`: the trading thread never waits on it
            self.d.update(changes)

    def snapshot(self) -> dict[str, Any]:
        self.flush()
        with self.lock:
            return {k: copy.deepcopy(v) for k, v in self.d.items()}

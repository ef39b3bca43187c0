"""The seed's shared state, held by a multiprocessing Manager, with its one shared lock.

Only the TradeManager side writes it, a few times per order (never per tick); workers learn what they need
from Outcome messages instead of reading it per tick (a Manager round trip costs ~210 us). It is kept so
an operator (and the heartbeat) can see the seed's view: active trade count, order ids and statuses,
failed and incomplete trades.
"""
from __future__ import annotations

import copy
from typing import Any

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
    def __init__(self, manager: Any):
        self.d = manager.dict()
        self.lock = manager.Lock()
        with self.lock:
            for k, v in SEED_KEYS.items():
                self.d[k] = copy.deepcopy(v)

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
        with self.lock:
            return self.d.get(key, default)

    def set(self, **values: Any) -> None:
        with self.lock:
            for k, v in values.items():
                self.d[k] = v

    def update_entry(self, key: str, sub: str, value: Any | None) -> None:
        """Set (or with None remove) one entry of a dict-valued key; Manager dicts need read-modify-write."""
        with self.lock:
            cur = dict(self.d.get(key, {}))
            if value is None:
                cur.pop(sub, None)
            else:
                cur[sub] = value
            self.d[key] = cur

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {k: copy.deepcopy(v) for k, v in self.d.items()}

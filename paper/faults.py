"""Fault injection for tests: the failures a real broker connection produces, on demand and repeatable.

Every decision is drawn from one seeded random.Random, four draws per faultable request whatever the
rates, so the same seed and the same request sequence give the same faults.

Semantics (documented because the daemon's recovery depends on them):
  reject_rate         order stored as 'rejected' (visible in the orderbook), HTTP 400 with the order id.
  error500_rate       HTTP 500 "Failed to place order due to internal error"; nothing placed.
  timeout_rate        no answer for timeout_sleep_s (longer than the client's timeout), then HTTP 500;
                      nothing placed (the "timeout before placing" case). With timeout_placed=true the
                      order IS placed before the sleep and the late answer is the normal success.
  lost_response_rate  the order is placed and persisted, then the connection is closed with no response.
  slow_ms             every /api/v1 response is delayed this long (admin endpoints are not).
  open_delay_s        MARKET orders stay 'open' this many *wall* seconds (also in replay mode) and then
                      fill at the quote current at that moment.
  partial_fills       K > 1: an order fills in K parts spread evenly over partial_fill_span_s wall seconds,
                      the first part at once; the status stays 'open' with filled_quantity growing.
  routes              which routes the error500/timeout/lost_response faults hit (default: the two order
                      placement routes); reject/open_delay/partial_fills only concern placed orders.
"""
from __future__ import annotations

import dataclasses
import random
import threading
from dataclasses import dataclass, field
from typing import Any

PLACEMENT_ROUTES = ("placeorder", "placesmartorder")


@dataclass(frozen=True)
class FaultConfig:
    reject_rate: float = 0.0
    error500_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_sleep_s: float = 6.0
    timeout_placed: bool = False
    lost_response_rate: float = 0.0
    slow_ms: float = 0.0
    open_delay_s: float = 0.0
    partial_fills: int = 0
    partial_fill_span_s: float = 2.0
    routes: tuple[str, ...] = PLACEMENT_ROUTES
    seed: int | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FaultConfig:
        """Validate a JSON object; ValueError lists every bad key."""
        names = {f.name: f for f in dataclasses.fields(cls)}
        problems = [f"unknown fault {k!r} (known: {', '.join(names)})" for k in d if k not in names]
        vals: dict[str, Any] = {}
        for k, v in d.items():
            if k not in names:
                continue
            try:
                vals[k] = _coerce(k, v)
            except ValueError as e:
                problems.append(str(e))
        if problems:
            raise ValueError("; ".join(problems))
        return cls(**vals)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["routes"] = list(self.routes)
        return d

    @property
    def active(self) -> bool:
        return self != FaultConfig(seed=self.seed)


def _coerce(k: str, v: Any) -> Any:
    if k.endswith("_rate"):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
            raise ValueError(f"{k} must be a number from 0 to 1, got {v!r}")
        return float(v)
    if k in ("timeout_sleep_s", "slow_ms", "open_delay_s", "partial_fill_span_s"):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise ValueError(f"{k} must be a number >= 0, got {v!r}")
        return float(v)
    if k == "partial_fills":
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"partial_fills must be a whole number >= 0, got {v!r}")
        return v
    if k == "timeout_placed":
        if not isinstance(v, bool):
            raise ValueError(f"timeout_placed must be true or false, got {v!r}")
        return v
    if k == "routes":
        if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
            raise ValueError(f"routes must be a list of route names, got {v!r}")
        return tuple(v)
    if k == "seed":
        if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
            raise ValueError(f"seed must be an integer or null, got {v!r}")
        return v
    raise ValueError(f"unknown fault {k!r}")


@dataclass(frozen=True)
class Decision:
    error500: bool = False
    timeout: bool = False
    reject: bool = False
    lost_response: bool = False


@dataclass
class FaultInjector:
    config: FaultConfig = field(default_factory=FaultConfig)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(self.config.seed)

    def set(self, config: FaultConfig) -> None:
        with self._lock:
            self.config = config
            if config.seed is not None:
                self._rng = random.Random(config.seed)

    def decide(self, route: str) -> Decision:
        c = self.config
        if route not in c.routes and route not in PLACEMENT_ROUTES:
            return Decision()
        with self._lock:
            r = [self._rng.random() for _ in range(4)]
        in_routes = route in c.routes
        return Decision(
            error500=in_routes and r[0] < c.error500_rate,
            timeout=in_routes and r[1] < c.timeout_rate,
            reject=route in PLACEMENT_ROUTES and r[2] < c.reject_rate,
            lost_response=in_routes and r[3] < c.lost_response_rate,
        )

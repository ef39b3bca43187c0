"""Stop and target on a bought option's premium, from the entry premium and the spec's levels.

Both are rounded up to the tick: the stop so the loss per contract never exceeds what was configured, the target
so the gain is at least what was asked. A stop at or below zero cannot trigger (the premium cannot fall below
zero), so there is none: the whole premium is the risk, which is what premium-risk sizing already assumes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from options.spec import PremiumLevel


@dataclass(frozen=True)
class ExitLevels:
    stop: float | None
    target: float | None


def _ceil_tick(x: float, tick: float) -> float:
    return round(math.ceil(round(x / tick, 6)) * tick, 2)


def exit_levels(entry: float, stop: PremiumLevel | None, target: PremiumLevel | None, tick: float) -> ExitLevels:
    """The premiums at which a bought option is sold: entry - stop distance, entry + target distance."""
    if not entry > 0 or not tick > 0:
        raise ValueError(f"entry premium {entry} and tick {tick} must be above 0")
    s = None if stop is None else _ceil_tick(entry - stop.distance(entry), tick)
    t = None if target is None else _ceil_tick(entry + target.distance(entry), tick)
    return ExitLevels(s if s is not None and s > 0 else None, t)

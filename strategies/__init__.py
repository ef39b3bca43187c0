"""Per-symbol strategies. A config names a strategy by `kind`; this registry maps kinds to classes."""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from strategies.base import Strategy

# kind -> "module:Class"; imported lazily so loading config does not import every strategy.
STRATEGY_KINDS: dict[str, str] = {
    "opening_range_breakout": "strategies.orb:OpeningRangeBreakout",
    "ma_crossover": "strategies.ma_crossover:MovingAverageCrossover",
}


def strategy_class(kind: str) -> "type[Strategy]":
    module, _, cls = STRATEGY_KINDS[kind].partition(":")
    return getattr(importlib.import_module(module), cls)


def validate_params(kind: str, params: Mapping[str, Any]) -> list[str]:
    """Problems with `params`, each starting with the parameter name (the caller prefixes the path)."""
    return strategy_class(kind).validate_params(params)

"""Per-symbol strategies. A config names a strategy by `kind`; this registry maps kinds to classes.

A kind that is not in the registry may name the trader's own class as "module:Class" (a module importable
from the project directory, the class a subclass of strategies.base.Strategy); the registry stays as it is.
"""
from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from strategies.base import Strategy

# kind -> "module:Class"; imported lazily so loading config does not import every strategy.
STRATEGY_KINDS: dict[str, str] = {
    "opening_range_breakout": "strategies.orb:OpeningRangeBreakout",
    "ma_crossover": "strategies.ma_crossover:MovingAverageCrossover",
    "rsi": "strategies.rsi_reversion:RsiReversion",
    "momentum": "strategies.momentum:Momentum",
    "rules": "strategies.rules:RulesStrategy",
}
_CLASS_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


def strategy_class(kind: str) -> type[Strategy]:
    target = STRATEGY_KINDS.get(kind, kind)
    if not _CLASS_PATH.match(target):
        raise KeyError(kind)
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


def kind_problem(kind: Any) -> str | None:
    """Why `kind` cannot be used (the text after "-- " in a config problem), or None."""
    from strategies.base import Strategy

    if isinstance(kind, str) and kind in STRATEGY_KINDS:
        return None
    if not isinstance(kind, str) or not _CLASS_PATH.match(kind):
        return f"unknown strategy; expected one of {', '.join(STRATEGY_KINDS)}, or module:Class of your own"
    try:
        cls = strategy_class(kind)
    except Exception as e:  # noqa: BLE001 - whatever the import does wrong, the trader reads one line
        return f"cannot import it ({type(e).__name__}: {e})"
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        return "not a subclass of strategies.base.Strategy"
    return None


def validate_params(kind: str, params: Mapping[str, Any]) -> list[str]:
    """Problems with `params`, each starting with the parameter name (the caller prefixes the path)."""
    return strategy_class(kind).validate_params(params)

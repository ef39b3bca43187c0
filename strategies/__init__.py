"""Per-symbol strategies. A config names a strategy by `kind`; this registry maps kinds to classes.

A kind that is not in the registry may name the trader's own class as "path/to/file.py:Class" (a file, relative
to the config's folder or absolute: strategies.user_files) or as "module:Class" (a module importable from the
project directory); the class derives from strategies.base.Strategy. The registry stays as it is.
"""
from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strategies.user_files import StrategyFileError, is_file_kind, load_class, resolve_file_kind

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


def resolve_kind(kind: Any, base_dir: Path) -> Any:
    """`kind` as the processes load it: a strategy file's path made absolute against `base_dir` (the config's
    folder), so a worker started anywhere finds the same file; any other kind unchanged."""
    if isinstance(kind, str) and kind not in STRATEGY_KINDS and is_file_kind(kind):
        return resolve_file_kind(kind, base_dir)
    return kind


def strategy_class(kind: str) -> type[Strategy]:
    if kind not in STRATEGY_KINDS and is_file_kind(kind):
        return load_class(kind)
    target = STRATEGY_KINDS.get(kind, kind)
    if not _CLASS_PATH.match(target):
        raise KeyError(kind)
    module, _, cls = target.partition(":")
    found: type[Strategy] = getattr(importlib.import_module(module), cls)
    return found


def kind_problem(kind: Any) -> str | None:
    """Why `kind` cannot be used (the text after "-- " in a config problem), or None."""
    from strategies.base import Strategy

    if isinstance(kind, str) and kind in STRATEGY_KINDS:
        return None
    if isinstance(kind, str) and is_file_kind(kind):
        try:
            strategy_class(kind)
        except StrategyFileError as e:
            return str(e)
        return None
    if not isinstance(kind, str) or not _CLASS_PATH.match(kind):
        return (f"unknown strategy; expected one of {', '.join(STRATEGY_KINDS)}, or path/to/file.py:Class or "
                "module:Class of your own")
    try:
        cls = strategy_class(kind)
    except Exception as e:  # noqa: BLE001 - whatever the import does wrong, the trader reads one line
        return f"cannot import it ({type(e).__name__}: {e})"
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        return "not a subclass of strategies.base.Strategy"
    return None


def validate_params(kind: str, params: Mapping[str, Any]) -> list[str]:
    """Problems with `params`, each starting with the parameter name (the caller prefixes the path). A trader's
    class may raise in its own checks: that is a problem too, naming where."""
    cls = strategy_class(kind)
    if kind in STRATEGY_KINDS:
        return cls.validate_params(params)
    try:
        return cls.validate_params(params)
    except Exception as e:  # noqa: BLE001 - the trader's check_params went wrong: one line, not a traceback
        import traceback

        at = traceback.extract_tb(e.__traceback__)[-1]
        return [f"check_params: raised {type(e).__name__}: {e} (at {at.filename}, line {at.lineno}) -- while "
                "checking them"]

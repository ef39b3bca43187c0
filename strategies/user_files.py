"""Strategy classes a trader keeps in a file of their own, named in config.yaml as `path/to/file.py:ClassName`.

The file is loaded as a module once per process (the driver's --check, each worker: a spawned worker loads it
again from the same absolute path, which the config resolved against its own folder). Anything that goes wrong
-- no such file, a syntax error, an import that fails, no such class, a class that is no Strategy or leaves part
of the contract unwritten -- is a StrategyFileError naming the file, the line where known, and what is wrong,
which the config check reports as one problem line (exit 2), never a traceback.
"""
from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from strategies.base import Strategy

# absolute path -> the module loaded from it (one load per process, so each class object is one)
_LOADED: dict[Path, ModuleType] = {}


class StrategyFileError(Exception):
    """A strategy file that cannot be used: where (file, line or None) and what is wrong."""

    def __init__(self, file: Path, line: int | None, what: str):
        self.file, self.line, self.what = file, line, what
        super().__init__(f"{file}{'' if line is None else f', line {line}'}: {what}")


def is_file_kind(kind: str) -> bool:
    """A kind that names a file: `something.py:ClassName`."""
    path, sep, cls = kind.rpartition(":")
    return bool(sep) and path.endswith(".py") and cls.isidentifier()


def resolve_file_kind(kind: str, base_dir: Path) -> str:
    """The kind with its file made absolute: relative paths are relative to `base_dir` (the config's folder)."""
    path, _, cls = kind.rpartition(":")
    p = Path(path).expanduser()
    if not p.is_absolute():
        p = base_dir / p
    return f"{p.resolve()}:{cls}"


def _line_in(file: Path, exc: BaseException) -> int | None:
    """The line of `file` the exception passed through last (where the trader's code went wrong)."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename).resolve() == file:
            line = frame.lineno
    return line


def _load_module(file: Path) -> ModuleType:
    mod = _LOADED.get(file)
    if mod is not None:
        return mod
    if not file.is_file():
        raise StrategyFileError(file, None, "no such file")
    # a module name of its own per path, stable across processes (dataclasses and pickle look modules up by it)
    name = f"user_strategy_{file.stem}_{hashlib.sha1(str(file).encode()).hexdigest()[:10]}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise StrategyFileError(file, None, "cannot be loaded as a Python module")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except SyntaxError as e:
        sys.modules.pop(name, None)
        where = Path(e.filename).resolve() if e.filename else file
        raise StrategyFileError(where, e.lineno, f"syntax error: {e.msg}") from None
    except Exception as e:  # noqa: BLE001 - whatever the trader's module does wrong at import, one line says it
        sys.modules.pop(name, None)
        raise StrategyFileError(file, _line_in(file, e), f"cannot import it ({type(e).__name__}: {e})") from None
    _LOADED[file] = mod
    return mod


def load_class(kind: str) -> type[Strategy]:
    """The class `kind` (an absolute `file.py:ClassName`) names, checked against the Strategy contract."""
    from strategies.base import Strategy

    path, _, cls_name = kind.rpartition(":")
    file = Path(path)
    mod = _load_module(file)
    cls: Any = getattr(mod, cls_name, None)
    if cls is None:
        have = sorted(n for n, v in vars(mod).items()
                      if inspect.isclass(v) and issubclass(v, Strategy) and v.__module__ == mod.__name__)
        raise StrategyFileError(file, None, f"no class {cls_name} in it (Strategy classes there: "
                                            f"{', '.join(have) or 'none'})")
    line = _class_line(cls)
    if not (inspect.isclass(cls) and issubclass(cls, Strategy)):
        raise StrategyFileError(file, line, f"{cls_name} is not a Strategy -- derive it from "
                                            "strategies.base.Strategy or strategies.candle_strategy.CandleStrategy")
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
        raise StrategyFileError(file, line, f"{cls_name} does not implement {missing}")
    return cls


def _class_line(cls: Any) -> int | None:
    try:
        return inspect.getsourcelines(cls)[1]
    except (OSError, TypeError):
        return None

"""The backtest runner as the optimisation's Evaluate: one point (config.yaml with the point's values) over one
fold's dates, run by backtest.runner.run_backtest exactly as `driver.py backtest` runs it, summarised by
backtest.outputs.summary_of. The one place the search meets the runner.

Picklable (paths and names only), so each pool process builds its history source once and runs its points;
each run's own SQLite database goes to a scratch folder of the process and is deleted after the run. The
history is fetched into the cache once, by prefetch() in the parent, before the workers read it.
"""
from __future__ import annotations

import functools
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import count
from pathlib import Path
from typing import Any

from backtest.optimize import Fold, Outcome
from backtest.sweep_params import Point, apply_point
from core.config import Config

log = logging.getLogger(__name__)

_RUNS = count(1)


@dataclass(frozen=True)
class RunnerEvaluate:
    config_path: str
    symbols: tuple[str, ...] | None     # None: every symbol of the config
    source: str                         # history.cli.SOURCES
    interval: str
    data: str | None                    # --source files: the folder
    cache: str | None = None            # the candle cache (default: history's)

    def __call__(self, point: Point, fold: Fold) -> Outcome:
        from backtest.outputs import summary_of  # type: ignore[import-not-found, unused-ignore]
        from backtest.runner import BacktestSpec, run_backtest  # type: ignore[import-not-found, unused-ignore]

        cfg = apply_point(_config(self.config_path), point)
        scratch = _scratch()
        run_id = f"opt-{next(_RUNS)}"
        spec = BacktestSpec(cfg=cfg, source=self._source(), interval=self._interval(),
                            first=fold.read_from or fold.start, last=fold.end, trade_from=fold.start,
                            symbols=self._symbols(cfg), cache_dir=self._cache(cfg), out_root=scratch, run_id=run_id,
                            workers=1)
        try:
            result = run_backtest(spec)
            summary, equity = summary_of(spec, result)
        finally:
            shutil.rmtree(scratch / run_id, ignore_errors=True)
        return Outcome(summary, tuple((d, Decimal(e)) for d, e in equity), int(result.candles))

    def prefetch(self, first: date, last: date) -> None:
        """Fill the candle cache for the whole range here, once, so pool processes only read it."""
        from history.store import HistoryStore

        cfg = _config(self.config_path)
        store = HistoryStore(self._source(), self._cache(cfg), cfg.session)
        for s in self._symbols(cfg):
            store.prefetch(s, cfg.exchange, self._interval(), first, last)

    def _symbols(self, cfg: Config) -> tuple[str, ...]:
        return self.symbols or tuple(s.symbol for s in cfg.symbols)

    def _cache(self, cfg: Config) -> Path:
        from history.cli import DEFAULT_CACHE

        return Path(self.cache) if self.cache else cfg.resolve_path(DEFAULT_CACHE)

    def _interval(self) -> Any:
        from history.intervals import parse_interval

        return parse_interval(self.interval)

    def _source(self) -> Any:
        return _history_source(self.config_path, self.source, self.data)


def problems(ev: RunnerEvaluate) -> list[str]:
    """What stops the runner from running this (bad source, interval, symbols, data folder), as flag messages."""
    from history.cli import SOURCES
    from history.intervals import parse_interval

    out = []
    if ev.source not in SOURCES:
        out.append(f"--source {ev.source!r} is not allowed -- use one of {', '.join(SOURCES)}")
    try:
        parse_interval(ev.interval)
    except ValueError as e:
        out.append(f"--interval {ev.interval!r} is not allowed -- {e}")
    if ev.source == "files" and (ev.data is None or not Path(ev.data).is_dir()):
        out.append("--data is not allowed -- --source files needs --data DIR, the folder with SYMBOL.csv or "
                   "SYMBOL.parquet")
    known = [s.symbol for s in _config(ev.config_path).symbols]
    unknown = [s for s in ev.symbols or () if s not in known]
    if unknown:
        out.append(f"--symbols {','.join(unknown)} is not allowed -- allowed are the config's: {', '.join(known)}")
    return out


@functools.cache
def _config(path: str) -> Config:
    from core.config import load_config

    return load_config(path)


@functools.cache
def _history_source(config_path: str, name: str, data: str | None) -> Any:
    from history.cli import open_source

    return open_source(name, Path(data) if data else None, _config(config_path))


@functools.cache
def _scratch() -> Path:
    path = Path(tempfile.mkdtemp(prefix=f"optimize-{os.getpid()}-"))
    import atexit

    atexit.register(shutil.rmtree, path, True)
    return path

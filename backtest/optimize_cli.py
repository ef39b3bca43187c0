"""`python driver.py backtest optimize`: search strategy parameters over backtests, optionally walk-forward,
on a local process pool or shared by several hosts through a PostgreSQL-backed Optuna study.

    python driver.py backtest optimize --from 2025-01-01 --to 2025-12-31 --param mac.fast=5:20:1
        --param mac.slow=15:60:5 [--objective sharpe|sortino|calmar|profit_factor|net] [--grid | --trials N]
        [--seed N] [--min-trades N] [--top N] [--heatmap mac.fast,mac.slow]
        [--walk-forward K [--in-sample-ratio 0.75] [--anchored]] [--workers N]
        [--storage postgresql://... --study NAME] [--symbols A,B] [--source S] [--interval 1m] [--data DIR]
        [--config FILE] [--out DIR] [--evaluate module:function]

Writes reports/optimize/<run-id>/ (optimize.csv with every point, walk_forward.csv, report.html) and prints the
best points. Exit 0 done, 1 when the backtests could not run, 2 on a bad flag (named, with what is allowed).
"""
from __future__ import annotations

import argparse
import csv
import functools
import importlib
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, cast

from backtest.optimize import (
    OBJECTIVES,
    Evaluate,
    Fold,
    Objective,
    PointResult,
    Settings,
    StudyMismatch,
    best_point,
    describe,
    grid_search,
    new_study,
    optuna_search,
    table,
    worker_pool,
    write_csv,
)
from backtest.sweep_params import (
    ParamError,
    ParamSpec,
    Point,
    grid_size,
    parse_params,
    point_label,
    point_problems,
)
from backtest.walk_forward import FoldResult, Stitched, WalkForwardError, split, stitch
from backtest.walk_forward import run as walk_forward_run
from core.cli_args import Parser, UsageError, load_config_arg, parse_range, parse_symbols
from core.config import Config
from ops.progress import CountProgress

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_TRIALS = 100


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="driver.py backtest optimize",
                description="Search strategy parameters over backtests (grid or Optuna TPE), optionally "
                            "walk-forward, on local processes or a shared PostgreSQL study.")
    p.add_argument("--from", dest="first", required=True, metavar="YYYY-MM-DD", help="first day (IST)")
    p.add_argument("--to", dest="last", required=True, metavar="YYYY-MM-DD", help="last day (IST), included")
    p.add_argument("--param", action="append", default=[], metavar="STRATEGY.PARAM=SPEC",
                   help="a swept parameter: mac.fast=5:20:1 (start:stop:step, inclusive) or mac.fast=5,9,13")
    p.add_argument("--objective", default="sharpe", help=f"one of {', '.join(OBJECTIVES)} (default sharpe)")
    p.add_argument("--grid", action="store_true", help="every point of the grid (default: Optuna TPE)")
    p.add_argument("--trials", type=int, default=None, help=f"TPE: points to try (default {DEFAULT_TRIALS})")
    p.add_argument("--seed", type=int, default=0, help="TPE's seed (default 0)")
    p.add_argument("--min-trades", type=int, default=0, help="reject a point with fewer positions than this")
    p.add_argument("--top", type=int, default=10, help="best points printed and in the report (default 10)")
    p.add_argument("--heatmap", default=None, metavar="X,Y",
                   help="the two parameters of the heatmap (default: the first two --param)")
    p.add_argument("--walk-forward", type=int, default=None, metavar="K", help="K walk-forward folds")
    p.add_argument("--in-sample-ratio", type=float, default=0.75,
                   help="walk-forward: in-sample share of a fold's window (default 0.75: 3x out-of-sample)")
    p.add_argument("--anchored", action="store_true",
                   help="walk-forward: in-sample windows start at --from and grow (default: rolling)")
    p.add_argument("--workers", type=int, default=None,
                   help="local worker processes (default: every core, os.cpu_count())")
    p.add_argument("--storage", default=None, metavar="URL",
                   help="a shared Optuna study in this database (postgresql://...); needs --study")
    p.add_argument("--study", default=None, metavar="NAME", help="the shared study's name (with --storage)")
    p.add_argument("--wait-others", type=float, default=600.0, metavar="S",
                   help="--storage: wait up to S seconds for other hosts' running points before reporting "
                        "(default 600)")
    p.add_argument("--symbols", default=None, help="comma-separated symbols (default: config.yaml's)")
    p.add_argument("--source", default=None, help="history source: openalgo (default), fyers, files, synthetic")
    p.add_argument("--interval", default="1m", help="candle interval (default 1m)")
    p.add_argument("--data", type=Path, default=None, help="--source files: the folder of SYMBOL.csv/parquet")
    p.add_argument("--cache", type=Path, default=None, help="candle cache folder (default data/history)")
    p.add_argument("--config", type=Path, default=None, help="config file (default config.yaml)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default reports/optimize/<run-id>)")
    p.add_argument("--verbose", action="store_true", help="log progress, and a failure's traceback")
    p.add_argument("--evaluate", default=None, metavar="MODULE:FUNCTION",
                   help="what one backtest is (default: backtest.runner); a function (point, fold) -> Outcome")
    return p


# ----------------------------------------------------------------------------- the runner seam

def runner_available() -> str | None:
    """None when backtest.runner imports, else why not."""
    try:
        importlib.import_module("backtest.runner")
    except ImportError as e:
        return f"the backtest runner (backtest/runner.py) is not available: {e}"
    return None


def load_evaluate(text: str) -> Evaluate:
    module, _, name = text.partition(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as e:
        raise UsageError(f"--evaluate {text!r} is not allowed -- expected MODULE:FUNCTION importable from the "
                         f"project ({type(e).__name__}: {e})") from None
    if not callable(fn):
        raise UsageError(f"--evaluate {text!r} is not allowed -- {name} is not callable")
    return cast(Evaluate, fn)


# ----------------------------------------------------------------------------- the command

def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        # a sweep runs hundreds of backtests: their day-by-day warnings (halts, cut-offs, skipped days) are
        # each run's own business, in its figures; the terminal gets errors only unless --verbose
        logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        return _run(args)
    except (UsageError, ParamError, WalkForwardError, StudyMismatch) as e:
        print(f"backtest optimize: {e} (python driver.py backtest optimize --help)", file=sys.stderr)
        return EXIT_USAGE


@dataclass(frozen=True)
class Plan:
    cfg: Config
    specs: list[ParamSpec]
    settings: Settings
    evaluate: Evaluate
    first: date
    last: date
    out: Path


def _plan(args: argparse.Namespace) -> Plan:
    first, last = parse_range(args.first, args.last)
    if args.objective not in OBJECTIVES:
        raise UsageError(f"--objective {args.objective!r} is not allowed -- use one of {', '.join(OBJECTIVES)}")
    for flag, v, low in (("--trials", args.trials, 1), ("--min-trades", args.min_trades, 0), ("--top", args.top, 1),
                         ("--workers", args.workers, 1)):
        if v is not None and v < low:
            raise UsageError(f"{flag} {v} is not allowed -- expected a whole number of at least {low}")
    if args.grid and args.trials is not None:
        raise UsageError("--trials is not allowed with --grid -- a grid tries every point")
    if (args.storage is None) != (args.study is None):
        raise UsageError("--storage and --study go together -- the shared study's database URL and its name")
    if args.storage is not None:
        _check_storage(args.storage)
    cfg, config_path = load_config_arg(args.config)
    specs = parse_params(args.param, cfg)
    if args.grid and grid_size(specs) > 1_000_000:
        raise UsageError(f"--grid is not allowed -- {grid_size(specs):,} points; use --trials N (TPE) instead")
    listed = parse_symbols(args.symbols)
    symbols = None if listed is None else tuple(listed)
    if args.evaluate:
        evaluate = load_evaluate(args.evaluate)
    else:
        from backtest.optimize_runner import RunnerEvaluate, problems

        evaluate = RunnerEvaluate(str(config_path.resolve()), symbols, args.source or "openalgo",
                                  args.interval, str(args.data) if args.data else None,
                                  str(args.cache) if args.cache else None)
        bad = problems(evaluate)
        if bad:
            raise UsageError("; ".join(bad))
    workers = args.workers or os.cpu_count() or 1
    out = args.out or cfg.resolve_path(cfg.monitoring.reports_dir) / "optimize" / time.strftime("%Y%m%d-%H%M%S")
    return Plan(cfg, specs, Settings(cast(Objective, args.objective), args.min_trades, workers), evaluate,
                first, last, out)


def _check_storage(url: str) -> None:
    """A database URL SQLAlchemy can parse, PostgreSQL's for several hosts. The URL is never echoed: it may
    hold a password."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError:
        raise UsageError("--storage is not allowed -- not a database URL; expected postgresql://USER:PASSWORD@HOST/DB "
                         "(the URL is not shown: it may hold a password)") from None
    if backend not in ("postgresql", "sqlite"):
        raise UsageError(f"--storage is not allowed -- a {backend} database; expected postgresql://... (several "
                         "hosts) or sqlite:///FILE (one host)")


def _heat(args: argparse.Namespace, specs: Sequence[ParamSpec]) -> tuple[ParamSpec, ParamSpec] | None:
    if args.heatmap is None:
        return (specs[0], specs[1]) if len(specs) >= 2 else None
    names = [n.strip() for n in args.heatmap.split(",")]
    by_key = {s.key: s for s in specs}
    if len(names) != 2 or names[0] == names[1] or any(n not in by_key for n in names):
        raise UsageError(f"--heatmap {args.heatmap!r} is not allowed -- expected two different swept parameters "
                         f"X,Y among {', '.join(by_key)}")
    return by_key[names[0]], by_key[names[1]]


def trading_days(cfg: Config, first: date, last: date) -> list[date]:
    """The exchange's trading days in the range (the calendar file; weekdays where a year is not listed)."""
    from ops.calendar import MarketCalendar

    cal = MarketCalendar(cfg.session, exchange=cfg.exchange)
    days, d = [], first
    while d <= last:
        if cal.is_trading_day(d):
            days.append(d)
        d += timedelta(days=1)
    return days


def _run(args: argparse.Namespace) -> int:
    plan = _plan(args)
    heat = _heat(args, plan.specs)
    if args.evaluate is None:
        missing = runner_available()
        if missing:
            print(f"backtest optimize: {missing}", file=sys.stderr)
            return EXIT_FAILED
    prefetch = getattr(plan.evaluate, "prefetch", None)
    if prefetch is not None:    # the runner: the candle cache filled once, here, before the workers read it
        from history.sources import HistoryError

        try:
            prefetch(plan.first, plan.last)
        except HistoryError as e:
            print(f"backtest optimize: history: {e}", file=sys.stderr)
            return EXIT_FAILED
    cfg, specs, settings = plan.cfg, plan.specs, plan.settings
    problems: Callable[[Point], list[str]] = functools.partial(point_problems, cfg=cfg)
    mode = "grid" if args.grid else f"TPE, {args.trials or DEFAULT_TRIALS} trials, seed {args.seed}"
    # what a joining host must share; not --trials (a later run may extend a TPE study: it runs until the
    # study holds its --trials) nor the seed
    meta_base: dict[str, Any] = {"params": [s.flag for s in specs], "objective": settings.objective,
                                 "min_trades": settings.min_trades, "search": "grid" if args.grid else "tpe"}

    per_search = grid_size(specs) if args.grid else (args.trials or DEFAULT_TRIALS)
    progress = CountProgress(per_search * (args.walk_forward or 1), "optimize")

    def tick(r: PointResult) -> None:
        progress.advance(1, note=f"{r.status} {point_label(r.point)}")

    def search_on(pool: Any) -> Callable[[Fold], list[PointResult]]:
        def search(fold: Fold) -> list[PointResult]:
            if args.storage is None and args.grid:
                return grid_search(plan.evaluate, specs, fold, settings, problems, pool, tick)
            name = None
            if args.study is not None:
                name = args.study if fold.index < 0 else f"{args.study}.fold{fold.index + 1}"
            study = new_study(specs, grid_mode=args.grid, seed=args.seed, storage=args.storage, study_name=name,
                              meta={**meta_base, "from": str(fold.start), "to": str(fold.end)})
            return optuna_search(plan.evaluate, specs, fold, settings, problems, study,
                                 trials=None if args.grid else (args.trials or DEFAULT_TRIALS), pool=pool,
                                 wait_s=args.wait_others if args.storage else 0.0, on_result=tick)
        return search

    cuts = None
    if args.walk_forward is not None:
        cuts = split(trading_days(cfg, plan.first, plan.last), args.walk_forward, args.in_sample_ratio,
                     args.anchored)
    started = time.monotonic()
    folds: list[FoldResult] = []
    stitched: Stitched | None = None
    try:
        with worker_pool(settings.workers) as pool:
            search = search_on(pool)
            if cuts is None:
                results = search(Fold(plan.first, plan.last))
            else:
                folds = walk_forward_run(plan.evaluate, search, cuts, settings)
                results = [r for f in folds for r in f.results]
                stitched = stitch(folds, cfg.backtest.risk_free_rate)
    except StudyMismatch:
        progress.close()
        raise
    except Exception as e:  # noqa: BLE001 - a storage or runner failure: one line (--verbose: the traceback)
        progress.close()
        log.error("optimisation failed", exc_info=args.verbose)
        print(f"backtest optimize: failed: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_FAILED
    progress.close()
    took = time.monotonic() - started
    plan.out.mkdir(parents=True, exist_ok=True)
    _write(plan, args, results if not folds else [], folds, stitched, heat, mode)
    if folds:
        _print_folds(folds, settings.objective, stitched)
    else:
        print(table(results, specs, settings.objective, args.top))
        best = best_point(results)
        print(f"best: {describe(best)}" if best else "best: none -- no point passed")
    print(f"{len(results)} points in {took:.1f} s with {settings.workers} worker(s); written to {plan.out}")
    return EXIT_OK


def _print_folds(folds: Sequence[FoldResult], objective: str, st: Stitched | None) -> None:
    for f in folds:
        inside = f"{f.best.value:.3f}" if f.best and f.best.value is not None else "-"
        outside = f.oos.figures.get(objective) if f.oos else None
        print(f"fold {f.index + 1}: in {f.in_sample.start}..{f.in_sample.end} best "
              f"{describe(f.best) if f.best else '(none passed)'} {objective} {inside}; out "
              f"{f.out_sample.start}..{f.out_sample.end} {objective} "
              f"{'-' if outside is None else f'{outside:.3f}'}")
    if st is not None:
        print(f"out-of-sample, stitched: return {st.total_return * 100:+.2f}%, Sharpe "
              f"{'-' if st.sharpe is None else f'{st.sharpe:.2f}'}, max drawdown {st.max_drawdown * 100:.2f}%")


def _write(plan: Plan, args: argparse.Namespace, results: list[PointResult], folds: Sequence[FoldResult],
           stitched: Stitched | None, heat: tuple[ParamSpec, ParamSpec] | None, mode: str) -> None:
    from backtest import optimize_report

    specs, objective = plan.specs, plan.settings.objective
    shown = results or (list(folds[-1].results) if folds else [])
    if results:
        write_csv(plan.out / "optimize.csv", results, specs)
    for f in folds:
        write_csv(plan.out / f"optimize_fold{f.index + 1}.csv", list(f.results), specs)
    if folds:
        _write_folds(plan.out / "walk_forward.csv", folds, specs, objective)
    intro = (f"{plan.first} to {plan.last}; {mode}; objective {objective}; min trades "
             f"{plan.settings.min_trades}" + (f"; {len(folds)} walk-forward folds (in-sample ratio "
                                               f"{args.in_sample_ratio}, {'anchored' if args.anchored else 'rolling'}"
                                               "); the table and heatmap are the last fold's in-sample search"
                                               if folds else ""))
    page = optimize_report.render("Optimisation", intro, shown, specs, objective, args.top, heat, folds, stitched)
    optimize_report.write(plan.out / "report.html", page)


def _write_folds(path: Path, folds: Sequence[FoldResult], specs: Sequence[ParamSpec], objective: str) -> None:
    header = ["fold", "in_from", "in_to", "out_from", "out_to", *(s.key for s in specs), f"{objective}_in",
              f"{objective}_out", "net_out", "trades_out"]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for f in folds:
            b, o = f.best, f.oos
            w.writerow([f.index + 1, f.in_sample.start, f.in_sample.end, f.out_sample.start, f.out_sample.end,
                        *((b.point[s.key] if b else "") for s in specs), "" if b is None else b.value,
                        _blank(o.figures.get(objective) if o else None), _blank(o.figures.get("net") if o else None),
                        _blank(o.trades if o else None)])


def _blank(v: object) -> object:
    return "" if v is None else v

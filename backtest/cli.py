"""`python driver.py backtest ...`: run a backtest, or compare two runs.

    backtest --from D --to D [--symbols A,B] [--config FILE] [--source S] [--data DIR] [--interval 1m]
             [--slippage PCT] [--cache DIR] [--out DIR] [--run-id ID] [--workers N] [--trade-flagged]
    backtest --source recorded --data DIR --from D --to D ...: the recorded tick days (one file a day, the
             replay format) in the range, at tick resolution
    backtest compare RUN_A RUN_B [--per-symbol]
    backtest lookahead (the run's flags): exit 1 naming the strategy and time of a signal that changes when the
             data is cut at its time

Bad input (a date, a symbol the config does not list, a missing data folder, an unknown source or interval)
exits 2 with a message naming the flag, the value and what is allowed.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from core.cli_args import Parser, UsageError, load_config_arg, parse_range, parse_symbols
from history.cli import DEFAULT_CACHE, SOURCES, check_source_flags, open_source

if TYPE_CHECKING:
    from backtest.runner import BacktestSpec
    from history.sources import HistorySource

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_OUT = "reports/backtest"
BACKTEST_SOURCES = (*SOURCES, "recorded")  # recorded: tick days in the replay format (backtest.recorded)


class _Failed(Exception):
    """The history source failed (exit 1)."""


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="driver.py backtest", description="Backtest the configured strategies over candle history.")
    p.add_argument("--from", dest="first", required=True, metavar="YYYY-MM-DD", help="first day (IST)")
    p.add_argument("--to", dest="last", required=True, metavar="YYYY-MM-DD", help="last day (IST), included")
    p.add_argument("--symbols", help="comma-separated symbols from the config (default: all it lists)")
    p.add_argument("--config", type=Path, default=None, help="config file (default config.yaml)")
    p.add_argument("--source", default="openalgo",
                   help=f"one of {', '.join(BACKTEST_SOURCES)} (default openalgo)")
    p.add_argument("--data", type=Path, help="files: the folder holding SYMBOL.csv or SYMBOL.parquet; recorded: the "
                   "folder of recorded tick files")
    p.add_argument("--interval", default="1m", help="candle interval (default 1m)")
    p.add_argument("--slippage", type=float, default=None, metavar="PCT",
                   help="slippage in percent against each fill (default costs.slippage_pct)")
    p.add_argument("--cache", type=Path, default=None, help=f"history cache folder (default {DEFAULT_CACHE})")
    p.add_argument("--out", type=Path, default=None, help=f"reports folder (default {DEFAULT_OUT})")
    p.add_argument("--run-id", default=None, help="name of the run (default: bt-<UTC time>)")
    p.add_argument("--workers", type=int, default=1, help="processes over blocks of days (default 1)")
    p.add_argument("--trade-flagged", action="store_true",
                   help="trade symbol-days whose data has quality findings (listed in summary.json); default: skip")
    return p


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["compare"]:
            return _compare(argv[1:])
        if argv[:1] == ["lookahead"]:
            return _lookahead(build_parser().parse_args(argv[1:]))
        return _run(build_parser().parse_args(argv))
    except UsageError as e:
        print(f"backtest: {e} (python driver.py backtest --help)", file=sys.stderr)
        return EXIT_USAGE


def _main_db() -> str | None:
    """The daemon's database (DATABASE_URL from the environment or .env; unset: the SQLite file), where runs
    are recorded."""
    from core.config import load_secrets

    return load_secrets()[0].database_url


def _compare(argv: list[str]) -> int:
    from backtest.compare import compare, format_table
    from backtest.metrics import Summary
    from backtest.runs import load

    p = Parser(prog="driver.py backtest compare", description="Two runs' summaries side by side (B - A).")
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument("--per-symbol", action="store_true", help="add per-symbol rows")
    args = p.parse_args(argv)
    summaries = []
    for rid in (args.run_a, args.run_b):
        rec = load(_main_db(), rid)
        if rec is None:
            raise UsageError(f"run {rid!r} is not in the backtest_runs table -- name a run id a backtest printed")
        summaries.append(Summary.from_dict(rec.summary))
    print(format_table(compare(summaries[0], summaries[1], per_symbol=args.per_symbol), args.run_a, args.run_b))
    return EXIT_OK


def _spec(args: argparse.Namespace) -> BacktestSpec:
    """The run the flags describe, every value checked (UsageError naming the flag otherwise)."""
    from backtest.runner import BacktestSpec
    from history.intervals import parse_interval
    from history.sources import HistoryError

    first, last = parse_range(args.first, args.last)
    if args.source not in BACKTEST_SOURCES:
        raise UsageError(f"--source {args.source!r} is not allowed -- use one of {', '.join(BACKTEST_SOURCES)}")
    if args.data is not None and not args.data.is_dir():
        raise UsageError(f"--data {str(args.data)!r} is not a folder -- name the folder holding "
                         + ("recorded tick files" if args.source == "recorded" else "SYMBOL.csv or SYMBOL.parquet"))
    if not 1 <= args.workers <= 64:
        raise UsageError(f"--workers {args.workers!r} is not allowed -- a whole number from 1 to 64")
    if args.slippage is not None and not 0 <= args.slippage <= 5:
        raise UsageError(f"--slippage {args.slippage!r} is not allowed -- a percentage from 0 to 5")
    if args.source == "recorded":  # tick resolution; --interval still names the candles its strategies build
        try:
            interval = parse_interval(args.interval)
        except ValueError as e:
            raise UsageError(f"--interval: {e}") from None
    else:
        interval = check_source_flags(args.source, args.interval)
    cfg, config_path = load_config_arg(args.config)
    known = [s.symbol for s in cfg.symbols]
    symbols = parse_symbols(args.symbols) or known
    unknown = [s for s in symbols if s not in known]
    if unknown:
        raise UsageError(f"--symbols: {', '.join(unknown)} not in the config's symbols -- allowed are "
                         f"{', '.join(known)}")
    if args.source == "files":
        if args.data is None:
            raise UsageError("--source files needs --data DIR (the folder with SYMBOL.csv or SYMBOL.parquet)")
        missing = [s for s in symbols if not (args.data / f"{s}.csv").exists()
                   and not (args.data / f"{s}.parquet").exists()]
        if missing:
            raise UsageError(f"--data {args.data}: no {missing[0]}.csv or {missing[0]}.parquet "
                             f"({len(missing)} symbol(s) without a file)")
    tickers = {s.symbol: s.fyers for s in cfg.symbols}
    try:
        if args.source == "recorded":
            source: HistorySource = _recorded(args.data, [tickers[s] for s in symbols],
                                              cfg.replay.max_bad_row_share)
        else:
            source = open_source(args.source, args.data, cfg, interval)
    except HistoryError as e:
        raise _Failed(str(e)) from None
    run_id = args.run_id or time.strftime("bt-%Y%m%d-%H%M%S", time.gmtime())
    out_root = args.out or cfg.resolve_path(DEFAULT_OUT)
    if (out_root / run_id).exists():
        raise UsageError(f"--run-id {run_id!r} is taken ({out_root / run_id} exists) -- choose another")
    from backtest.runs import load

    if load(_main_db(), run_id) is not None:
        raise UsageError(f"--run-id {run_id!r} is taken (recorded in backtest_runs) -- choose another")
    return BacktestSpec(cfg=cfg, source=source, interval=interval, first=first, last=last, symbols=tuple(symbols),
                        cache_dir=args.cache or cfg.resolve_path(DEFAULT_CACHE), out_root=out_root, run_id=run_id,
                        slippage_pct=args.slippage, config_text=config_path.read_text(encoding="utf-8"),
                        progress=sys.stderr, workers=args.workers, skip_bad_days=not args.trade_flagged)


def _recorded(folder: Path | None, tickers: list[str], max_bad_share: float) -> HistorySource:
    """The recorded days of --data, each file scanned as --replay scans it (exit 2 naming a bad file's line)."""
    from backtest.recorded import scan_folder
    from feeds.replay_check import ReplayInputError

    if folder is None:
        raise UsageError("--source recorded needs --data DIR (the folder of recorded tick files, one day each)")
    try:
        return scan_folder(folder, tickers, max_bad_share)
    except ReplayInputError as e:
        raise UsageError(str(e)) from None


def _run(args: argparse.Namespace) -> int:
    from backtest.outputs import write_outputs
    from backtest.runner import run_backtest
    from history.sources import HistoryError

    try:
        spec = _spec(args)
    except _Failed as e:
        print(f"backtest: {e}", file=sys.stderr)
        return EXIT_FAILED
    run_id, symbols, first, last, interval, source = (spec.run_id, spec.symbols, spec.first, spec.last,
                                                      spec.interval, spec.source)
    logging.getLogger().setLevel(logging.WARNING)  # the runner's day-by-day info would drown the summary
    try:
        result = run_backtest(spec)
    except HistoryError as e:
        print(f"backtest: {e}", file=sys.stderr)
        return EXIT_FAILED
    s = write_outputs(spec, result, _main_db())
    t = s.trades
    unit = "ticks" if args.source == "recorded" else "candles"
    print(f"backtest {run_id}: {', '.join(symbols)} {first}..{last} "
          f"({'ticks' if args.source == 'recorded' else interval.name}, {source.key}), "
          f"{len(result.days)} day(s), {result.candles:,} {unit} in {result.elapsed_s:.1f}s")
    print(f"  net P&L {s.net_pnl:,.2f} ({s.total_return * 100:.2f}%), {t.positions} trade(s), win rate "
          f"{'-' if t.win_rate is None else f'{t.win_rate * 100:.1f}%'}, charges {t.costs:,.2f}, max drawdown "
          f"{s.drawdown.pct * 100:.2f}%, sharpe {'-' if s.sharpe is None else f'{s.sharpe:.2f}'}")
    if result.skipped:
        print(f"  {len(result.skipped)} symbol-day(s) not traded for their data's findings (summary.json lists "
              "them; --trade-flagged trades them)")
    if result.flagged:
        print(f"  {len(result.flagged)} symbol-day(s) traded despite their data's findings (summary.json lists them)")
    if result.cold_starts:
        print(f"  {result.cold_starts} strategy-day(s) started cold: history before them had too few candles (the "
              "log names each, with when it became ready)")
    print(f"  reports in {result.out_dir} (summary.json, trades.csv, report.html)")
    return EXIT_OK


def _lookahead(args: argparse.Namespace) -> int:
    from backtest.lookahead import check
    from history.sources import HistoryError
    from ops.progress import CountProgress

    if args.source == "recorded":
        raise UsageError("lookahead: --source recorded is not allowed -- the check cuts candles at a signal's time; "
                     "recorded ticks are run as they came")
    try:
        spec = _spec(args)
    except _Failed as e:
        print(f"backtest: {e}", file=sys.stderr)
        return EXIT_FAILED
    logging.getLogger().setLevel(logging.ERROR)
    progress: CountProgress | None = None

    def on_cut(done: int, total: int) -> None:
        nonlocal progress
        if progress is None:
            progress = CountProgress(total, "lookahead", stream=sys.stderr)
        progress.advance(1)
    try:
        report = check(spec, on_cut=on_cut)
    except HistoryError as e:
        print(f"backtest: {e}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if progress is not None:
            progress.close()
    if report.found is not None:
        print(f"lookahead: {report.found}")
        return EXIT_FAILED
    print(f"lookahead: none found: {report.signals} signal(s) at {report.cuts} time(s), each rerun with the data "
          "cut at its time, unchanged")
    return EXIT_OK

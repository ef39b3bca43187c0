"""`python driver.py history fetch`: fill the local candle cache for symbols and dates, with progress.

    python driver.py history fetch --from 2025-01-01 --to 2025-03-31 [--symbols SBIN,INFY]
        [--source openalgo|fyers|files|synthetic] [--interval 1m] [--data DIR] [--cache DIR] [--config FILE]

Symbols default to config.yaml's. openalgo asks HOST_SERVER with APP_KEY (.env): a real OpenAlgo server or
the paper broker, which serves synthetic candles; fyers uses FYERS_APP_ID and today's FYERS_ACCESS_TOKEN
(FYERS_DATA_URL: another data URL, for a local test server);
files reads DIR/SYMBOL.csv or .parquet; synthetic runs the generator here, with config's replay seed.
After the fetch every symbol-day is checked and each finding is printed. Exit 0 when everything was fetched
(findings included: they are the backtest's to act on), 1 when a source failed, 2 on bad arguments.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import date
from pathlib import Path

from core.cli_args import Parser, UsageError, load_config_arg, parse_range, parse_symbols
from core.config import Config, SessionConfig
from history.intervals import Interval, parse_interval
from history.sources import HistoryError, HistorySource
from ops.progress import CountProgress

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
SOURCES = ("openalgo", "fyers", "files", "synthetic")
DEFAULT_CACHE = "data/history"
SHOWN_FINDINGS = 20


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="driver.py history", description="Candle history for the backtest.")
    sub = p.add_subparsers(dest="action", required=True, metavar="fetch")
    f = sub.add_parser("fetch", help="fetch candles into the local cache")
    f.add_argument("--symbols", help="comma-separated OpenAlgo symbols (default: config.yaml's)")
    f.add_argument("--from", dest="first", required=True, metavar="YYYY-MM-DD", help="first day (IST)")
    f.add_argument("--to", dest="last", required=True, metavar="YYYY-MM-DD", help="last day (IST), included")
    f.add_argument("--source", default="openalgo", help=f"one of {', '.join(SOURCES)} (default openalgo)")
    f.add_argument("--interval", default="1m", help="candle interval: 1m (default), 5m, 15m, 1h, D, 30s ...")
    f.add_argument("--exchange", default=None, help="exchange (default: config.yaml's)")
    f.add_argument("--data", type=Path, help="files: the folder holding SYMBOL.csv or SYMBOL.parquet")
    f.add_argument("--cache", type=Path, default=None, help=f"cache folder (default {DEFAULT_CACHE})")
    f.add_argument("--config", type=Path, default=None, help="config file (default config.yaml)")
    return p


def check_source_flags(source: str, interval: str) -> Interval:
    """--source is one of SOURCES and --interval a candle interval (UsageError naming the flag otherwise)."""
    if source not in SOURCES:
        raise UsageError(f"--source {source!r} is not allowed -- use one of {', '.join(SOURCES)}")
    try:
        return parse_interval(interval)
    except ValueError as e:
        raise UsageError(f"--interval: {e}") from None


def open_source(name: str, data: Path | None, cfg: Config, interval: Interval | None = None) -> HistorySource:
    """The history source `name` for this config (files: read from `data`), asked whether it serves
    `interval` when one is given: UsageError for what the flags got wrong, HistoryError when it cannot tell."""
    source = _new_source(name, data, cfg)
    if interval is not None:
        try:
            source.check_interval(interval)
        except ValueError as e:
            raise UsageError(f"--interval: {e}") from None
    return source


def _new_source(name: str, data: Path | None, cfg: Config) -> HistorySource:
    from core.config import load_secrets

    if name == "synthetic":
        from history.synthetic import SyntheticSource

        return SyntheticSource(cfg.replay.seed, cfg.session)
    if name == "files":
        if data is None:
            raise UsageError("--source files needs --data DIR (the folder with SYMBOL.csv or SYMBOL.parquet)")
        from history.files import FileSource

        try:
            return FileSource(data)
        except ValueError as e:
            raise UsageError(str(e)) from None
    secrets, problems = load_secrets()
    if name == "openalgo":
        if problems or not secrets.app_key:
            raise UsageError("; ".join(problems) or "APP_KEY: unset -- the OpenAlgo API key goes in .env")
        from history.openalgo_source import OpenAlgoSource

        return OpenAlgoSource(secrets.host_server, secrets.app_key)
    if not secrets.fyers_app_id or not secrets.fyers_access_token:
        raise UsageError("--source fyers needs FYERS_APP_ID and FYERS_ACCESS_TOKEN in .env "
                         "(python driver.py fyers-login writes today's token)")
    from history.fyers_source import FyersSource

    try:
        return FyersSource(secrets.fyers_app_id, secrets.fyers_access_token,
                           data_url=os.environ.get("FYERS_DATA_URL") or None,
                           tickers={s.symbol: s.fyers for s in cfg.symbols},
                           # the SDK's own fyersApi.log and fyersRequests.log go there
                           log_dir=cfg.resolve_path(cfg.monitoring.log_dir))
    except ValueError as e:
        raise UsageError(str(e)) from None


def main(argv: list[str] | None = None) -> int:
    try:
        return _run(build_parser().parse_args(argv))
    except UsageError as e:
        print(f"history: {e} (python driver.py history fetch --help)", file=sys.stderr)
        return EXIT_USAGE


def _run(args: argparse.Namespace) -> int:
    first, last = parse_range(args.first, args.last)
    interval = check_source_flags(args.source, args.interval)
    cfg, _ = load_config_arg(args.config)
    symbols = parse_symbols(args.symbols) or [s.symbol for s in cfg.symbols]
    exchange = args.exchange or cfg.exchange
    cache = args.cache or cfg.resolve_path(DEFAULT_CACHE)
    try:
        source = open_source(args.source, args.data, cfg, interval)
    except HistoryError as e:
        print(f"history: {e}", file=sys.stderr)
        return EXIT_FAILED
    return fetch(source, cache, cfg.session, symbols, exchange, interval, first, last)


def fetch(source: HistorySource, cache: Path, session: SessionConfig, symbols: list[str], exchange: str,
          interval: Interval, first: date, last: date) -> int:
    from history.store import HistoryStore

    store = HistoryStore(source, cache, session)
    progress: CountProgress | None = None
    try:
        todo = {s: store.missing(s, exchange, interval, first, last) for s in symbols}
        progress = CountProgress(sum(len(v) for v in todo.values()), f"history {source.key} {interval.name}")
        requests = 0
        for s in symbols:
            progress.note = s
            requests += store.prefetch(s, exchange, interval, first, last, on_days=progress.advance)
        progress.close()
        days = candles = 0
        findings = []
        for s in symbols:
            for d in store.days(s, exchange, interval, first, last):
                days += 1
                candles += len(d.columns)
                if not d.report.ok:
                    findings.append(d.report)
    except HistoryError as e:
        if progress is not None:
            progress.close()
        print(f"history: {e}", file=sys.stderr)
        return EXIT_FAILED
    print(f"history: {len(symbols)} symbol(s), {first}..{last}, {interval.name} from {source.key}: {days} day(s), "
          f"{candles:,} candles in {cache}; {requests} request(s) made")
    if findings:
        print(f"history: {len(findings)} symbol-day(s) with findings, not to be traded on unchecked:")
        for r in findings[:SHOWN_FINDINGS]:
            print(f"  {r}")
        if len(findings) > SHOWN_FINDINGS:
            print(f"  ... and {len(findings) - SHOWN_FINDINGS} more")
    return EXIT_OK

"""Recorded tick days as a backtest's data: `driver.py backtest --source recorded --data DIR`.

Why: a day recorded with `--record` (or any file in the replay format) holds what the market really did tick by
tick, bid and ask included. Turning it into candles and back into four ticks a candle would throw that away, so
these days run at tick resolution: each file's ticks go through the feed's own TickValidator (as the replay's
feed process judges them, its clock starting at the session's open), become the same `Tick` records, and are
run by the same day loop as candle days (backtest.runner). The files are pre-scanned as `--replay` scans them
(feeds.replay_check), so a file the daemon would refuse to replay is refused here, with exit 2 naming the file
and its first bad line.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from core.clock import ist_epoch
from core.config import Config
from core.types import Tick
from feeds.recorded import FORMATS, read_ticks
from feeds.replay_check import ReplayInputError, log_findings, scan_recording
from history.intervals import Interval
from pipeline.tick_validator import TickValidator
from strategies.base import Candle

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecordedDay:
    """One recorded file (with its part files) and the IST day its ticks are from."""

    day: date
    path: Path
    ticks: int


class RecordedSource:
    """`--source recorded`: the recorded days of a folder. It stands where a history source stands in a
    BacktestSpec (its key names the run's data); the runner reads its days as ticks, never as candles."""

    def __init__(self, folder: Path, days: Iterable[RecordedDay]):
        self.folder = folder
        self.days = tuple(sorted(days, key=lambda d: d.day))
        self.key = f"recorded:{folder}"
        self.requests = 0

    def between(self, first: date, last: date) -> list[RecordedDay]:
        return [d for d in self.days if first <= d.day <= last]

    # the history-source side: never used for candles
    def check_interval(self, interval: Interval) -> None:
        return None

    def chunk_days(self, interval: Interval) -> int:
        return 1

    def fingerprint(self, symbol: str, exchange: str) -> str | None:
        return None

    def fetch(self, symbol: str, exchange: str, interval: Interval, first: date, last: date) -> list[Candle]:
        raise TypeError("recorded days are run as ticks, not fetched as candles")


def _is_part(p: Path) -> bool:
    """day.part2.csv.gz: read after day.csv.gz, not a day of its own."""
    name = p.name.lower()
    for suffix in FORMATS:
        if name.endswith(suffix):
            stem = name[:-len(suffix)]
            tail = stem.rsplit(".", 1)[-1]
            return "." in stem and tail.startswith("part") and tail[4:].isdigit()
    return False


def scan_folder(folder: Path, tickers: Iterable[str], max_bad_share: float) -> RecordedSource:
    """Every recorded file in `folder`, scanned as a replay scans it; ReplayInputError (one line naming the
    file, and its first bad line when that is the reason) for a file the daemon would not replay, two files of
    the same day, or a folder with none."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(FORMATS)
                   and not _is_part(p))
    if not files:
        raise ReplayInputError(f"--data {str(folder)!r} holds no recorded tick file -- expected files ending in "
                               f"{', '.join(FORMATS)} (one day each, as --record writes them)")
    routable = frozenset(tickers)
    days: dict[date, RecordedDay] = {}
    for f in files:
        scan = scan_recording(f, routable, max_bad_share, key="--data")
        log_findings(scan)
        d = scan.day
        assert d is not None  # scan_recording refuses a file without a timestamp
        if d in days:
            raise ReplayInputError(f"--data: {str(days[d].path)!r} and {str(f)!r} both hold {d} -- keep one "
                                   "file per day (a recording's part files are read with it)")
        days[d] = RecordedDay(d, f, scan.routable)
    return RecordedSource(folder, days.values())


def recorded_ticks(day: RecordedDay, cfg: Config, symbols: Mapping[str, str]) -> Iterator[tuple[int, str, float, Tick]]:
    """(time, symbol, price, tick) for the day's ticks of `symbols` (Fyers name -> config symbol), as the
    replay's feed passes them on: ticks of other symbols are not subscribed to, the rest are judged by the
    feed's TickValidator (a refused tick is counted and logged there, and never runs)."""
    md = cfg.market_data
    validator = TickValidator(set(symbols), max_ahead_s=md.max_ahead_s, gap_confirm_ticks=md.gap_confirm_ticks,
                              max_price_move_pct=md.max_price_move_pct, start=ist_epoch(day.day, cfg.session.open))
    for raw in read_ticks(day.path, log_bad=False):
        if raw.get("symbol") not in symbols:
            continue
        for t in validator.admit(raw):
            ts = t.get("exch_feed_time")
            if ts is None:
                ts = t["last_traded_time"]
            yield int(ts), symbols[t["symbol"]], float(t["ltp"]), Tick.from_feed(t)
    validator.finish()
    if validator.rejected:
        log.warning("%s: %d tick(s) refused by the feed's checks: %s", day.path, validator.rejected,
                    dict(sorted(validator.counts.items())))

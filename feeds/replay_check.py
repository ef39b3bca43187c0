"""The pre-scan of a recorded replay file, before any worker or broker starts.

Why: a replay of an empty file, of junk, or of ticks for symbols the config does not trade used to run, trade
nothing, exit 0 and replace the day's report with an empty one; a recorded day replayed without --date ran
as today's session, so every entry was refused as outside it. Reading the file once up front (a day of ticks,
read locally) lets start-up refuse such input with exit 2 and one line naming the file and what is wrong,
and gives the replay its trading day from the file's own timestamps.
"""
from __future__ import annotations

import csv
import logging
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from core.clock import ist_date
from feeds.recorded import FORMATS, file_format, read_ticks

log = logging.getLogger(__name__)

SHOWN_SYMBOLS = 8  # symbols named in a refusal or warning; the rest are counted


class ReplayInputError(ValueError):
    """The replay file cannot give a trading day; the message is the one line the user sees."""


@dataclass(frozen=True)
class ReplayScan:
    """What the pre-scan found in a recording (and its part files)."""

    path: str
    files: tuple[str, ...]
    lines: int
    ticks: int
    malformed: int
    first_bad: str | None            # "<file> line <n>: <why>"
    truncated: tuple[str, ...]
    first_ts: int | None              # exch_feed_time of the earliest and latest tick
    last_ts: int | None
    routable_last_ts: int | None      # the latest tick of a configured symbol
    routable: int                     # ticks of configured symbols
    unroutable: dict[str, int] = field(default_factory=dict)  # symbol -> ticks, for symbols not configured
    elapsed_s: float = 0.0

    @property
    def day(self) -> date | None:
        """The trading day: the IST date of the file's timestamps (one day; scan_recording refuses more)."""
        return None if self.first_ts is None else ist_date(self.first_ts)

    @property
    def bad_share(self) -> float:
        total = self.ticks + self.malformed
        return self.malformed / total if total else 0.0


def _bad_line(first_bad: tuple[Path, int, str] | None) -> str | None:
    if first_bad is None:
        return None
    path, line, why = first_bad
    return f"{path} line {line}: {why}"


def _symbols(counts: dict[str, int]) -> str:
    top = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
    shown = ", ".join(f"{s} {n}" for s, n in top[:SHOWN_SYMBOLS])
    more = len(top) - SHOWN_SYMBOLS
    return shown + (f" and {more} more symbol(s)" if more > 0 else "")


def scan_recording(path: Path | str, routable: set[str] | frozenset[str], max_bad_share: float,
                   key: str = "--replay") -> ReplayScan:
    """Read the whole recording once; raise ReplayInputError (one line) when it cannot be replayed: an
    unknown file type, no valid tick, a share of malformed lines above `max_bad_share`, ticks on more than one
    IST date or none with a timestamp, or no tick of a `routable` (configured Fyers) symbol. `key` is where the
    path came from (--replay or replay.source), for the message."""
    try:
        file_format(path)
    except ValueError:
        raise ReplayInputError(f"{key}: {str(path)!r} is not allowed -- use synthetic or a recorded file whose "
                               f"name ends in {', '.join(FORMATS)}") from None
    t0 = time.perf_counter()
    try:
        reader = read_ticks(path, log_bad=False)
    except (FileNotFoundError, OSError) as e:
        raise ReplayInputError(f"{key}: {str(path)!r} is not allowed -- cannot read it ({e})") from None
    counts: dict[str, int] = {}
    last: dict[str, int] = {}
    lo: int | None = None
    hi: int | None = None
    try:
        for t in reader:
            sym = t.get("symbol") or ""
            counts[sym] = counts.get(sym, 0) + 1
            ts = t.get("exch_feed_time")
            if type(ts) is int:
                if ts > last.get(sym, -1):
                    last[sym] = ts
                if hi is None or lo is None:
                    lo = hi = ts
                elif ts > hi:
                    hi = ts
                elif ts < lo:
                    lo = ts
    except (ValueError, csv.Error) as e:  # a CSV whose first line is not a tick header, a runaway field
        raise ReplayInputError(f"{key}: {e} -- not a recorded tick file") from None
    except OSError as e:
        raise ReplayInputError(f"{key}: {str(path)!r} is not allowed -- cannot read it ({e})") from None
    first_bad = _bad_line(reader.first_bad)
    unroutable = {s: n for s, n in counts.items() if s not in routable}
    routable_last = max((ts for s, ts in last.items() if s in routable), default=None)
    scan = ReplayScan(path=str(path), files=tuple(str(f) for f in reader.files), lines=reader.lines,
                      ticks=reader.ticks, malformed=reader.malformed, first_bad=first_bad,
                      truncated=tuple(str(f) for f in reader.truncated), first_ts=lo, last_ts=hi,
                      routable_last_ts=routable_last, routable=reader.ticks - sum(unroutable.values()),
                      unroutable=unroutable, elapsed_s=time.perf_counter() - t0)
    _refuse_bad(scan, max_bad_share, key)
    return scan


def _refuse_bad(scan: ReplayScan, max_bad_share: float, key: str) -> None:
    where = repr(scan.path)
    if scan.ticks == 0:
        if scan.first_bad is not None:
            lines = f" in {scan.lines} line(s)" if scan.lines else ""
            raise ReplayInputError(f"{key}: {where} holds no valid tick{lines}; first bad line: {scan.first_bad}")
        raise ReplayInputError(f"{key}: {where} holds no tick (an empty file, or a header only) -- replay a "
                               "day recorded with --record, or synthetic")
    if scan.bad_share > max_bad_share:
        raise ReplayInputError(f"{key}: {where} has {scan.malformed} malformed line(s) in "
                               f"{scan.ticks + scan.malformed} ({scan.bad_share:.1%}), above "
                               f"replay.max_bad_row_share ({max_bad_share:g}); first bad line: {scan.first_bad}")
    if scan.first_ts is None or scan.last_ts is None:
        raise ReplayInputError(f"{key}: {where} has no tick with an exch_feed_time, so its trading day is "
                               "unknown -- replay a file recorded with --record")
    first, last = ist_date(scan.first_ts), ist_date(scan.last_ts)
    if first != last:
        raise ReplayInputError(f"{key}: {where} spans more than one trading day ({first} and {last}, IST) -- "
                               "replay one day per run")
    if scan.routable == 0:
        raise ReplayInputError(f"{key}: {where} has no tick for a symbol in the config's symbols (it holds "
                               f"{_symbols(scan.unroutable)}) -- add them to symbols: or replay a file recorded "
                               "for the configured symbols")


def log_findings(scan: ReplayScan) -> None:
    """What the pre-scan let through but the user should know: skipped lines, a cut-off file, ticks that no
    worker will get (by symbol)."""
    log.info("replay file %s: %d ticks for %s (IST), read in %.2fs before start-up", scan.path, scan.ticks,
             scan.day, scan.elapsed_s)
    if scan.malformed:
        log.warning("replay file %s: %d malformed line(s) of %d skipped (%.2f%%); first bad line: %s", scan.path,
                    scan.malformed, scan.ticks + scan.malformed, scan.bad_share * 100, scan.first_bad)
    for f in scan.truncated:
        log.warning("replay file %s is truncated or corrupt: only what comes before the cut is replayed", f)
    if scan.unroutable:
        log.warning("replay file %s: %d tick(s) of %d symbol(s) not in the config are not routed: %s", scan.path,
                    sum(scan.unroutable.values()), len(scan.unroutable), _symbols(scan.unroutable))

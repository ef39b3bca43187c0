"""Warm-up from history: the candles each strategy needs before its first tick, so a candle strategy can decide
from the open, and a daemon restarted mid-day rebuilds its strategies from the day's earlier candles.

The driver loads them once at start (one history layer, one rate limit, one cache writer: history/), as
1-minute candles turned into each strategy's `candle_seconds` with the same bucketing as CandleAggregator
(start = t - t % seconds). Each worker gets its symbols' candles with its start arguments (one pickle, no
per-candle message) and feeds them through `Strategy.warm_up` before it reads its first tick. A worker
restarted from a checkpoint does not: its strategies' state is in the checkpoint.

What a strategy gets: the last `warmup_candles` session candles of earlier trading days, then every session
candle of the day that ended by `now` (the replay's start, or the wall clock at a live start). The source: a
synthetic replay's own generator (the same candles its ticks make), else OpenAlgo's /api/v1/history at
HOST_SERVER (the paper broker in paper mode). A recorded replay file has no history of its earlier days, so
`--record PATH` also writes the candles its run fed the strategies beside the recording (`PATH.warmup.json`), and
a replay of that file feeds the same candles, cut at the same time: a recorded day replays as its run traded. A
file without one starts its strategies cold. A strategy that gets fewer candles than it needs is named in the log
with when it becomes ready.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.clock import ist_epoch, to_ist
from core.config import Config, Secrets, SessionConfig
from history.frames import CandleColumns
from history.intervals import Interval
from history.sources import HistorySource
from strategies import strategy_class
from strategies.base import Candle

if TYPE_CHECKING:
    from history.store import HistoryDay

log = logging.getLogger(__name__)

MINUTE = Interval("1m", 60)
CACHE = "data/history"
GIVE_UP_AFTER = 3  # symbols in a row whose history failed: the rest start cold without asking


@dataclass(frozen=True)
class Need:
    """One symbol's strategy and what it asks of history."""

    symbol: str
    strategy: str
    seconds: int
    candles: int


def needs(cfg: Config) -> list[Need]:
    """The symbols whose strategy wants history (a strategy that cannot be built is the worker's to report)."""
    out = []
    for spec in cfg.symbols:
        strat = cfg.strategies[spec.strategy]
        try:
            s = strategy_class(strat.kind)(spec.symbol, strat.name, strat.params, cfg.session)
            seconds, n = s.candle_seconds, s.warmup_candles
        except Exception:  # noqa: BLE001 - the worker builds it again, contains and reports the error
            continue
        if seconds and n > 0:
            out.append(Need(spec.symbol, strat.name, int(seconds), int(n)))
    return out


def source_for(cfg: Config, secrets: Secrets, live_data: bool, replay_source: str) -> tuple[HistorySource | None, str]:
    """Where history comes from, or None and why there is none."""
    if not live_data:
        if replay_source != "synthetic":
            return None, f"the replayed file {replay_source} has no history of earlier days"
        from history.synthetic import SyntheticSource

        return SyntheticSource(cfg.replay.seed, cfg.session), ""
    if not secrets.app_key:
        return None, "APP_KEY is unset"
    from history.openalgo_source import OpenAlgoSource

    return OpenAlgoSource(secrets.host_server, secrets.app_key), ""


def resample(candles: Iterable[Candle], seconds: int, now: int) -> list[Candle]:
    """Candles of `seconds` from shorter ones in time order, bucketed as CandleAggregator does; only buckets
    that ended by `now`."""
    out: list[Candle] = []
    cur: list[Candle] = []
    start = -1

    def close() -> None:
        if cur and start + seconds <= now:
            out.append(Candle(cur[0].symbol, start, seconds, cur[0].open, max(c.high for c in cur),
                              min(c.low for c in cur), cur[-1].close, sum(c.volume for c in cur)))

    for c in candles:
        b = c.start - c.start % seconds
        if b != start:
            close()
            cur, start = [], b
        cur.append(c)
    close()
    return out


def _lookback_days(need: Need, session_s: int) -> int:
    """Calendar days back that hold `need.candles` session candles, with weekends and a holiday or two."""
    trading_days = -(-need.candles * need.seconds // max(session_s, 60)) + 1
    return trading_days * 7 // 5 + 4


def lookback_start(need: Need, session: SessionConfig, day: date) -> date:
    """The first calendar day whose candles may warm `need` at a start on `day`: a start reads no further back,
    so a long holiday leaves it short (and it starts cold, as a live start would)."""
    session_s = ist_epoch(day, session.close) - ist_epoch(day, session.open)
    return day - timedelta(days=_lookback_days(need, session_s))


def _session_columns(hd: HistoryDay, session: SessionConfig) -> tuple[np.ndarray, int]:
    """Indices of the day's candles inside the configured session, in the source's order, and the session end."""
    lo, hi = ist_epoch(hd.day, session.open), ist_epoch(hd.day, session.close)
    start = hd.columns.start
    return np.flatnonzero((start >= lo) & (start < hi)), hi


def _candles_at(hd: HistoryDay, idx: np.ndarray) -> list[Candle]:
    c = hd.columns
    return CandleColumns(c.start[idx], c.open[idx], c.high[idx], c.low[idx], c.close[idx],
                         c.volume[idx]).candles(hd.symbol, hd.seconds)


def earlier_candles(hd: HistoryDay, need: Need, session: SessionConfig) -> list[Candle]:
    """An earlier day's share of a warm-up: the last `need.candles` of its session candles in the need's length
    (of those ended by the close). Only their buckets are built when the day is in time order (a backtest reads
    this for every symbol-day); out of order, the whole session is resampled as it comes."""
    idx, hi = _session_columns(hd, session)
    s = hd.columns.start[idx]
    if need.seconds == hd.seconds and bool(np.all(s[1:] > s[:-1])) and not np.any(s % need.seconds):
        # the day's own candles, each its own bucket (in order, on the bucket grid): resampling copies them
        return _candles_at(hd, idx[s + need.seconds <= hi][-need.candles:])
    if len(s) > need.candles and bool(np.all(s[1:] > s[:-1])):
        b = s - s % need.seconds
        ended = np.unique(b[b + need.seconds <= hi])
        if len(ended) > need.candles:
            idx = idx[b >= ended[-need.candles]]
    return resample(_candles_at(hd, idx), need.seconds, hi)[-need.candles:]


def today_candles(hd: HistoryDay, need: Need, session: SessionConfig, now: int) -> list[Candle]:
    """The start day's own session candles in the need's length that ended by `now` (a start mid-day)."""
    idx, _hi = _session_columns(hd, session)
    return resample(_candles_at(hd, idx), need.seconds, now)


def last_of(need: Need, earlier: Iterable[Sequence[Candle]]) -> list[Candle]:
    """The warm-up from earlier days' shares (earlier_candles), oldest day first: the last `need.candles`."""
    out: list[Candle] = []
    for cs in earlier:
        out.extend(cs)
    return out[-need.candles:]


def load(cfg: Config, source: HistorySource, day: date, now: int, wanted: Sequence[Need],
         cache_root: str = CACHE) -> dict[str, list[Candle]]:
    """Each symbol's warm-up candles from the history layer; a symbol whose history fails is left out (logged)."""
    from history.store import HistoryStore

    store = HistoryStore(source, cfg.resolve_path(cache_root), cfg.session, today=day)  # today's: never cached
    s = cfg.session
    out: dict[str, list[Candle]] = {}
    failed = 0
    last = day if now > ist_epoch(day, s.open) else day - timedelta(days=1)  # before the open: none of today's
    for need in wanted:
        if failed >= GIVE_UP_AFTER:  # the source is down: do not make the start wait on each symbol's retries
            log.warning("%s: no history for strategy %s (%d symbols in a row failed before it)", need.symbol,
                        need.strategy, failed)
            continue
        if need.seconds % MINUTE.seconds:
            log.warning("%s: strategy %s has candles of %d s and history has 1-minute ones: no warm-up",
                        need.symbol, need.strategy, need.seconds)
            continue
        earlier: list[list[Candle]] = []
        today: list[Candle] = []
        try:
            for hd in store.days(need.symbol, cfg.exchange, MINUTE, lookback_start(need, s, day), last):
                if hd.day < day:
                    earlier.append(earlier_candles(hd, need, s))
                else:
                    today = today_candles(hd, need, s, now)
        except Exception as e:  # noqa: BLE001 - no history is a cold start, never a failed start
            failed += 1
            log.warning("%s: no history for strategy %s (%s)", need.symbol, need.strategy, e)
            continue
        failed = 0
        out[need.symbol] = last_of(need, earlier) + today
    return out


def cold(wanted: Sequence[Need], got: dict[str, list[Candle]], now: int, open_ts: int,
         why_none: str = "") -> list[str]:
    """For each strategy that starts cold: what it lacks and when it becomes ready, one line each."""
    out = []
    for need in wanted:
        have = len(got.get(need.symbol, ()))
        if have >= need.candles:
            continue
        base = max(now, open_ts)
        ready = base - base % need.seconds + (need.candles - have) * need.seconds
        out.append(f"{need.symbol}: strategy {need.strategy} starts cold ({why_none or 'history had too few candles'})"
                   f": {have} of the {need.candles} candles of {need.seconds} s it needs; ready at about "
                   f"{to_ist(ready):%H:%M} IST")
    return out


def report(wanted: Sequence[Need], got: dict[str, list[Candle]], day: date, now: int, open_ts: int,
           why_none: str = "") -> None:
    """Say which strategies start warm, and for each that starts cold, when it becomes ready."""
    lines = cold(wanted, got, now, open_ts, why_none)
    for line in lines:
        log.warning("%s", line)
    if wanted:
        log.info("warm-up from history for %s: %d of %d strategies start warm", day, len(wanted) - len(lines),
                 len(wanted))


def saved_path(recording: Path | str) -> Path:
    """Where a recording's warm-up candles are kept: beside it."""
    return Path(f"{recording}.warmup.json")


def save(recording: Path | str, got: dict[str, list[Candle]], now: int, day: date) -> None:
    """Keep the candles this run fed its strategies beside its recording, for a replay of it (written once at
    start, before the first tick is recorded)."""
    doc = {"day": day.isoformat(), "now": now,
           "candles": {sym: [[c.start, c.seconds, c.open, c.high, c.low, c.close, c.volume] for c in cs]
                       for sym, cs in sorted(got.items())}}
    path = saved_path(recording)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, separators=(",", ":")))
    tmp.replace(path)


def load_saved(recording: Path | str, day: date, wanted: Sequence[Need]) -> tuple[dict[str, list[Candle]], int]:
    """The candles a recorded run fed its strategies, for those of `wanted` whose candle length matches, and
    the time they were cut at. FileNotFoundError: none was kept; ValueError: the file is not one of ours."""
    path = saved_path(recording)
    try:
        doc = json.loads(path.read_text())
        if doc["day"] != day.isoformat():
            raise ValueError(f"it is for {doc['day']}, not {day}")
        now = int(doc["now"])
        stored = {str(sym): [Candle(str(sym), int(r[0]), int(r[1]), float(r[2]), float(r[3]), float(r[4]),
                                    float(r[5]), int(r[6])) for r in rows] for sym, rows in doc["candles"].items()}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
        raise ValueError(f"{path} is not a warm-up file written by --record ({e})") from None
    got = {}
    for need in wanted:
        cs = stored.get(need.symbol)
        if cs and all(c.seconds == need.seconds for c in cs):
            got[need.symbol] = cs
    return got, now


def start_time(cfg: Config, live_data: bool, day: date, start_ts: int | None) -> int:
    """When the run starts, for its strategies: the replay's start (its pre-open without --start), or the wall
    clock live. History ends there, and positions opened before it are the strategies' to resume."""
    if live_data:
        return int(time.time())
    return start_ts if start_ts is not None else ist_epoch(day, cfg.session.pre_open)


def gather(cfg: Config, secrets: Secrets, live_data: bool, replay_source: str, day: date,
           start_ts: int | None) -> tuple[list[Need], dict[str, list[Candle]], int, str]:
    """What the strategies want, the candles found for them, the `now` they are cut at (start_time; for a
    recorded file, the recorded run's), and why there are none when there are none."""
    now = start_time(cfg, live_data, day, start_ts)
    wanted = needs(cfg)
    got: dict[str, list[Candle]] = {}
    why = ""
    if wanted:
        try:
            if not live_data and replay_source != "synthetic":
                got, now = _from_recording(replay_source, day, wanted, start_ts, now)
                why = f"{saved_path(replay_source).name} has no candles of its length for it"
            else:
                source, why = source_for(cfg, secrets, live_data, replay_source)
                if source is not None:
                    got = load(cfg, source, day, now, wanted)
        except _NoHistory as e:
            why = str(e)
        except Exception as e:  # noqa: BLE001 - no history (a cache that cannot be written, ...) is a cold start
            log.warning("warm-up from history failed: %s", e)
            why = f"history failed: {e}"
    return wanted, got, now, why


def plan(cfg: Config, secrets: Secrets, live_data: bool, replay_source: str, day: date,
         start_ts: int | None, record: Path | None = None) -> tuple[dict[str, list[Candle]], int]:
    """The warm-up candles by symbol and the `now` they were cut at (gather), said in the log. `record`: this
    run's recording, beside which they are kept."""
    wanted, got, now, why = gather(cfg, secrets, live_data, replay_source, day, start_ts)
    if wanted:
        report(wanted, got, day, now, ist_epoch(day, cfg.session.open), why)
    if record is not None:
        try:
            save(record, got, now, day)
        except OSError as e:  # the recording goes on; its replay will start its strategies cold
            log.error("could not keep the warm-up candles beside the recording (%s): its replay starts cold", e)
    return got, now


class _NoHistory(Exception):
    """Why a replayed file's strategies start cold."""


def _from_recording(source: str, day: date, wanted: Sequence[Need], start_ts: int | None,
                    now: int) -> tuple[dict[str, list[Candle]], int]:
    try:
        got, saved_now = load_saved(source, day, wanted)
    except FileNotFoundError:
        raise _NoHistory(f"the replayed file {source} has no history of earlier days: no "
                         f"{saved_path(source).name} beside it") from None
    except ValueError as e:
        raise _NoHistory(str(e)) from None
    if start_ts is not None and start_ts != saved_now:
        raise _NoHistory(f"--start {to_ist(start_ts):%H:%M} is not the recorded run's start "
                         f"({to_ist(saved_now):%H:%M}), which its warm-up candles end at")
    log.info("warm-up candles of the recorded run from %s", saved_path(source))
    return got, saved_now

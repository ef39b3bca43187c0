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
HOST_SERVER (the paper broker in paper mode). A recorded replay file has no history of its earlier days: its
strategies start cold. A strategy that gets fewer candles than it needs is named in the log with when it
becomes ready.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from core.clock import ist_epoch, to_ist
from core.config import Config, Secrets
from history.intervals import Interval
from history.sources import HistorySource
from strategies import strategy_class
from strategies.base import Candle

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


def load(cfg: Config, source: HistorySource, day: date, now: int, wanted: Sequence[Need],
         cache_root: str = CACHE) -> dict[str, list[Candle]]:
    """Each symbol's warm-up candles from the history layer; a symbol whose history fails is left out (logged)."""
    from history.store import HistoryStore

    store = HistoryStore(source, cfg.resolve_path(cache_root), cfg.session, today=day)  # today's: never cached
    s = cfg.session
    session_s = ist_epoch(day, s.close) - ist_epoch(day, s.open)
    out: dict[str, list[Candle]] = {}
    failed = 0
    for need in wanted:
        if failed >= GIVE_UP_AFTER:  # the source is down: do not make the start wait on each symbol's retries
            log.warning("%s: no history for strategy %s (%d symbols in a row failed before it)", need.symbol,
                        need.strategy, failed)
            continue
        if need.seconds % MINUTE.seconds:
            log.warning("%s: strategy %s has candles of %d s and history has 1-minute ones: no warm-up",
                        need.symbol, need.strategy, need.seconds)
            continue
        first = day - timedelta(days=_lookback_days(need, session_s))
        earlier: list[Candle] = []
        today: list[Candle] = []
        try:
            for hd in store.days(need.symbol, cfg.exchange, MINUTE, first, day):
                lo, hi = ist_epoch(hd.day, s.open), ist_epoch(hd.day, s.close)
                in_session = [c for c in hd.candles if lo <= c.start < hi]
                if hd.day < day:
                    earlier.extend(resample(in_session, need.seconds, hi))
                else:
                    today = resample(in_session, need.seconds, now)
        except Exception as e:  # noqa: BLE001 - no history is a cold start, never a failed start
            failed += 1
            log.warning("%s: no history for strategy %s (%s)", need.symbol, need.strategy, e)
            continue
        failed = 0
        out[need.symbol] = earlier[-need.candles:] + today
    return out


def report(wanted: Sequence[Need], got: dict[str, list[Candle]], day: date, now: int, open_ts: int,
           why_none: str = "") -> None:
    """Say which strategies start warm, and for each that starts cold, when it becomes ready."""
    warm = 0
    for need in wanted:
        have = len(got.get(need.symbol, ()))
        if have >= need.candles:
            warm += 1
            continue
        base = max(now, open_ts)
        ready = base - base % need.seconds + (need.candles - have) * need.seconds
        log.warning("%s: strategy %s starts cold (%s): %d of the %d candles of %d s it needs; ready at about "
                    "%s IST", need.symbol, need.strategy, why_none or "history had too few candles", have,
                    need.candles, need.seconds, f"{to_ist(ready):%H:%M}")
    if wanted:
        log.info("warm-up from history for %s: %d of %d strategies start warm", day, warm, len(wanted))


def plan(cfg: Config, secrets: Secrets, live_data: bool, replay_source: str, day: date,
         start_ts: int | None) -> tuple[dict[str, list[Candle]], int]:
    """The warm-up candles by symbol, and the `now` they were cut at: the replay's start (its pre-open
    without --start), or the wall clock live."""
    if live_data:
        now = int(time.time())
    else:
        now = start_ts if start_ts is not None else ist_epoch(day, cfg.session.pre_open)
    wanted = needs(cfg)
    if not wanted:
        return {}, now
    got: dict[str, list[Candle]] = {}
    try:
        source, why = source_for(cfg, secrets, live_data, replay_source)
        if source is not None:
            got = load(cfg, source, day, now, wanted)
    except Exception as e:  # noqa: BLE001 - no history (a cache that cannot be written, ...) is a cold start
        log.warning("warm-up from history failed: %s", e)
        why = f"history failed: {e}"
    report(wanted, got, day, now, ist_epoch(day, cfg.session.open), why)
    return got, now

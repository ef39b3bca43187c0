"""Each candle backtest day's warm-up from history: the candles the live daemon's start on that day would feed its
strategies (pipeline/warmup.py), taken from the run's own candle source.

Why a rolling tail: a live start reads, for each strategy, the last `warmup_candles` session candles of the
days in its look-back window (pipeline.warmup.lookback_start). A backtest reads every day anyway, so each symbol
keeps the share of its last few days (pipeline.warmup.earlier_candles: the same selection, one definition) and
a day's warm-up is picked from those in its window, as a start on that day picks them. The first day of a run,
or of a block of days in a worker process, first reads the days before it through the run's store (fetched and
cached like the rest), so every block warms from the days before it and the blocks give the sequential run.
Every warm-up candle is of a day before the day traded: nothing of the day itself reaches the strategies early.
"""
from __future__ import annotations

import logging
from datetime import date, timedelta

from core.clock import ist_epoch
from core.config import Config
from history.intervals import Interval
from history.sources import HistoryError
from history.store import HistoryDay, HistoryStore
from market_data_handler import MarketDataHandler
from pipeline import warmup
from strategies.base import Candle

log = logging.getLogger(__name__)

ONE_DAY = timedelta(days=1)


class DayWarmup:
    """The warm-up candles of each day of one run, from the symbol-days the run reads (add) and, before its first
    day, from the days before it (prime)."""

    def __init__(self, cfg: Config, store: HistoryStore, interval: Interval, wanted: list[warmup.Need]):
        self.cfg = cfg
        self.store = store
        self.interval = interval
        self.wanted = wanted
        self.need = {n.symbol: n for n in wanted}
        self.tails: dict[str, list[tuple[date, list[Candle]]]] = {n.symbol: [] for n in wanted}

    @classmethod
    def of(cls, cfg: Config, store: HistoryStore, interval: Interval) -> DayWarmup | None:
        """The run's warm-up, or None when `market_data.warmup_from_history` is off or no strategy wants
        history. A strategy whose candles cannot be built from the run's (a live start builds them from
        1-minute candles) is said once: it starts every day cold."""
        if not cfg.market_data.warmup_from_history:
            return None
        usable = []
        for need in warmup.needs(cfg):
            if need.seconds % warmup.MINUTE.seconds or need.seconds % interval.seconds:
                log.warning("%s: strategy %s has candles of %d s, which cannot be built from the run's %s "
                            "candles (a live start builds them from 1-minute ones): it starts every day cold",
                            need.symbol, need.strategy, need.seconds, interval.name)
                continue
            usable.append(need)
        return cls(cfg, store, interval, usable) if usable else None

    def prime(self, day: date, read_from: date | None = None) -> None:
        """Read the days before `day` in each strategy's look-back window (the run's first day). `read_from`: the
        first day the run itself reads (a block's lead-in) and hands to `add`; only the window's days before it are
        read here, so a block does not read its lead-in twice."""
        last = day - ONE_DAY if read_from is None else min(day, read_from) - ONE_DAY
        for need in self.wanted:
            try:
                for hd in self.store.days(need.symbol, self.cfg.exchange, self.interval,
                                          warmup.lookback_start(need, self.cfg.session, day), last):
                    self.add(hd)
            except HistoryError as e:  # as at a live start: no history is a cold start (report names it)
                log.warning("%s: no history for strategy %s before %s (%s)", need.symbol, need.strategy, day, e)

    def add(self, hd: HistoryDay) -> None:
        """Keep a symbol-day's share for the days after it, whether or not it is traded (a live start reads
        history without the backtest's quality checks); forget the days no later day's window reaches."""
        need = self.need.get(hd.symbol)
        if need is None:
            return
        tail = self.tails[hd.symbol]
        if tail and hd.day <= tail[-1][0]:
            return
        tail.append((hd.day, warmup.earlier_candles(hd, need, self.cfg.session)))
        first = warmup.lookback_start(need, self.cfg.session, hd.day + ONE_DAY)
        while tail[0][0] < first:
            tail.pop(0)

    def candles(self, day: date) -> dict[str, list[Candle]]:
        """Each symbol's warm-up for a start on `day`: only days before it, in its look-back window."""
        out = {}
        for need in self.wanted:
            first = warmup.lookback_start(need, self.cfg.session, day)
            out[need.symbol] = warmup.last_of(need, (cs for d, cs in self.tails[need.symbol] if first <= d < day))
        return out

    def feed(self, mdh: MarketDataHandler, day: date) -> int:
        """Warm the day's strategies before its first tick, cut at the replay's start (the pre-open), and say
        which start cold, in the live start's words; how many did."""
        got = self.candles(day)
        now = warmup.start_time(self.cfg, False, day, None)
        open_ts = ist_epoch(day, self.cfg.session.open)
        warmup.report(self.wanted, got, day, now, open_ts)
        mdh.warm_up(got, now)
        return sum(1 for n in self.wanted if len(got[n.symbol]) < n.candles)

"""The NSE equity day in IST: when the market is open, when entries stop, when MIS positions are squared off.
The same rules apply to wall time (live) and to tick time (replay)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from core.clock import ist_date, ist_epoch
from core.config import SessionConfig


@dataclass(frozen=True)
class SessionTimes:
    """Epoch seconds of one day's session boundaries."""

    day: date
    pre_open: int
    open: int
    entry_cutoff: int
    square_off: int
    close: int

    @classmethod
    def for_day(cls, cfg: SessionConfig, day: date) -> SessionTimes:
        return cls(day, ist_epoch(day, cfg.pre_open), ist_epoch(day, cfg.open), ist_epoch(day, cfg.entry_cutoff),
                   ist_epoch(day, cfg.square_off), ist_epoch(day, cfg.close))


_cache: dict[tuple[int, date], SessionTimes] = {}


def session_for(cfg: SessionConfig, epoch: float) -> SessionTimes:
    day = ist_date(epoch)
    key = (id(cfg), day)
    st = _cache.get(key)
    if st is None:
        st = _cache[key] = SessionTimes.for_day(cfg, day)
    return st


def in_market_hours(cfg: SessionConfig, epoch: float) -> bool:
    st = session_for(cfg, epoch)
    return ist_date(epoch).weekday() < 5 and st.open <= epoch < st.close


def entries_allowed(cfg: SessionConfig, epoch: float) -> bool:
    st = session_for(cfg, epoch)
    return st.open <= epoch < st.entry_cutoff

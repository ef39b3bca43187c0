"""The interface every strategy implements (the seed's `run(tick)`, `_discard_signal`,
`_reset_position_tracking`), plus parameter validation and candle support.

A strategy instance belongs to one symbol in one worker process. It must be deterministic: the same
ticks in the same order give the same signals, whatever the wall clock says. It never sees capital or
order state; the TradeManager decides what is traded.
"""
from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time as dtime
from typing import Any, ClassVar, Protocol

from core.enums import PositionSide, SignalType
from core.types import Signal, Tick


class SessionHours(Protocol):
    """The session's times of day (IST) a strategy plans by; core.config.SessionConfig is one.

    Declared here so strategies depend on no configuration module (the config imports the strategy
    registry to check kinds and params)."""

    @property
    def pre_open(self) -> dtime: ...
    @property
    def open(self) -> dtime: ...
    @property
    def entry_cutoff(self) -> dtime: ...
    @property
    def square_off(self) -> dtime: ...
    @property
    def close(self) -> dtime: ...


@dataclass(frozen=True, slots=True)
class Candle:
    """OHLCV over [start, start + seconds), epoch seconds; volume is traded quantity in the interval."""

    symbol: str
    start: int
    seconds: int
    open: float
    high: float
    low: float
    close: float
    volume: int


def tick_time_and_price(tick: Tick) -> tuple[int, float] | None:
    """The tick's feed time (exch_feed_time, else last_traded_time) and LTP; None if either is missing."""
    t = tick.exch_feed_time
    if t is None:
        t = tick.last_traded_time
    price = tick.ltp
    if t is None or price is None:
        return None
    return t, price


class Strategy(ABC):
    kind: ClassVar[str]
    Params: ClassVar[type]  # a frozen dataclass whose fields (with defaults) are the strategy's parameters

    def __init__(self, symbol: str, name: str, params: Mapping[str, Any], session: SessionHours):
        self.symbol = symbol
        self.name = name
        self.params = self.Params(**params)
        self.session = session
        self.position: PositionSide | None = None  # what the strategy believes it holds
        self.pending: Signal | None = None          # last signal emitted, until the next one

    # ---- the seed's interface
    def run(self, tick: Tick) -> Signal | None:
        """Called for every valid tick of this symbol, in time order."""
        signal = self.on_tick(tick)
        if signal is not None:
            self.pending = signal
        return signal

    def on_candle(self, candle: Candle) -> Signal | None:
        """Called when a candle of `candle_seconds` closes, before the tick that closed it is run."""
        return None

    @abstractmethod
    def on_tick(self, tick: Tick) -> Signal | None:
        ...

    @property
    def candle_seconds(self) -> int | None:
        """Aggregation resolution this strategy wants, or None for ticks only."""
        return None

    def _discard_signal(self) -> None:
        """Forget the last emitted signal (it was not acted on)."""
        self.pending = None

    def _reset_position_tracking(self) -> None:
        """Believe we are flat again: an entry failed, or the TradeManager force-exited the symbol."""
        self.position = None

    # ---- helpers for subclasses
    def signal(self, tick_time: int, price: float, type_: SignalType, side: PositionSide, **kw: Any) -> Signal:
        return Signal(symbol=self.symbol, time=tick_time, price=price, type=type_, current_position=side,
                      strategy=self.name, **kw)

    # ---- parameters
    @classmethod
    def validate_params(cls, params: Mapping[str, Any]) -> list[str]:
        """Problems as "name: value is not allowed -- why"; an empty list means valid."""
        problems = []
        fields = {f.name: f for f in dataclasses.fields(cls.Params)}
        for k, v in params.items():
            f = fields.get(k)
            if f is None:
                problems.append(f"{k}: unknown parameter -- allowed are {', '.join(fields)}")
                continue
            want = f.type if not isinstance(f.type, str) else {"int": int, "float": float, "bool": bool}.get(f.type)
            ok = (isinstance(v, bool) if want is bool else
                  isinstance(v, int) and not isinstance(v, bool) if want is int else
                  isinstance(v, (int, float)) and not isinstance(v, bool) if want is float else True)
            if not ok:
                problems.append(f"{k}: {v!r} is not allowed -- expected {getattr(want, '__name__', want)}")
        if not problems:
            try:
                problems.extend(cls.check_params(cls.Params(**params)))
            except (TypeError, ValueError) as e:
                problems.append(f"{e}")
        return problems

    @classmethod
    def check_params(cls, p: Any) -> list[str]:
        """Rules across parameters; override to add them."""
        return []

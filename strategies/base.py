"""The contract between the framework and a strategy: the base class every strategy derives from.

A strategy instance belongs to one symbol in one worker process. It must be deterministic: the same
ticks in the same order give the same signals, whatever the wall clock says. It never sees capital or
order state; the TradeManager decides what is traded.

What a strategy implements (the framework calls these; none starts with an underscore):
- `Params`: a frozen dataclass whose fields (with defaults) are its parameters; `check_params` adds rules
  across them. `--check` validates a config's params with `validate_params` before anything runs.
- `on_tick(tick)`: every valid tick of the symbol, in time order; return a Signal to emit it, else None.
- `candle_seconds` and `on_candle(candle)`: candles of that many seconds, each delivered when it closes,
  just before the tick that closed it is run (None: ticks only).
- `state_dict()` / `load_state(state)`: what it remembers, as JSON-safe data, saved while it runs and loaded
  into a fresh instance when a worker restarts mid-day; `load_state` raises ValueError for state it cannot use
  (the strategy then starts fresh).
- `warmup_candles` and `warm_up(candles, now)`: how many candles of `candle_seconds` it needs before it can
  decide, and taking them from history (previous days' session candles, then the day's own up to `now`) before
  the first tick, at start and at a restart mid-day (pipeline/warmup.py); nothing is emitted from them.
- `resume_position(held, now)`: the books hold an open position for the symbol from before this run started (a
  daemon restarted mid-day): take it up, so the strategy's own exits manage it. Called at most once, after
  warm_up and before the first tick; never for a position the run's own ticks will open (a replay from the open).
- `absorb_quiet(run)` (optional, the backtest's bulk fold): how many of a day's next candles it can take in bulk,
  flat and acting on none of them, reaching exactly the state running their ticks one by one gives.
- `held_span(run)` / `take_held(run, m)` (optional, the backtest's fold while a position is open): how many of a
  day's next candles it can prove act on nothing while it holds (no exit, no signal), then taking the first m of
  those candles' closes once the runner knows how far the position stayed untouched.
- `discard_signal()` / `reset_position_tracking()`: the framework's feedback. The last signal was not acted on
  (an entry failed), and the symbol is flat again (entry failed, or the TradeManager force-exited it).
  Override to forget more, and call super().

What it calls: `self.signal(...)` builds a Signal; returning it from on_tick or on_candle emits it (one per
tick: a tick's own signal wins over its candle's). `self.position` is what it believes it holds, its own to
keep. strategies.candle_strategy.CandleStrategy does most of this for a candle-driven strategy (stops, targets,
the day, state): a subclass writes make_indicators and read_candle (`python driver.py strategy new` writes one).

An exception raised by a strategy is contained (market_data_handler): that symbol's strategy is off for the
day, its position stays managed and squared off, every other symbol carries on.
"""
from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import time as dtime
from typing import Any, ClassVar, Protocol

import numpy as np

from core.enums import PositionSide, SignalType
from core.types import Signal, Tick


class CandleArrays(Protocol):
    """Consecutive candles of one symbol as numpy columns (history.frames.CandleColumns is one): what
    Strategy.absorb_quiet reads, so a stretch of candles costs array operations rather than a call per tick."""

    @property
    def start(self) -> Any: ...   # int64 epoch seconds
    @property
    def open(self) -> Any: ...    # float64, like high, low and close
    @property
    def high(self) -> Any: ...
    @property
    def low(self) -> Any: ...
    @property
    def close(self) -> Any: ...
    @property
    def volume(self) -> Any: ...  # int64


def reach_after_first(run: CandleArrays, after: int = 0) -> tuple[Any, Any]:
    """The highest and lowest price each candle after run[after] reaches (of open, high, low, close, so a candle
    whose high/low disagree with its open/close is still judged by every price it shows): what a stop, a
    target or a range is tested against when a stretch is folded."""
    k = after + 1
    o, h, lw, c = run.open[k:], run.high[k:], run.low[k:], run.close[k:]
    return np.maximum(np.maximum(o, h), np.maximum(lw, c)), np.minimum(np.minimum(o, h), np.minimum(lw, c))


def leading(ok: Any) -> int:
    """How many of a boolean array's values are True before its first False: the candles after run[0] a fold
    may take, given the test each must pass."""
    bad = np.flatnonzero(~ok)
    return int(bad[0]) if len(bad) else len(ok)


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


@dataclass(frozen=True, slots=True)
class HeldPosition:
    """An open position the books (execution/ledger.py, the one owner of positions) hold for a strategy's symbol
    when a run starts: what `Strategy.resume_position` is told. Prices are the entry fill's average and the levels
    the entry signal asked for (None: it gave none, e.g. a position adopted from the broker). `remaining` below
    `quantity`: a take-profit already closed part of it. `entry_note`: the entry signal's note (a rules strategy
    reads which rule opened it)."""

    side: PositionSide
    entry_price: float
    entry_time: int
    quantity: int
    remaining: int
    stop_loss: float | None = None
    take_profit_price: float | None = None
    entry_note: str = ""


@dataclass(frozen=True)
class NoParams:
    """The parameters of a strategy that takes none."""


class Strategy(ABC):
    kind: ClassVar[str]        # a name for the class, saved with its state; defaults to the class name
    Params: ClassVar[type] = NoParams  # a frozen dataclass whose fields (with defaults) are the parameters

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if "kind" not in cls.__dict__:
            cls.kind = cls.__name__

    def __init__(self, symbol: str, name: str, params: Mapping[str, Any], session: SessionHours):
        self.symbol = symbol
        self.name = name
        self.params = self.Params(**params)
        self.session = session
        self.position: PositionSide | None = None  # what the strategy believes it holds
        self.pending: Signal | None = None          # last signal emitted, until the next one

    # ---- called by the framework
    def run(self, tick: Tick) -> Signal | None:
        """Called for every valid tick of this symbol, in time order: on_tick, remembering what it emitted."""
        signal = self.on_tick(tick)
        if signal is not None:
            self.pending = signal
        return signal

    def quiet_at(self, t: int) -> bool:
        """Whether a tick at `t` that closes none of this strategy's candles would change nothing in it and
        signal nothing, whatever its price: the backtest then folds such ticks into the candle without running
        the strategy (backtest.runner). False unless a strategy proves it; this default never does."""
        return False

    def absorb_quiet(self, run: CandleArrays, seconds: int) -> int:
        """The backtest's bulk fold (backtest.day_loop): `run` is the symbol's candles of `seconds` from the open
        one (run[0], whose ticks have all been seen: the next tick closes it) to the end of the day. Return n in
        0 .. len(run) - 1, having taken, exactly as running them would: for a strategy with candles of `seconds`,
        on_candle(run[j]) for j < n, and the ticks of run[1..n] (any times within each candle, any prices within
        its low..high), none of which may signal or depend on anything but this strategy's state. The runner then
        skips those ticks. Only while flat with nothing pending; 0 (the default): nothing taken, every tick runs."""
        return 0

    def held_span(self, run: CandleArrays, seconds: int) -> int:
        """The backtest's fold while a position is open (backtest.day_loop, MarketDataHandler.fold_held): `run` as
        for absorb_quiet. Return n in 0 .. len(run) - 1 such that, holding the position it holds now, on_candle
        (run[j]) for j < n and the ticks of run[1..n] (any times within each candle, any prices within its
        low..high) signal nothing and change nothing but what take_held takes. Changes nothing itself: the
        runner skips those ticks' strategy calls while the position stays untouched (a forced exit, a cap or a
        halt ends the skip at that tick) and then calls take_held with how many candles closed meanwhile.
        0 (the default): nothing proven, every tick runs."""
        return 0

    def take_held(self, run: CandleArrays, seconds: int, m: int) -> None:
        """Take on_candle(run[j]) for j < m, m at most what held_span proved, exactly as calling it would have
        (before or after a forced exit: what it takes must not depend on the position). This default takes
        nothing (a strategy without candles has nothing to take)."""
        return None

    def on_candle(self, candle: Candle) -> Signal | None:
        """Called when a candle of `candle_seconds` closes, before the tick that closed it is run."""
        return None

    @abstractmethod
    def on_tick(self, tick: Tick) -> Signal | None:
        """Decide on this tick: the Signal to emit (built with self.signal), or None."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything this strategy remembers, JSON-safe, so that a restarted worker continues where it was."""

    @abstractmethod
    def load_state(self, state: Mapping[str, Any]) -> None:
        """Rebuild from state_dict() in a fresh instance; ValueError if the state does not fit (start fresh)."""

    @property
    def candle_seconds(self) -> int | None:
        """Aggregation resolution this strategy wants, or None for ticks only."""
        return None

    @property
    def warmup_candles(self) -> int:
        """Candles of `candle_seconds` this strategy needs from history before the first tick (0: none)."""
        return 0

    def warm_up(self, candles: Sequence[Candle], now: int) -> None:
        """Take history before the first tick: closed candles in time order, the last `warmup_candles` of earlier
        days' sessions, then today's that ended by `now` (epoch s; the day is now's IST date). No signal comes of
        them. This default ignores them."""
        return None

    def resume_position(self, held: HeldPosition, now: int) -> None:
        """Take up a position opened before this run started (epoch `now`, on its IST day), so that this
        strategy's own exit rules manage it, as they would have without the restart. Called after warm_up and
        before the first tick. This default believes it holds the side; a strategy with stops, targets or
        per-day state overrides it (and may call super())."""
        self.position = held.side

    def discard_signal(self) -> None:
        """Forget the last emitted signal (it was not acted on)."""
        self.pending = None

    def reset_position_tracking(self) -> None:
        """Believe we are flat again: an entry failed, or the TradeManager force-exited the symbol."""
        self.position = None

    # ---- called by a strategy
    def signal(self, tick_time: int, price: float, type_: SignalType, side: PositionSide, **kw: Any) -> Signal:
        """A signal of this strategy on this symbol; `side` is the position entered or exited. Keywords are the
        Signal's optional fields (stop_loss, take_profit_price, close_fraction, note, ...)."""
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

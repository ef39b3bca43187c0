"""Moving average crossover on candles, with an ATR stop.

Rules (times IST, compared as epoch ints computed once per day):
- Indicators use only candles that start within today's session [session.open, session.close) and
  are reset at each new IST date: the overnight gap and the pre-open auction would otherwise dominate
  both the averages and the ATR. So each day warms up afresh (with 60 s candles, `slow` minutes).
- Simple moving averages of candle closes (SMA, not EMA: exact over a fixed window, no seeding choice,
  so a restored strategy and a test can recompute them bit for bit). ATR is Wilder's: the first value
  is the mean of the first `atr_period` true ranges (the day's first candle uses high - low), then
  ATR = (ATR_prev x (n - 1) + TR) / n.
- A cross is a change of sign of fast - slow (ignoring candles where they are equal) between two warm
  candles: fewer than `slow` candles or a not-yet-ready ATR gives no signal.
- A cross is acted on by the tick that closed the candle (the worker calls on_candle just before
  run(tick)); so a signal carries that tick's time and price. Long stop = candle close - atr_multiple x
  ATR, short stop = close + atr_multiple x ATR, fixed for the trade. If the tick is already through
  that stop the cross is dropped. An unused cross lapses when the next candle closes.
- In a position: first tick at/after exit_at exits ("end of day"); a tick at/through the stop exits;
  an opposite cross exits ("reversal"), and since that cross is still pending, the next tick can enter
  the other way. No entries before session.open or at/after session.entry_cutoff / exit_at.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from core.enums import PositionSide, SignalType
from core.types import Signal, Tick
from strategies.base import Candle, SessionHours, Strategy, tick_time_and_price
from strategies.candles import TradingDay, hhmm_problem, parse_hhmm, side_from_state

log = logging.getLogger(__name__)

_LONG, _SHORT = PositionSide.LONG, PositionSide.SHORT
_ENTRY, _EXIT = SignalType.ENTRY, SignalType.EXIT
_STATE_VERSION = 1


@dataclass(frozen=True)
class MacParams:
    candle_seconds: int = 60
    fast: int = 9
    slow: int = 21
    atr_period: int = 14
    atr_multiple: float = 2.0
    exit_at: str = "15:05"


class MovingAverageCrossover(Strategy):
    kind = "ma_crossover"
    Params = MacParams

    def __init__(self, symbol: str, name: str, params: Mapping[str, Any], session: SessionHours):
        problems = self.validate_params(params)
        if problems:
            raise ValueError("; ".join(problems))
        super().__init__(symbol, name, params, session)
        self._exit_time = parse_hhmm(self.params.exit_at)
        self._day = TradingDay()
        self._open = self._close_ts = self._no_entry_after = self._exit_ts = 0
        self._reset_indicators()
        self._clear_position()

    @property
    def candle_seconds(self) -> int | None:
        return self.params.candle_seconds

    # ------------------------------------------------------------------ parameters
    @classmethod
    def check_params(cls, p: MacParams) -> list[str]:
        out = hhmm_problem("exit_at", p.exit_at)
        if not 0 < p.candle_seconds <= 3600 or 3600 % p.candle_seconds:
            out.append(f"candle_seconds: {p.candle_seconds!r} is not allowed -- must divide 3600 "
                       "(e.g. 15, 60, 300, 900) so candles line up with the clock")
        if p.fast < 1:
            out.append(f"fast: {p.fast!r} is not allowed -- must be at least 1")
        if p.slow <= p.fast:
            out.append(f"slow: {p.slow!r} is not allowed -- must be greater than fast ({p.fast})")
        if p.atr_period < 1:
            out.append(f"atr_period: {p.atr_period!r} is not allowed -- must be at least 1")
        if not p.atr_multiple > 0:
            out.append(f"atr_multiple: {p.atr_multiple!r} is not allowed -- must be greater than 0")
        return out

    # ------------------------------------------------------------------ state
    def _reset_indicators(self) -> None:
        self._closes: list[float] = []     # last `slow` closes
        self._prev_close: float | None = None
        self._tr_seed: list[float] = []    # true ranges until the first ATR
        self._atr: float | None = None
        self._last_sign = 0                # sign of fast - slow at the last warm, non-equal candle
        self._cross = 0                    # +1 / -1: a cross waiting for the next tick; 0: none
        self._cross_stop = 0.0
        self._cross_note = ""

    def _clear_position(self) -> None:
        self.position = None
        self._entry_price = 0.0
        self._entry_time = 0
        self._stop = 0.0

    def _set_day_epochs(self) -> None:
        day, s = self._day, self.session
        self._open = day.at(s.open)
        self._close_ts = day.at(s.close)
        self._exit_ts = day.at(self._exit_time)
        self._no_entry_after = min(day.at(s.entry_cutoff), self._exit_ts)

    def _new_day(self, t: int, price: float) -> Signal | None:
        stale = None
        if self.position is not None:
            stale = self.signal(t, price, _EXIT, self.position,
                                note="end of day: no tick came between exit_at and the end of the day")
        self._day.move_to(t)
        self._set_day_epochs()
        self._reset_indicators()
        self._clear_position()
        return stale

    def reset_position_tracking(self) -> None:
        """Flat again (entry failed or force-exited): no exits for the old position; a new entry needs a
        new cross."""
        self._clear_position()

    def discard_signal(self) -> None:
        """A discarded entry was never a position: believe flat. Discarded exits keep their effect (the
        TradeManager retries incomplete exits)."""
        sig = self.pending
        super().discard_signal()
        if (sig is not None and sig.type is _ENTRY and self.position is not None
                and sig.time == self._entry_time):
            self._clear_position()

    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "version": _STATE_VERSION, "params": asdict(self.params),
            "day": self._day.iso(), "closes": list(self._closes), "prev_close": self._prev_close,
            "tr_seed": list(self._tr_seed), "atr": self._atr, "last_sign": self._last_sign,
            "cross": self._cross, "cross_stop": self._cross_stop, "cross_note": self._cross_note,
            "position": None if self.position is None else self.position.value,
            "entry_price": self._entry_price, "entry_time": self._entry_time, "stop": self._stop,
            "pending": None if self.pending is None else self.pending.to_state(),
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Rebuild from state_dict(); refuses state saved by another kind, version or parameter set."""
        if state.get("kind") != self.kind or state.get("version") != _STATE_VERSION:
            raise ValueError(f"state: kind {state.get('kind')!r} version {state.get('version')!r} is not allowed "
                             f"-- expected {self.kind!r} version {_STATE_VERSION}")
        if state.get("params") != asdict(self.params):
            raise ValueError("state: saved with different params -- start this strategy without saved state")
        self._day.restore(state["day"])
        if self._day.date is not None:
            self._set_day_epochs()
        self._closes = [float(x) for x in state["closes"]]
        self._prev_close = state["prev_close"]
        self._tr_seed = [float(x) for x in state["tr_seed"]]
        self._atr = state["atr"]
        self._last_sign, self._cross = int(state["last_sign"]), int(state["cross"])
        self._cross_stop, self._cross_note = float(state["cross_stop"]), str(state["cross_note"])
        self.position = side_from_state(state["position"])
        self._entry_price, self._entry_time = float(state["entry_price"]), int(state["entry_time"])
        self._stop = float(state["stop"])
        self.pending = None if state["pending"] is None else Signal.from_state(state["pending"])

    # ------------------------------------------------------------------ candles
    def on_candle(self, candle: Candle) -> Signal | None:
        """Update the indicators; a cross is remembered and acted on by the next run(tick)."""
        if not self._open <= candle.start < self._close_ts:
            return None  # outside today's session (pre-open, closing session, or another day)
        p = self.params
        self._cross = 0
        close, high, low = candle.close, candle.high, candle.low
        closes = self._closes
        closes.append(close)
        if len(closes) > p.slow:
            del closes[0]
        pc = self._prev_close
        tr = high - low if pc is None else max(high - low, abs(high - pc), abs(low - pc))
        self._prev_close = close
        n = p.atr_period
        if self._atr is None:
            self._tr_seed.append(tr)
            if len(self._tr_seed) == n:
                self._atr = sum(self._tr_seed) / n
                self._tr_seed = []
        else:
            self._atr = (self._atr * (n - 1) + tr) / n
        if len(closes) < p.slow:
            return None
        fast_ma = sum(closes[-p.fast:]) / p.fast
        slow_ma = sum(closes) / p.slow
        sign = 1 if fast_ma > slow_ma else -1 if fast_ma < slow_ma else 0
        if sign == 0:
            return None
        prev, self._last_sign = self._last_sign, sign
        if prev == 0 or sign == prev or self._atr is None:
            return None
        atr = self._atr
        self._cross = sign
        self._cross_stop = close - sign * p.atr_multiple * atr
        self._cross_note = (f"fast SMA({p.fast}) {fast_ma:.4f} crossed {'above' if sign > 0 else 'below'} "
                            f"slow SMA({p.slow}) {slow_ma:.4f} on the candle closing at {close}; "
                            f"ATR({n}) {atr:.4f}")
        return None

    # ------------------------------------------------------------------ ticks
    def on_tick(self, tick: Tick) -> Signal | None:
        tp = tick_time_and_price(tick)
        if tp is None:
            return None
        t, price = tp
        day = self._day
        if not day.start <= t < day.end:
            if t < day.start:
                return None  # a tick from an earlier day, out of order
            return self._new_day(t, price)  # indicators were just reset: nothing else can happen

        side = self.position
        if side is not None:
            if t >= self._exit_ts:
                self._clear_position()
                return self.signal(t, price, _EXIT, side, note="end of day")
            stop = self._stop
            if (price <= stop) if side is _LONG else (price >= stop):
                self._clear_position()
                return self.signal(t, price, _EXIT, side, stop_loss=stop,
                                   note=f"stop hit at {price} (stop {stop})")
            cross = self._cross
            if cross and (cross < 0) == (side is _LONG):
                self._clear_position()  # the cross stays pending: the next tick may enter the other way
                return self.signal(t, price, _EXIT, side, note=f"reversal: {self._cross_note}")
            return None

        cross = self._cross
        if not cross or t < self._open or t >= self._no_entry_after:
            return None
        self._cross = 0
        stop = self._cross_stop
        if cross > 0:
            if price <= stop:
                return None
            side = _LONG
        else:
            if price >= stop:
                return None
            side = _SHORT
        self.position = side
        self._entry_price, self._entry_time, self._stop = price, t, stop
        log.debug("%s %s entry %s at %s stop %s", self.name, self.symbol, side, price, stop)
        return self.signal(t, price, _ENTRY, side, stop_loss=stop,
                           note=f"{self._cross_note}; stop {stop:.4f}", extra={"atr": self._atr})

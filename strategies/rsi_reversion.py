"""RSI mean reversion on candles: buy a market coming back up out of oversold, sell one coming back down out of
overbought, and get out when RSI is back at the middle (or at the ATR stop / target).

Rules, on top of strategies/candle_strategy.py (day, ATR stop and target, acting on the next tick):
- RSI is Wilder's over `period` candle closes (strategies/indicators.py; 50 when the window is flat).
- Long when RSI crosses up through `oversold`: the previous candle's RSI was below it and this one's is at
  or above it. Short when RSI crosses down through `overbought` (previous above, this one at or below).
- A long exits at the first candle whose RSI is at or above `exit_level`, a short at or below it.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.enums import PositionSide
from strategies.base import Candle, CandleArrays, leading
from strategies.candle_fold import Series, carried, column, last_known
from strategies.candle_strategy import CandleStrategy, common_param_problems
from strategies.indicators import Indicator, Rsi


@dataclass(frozen=True)
class RsiParams:
    candle_seconds: int = 60
    period: int = 14
    oversold: float = 30.0
    overbought: float = 70.0
    exit_level: float = 50.0
    atr_period: int = 14
    atr_multiple: float = 2.0
    take_profit_atr: float = 0.0
    exit_at: str = "15:05"


class RsiReversion(CandleStrategy):
    kind = "rsi"
    Params = RsiParams

    @classmethod
    def check_params(cls, p: RsiParams) -> list[str]:
        out = common_param_problems(p)
        if p.period < 2:
            out.append(f"period: {p.period!r} is not allowed -- must be at least 2")
        if not 0 < p.oversold < p.exit_level < p.overbought < 100:
            out.append(f"exit_level: {p.exit_level!r} is not allowed -- need 0 < oversold ({p.oversold}) < "
                       f"exit_level < overbought ({p.overbought}) < 100")
        return out

    def make_indicators(self) -> dict[str, Indicator[Any]]:
        self._rsi = Rsi(self.params.period)
        return {"rsi": self._rsi}

    def reset_day(self) -> None:
        self._prev_rsi: float | None = None

    def extra_state(self) -> dict[str, Any]:
        return {"prev_rsi": self._prev_rsi}

    def load_extra(self, state: Mapping[str, Any]) -> None:
        v = state["prev_rsi"]
        self._prev_rsi = None if v is None else float(v)

    def fold_read(self, run: CandleArrays, a: int, b: int, values: Series, extra: dict[str, Any],
                  side: PositionSide | None) -> tuple[int, dict[str, Any]] | None:
        """read_candle's tests over the RSI each candle would give (computed by the indicator itself, so bit
        for bit): an entry wherever the previous known RSI and this one cross oversold upward or overbought
        downward; holding, an exit wherever the RSI is at or past exit_level toward the side's exit."""
        cls = type(self)
        if (cls.read_candle is not RsiReversion.read_candle or cls.extra_state is not RsiReversion.extra_state
                or cls.load_extra is not RsiReversion.load_extra):
            return None
        series = values["rsi"]
        rsi, has = column(series)
        prev = carried(rsi, has, extra["prev_rsi"])
        p = self.params
        act = has & (((prev < p.oversold) & (p.oversold <= rsi)) | ((prev > p.overbought) & (p.overbought >= rsi)))
        if side is PositionSide.LONG:
            act |= has & (rsi >= p.exit_level)
        elif side is PositionSide.SHORT:
            act |= has & (rsi <= p.exit_level)
        n = leading(~act)
        return n, {"prev_rsi": last_known(series, has, n, extra["prev_rsi"])}

    def read_candle(self, candle: Candle) -> tuple[int, str, str]:
        rsi = self._rsi.update(candle)
        if rsi is None:
            return 0, "", ""
        p = self.params
        prev, self._prev_rsi = self._prev_rsi, rsi
        side = self.position
        exit_note = ""
        if side is PositionSide.LONG and rsi >= p.exit_level:
            exit_note = f"RSI({p.period}) {rsi:.2f} back up at exit_level {p.exit_level:g}"
        elif side is PositionSide.SHORT and rsi <= p.exit_level:
            exit_note = f"RSI({p.period}) {rsi:.2f} back down at exit_level {p.exit_level:g}"
        if prev is None:
            return 0, "", exit_note
        if prev < p.oversold <= rsi:
            return 1, (f"RSI({p.period}) crossed up through oversold {p.oversold:g} ({prev:.2f} -> {rsi:.2f}) "
                       f"on the candle closing at {candle.close}"), exit_note
        if prev > p.overbought >= rsi:
            return -1, (f"RSI({p.period}) crossed down through overbought {p.overbought:g} ({prev:.2f} -> "
                        f"{rsi:.2f}) on the candle closing at {candle.close}"), exit_note
        return 0, "", exit_note

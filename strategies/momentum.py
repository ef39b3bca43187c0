"""Momentum on candles: ride a move whose rate of change passes a threshold in the direction of the trend.

Rules, on top of strategies/candle_strategy.py (day, ATR stop and target, acting on the next tick):
- ROC = 100 x (close - close `roc_period` candles ago) / that close; the trend is the candle close against
  its EMA(`ema_period`) (both from strategies/indicators.py).
- Long when the candle makes "ROC above +threshold_pct and close above the EMA" true after a warm candle
  where it was not; short likewise for "ROC below -threshold_pct and close below the EMA". A condition that
  stays true does not enter again (a stop-out is not re-entered on the next candle).
- A position exits at the first candle that closes on the other side of the EMA (the trend it rode is gone).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.enums import PositionSide
from strategies.base import Candle, CandleArrays, leading
from strategies.candle_fold import Series, carried, column
from strategies.candle_strategy import CandleStrategy, common_param_problems
from strategies.indicators import Ema, Indicator, RateOfChange


@dataclass(frozen=True)
class MomentumParams:
    candle_seconds: int = 60
    roc_period: int = 10
    threshold_pct: float = 0.5
    ema_period: int = 50
    atr_period: int = 14
    atr_multiple: float = 2.0
    take_profit_atr: float = 0.0
    exit_at: str = "15:05"


class Momentum(CandleStrategy):
    kind = "momentum"
    Params = MomentumParams

    @classmethod
    def check_params(cls, p: MomentumParams) -> list[str]:
        out = common_param_problems(p)
        if p.roc_period < 1:
            out.append(f"roc_period: {p.roc_period!r} is not allowed -- must be at least 1")
        if p.ema_period < 1:
            out.append(f"ema_period: {p.ema_period!r} is not allowed -- must be at least 1")
        if not p.threshold_pct > 0:
            out.append(f"threshold_pct: {p.threshold_pct!r} is not allowed -- must be greater than 0")
        return out

    def make_indicators(self) -> dict[str, Indicator[Any]]:
        self._roc = RateOfChange(self.params.roc_period)
        self._ema = Ema(self.params.ema_period)
        return {"roc": self._roc, "ema": self._ema}

    def reset_day(self) -> None:
        self._prev_want: int | None = None   # the condition at the last warm candle; None: none yet

    def extra_state(self) -> dict[str, Any]:
        return {"prev_want": self._prev_want}

    def load_extra(self, state: Mapping[str, Any]) -> None:
        v = state["prev_want"]
        self._prev_want = None if v is None else int(v)

    def fold_read(self, run: CandleArrays, a: int, b: int, values: Series, extra: dict[str, Any],
                  side: PositionSide | None) -> tuple[int, dict[str, Any]] | None:
        """read_candle's tests over the ROC and EMA each candle would give (computed by the indicators themselves,
        so bit for bit) and the closes: the condition (+1 / -1 / 0) on every warm candle, an entry wherever it is
        nonzero and differs from the previous warm candle's; holding, an exit wherever the close is on the other
        side of the EMA."""
        cls = type(self)
        if (cls.read_candle is not Momentum.read_candle or cls.extra_state is not Momentum.extra_state
                or cls.load_extra is not Momentum.load_extra):
            return None
        roc, roc_has = column(values["roc"])
        ema, ema_has = column(values["ema"])
        close = run.close[a:b]
        warm = roc_has & ema_has
        thr = self.params.threshold_pct
        want = np.where(warm & (roc > thr) & (close > ema), 1.0,
                        np.where(warm & (roc < -thr) & (close < ema), -1.0, 0.0))
        first = extra["prev_want"]
        prev = carried(want, warm, first)
        act = warm & ~np.isnan(prev) & (want != 0) & (want != prev)
        if side is PositionSide.LONG:
            act |= warm & (close < ema)
        elif side is PositionSide.SHORT:
            act |= warm & (close > ema)
        n = leading(~act)
        known = np.flatnonzero(warm[:n])
        return n, {"prev_want": int(want[known[-1]]) if len(known) else first}

    def read_candle(self, candle: Candle) -> tuple[int, str, str]:
        roc = self._roc.update(candle)
        ema = self._ema.update(candle)
        if roc is None or ema is None:
            return 0, "", ""
        p = self.params
        close = candle.close
        want = (1 if roc > p.threshold_pct and close > ema else
                -1 if roc < -p.threshold_pct and close < ema else 0)
        prev, self._prev_want = self._prev_want, want
        side = self.position
        exit_note = ""
        if side is PositionSide.LONG and close < ema:
            exit_note = f"trend lost: close {close} below EMA({p.ema_period}) {ema:.4f}"
        elif side is PositionSide.SHORT and close > ema:
            exit_note = f"trend lost: close {close} above EMA({p.ema_period}) {ema:.4f}"
        if prev is None or want == 0 or want == prev:
            return 0, "", exit_note
        word = "above +" if want > 0 else "below -"
        note = (f"ROC({p.roc_period}) {roc:.3f}% {word}{p.threshold_pct:g}% with close {close} "
                f"{'above' if want > 0 else 'below'} EMA({p.ema_period}) {ema:.4f}")
        return want, note, exit_note

"""Moving average crossover on candles, with an ATR stop, on strategies/candle_strategy.py.

Rules, on top of CandleStrategy (the day, session candles only, the ATR stop, acting on the next tick):
- Simple moving averages of candle closes, fast over `fast` and slow over `slow` candles
  (strategies/indicators.py's Sma: the window sum is exact, so two averages of the same prices are exactly
  equal and a restored strategy or a test recomputes them bit for bit).
- A cross is a change of sign of fast - slow (ignoring candles where they are exactly equal) between two
  candles where both averages have a value; it wants an entry that way (long above, short below), with the
  stop at the candle close -/+ atr_multiple x ATR (no entry before the ATR is ready). No target.
- In a position, an opposite cross exits ("reversal"); that cross's entry is still wanted, so the next tick
  can enter the other way.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from core.enums import PositionSide
from strategies.base import Candle, CandleArrays
from strategies.candle_strategy import CandleStrategy, common_param_problems
from strategies.indicators import Indicator, Sma


@dataclass(frozen=True)
class MacParams:
    candle_seconds: int = 60
    fast: int = 9
    slow: int = 21
    atr_period: int = 14
    atr_multiple: float = 2.0
    exit_at: str = "15:05"

    take_profit_atr: ClassVar[float] = 0.0  # CandleStrategy's optional target: none for the crossover


class MovingAverageCrossover(CandleStrategy):
    kind = "ma_crossover"
    Params = MacParams
    state_version: ClassVar[int] = 2  # 1 was the hand-computed averages' state: refused, the strategy starts fresh

    @classmethod
    def check_params(cls, p: MacParams) -> list[str]:
        out = common_param_problems(p)
        if p.fast < 1:
            out.append(f"fast: {p.fast!r} is not allowed -- must be at least 1")
        if p.slow <= p.fast:
            out.append(f"slow: {p.slow!r} is not allowed -- must be greater than fast ({p.fast})")
        return out

    def make_indicators(self) -> dict[str, Indicator[Any]]:
        self._fast = Sma(self.params.fast)
        self._slow = Sma(self.params.slow)
        return {"fast": self._fast, "slow": self._slow}

    def reset_day(self) -> None:
        self._last_sign = 0  # sign of fast - slow at the last candle where both had a value and differed

    def extra_state(self) -> dict[str, Any]:
        return {"last_sign": self._last_sign}

    def load_extra(self, state: Mapping[str, Any]) -> None:
        self._last_sign = int(state["last_sign"])

    def absorb_quiet(self, run: CandleArrays, seconds: int) -> int:
        """Flat with nothing wanted: take the candles before the first that could cross (a nonzero sign of
        fast - slow other than the last one), or that the float estimate below cannot sign for certain, in bulk.
        The averages are estimated from float running sums over at most 256 candles (error below n^2 x 2**-52
        of the price, n the candles summed); a difference within 1e-8 of the averages is left to the exact path,
        so every sign taken is the sign the exact averages give, and the windows themselves are taken exactly
        (Sma.absorb). Looked at in growing chunks: most quiet stretches are short."""
        cls = type(self)
        if cls.read_candle is not MovingAverageCrossover.read_candle:
            return 0
        span = self.bulk_span(run, seconds)
        taken, chunk = 0, 48
        while taken < span:
            end = min(span, taken + chunk)
            n = self._take(run, taken, end)
            taken += n
            if taken < end:
                break
            chunk = min(4 * chunk, 256)
        return taken

    def held_span(self, run: CandleArrays, seconds: int) -> int:
        """In a position with nothing wanted: the candles before the first whose ticks could reach the stop or
        exit_at (CandleStrategy.held_bound) or whose close could cross (a reversal) or cannot be signed for
        certain, as absorb_quiet finds them; at most 256 (the float estimate's bound)."""
        if type(self).read_candle is not MovingAverageCrossover.read_candle:
            return 0
        span = min(self.held_bound(run, seconds), 256)
        return self._scan(run.close[:span])[0] if span else 0

    def take_held(self, run: CandleArrays, seconds: int, m: int) -> None:
        """on_candle for run[:m], none of which crosses (held_span proved it): the same windows, ATR and last
        sign whether the position is still held or was closed meanwhile."""
        if m <= 0:
            return
        closes = run.close[:m]
        n, last = self._scan(closes)
        if n != m:
            raise ValueError(f"take_held: {m} candles asked, only {n} proven quiet")
        self._last_sign = last
        self.absorb_common(run, 0, m)
        taken = closes.tolist()
        self._fast.absorb(taken)
        self._slow.absorb(taken)

    def _take(self, run: CandleArrays, a: int, b: int) -> int:
        """Take run[a:b] up to the first candle that could act; how many were taken."""
        closes = run.close[a:b]
        n, last = self._scan(closes)
        if n == 0:
            return 0
        self._last_sign = last
        self.absorb_common(run, a, a + n)
        taken = closes[:n].tolist()
        self._fast.absorb(taken)
        self._slow.absorb(taken)
        return n

    def _scan(self, closes: np.ndarray) -> tuple[int, int]:
        """How many of `closes` (the next candles') can be read without a cross or an unsure sign, and the last
        sign after them; changes nothing."""
        fast, slow = self._estimate(self._fast, closes), self._estimate(self._slow, closes)
        ready = ~(np.isnan(fast) | np.isnan(slow))
        diff = fast - slow
        sure = ready & (np.abs(diff) > 1e-8 * (np.abs(fast) + np.abs(slow)))
        unsure = np.flatnonzero(ready & ~sure)
        n = int(unsure[0]) if len(unsure) else len(closes)
        signs = np.where(sure[:n], np.sign(diff[:n]), 0.0)
        nz = np.flatnonzero(signs)
        last = self._last_sign
        if len(nz):
            if last == 0:
                last = int(signs[nz[0]])
            turns = nz[signs[nz] != last]
            if len(turns):
                n = int(turns[0])
                nz = nz[nz < n]
        if n and len(nz):
            return n, int(signs[nz[-1]])
        return n, self._last_sign

    @staticmethod
    def _estimate(sma: Sma, closes: np.ndarray) -> np.ndarray:
        """The SMA after each of `closes` in float (NaN while its window is not full), from its window now."""
        prior = sma.window()
        k, period = len(prior), sma.period
        x = np.concatenate((np.asarray(prior, dtype=np.float64), closes)) if k else closes
        out = np.full(len(closes), np.nan)
        if len(x) < period:
            return out
        sums = np.cumsum(x)
        sums[period:] = sums[period:] - sums[:-period]  # sums[i]: x[i - period + 1 .. i]
        first = max(0, period - 1 - k)
        out[first:] = sums[k + first:] / period
        return out

    def read_candle(self, candle: Candle) -> tuple[int, str, str]:
        fast_ma, slow_ma = self._fast.update(candle), self._slow.update(candle)
        if fast_ma is None or slow_ma is None:
            return 0, "", ""
        sign = 1 if fast_ma > slow_ma else -1 if fast_ma < slow_ma else 0
        if sign == 0:
            return 0, "", ""
        prev, self._last_sign = self._last_sign, sign
        if prev == 0 or sign == prev:
            return 0, "", ""
        p = self.params
        note = (f"fast SMA({p.fast}) {fast_ma:.4f} crossed {'above' if sign > 0 else 'below'} "
                f"slow SMA({p.slow}) {slow_ma:.4f} on the candle closing at {candle.close}")
        against = PositionSide.SHORT if sign > 0 else PositionSide.LONG
        exit_note = ""
        if self.position is against:
            atr = self._atr.value
            exit_note = f"reversal: {note}" + ("" if atr is None else f"; ATR({p.atr_period}) {atr:.4f}")
        return sign, note, exit_note

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
from strategies.indicators import Indicator, Sma, exact


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
        self._cross: _CrossScan | None = None  # derived from the windows and the candles: no state of its own
        return {"fast": self._fast, "slow": self._slow}

    def reset_day(self) -> None:
        self._last_sign = 0  # sign of fast - slow at the last candle where both had a value and differed

    def extra_state(self) -> dict[str, Any]:
        return {"last_sign": self._last_sign}

    def load_extra(self, state: Mapping[str, Any]) -> None:
        self._last_sign = int(state["last_sign"])

    def absorb_quiet(self, run: CandleArrays, seconds: int) -> int:
        """Flat with nothing wanted: take the candles before the first that could cross (a nonzero sign of
        fast - slow other than the last one), or that the float estimate (_CrossScan) cannot sign for certain,
        in bulk: every sign taken is the sign the exact averages give, and the windows themselves are taken
        exactly."""
        cls = type(self)
        if cls.read_candle is not MovingAverageCrossover.read_candle:
            return 0
        span = self.bulk_span(run, seconds)
        taken = 0
        while taken < span:
            scan, at, n, last, more = self._quiet(run.close, taken, span)
            if n:
                self._take(run, taken, taken + n, scan, at, last)
                taken += n
            if not more:
                break
        return taken

    def held_span(self, run: CandleArrays, seconds: int) -> int:
        """In a position with nothing wanted: the candles before the first whose ticks could reach the stop or
        exit_at (CandleStrategy.held_bound) or whose close could cross (a reversal) or cannot be signed for
        certain, as absorb_quiet finds them; at most 256."""
        if type(self).read_candle is not MovingAverageCrossover.read_candle:
            return 0
        span = min(self.held_bound(run, seconds), 256)
        return self._quiet(run.close, 0, span)[2] if span else 0

    def take_held(self, run: CandleArrays, seconds: int, m: int) -> None:
        """on_candle for run[:m], none of which crosses (held_span proved it): the same windows, ATR and last
        sign whether the position is still held or was closed meanwhile."""
        if m <= 0:
            return
        scan, at, n, last, _ = self._quiet(run.close, 0, m)
        if n != m:
            raise ValueError(f"take_held: {m} candles asked, only {n} proven quiet")
        self._take(run, 0, m, scan, at, last)

    def _take(self, run: CandleArrays, a: int, b: int, scan: _CrossScan, at: int, last: int) -> None:
        """on_candle for run[a:b], none of which crosses (scan's candles from `at` on), leaving `last` as the
        last sign."""
        self._last_sign = last
        self.absorb_common(run, a, b)
        scan.feed(self._fast, self._slow, at + b - a)

    def _quiet(self, closes: np.ndarray, a: int, b: int) -> tuple[_CrossScan, int, int, int, bool]:
        """How many of closes[a:b] (the next candles', the windows now being those before closes[a]) can be
        read without a cross or an unsure sign, with the estimate that says so and where closes[a] is in it, the
        last sign after them, and whether the count stopped only where the estimate ends (ask again from
        there). Changes nothing but the estimate kept: the day's, while it fits."""
        fast, slow = self._fast, self._slow
        scan = self._cross
        if scan is not None:
            at = scan.offset(closes, a, fast, slow)
            if at >= 0:
                n, last, more = scan.quiet(at, b - a, self._last_sign)
                if scan.same(closes, a, at, n):
                    return scan, at, n, last, more
        scan = self._cross = _CrossScan(closes[a:], fast, slow)
        n, last, more = scan.quiet(0, b - a, self._last_sign)
        return scan, 0, n, last, more

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


class _CrossScan:
    """The sign of fast - slow after each of a symbol-day's next candles, estimated once from float running sums
    (NaN while a window is not full), and reused by every later fold of that day whose windows are those the
    estimate ran through and whose candles are its candles (checked by value: the candles between were fed to
    the averages one by one or in bulk). A fold's windows are then set in one sum each from the exact() terms of
    the windows it leaves (Sma.absorb_tail).

    Why it is sure: the averages are estimated over at most LIMIT candles (error below n^2 x 2**-52 of the
    price, n the candles summed: 2.4e-10 for 1024); a difference within 1e-8 of the averages is left unsure
    (the exact path reads that candle), so every sign taken is the sign the exact averages give."""

    LIMIT = 1024
    __slots__ = ("total", "size", "closes", "fast", "kf", "slow", "ks", "unsure", "pos", "neg")

    def __init__(self, closes: np.ndarray, fast: Sma, slow: Sma):
        self.total = len(closes)      # the candles asked about; the estimate covers the first `size`
        head = closes[:self.LIMIT]
        self.size = len(head)
        self.closes: list[float] = head.tolist()
        prior_f, prior_s = fast.window(), slow.window()
        f, s = _estimate(prior_f, fast.period, head), _estimate(prior_s, slow.period, head)
        # each window before the run and the closes after it (their exact() terms are taken in feed(), for the
        # one window it leaves: most of a day's closes are never fed)
        self.kf, self.ks = len(prior_f), len(prior_s)
        self.fast = prior_f + self.closes
        self.slow = prior_s + self.closes
        ready = ~(np.isnan(f) | np.isnan(s))
        diff = f - s
        sure = ready & (np.abs(diff) > 1e-8 * (np.abs(f) + np.abs(s)))
        self.unsure = _next(ready & ~sure)
        self.pos = _next(sure & (diff > 0))
        self.neg = _next(sure & (diff < 0))

    def offset(self, closes: np.ndarray, a: int, fast: Sma, slow: Sma) -> int:
        """Where closes[a] is in the estimate's candles, if closes ends where they end and the windows now are
        the ones the estimate reached there; -1 otherwise (same() then checks the candles themselves)."""
        at = self.total - (len(closes) - a)
        if (0 <= at < self.size and _tail(self.fast, self.kf + at, fast.period) == fast.window()
                and _tail(self.slow, self.ks + at, slow.period) == slow.window()):
            return at
        return -1

    def same(self, closes: np.ndarray, a: int, at: int, n: int) -> bool:
        """Whether closes[a:a + n] are the estimate's candles from `at` on: what n signs taken there rest on."""
        return n == 0 or closes[a:a + n].tolist() == self.closes[at:at + n]

    def quiet(self, at: int, b: int, last: int) -> tuple[int, int, bool]:
        """From the estimate's candle `at` on: how many of the next b can be read without a cross or an unsure
        sign, the last sign after them (`last` before), and whether the count stopped only at the estimate's
        end."""
        end = min(at + b, self.size)
        pos, neg = self.pos[at], self.neg[at]
        first = min(pos, neg)  # the first sure sign
        stop = self.unsure[at]
        sign = last
        if sign == 0 and first < stop:
            sign = 1 if pos == first else -1
        if sign:
            stop = min(stop, neg if sign > 0 else pos)
        stop = min(stop, end)
        more = stop == self.size < self.total and stop < at + b
        return stop - at, sign if first < stop else last, more

    def feed(self, fast: Sma, slow: Sma, end: int) -> None:
        """The averages as reading the estimate's candles up to `end` leaves them (from where offset() found
        them)."""
        i = self.kf + end
        tail = self.fast[max(0, i - fast.period):i]
        fast.absorb_tail(tail, list(map(exact, tail)))
        i = self.ks + end
        tail = self.slow[max(0, i - slow.period):i]
        slow.absorb_tail(tail, list(map(exact, tail)))


def _next(mask: np.ndarray) -> list[int]:
    """For each index (and one past the end), the first index at or after it where `mask` is True (len: none)."""
    n = len(mask)
    at = np.where(mask, np.arange(n), n)
    out: list[int] = np.minimum.accumulate(at[::-1])[::-1].tolist()
    return out + [n]


def _tail(values: list[float], end: int, period: int) -> list[float]:
    """The window an average of `period` holds after values[:end]."""
    return values[max(0, end - period):end]


def _estimate(prior: list[float], period: int, closes: np.ndarray) -> np.ndarray:
    """The SMA after each of `closes` in float (NaN while its window is not full), from its window `prior`."""
    k = len(prior)
    x = np.concatenate((np.asarray(prior, dtype=np.float64), closes)) if k else closes
    out = np.full(len(closes), np.nan)
    if len(x) < period:
        return out
    sums = np.cumsum(x)
    sums[period:] = sums[period:] - sums[:-period]  # sums[i]: x[i - period + 1 .. i]
    first = max(0, period - 1 - k)
    out[first:] = sums[k + first:] / period
    return out

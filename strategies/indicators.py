"""The one indicator set the strategies use: incremental, O(1) per candle, with state to save and restore.

Each indicator is fed closed candles in time order through `update(candle)`, which returns the new value,
or None while it warms up (`warmup` candles; `ready` once it has a value). `state_dict()` is JSON-safe
data and `load_state()` rebuilds from it, so a restored indicator continues bit for bit. `reset()` starts
it over (strategies that warm up afresh each day call it on a new date).

Definitions (each test compares against an independent batch computation, see tests/test_indicators.py):
- Window sums (SMA, Bollinger, VWAP) are kept exactly, as integers counting 2**-1074 (every float is a
  whole number of those), and divided once with Python's correctly rounded int / int. So a flat series
  has an SMA exactly equal to its price and a standard deviation of exactly 0, and the value never drifts
  with the length of the day the way a float running sum does.
- Recursive ones (EMA, Wilder's RSI and ATR, MACD) are float recursions seeded by the plain mean of the
  first `period` inputs, summed in order (as TA-Lib seeds them).
- EMA: k = 2 / (period + 1), EMA = EMA_prev + k x (x - EMA_prev); first value at candle `period`.
- RSI (Wilder): gains/losses of close-to-close changes; first averages are the means of the first
  `period` changes (so the first value comes at candle period + 1), then avg = (avg x (n - 1) + x) / n;
  RSI = 100 x gain / (gain + loss), and 50 when both are 0 (a flat market is neither overbought nor
  oversold; TA-Lib says 0 there, which a mean-reversion rule would read as deeply oversold).
- ATR (Wilder): true range = max(high - low, |high - prev close|, |low - prev close|), the first candle's
  high - low; first ATR = mean of the first `period` true ranges, then ATR = (ATR_prev x (n - 1) + TR) / n.
- Bollinger: middle = SMA(period), bands = middle +/- k x the POPULATION standard deviation of the same
  window (divide by period, not period - 1: the window is the whole population described, as Bollinger
  and TA-Lib define it).
- MACD: line = EMA(fast) - EMA(slow), signal = EMA(signal) of the line, histogram = line - signal. Both
  EMAs start at candle `slow` (the fast one seeded by the mean of the last `fast` of those closes, as
  TA-Lib does), so the line never mixes a settled average with an unsettled one.
- Highest / Lowest: max of highs / min of lows over the last `period` candles (monotonic deque: O(1)
  amortised).
- VWAP: anchored at each IST day: sum(typical price x volume) / sum(volume), typical = (H + L + C) / 3;
  None until the day has traded volume.
- Opening range: high / low of the candles starting in [open, open + minutes) of each IST day, known once a
  candle reaching the end of that window has closed; None for a day whose first candle started more than
  `grace_s` after the open (a partial range is narrower than the real one).
- Rate of change: 100 x (close - close `period` candles ago) / close `period` candles ago.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import time as dtime
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

from strategies.base import Candle
from strategies.candles import TradingDay, parse_hhmm

V = TypeVar("V")

_SHIFT = 1074            # 2**-1074 is the smallest float step: every finite float is a whole number of them
_SOURCES = ("open", "high", "low", "close")


def exact(x: float) -> int:
    """`x` as a whole number of 2**-1074, with no rounding (ValueError/OverflowError for NaN/inf)."""
    num, den = x.as_integer_ratio()
    return num << (_SHIFT - den.bit_length() + 1)


def exact_mean(total: int, count: int) -> float:
    """The float nearest to total x 2**-1074 / count (Python's int division rounds correctly)."""
    return total / (count << _SHIFT)


class Bands(NamedTuple):
    middle: float
    upper: float
    lower: float


class MacdValue(NamedTuple):
    line: float
    signal: float
    histogram: float


class Range(NamedTuple):
    high: float
    low: float


class Indicator(ABC, Generic[V]):
    """One incremental indicator over closed candles; see the module docstring for the definitions."""

    kind: ClassVar[str]

    def __init__(self) -> None:
        self.value: V | None = None

    @property
    def ready(self) -> bool:
        return self.value is not None

    @property
    @abstractmethod
    def warmup(self) -> int:
        """Candles needed before the first value (at least that many: VWAP also needs volume, the opening
        range the end of its window)."""

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """The constructor's arguments (saved with the state: a state only loads into the same indicator)."""

    @abstractmethod
    def update(self, candle: Candle) -> V | None:
        """Feed the next closed candle; the new value, or None while warming up."""

    @abstractmethod
    def reset(self) -> None:
        """Start over, as if no candle had been seen."""

    @abstractmethod
    def _state(self) -> dict[str, Any]: ...

    @abstractmethod
    def _load(self, state: Mapping[str, Any]) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "params": self.params(), **self._state()}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Rebuild from state_dict(); refuses state saved by another kind or with other parameters."""
        if state.get("kind") != self.kind or state.get("params") != self.params():
            raise ValueError(f"state: saved by {state.get('kind')!r} {state.get('params')!r} -- expected "
                             f"{self.kind!r} {self.params()!r}")
        self._load(state)


def _positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: {value!r} is not allowed -- expected a whole number of at least 1")
    return value


def _source(value: str) -> str:
    if value not in _SOURCES:
        raise ValueError(f"source: {value!r} is not allowed -- expected one of {', '.join(_SOURCES)}")
    return value


class _ExactWindow:
    """The last `size` values with their exact sum (and exact sum of squares when asked)."""

    __slots__ = ("size", "squares", "values", "total", "total_sq")

    def __init__(self, size: int, squares: bool = False):
        self.size = size
        self.squares = squares
        self.values: deque[float] = deque()
        self.total = 0
        self.total_sq = 0

    def add(self, x: float) -> None:
        e = exact(x)
        self.values.append(x)
        self.total += e
        if self.squares:
            self.total_sq += e * e
        if len(self.values) > self.size:
            old = exact(self.values.popleft())
            self.total -= old
            if self.squares:
                self.total_sq -= old * old

    @property
    def full(self) -> bool:
        return len(self.values) == self.size

    def mean(self) -> float:
        return exact_mean(self.total, len(self.values))

    def pstdev(self) -> float:
        """Population standard deviation: sqrt(n x sum(x^2) - sum(x)^2) / n, the radicand exact."""
        n = len(self.values)
        var = (n * self.total_sq - self.total * self.total) / ((n * n) << (2 * _SHIFT))
        return math.sqrt(var)

    def clear(self) -> None:
        self.values.clear()
        self.total = self.total_sq = 0

    def load(self, values: list[float]) -> None:
        self.clear()
        for x in values:
            self.add(float(x))

    def extend(self, values: Sequence[float]) -> None:
        """add() for each of `values`: a run at least a window long replaces the window whole, its exact sums
        summed once (the same integers the adds leave)."""
        if len(values) < self.size:
            for x in values:
                self.add(x)
            return
        tail = values[len(values) - self.size:]
        self.refill(tail, list(map(exact, tail)))

    def refill(self, values: Sequence[float], ints: Sequence[int]) -> None:
        """The window becomes the last `size` of `values` (`ints`: their exact() values), its exact sums summed
        once: what add() for each new value leaves when `values` are the window's own followed by them."""
        if len(values) > self.size:
            values, ints = values[len(values) - self.size:], ints[len(ints) - self.size:]
        self.values = deque(values)
        self.total = sum(ints)
        self.total_sq = sum(e * e for e in ints) if self.squares else 0


class _Seeded:
    """A float recursion's seed: the in-order sum of its first `size` inputs (TA-Lib's seed)."""

    __slots__ = ("size", "values", "total")

    def __init__(self, size: int):
        self.size = size
        self.values: list[float] = []
        self.total = 0.0

    def add(self, x: float) -> float | None:
        """Take one input; the seed (their mean) once `size` are in, else None."""
        self.values.append(x)
        self.total += x
        if len(self.values) < self.size:
            return None
        mean = self.total / self.size
        self.clear()
        return mean

    def clear(self) -> None:
        self.values = []
        self.total = 0.0

    def load(self, values: list[float]) -> None:
        self.clear()
        for x in values:
            self.values.append(float(x))
            self.total += float(x)


class Sma(Indicator[float]):
    kind = "sma"

    def __init__(self, period: int, source: str = "close"):
        super().__init__()
        self.period = _positive("period", period)
        self.source = _source(source)
        self._w = _ExactWindow(period)

    @property
    def warmup(self) -> int:
        return self.period

    def params(self) -> dict[str, Any]:
        return {"period": self.period, "source": self.source}

    def update(self, candle: Candle) -> float | None:
        w = self._w
        w.add(getattr(candle, self.source))
        if w.full:
            self.value = w.mean()
        return self.value

    def reset(self) -> None:
        self._w.clear()
        self.value = None

    def window(self) -> list[float]:
        """The values in the window now, oldest first (fewer than `period` while it fills)."""
        return list(self._w.values)

    def absorb(self, values: Sequence[float]) -> float | None:
        """update() for each of `values` (this SMA's source of consecutive candles), at the cost of the last
        `period` of them: the window and its exact sum end as the one-by-one updates leave them."""
        w = self._w
        w.extend(values[-self.period:])
        if w.full:
            self.value = w.mean()
        return self.value

    def absorb_tail(self, values: Sequence[float], ints: Sequence[int]) -> float | None:
        """absorb() given the window's values followed by the new ones (at least the last `period` of them) with
        their exact() values: a caller that knows them (the crossover's fold) saves recomputing them."""
        w = self._w
        w.refill(values, ints)
        if w.full:
            self.value = w.mean()
        return self.value

    def _state(self) -> dict[str, Any]:
        return {"window": list(self._w.values)}

    def _load(self, state: Mapping[str, Any]) -> None:
        self._w.load(state["window"])
        self.value = self._w.mean() if self._w.full else None


class Ema(Indicator[float]):
    kind = "ema"

    def __init__(self, period: int, source: str = "close"):
        super().__init__()
        self.period = _positive("period", period)
        self.source = _source(source)
        self._k = 2.0 / (period + 1)
        self._seed = _Seeded(period)

    @property
    def warmup(self) -> int:
        return self.period

    def params(self) -> dict[str, Any]:
        return {"period": self.period, "source": self.source}

    def update(self, candle: Candle) -> float | None:
        return self.add(getattr(candle, self.source))

    def add(self, x: float) -> float | None:
        """Feed one input value (MACD feeds its line through this)."""
        v = self.value
        self.value = self._seed.add(x) if v is None else v + self._k * (x - v)
        return self.value

    def reset(self) -> None:
        self._seed.clear()
        self.value = None

    def _state(self) -> dict[str, Any]:
        return {"seed": list(self._seed.values), "value": self.value}

    def _load(self, state: Mapping[str, Any]) -> None:
        self._seed.load(state["seed"])
        self.value = None if state["value"] is None else float(state["value"])


class Rsi(Indicator[float]):
    kind = "rsi"

    def __init__(self, period: int = 14, source: str = "close"):
        super().__init__()
        self.period = _positive("period", period)
        self.source = _source(source)
        self._prev: float | None = None
        self._gains = _Seeded(period)
        self._losses = _Seeded(period)
        self._gain = self._loss = 0.0

    @property
    def warmup(self) -> int:
        return self.period + 1

    def params(self) -> dict[str, Any]:
        return {"period": self.period, "source": self.source}

    def update(self, candle: Candle) -> float | None:
        x = getattr(candle, self.source)
        prev, self._prev = self._prev, x
        if prev is None:
            return None
        change = x - prev
        gain, loss = (change, 0.0) if change > 0 else (0.0, -change)
        if self.value is None:
            g, lo = self._gains.add(gain), self._losses.add(loss)
            if g is None or lo is None:
                return None
            self._gain, self._loss = g, lo
        else:
            n = self.period
            self._gain = (self._gain * (n - 1) + gain) / n
            self._loss = (self._loss * (n - 1) + loss) / n
        total = self._gain + self._loss
        self.value = 50.0 if total == 0 else 100.0 * (self._gain / total)
        return self.value

    def reset(self) -> None:
        self._prev = None
        self._gains.clear()
        self._losses.clear()
        self._gain = self._loss = 0.0
        self.value = None

    def _state(self) -> dict[str, Any]:
        return {"prev": self._prev, "gains": list(self._gains.values), "losses": list(self._losses.values),
                "gain": self._gain, "loss": self._loss, "value": self.value}

    def _load(self, state: Mapping[str, Any]) -> None:
        self._prev = None if state["prev"] is None else float(state["prev"])
        self._gains.load(state["gains"])
        self._losses.load(state["losses"])
        self._gain, self._loss = float(state["gain"]), float(state["loss"])
        self.value = None if state["value"] is None else float(state["value"])


class Atr(Indicator[float]):
    kind = "atr"

    def __init__(self, period: int = 14):
        super().__init__()
        self.period = _positive("period", period)
        self._prev_close: float | None = None
        self._seed = _Seeded(period)

    @property
    def warmup(self) -> int:
        return self.period

    def params(self) -> dict[str, Any]:
        return {"period": self.period}

    def update(self, candle: Candle) -> float | None:
        high, low, pc = candle.high, candle.low, self._prev_close
        tr = high - low if pc is None else max(high - low, abs(high - pc), abs(low - pc))
        self._prev_close = candle.close
        v = self.value
        if v is None:
            self.value = self._seed.add(tr)
        else:
            n = self.period
            self.value = (v * (n - 1) + tr) / n
        return self.value

    def absorb(self, highs: Sequence[float], lows: Sequence[float], closes: Sequence[float]) -> float | None:
        """update() for each of consecutive candles given as columns: the same float operations in the same
        order (a recursion cannot be summed out of order), without a Candle per candle."""
        pc, v, n = self._prev_close, self.value, self.period
        seed = self._seed
        for high, low, close in zip(highs, lows, closes, strict=True):
            tr = high - low if pc is None else max(high - low, abs(high - pc), abs(low - pc))
            pc = close
            v = seed.add(tr) if v is None else (v * (n - 1) + tr) / n
        self._prev_close, self.value = pc, v
        return v

    def reset(self) -> None:
        self._prev_close = None
        self._seed.clear()
        self.value = None

    def _state(self) -> dict[str, Any]:
        return {"prev_close": self._prev_close, "seed": list(self._seed.values), "value": self.value}

    def _load(self, state: Mapping[str, Any]) -> None:
        self._prev_close = None if state["prev_close"] is None else float(state["prev_close"])
        self._seed.load(state["seed"])
        self.value = None if state["value"] is None else float(state["value"])


class Bollinger(Indicator[Bands]):
    kind = "bollinger"

    def __init__(self, period: int = 20, k: float = 2.0, source: str = "close"):
        super().__init__()
        self.period = _positive("period", period)
        if isinstance(k, bool) or not isinstance(k, (int, float)) or not k > 0:
            raise ValueError(f"k: {k!r} is not allowed -- expected a number greater than 0")
        self.k = float(k)
        self.source = _source(source)
        self._w = _ExactWindow(period, squares=True)

    @property
    def warmup(self) -> int:
        return self.period

    def params(self) -> dict[str, Any]:
        return {"period": self.period, "k": self.k, "source": self.source}

    def _bands(self) -> Bands | None:
        w = self._w
        if not w.full:
            return None
        mid, dev = w.mean(), self.k * w.pstdev()
        return Bands(mid, mid + dev, mid - dev)

    def update(self, candle: Candle) -> Bands | None:
        self._w.add(getattr(candle, self.source))
        self.value = self._bands()
        return self.value

    def reset(self) -> None:
        self._w.clear()
        self.value = None

    def _state(self) -> dict[str, Any]:
        return {"window": list(self._w.values)}

    def _load(self, state: Mapping[str, Any]) -> None:
        self._w.load(state["window"])
        self.value = self._bands()


class Macd(Indicator[MacdValue]):
    kind = "macd"

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9, source: str = "close"):
        super().__init__()
        self.fast = _positive("fast", fast)
        self.slow = _positive("slow", slow)
        self.signal = _positive("signal", signal)
        if slow <= fast:
            raise ValueError(f"slow: {slow!r} is not allowed -- must be greater than fast ({fast})")
        self.source = _source(source)
        self._recent: deque[float] = deque(maxlen=fast)  # the fast EMA's seed window, until both start
        self._slow = Ema(slow)
        self._fast = Ema(fast)
        self._sig = Ema(signal)

    @property
    def warmup(self) -> int:
        return self.slow + self.signal - 1

    def params(self) -> dict[str, Any]:
        return {"fast": self.fast, "slow": self.slow, "signal": self.signal, "source": self.source}

    def update(self, candle: Candle) -> MacdValue | None:
        x = getattr(candle, self.source)
        if self._slow.value is None:
            self._recent.append(x)
            if self._slow.add(x) is None:
                return None
            for r in self._recent:  # the fast EMA starts with the slow one, from its last `fast` closes
                self._fast.add(r)
            self._recent.clear()
        else:
            self._slow.add(x)
            self._fast.add(x)
        fast, slow = self._fast.value, self._slow.value
        assert fast is not None and slow is not None
        line = fast - slow
        sig = self._sig.add(line)
        if sig is None:
            return None
        self.value = MacdValue(line, sig, line - sig)
        return self.value

    def reset(self) -> None:
        self._recent.clear()
        for e in (self._slow, self._fast, self._sig):
            e.reset()
        self.value = None

    def _state(self) -> dict[str, Any]:
        return {"recent": list(self._recent), "slow_ema": self._slow.state_dict(),
                "fast_ema": self._fast.state_dict(), "signal_ema": self._sig.state_dict(),
                "value": None if self.value is None else list(self.value)}

    def _load(self, state: Mapping[str, Any]) -> None:
        self._recent.clear()
        self._recent.extend(float(x) for x in state["recent"])
        self._slow.load_state(state["slow_ema"])
        self._fast.load_state(state["fast_ema"])
        self._sig.load_state(state["signal_ema"])
        v = state["value"]
        self.value = None if v is None else MacdValue(*(float(x) for x in v))


class _Extreme(Indicator[float]):
    """Max (or min) of one candle field over the last `period` candles: a deque of (index, value) kept
    monotonic, so each candle is pushed and popped at most once."""

    _sign: ClassVar[int]   # +1 highest, -1 lowest
    _default: ClassVar[str]

    def __init__(self, period: int, source: str | None = None):
        super().__init__()
        self.period = _positive("period", period)
        self.source = _source(self._default if source is None else source)
        self._q: deque[tuple[int, float]] = deque()
        self._n = 0  # candles seen

    @property
    def warmup(self) -> int:
        return self.period

    def params(self) -> dict[str, Any]:
        return {"period": self.period, "source": self.source}

    def update(self, candle: Candle) -> float | None:
        x = getattr(candle, self.source)
        q, i = self._q, self._n
        if self._sign > 0:
            while q and q[-1][1] <= x:
                q.pop()
        else:
            while q and q[-1][1] >= x:
                q.pop()
        q.append((i, x))
        if q[0][0] <= i - self.period:
            q.popleft()
        self._n = i + 1
        if self._n >= self.period:
            self.value = q[0][1]
        return self.value

    def reset(self) -> None:
        self._q.clear()
        self._n = 0
        self.value = None

    def _state(self) -> dict[str, Any]:
        return {"queue": [[i, x] for i, x in self._q], "count": self._n, "value": self.value}

    def _load(self, state: Mapping[str, Any]) -> None:
        self._q = deque((int(i), float(x)) for i, x in state["queue"])
        self._n = int(state["count"])
        self.value = None if state["value"] is None else float(state["value"])


class Highest(_Extreme):
    kind = "highest"
    _sign = 1
    _default = "high"


class Lowest(_Extreme):
    kind = "lowest"
    _sign = -1
    _default = "low"


class RateOfChange(Indicator[float]):
    kind = "roc"

    def __init__(self, period: int = 10, source: str = "close"):
        super().__init__()
        self.period = _positive("period", period)
        self.source = _source(source)
        self._w: deque[float] = deque(maxlen=period + 1)

    @property
    def warmup(self) -> int:
        return self.period + 1

    def params(self) -> dict[str, Any]:
        return {"period": self.period, "source": self.source}

    def _roc(self) -> float | None:
        w = self._w
        if len(w) <= self.period or w[0] == 0:
            return None
        return (w[-1] - w[0]) / w[0] * 100.0

    def update(self, candle: Candle) -> float | None:
        self._w.append(getattr(candle, self.source))
        self.value = self._roc()
        return self.value

    def reset(self) -> None:
        self._w.clear()
        self.value = None

    def _state(self) -> dict[str, Any]:
        return {"window": list(self._w)}

    def _load(self, state: Mapping[str, Any]) -> None:
        self._w.clear()
        self._w.extend(float(x) for x in state["window"])
        self.value = self._roc()


class Vwap(Indicator[float]):
    kind = "vwap"

    def __init__(self) -> None:
        super().__init__()
        self._day = TradingDay()
        self._pv = 0    # sum of (H + L + C) x volume, exact (see exact())
        self._vol = 0

    @property
    def warmup(self) -> int:
        return 1

    def params(self) -> dict[str, Any]:
        return {}

    def update(self, candle: Candle) -> float | None:
        day = self._day
        if not day.start <= candle.start < day.end:
            day.move_to(candle.start)
            self._pv = self._vol = 0
            self.value = None
        v = candle.volume
        if v > 0:
            self._pv += (exact(candle.high) + exact(candle.low) + exact(candle.close)) * v
            self._vol += v
            self.value = exact_mean(self._pv, 3 * self._vol)
        return self.value

    def reset(self) -> None:
        self._day = TradingDay()
        self._pv = self._vol = 0
        self.value = None

    def _state(self) -> dict[str, Any]:
        # the exact sum is a very large integer: saved as decimal text so any JSON reader keeps it whole
        return {"day": self._day.iso(), "pv": str(self._pv), "volume": self._vol, "value": self.value}

    def _load(self, state: Mapping[str, Any]) -> None:
        self._day.restore(state["day"])
        self._pv, self._vol = int(state["pv"]), int(state["volume"])
        self.value = None if state["value"] is None else float(state["value"])


class OpeningRange(Indicator[Range]):
    kind = "opening_range"

    def __init__(self, minutes: int = 15, open: str = "09:15", grace_s: int = 60):
        super().__init__()
        self.minutes = _positive("minutes", minutes)
        t = parse_hhmm(open)
        if t is None:
            raise ValueError(f"open: {open!r} is not allowed -- expected an IST time \"HH:MM\"")
        self.open: dtime = t
        if isinstance(grace_s, bool) or not isinstance(grace_s, int) or grace_s < 0:
            raise ValueError(f"grace_s: {grace_s!r} is not allowed -- expected a whole number of at least 0")
        self.grace_s = grace_s
        self._day = TradingDay()
        self._start = self._end = 0
        self._reset_day()

    def _reset_day(self) -> None:
        self._seen = False      # a candle of this day's window arrived
        self._skip = False      # the day's first candle came too late: no range today
        self._high = self._low = 0.0
        self.value = None

    @property
    def warmup(self) -> int:
        return 1

    def params(self) -> dict[str, Any]:
        return {"minutes": self.minutes, "open": self.open.strftime("%H:%M"), "grace_s": self.grace_s}

    def _set_epochs(self) -> None:
        self._start = self._day.at(self.open)
        self._end = self._start + 60 * self.minutes

    def update(self, candle: Candle) -> Range | None:
        s = candle.start
        day = self._day
        if not day.start <= s < day.end:
            day.move_to(s)
            self._set_epochs()
            self._reset_day()
        if s < self._start or self._skip or self.value is not None:
            return self.value
        if s >= self._end:
            if not self._seen:
                self._skip = True   # nothing of the window was seen: no range today
            else:
                self.value = Range(self._high, self._low)
            return self.value
        if not self._seen:
            if s > self._start + self.grace_s:
                self._skip = True
                return None
            self._seen = True
            self._high, self._low = candle.high, candle.low
        else:
            self._high = max(self._high, candle.high)
            self._low = min(self._low, candle.low)
        if s + candle.seconds >= self._end:
            self.value = Range(self._high, self._low)
        return self.value

    def reset(self) -> None:
        self._day = TradingDay()
        self._start = self._end = 0
        self._reset_day()

    def _state(self) -> dict[str, Any]:
        return {"day": self._day.iso(), "seen": self._seen, "skip": self._skip, "high": self._high,
                "low": self._low, "value": None if self.value is None else list(self.value)}

    def _load(self, state: Mapping[str, Any]) -> None:
        self._day.restore(state["day"])
        if self._day.date is not None:
            self._set_epochs()
        self._seen, self._skip = bool(state["seen"]), bool(state["skip"])
        self._high, self._low = float(state["high"]), float(state["low"])
        v = state["value"]
        self.value = None if v is None else Range(float(v[0]), float(v[1]))


INDICATORS: dict[str, type[Indicator[Any]]] = {
    cls.kind: cls for cls in (Sma, Ema, Rsi, Atr, Bollinger, Macd, Highest, Lowest, RateOfChange, Vwap,
                              OpeningRange)
}

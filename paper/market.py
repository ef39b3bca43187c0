"""Quotes the daemon pushes, and which of them is "current" at the broker's clock.

In replay a fill must never see the future: a quote stamped after the clock waits in a heap until the
clock reaches it; once it becomes current, everything older for that symbol is dropped (memory stays
bounded by one quote per symbol plus whatever was pushed ahead of the clock).
"""
from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

QUOTE_COLUMNS = ("symbol", "exchange", "ts", "ltp", "bid", "ask", "high", "low", "open", "prev_close", "volume")
_NUMERIC = QUOTE_COLUMNS[2:]


@dataclass(slots=True)
class Quote:
    symbol: str
    exchange: str
    ts: float
    ltp: float
    bid: float = 0.0
    ask: float = 0.0
    high: float = 0.0
    low: float = 0.0
    open: float = 0.0
    prev_close: float = 0.0
    volume: float = 0.0

    @property
    def key(self) -> tuple[str, str]:
        return (self.symbol, self.exchange)

    def row(self) -> list:
        return [self.symbol, self.exchange, self.ts, self.ltp, self.bid, self.ask, self.high, self.low,
                self.open, self.prev_close, self.volume]

    def market_price(self, action: str) -> float:
        """Where a MARKET order fills: the ask for a buy, the bid for a sell, the LTP when that side is 0."""
        side = self.ask if action == "BUY" else self.bid
        return side if side > 0 else self.ltp

    def to_api(self) -> dict[str, Any]:
        return {"open": self.open, "high": self.high, "low": self.low, "ltp": self.ltp, "ask": self.ask,
                "bid": self.bid, "prev_close": self.prev_close, "volume": self.volume, "oi": 0}


def parse_rows(rows: Any) -> tuple[list[Quote], list[str]]:
    """Compact rows [symbol, exchange, ts, ltp, bid?, ask?, high?, low?, open?, prev_close?, volume?].

    Row by row: a bad row is left out and described (naming its index) in the second list, and the good rows
    still apply, so one bad quote cannot hold back every other symbol's prices. Only a body that is not a list
    of rows at all raises ValueError.
    """
    if not isinstance(rows, list):
        raise ValueError("quotes must be a list of rows [symbol, exchange, ts, ltp, bid, ask, high, low, "
                         "open, prev_close, volume]")
    out: list[Quote] = []
    bad: list[str] = []
    for i, r in enumerate(rows):
        try:
            out.append(_parse_row(i, r))
        except ValueError as e:
            bad.append(str(e))
    return out, bad


def _parse_row(i: int, r: Any) -> Quote:
    if not isinstance(r, (list, tuple)) or not 4 <= len(r) <= len(QUOTE_COLUMNS):
        raise ValueError(f"quotes[{i}]: expected a list of 4 to {len(QUOTE_COLUMNS)} values "
                         f"({', '.join(QUOTE_COLUMNS)}), got {r!r:.80}")
    sym, exch = r[0], r[1]
    if not isinstance(sym, str) or not sym or not isinstance(exch, str) or not exch:
        raise ValueError(f"quotes[{i}]: symbol and exchange must be non-empty strings")
    nums = []
    for name, v in zip(_NUMERIC, r[2:], strict=False):
        if v is None:
            v = 0.0
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"quotes[{i}]: {name} must be a finite number, got {v!r:.40}")
        if v < 0:
            raise ValueError(f"quotes[{i}]: {name} must not be negative, got {v}")
        nums.append(float(v))
    if not nums[1] > 0:
        raise ValueError(f"quotes[{i}]: ltp must be positive, got {nums[1]}")
    return Quote(sym, exch, *nums)


class QuoteBook:
    """Current quote per (symbol, exchange), plus quotes waiting for the clock."""

    def __init__(self) -> None:
        self.current: dict[tuple[str, str], Quote] = {}
        self._future: list[tuple[float, int, Quote]] = []
        self._future_count: dict[tuple[str, str], int] = {}
        self._seq = 0

    def known(self, key: tuple[str, str]) -> bool:
        """The broker has heard of this symbol (its 'master contract'): a quote was pushed for it."""
        return key in self.current or key in self._future_count

    def set_current(self, q: Quote) -> None:
        self.current[q.key] = q

    def offer(self, q: Quote) -> bool:
        """Make `q` current unless a newer quote already is; True if it became current."""
        cur = self.current.get(q.key)
        if cur is not None and q.ts < cur.ts:
            return False
        self.current[q.key] = q
        return True

    def stash(self, q: Quote, seq: int | None = None) -> int:
        if seq is None:
            self._seq += 1
            seq = self._seq
        else:
            self._seq = max(self._seq, seq)
        heapq.heappush(self._future, (q.ts, seq, q))
        self._future_count[q.key] = self._future_count.get(q.key, 0) + 1
        return seq

    def pop_due(self, clock: float) -> tuple[int, Quote] | None:
        if self._future and self._future[0][0] <= clock:
            _, seq, q = heapq.heappop(self._future)
            n = self._future_count[q.key] - 1
            if n:
                self._future_count[q.key] = n
            else:
                del self._future_count[q.key]
            return seq, q
        return None

    def pending(self) -> int:
        return len(self._future)

    def clear(self) -> None:
        self.current.clear()
        self._future.clear()
        self._future_count.clear()

    def load(self, current: Iterable[list], future: Iterable[tuple[int, list]]) -> None:
        for row in current:
            self.current[(row[0], row[1])] = Quote(*row)
        for seq, row in future:
            self.stash(Quote(*row), seq)

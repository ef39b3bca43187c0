"""OpenAlgo's /api/v1/history through the official client (openalgo 1.0.12, whose history() returns a DataFrame).

- Intervals are checked against the server's /api/v1/intervals before anything is fetched.
- Requests span at most what OpenAlgo fetches from the broker in one call (history.intervals), and go through
  moving windows (gateway.ratelimit) well under the broker's per-key limits, since the daemon may be using
  the same key: by default 2 per second and 100 per minute.
- A 429, a 500 or a connection error is retried after a growing pause (history is a read: resending is
  safe); a timeout (the 1.0.12 client waits 5 s and takes no timeout argument) splits the range in two.
- What the client hides: it sorts the rows and drops repeated timestamps, so duplicate and out-of-order
  candles from OpenAlgo never reach the quality checks (files and Fyers show them).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from gateway.ratelimit import MovingWindow
from history.intervals import Interval, openalgo_chunk_days
from history.sources import HistoryError
from strategies.base import Candle

log = logging.getLogger(__name__)

RETRIES = 4


class OpenAlgoSource:
    def __init__(self, host: str, api_key: str, *, per_s: float = 2, per_min: float = 100, client: Any = None,
                 sleep: Callable[[float], None] = time.sleep):
        if client is None:
            from openalgo import api

            client = api(api_key=api_key, host=host.rstrip("/"))
        self.client = client
        self.host = host
        self.key = "openalgo"
        self.requests = 0
        self._windows = (MovingWindow(per_s, 1.0), MovingWindow(per_min, 60.0))
        self._sleep = sleep
        self._offered: set[str] | None = None

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        """fn() within the rate limits, retried on a 429, a 500 or a dropped connection."""
        import httpx

        for attempt in range(RETRIES + 1):
            for w in self._windows:
                w.acquire()
            self.requests += 1
            try:
                result = fn()
            except httpx.TimeoutException:
                raise
            except httpx.HTTPError as e:
                result = {"status": "error", "message": f"{type(e).__name__}: {e}", "code": 0}
            if not isinstance(result, dict) or result.get("status") != "error":
                return result
            code = result.get("code")
            if code in (0, 429, 500, 502, 503, 504) and attempt < RETRIES:
                pause = 2.0 ** attempt
                log.warning("history: %s answered %s; retrying in %.0f s", what, code or "no connection", pause)
                self._sleep(pause)
                continue
            return result
        raise AssertionError("unreachable")

    def offered(self) -> set[str]:
        if self._offered is None:
            r = self._call("intervals", self.client.intervals)
            if not isinstance(r, dict) or r.get("status") != "success" or not isinstance(r.get("data"), dict):
                raise HistoryError(f"OpenAlgo /api/v1/intervals at {self.host} failed: {_message(r)} -- is OpenAlgo "
                                   "(or the paper broker) running there, and is APP_KEY its API key?")
            self._offered = {str(x) for names in r["data"].values() if isinstance(names, list) for x in names}
        return self._offered

    def check_interval(self, interval: Interval) -> None:
        offered = self.offered()
        if interval.name not in offered:
            raise ValueError(f"interval {interval.name} is not offered by the OpenAlgo server's broker -- it offers "
                             f"{', '.join(sorted(offered)) or 'none'}")

    def chunk_days(self, interval: Interval) -> int:
        return openalgo_chunk_days(interval)

    def fingerprint(self, symbol: str, exchange: str) -> str | None:
        return None

    def fetch(self, symbol: str, exchange: str, interval: Interval, first: date, last: date) -> list[Candle]:
        import httpx

        what = f"history {symbol} {interval.name} {first}..{last}"
        try:
            r = self._call(what, lambda: self.client.history(
                symbol=symbol, exchange=exchange, interval=interval.name, start_date=first.isoformat(),
                end_date=last.isoformat()))
        except httpx.TimeoutException:
            if first == last:
                raise HistoryError(f"OpenAlgo did not answer {what} in time, even for one day") from None
            mid = first + timedelta(days=(last - first).days // 2)
            log.info("history: %s timed out; asking for %s..%s and %s..%s", what, first, mid,
                     mid + timedelta(days=1), last)
            return (self.fetch(symbol, exchange, interval, first, mid)
                    + self.fetch(symbol, exchange, interval, mid + timedelta(days=1), last))
        if isinstance(r, dict):
            if r.get("error_type") == "no_data":
                return []
            raise HistoryError(f"OpenAlgo refused {what}: {_message(r)}")
        return candles_from_frame(symbol, interval.seconds, r)


def candles_from_frame(symbol: str, seconds: int, df: Any) -> list[Candle]:
    """The client's DataFrame (timestamp index: IST-aware for intraday, naive UTC for D/W/M) as candles."""
    idx = df.index
    if getattr(idx, "tz", None) is None:
        idx = idx.tz_localize("UTC")
    starts = idx.as_unit("s").asi8.tolist()
    cols = [df[name].tolist() for name in ("open", "high", "low", "close", "volume")]
    return [Candle(symbol, int(t), seconds, float(o), float(h), float(lo), float(c), int(round(float(v))))
            for t, o, h, lo, c, v in zip(starts, *cols, strict=True)]


def _message(r: Any) -> str:
    if isinstance(r, dict):
        return str(r.get("message") or r)[:300]
    return repr(r)[:300]

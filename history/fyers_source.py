"""Fyers history through the SDK (fyersModel.FyersModel.history): the data a Fyers user has without OpenAlgo.

- Resolution from the interval (history.intervals.fyers_resolution); ranges of at most 100 days for intraday
  candles and 366 for daily, as Fyers allows per request; `range_to` is inclusive (date_format 1).
- Fyers counts 10 requests/s and 200/min per API key across all endpoints, and blocks the key for the day
  after repeated per-minute breaches: this source stays at 5/s and 150/min by default, and a 429 waits and
  retries.
- The SDK's requests have no timeout: each runs in a daemon thread with a deadline.
- The SDK's data URL is the class attribute fyersModel.Config.DATA_API; `data_url` replaces it (tests point it
  at feeds.fake_fyers_api on loopback). Only loopback http or https on fyers.in is accepted.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from core.net import is_loopback_url
from gateway.ratelimit import MovingWindow
from history.intervals import Interval, fyers_chunk_days, fyers_resolution
from history.sources import HistoryError
from strategies.base import Candle

log = logging.getLogger(__name__)

RETRIES = 4


def check_data_url(url: str) -> str:
    u = urlparse(url)
    if not ((u.scheme == "http" and is_loopback_url(url))
            or (u.scheme == "https" and (u.hostname or "").endswith(".fyers.in"))):
        raise ValueError(f"Fyers data URL {url!r} is not allowed -- use https://...fyers.in or a loopback http URL")
    return url.rstrip("/")


def _with_deadline(fn: Callable[[], Any], timeout_s: float) -> Any:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except Exception as e:  # noqa: BLE001 - reported by type only: the SDK's text may carry the URL
            box["error"] = type(e).__name__

    t = threading.Thread(target=run, name="fyers-history", daemon=True)
    t.start()
    t.join(timeout_s)
    if t.is_alive():
        return {"s": "error", "code": 0, "message": f"no answer within {timeout_s:.0f} s"}
    if "error" in box:
        return {"s": "error", "code": 0, "message": f"the request failed ({box['error']})"}
    return box.get("value")


class FyersSource:
    def __init__(self, app_id: str, access_token: str, *, data_url: str | None = None, log_dir: Path | None = None,
                 tickers: dict[str, str] | None = None, per_s: float = 5, per_min: float = 150,
                 timeout_s: float = 30.0, sleep: Callable[[float], None] = time.sleep):
        from fyers_apiv3 import fyersModel

        if data_url is not None:
            fyersModel.Config.DATA_API = check_data_url(data_url)
        bare = access_token.split(":", 1)[1] if ":" in access_token else access_token
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
        self.model = fyersModel.FyersModel(client_id=app_id.strip(), token=bare.strip(), is_async=False,
                                           log_path=str(log_dir) if log_dir is not None else None,
                                           log_level="ERROR")
        self.tickers = dict(tickers or {})
        self.key = "fyers"
        self.requests = 0
        self._windows = (MovingWindow(per_s, 1.0), MovingWindow(per_min, 60.0))
        self._timeout_s = timeout_s
        self._sleep = sleep

    def ticker(self, symbol: str, exchange: str) -> str:
        return self.tickers.get(symbol) or f"{exchange}:{symbol}-EQ"

    def check_interval(self, interval: Interval) -> None:
        fyers_resolution(interval)

    def chunk_days(self, interval: Interval) -> int:
        return fyers_chunk_days(interval)

    def fingerprint(self, symbol: str, exchange: str) -> str | None:
        return None

    def fetch(self, symbol: str, exchange: str, interval: Interval, first: date, last: date) -> list[Candle]:
        query = {"symbol": self.ticker(symbol, exchange), "resolution": fyers_resolution(interval),
                 "date_format": "1", "range_from": first.isoformat(), "range_to": last.isoformat(),
                 "cont_flag": "1"}
        what = f"history {query['symbol']} {query['resolution']} {first}..{last}"
        for attempt in range(RETRIES + 1):
            for w in self._windows:
                w.acquire()
            self.requests += 1
            r = _with_deadline(lambda: self.model.history(data=query), self._timeout_s)
            if not isinstance(r, dict):
                raise HistoryError(f"Fyers answered {what} with something that is not JSON")
            if r.get("s") == "ok":
                return [Candle(symbol, int(row[0]), interval.seconds, float(row[1]), float(row[2]), float(row[3]),
                               float(row[4]), int(round(float(row[5])))) for row in r.get("candles") or []]
            if r.get("s") == "no_data":
                return []
            code = r.get("code")
            if code in (0, 429, 500, 502, 503) and attempt < RETRIES:
                pause = 2.0 ** attempt
                log.warning("history: Fyers answered %s to %s; retrying in %.0f s", code, what, pause)
                self._sleep(pause)
                continue
            hint = " -- today's token: python driver.py fyers-login" if code in (-15, -16, -17, -8) else ""
            raise HistoryError(f"Fyers refused {what}: code {code}: {str(r.get('message') or '')[:200]}{hint}")
        raise AssertionError("unreachable")

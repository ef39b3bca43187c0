"""Client for the paper broker's admin routes (/paper/v1/*): prices, clock, reset, faults, health.

The daemon pushes quotes in batches here (never one HTTP call per tick). Trading itself goes through
gateway.openalgo.OpenAlgoGateway like against a real OpenAlgo server.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import requests

log = logging.getLogger(__name__)


class PaperBrokerError(Exception):
    """The admin call failed: unreachable, refused, or the broker said no (message says which)."""

    def __init__(self, message: str, http_status: int | None = None):
        super().__init__(message)
        self.http_status = http_status


def quote_row(symbol: str, exchange: str, tick: Mapping[str, Any]) -> list:
    """Compact market row from a Fyers tick dict (core.types.FyersTick) for push_market."""
    g = tick.get
    ts = g("exch_feed_time") or g("last_traded_time") or 0
    return [symbol, exchange, ts, g("ltp") or 0.0, g("bid_price") or 0.0, g("ask_price") or 0.0,
            g("high_price") or 0.0, g("low_price") or 0.0, g("open_price") or 0.0, g("prev_close_price") or 0.0,
            g("vol_traded_today") or 0]


def quote_rows(ticks: Iterable[Mapping[str, Any]], symbol_map: Any) -> list[list]:
    """Rows for every tick whose Fyers ticker the map knows (gateway.symbols.SymbolMap); others are skipped."""
    rows = []
    for t in ticks:
        try:
            sym, exch = symbol_map.to_openalgo(t.get("symbol", ""))
        except KeyError:
            continue
        rows.append(quote_row(sym, exch, t))
    return rows


class PaperBrokerAdmin:
    def __init__(self, host: str = "http://127.0.0.1:5000", api_key: str = "", timeout_s: float = 5.0):
        self.host = host.rstrip("/")
        self._key = api_key
        self.timeout = (min(2.0, timeout_s), timeout_s)
        self._local = threading.local()

    def _session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = self._local.session = requests.Session()
        return s

    def _post(self, name: str, body: dict[str, Any] | None = None, key: bool = True) -> dict:
        payload = dict(body or {})
        if key:
            payload["apikey"] = self._key
        try:
            r = self._session().post(f"{self.host}/paper/v1/{name}", json=payload, timeout=self.timeout)
        except requests.exceptions.InvalidJSONError:  # NaN or the like: malformed, as the broker would say
            raise PaperBrokerError(f"{name}: the request is not valid JSON (a NaN or infinite value?)", 400) from None
        except requests.RequestException as e:
            raise PaperBrokerError(f"paper broker at {self.host} unreachable ({type(e).__name__})") from None
        try:
            data = r.json()
        except ValueError:
            raise PaperBrokerError(f"paper broker answered {r.status_code} with a non-JSON body",
                                   r.status_code) from None
        if r.status_code != 200:
            raise PaperBrokerError(f"paper broker refused {name}: HTTP {r.status_code}: {data.get('message')}",
                                   r.status_code)
        return data

    def push_market(self, quotes: Iterable[Sequence[Any]], clock: float | None = None) -> dict:
        """Rows [symbol, exchange, ts, ltp, bid, ask, high, low, open, prev_close, volume]; with a clock the
        broker is in replay mode and uses only quotes stamped at or before it."""
        return self._post("market", {"clock": clock, "quotes": [list(q) for q in quotes]})

    def set_clock(self, clock: float) -> dict:
        return self._post("clock", {"clock": clock})

    def reset(self, clock_mode: str = "wall", clock: float | None = None, funds: float | None = None) -> dict:
        body: dict[str, Any] = {"clock_mode": clock_mode}
        if clock is not None:
            body["clock"] = clock
        if funds is not None:
            body["funds"] = funds
        return self._post("reset", body)

    def set_faults(self, **faults: Any) -> dict:
        """Replace the fault configuration (paper.faults.FaultConfig fields); no arguments clears it."""
        return self._post("faults", faults)["faults"]

    def clear_faults(self) -> dict:
        return self.set_faults()

    def requests_seen(self, clear: bool = False) -> dict:
        """{"total", "max_per_s"}: the /api/v1 requests the broker received (any answer); `clear` restarts."""
        return self._post("requests", {"clear": clear})

    def health(self) -> dict:
        return self._post("health", key=False)

    def is_up(self) -> bool:
        try:
            self.health()
            return True
        except PaperBrokerError:
            return False

    def wait_healthy(self, timeout_s: float = 10.0, interval_s: float = 0.05) -> dict:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self.health()
            except PaperBrokerError:
                if time.monotonic() > deadline:
                    raise PaperBrokerError(f"paper broker at {self.host} not healthy after {timeout_s:.1f}s") from None
                time.sleep(interval_s)

    def close(self) -> None:
        s = getattr(self._local, "session", None)
        if s is not None:
            s.close()
            self._local.session = None

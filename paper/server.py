"""HTTP front of the paper broker: OpenAlgo's /api/v1 routes plus /paper/v1 admin routes, on loopback.

Order of checks per /api/v1 request, as in OpenAlgo: rate limit (per route, per client IP, moving window;
refused calls answer 429 with OpenAlgo's body and no Retry-After), then the schema (400), then the API
key (403), then the call itself. http.server with HTTP/1.1 keep-alive and TCP_NODELAY: without the latter a
keep-alive client waits ~40 ms per call on delayed ACKs.
"""
from __future__ import annotations

import hmac
import json
import logging
import math
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from gateway.ratelimit import KeyedMovingWindows
from paper import gtt as G
from paper import schemas as S
from paper.engine import FillFaults
from paper.errors import INVALID_APIKEY, RATE_LIMITED_BODY, ApiError
from paper.faults import PLACEMENT_ROUTES, FaultConfig, FaultInjector
from paper.market import parse_rows
from paper.options import api as O
from paper.service import PaperBroker

log = logging.getLogger(__name__)

PLACE_FAILED = {"status": "error", "message": "Failed to place order due to internal error"}
UNEXPECTED = {"status": "error", "message": "An unexpected error occurred in the API endpoint"}
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode  # built once: json.dumps(separators=) builds one per call
INJECTED_REJECTION = "RMS:Rule: Order rejected by the broker (injected fault)"


@dataclass(frozen=True)
class Limits:
    order_per_s: float = 10.0
    smart_per_s: float = 10.0
    api_per_s: float = 50.0


@dataclass(frozen=True)
class Route:
    schema: S.Schema
    call: Callable[[PaperBroker, dict, Extras], dict]
    group: str = "api"            # order | smart | api
    check_key: bool = True
    key_status: int = 403         # optiongreeks answers a wrong key with 401


@dataclass(frozen=True)
class Extras:
    faults: FillFaults | None = None
    reject_reason: str | None = None


ROUTES: dict[str, Route] = {
    "placeorder": Route(S.ORDER, lambda b, d, x: b.place_order(d, x.faults, x.reject_reason), "order"),
    "placesmartorder": Route(S.SMART_ORDER, lambda b, d, x: b.place_smart_order(d, x.faults, x.reject_reason),
                             "smart"),
    "basketorder": Route(S.BASKET_ORDER, lambda b, d, x: b.place_basket(d)),
    "splitorder": Route(S.SPLIT_ORDER, lambda b, d, x: b.place_split(d)),
    "modifyorder": Route(S.MODIFY_ORDER, lambda b, d, x: b.modify_order(d), "order"),
    "cancelorder": Route(S.CANCEL_ORDER, lambda b, d, x: b.cancel_order(d["orderid"]), "order"),
    "cancelallorder": Route(S.CANCEL_ALL, lambda b, d, x: b.cancel_all()),
    "closeposition": Route(S.CLOSE_POSITION, lambda b, d, x: b.close_position(d["strategy"])),
    "orderstatus": Route(S.ORDER_STATUS, lambda b, d, x: b.order_status(d["orderid"])),
    "openposition": Route(S.OPEN_POSITION, lambda b, d, x: b.open_position(d)),
    "orderbook": Route(S.APIKEY_ONLY, lambda b, d, x: b.orderbook()),
    "tradebook": Route(S.APIKEY_ONLY, lambda b, d, x: b.tradebook()),
    "positionbook": Route(S.APIKEY_ONLY, lambda b, d, x: b.positionbook()),
    "funds": Route(S.APIKEY_ONLY, lambda b, d, x: b.funds()),
    "holdings": Route(S.APIKEY_ONLY, lambda b, d, x: b.holdings()),
    "placegttorder": Route(G.PLACE_GTT, lambda b, d, x: b.place_gtt(d), "order"),
    "modifygttorder": Route(G.MODIFY_GTT, lambda b, d, x: b.modify_gtt(d), "order"),
    "cancelgttorder": Route(G.CANCEL_GTT, lambda b, d, x: b.cancel_gtt(d["trigger_id"]), "order"),
    "gttorderbook": Route(S.APIKEY_ONLY, lambda b, d, x: b.gtt_orderbook()),
    "quotes": Route(S.QUOTES, lambda b, d, x: _option_aware(b, d, b.quotes)),
    "depth": Route(S.DEPTH, lambda b, d, x: _option_aware(b, d, b.depth)),
    "margin": Route(S.MARGIN, lambda b, d, x: _margin(b, d)),
    "market/holidays": Route(S.HOLIDAYS, lambda b, d, x: b.holidays(d.get("year")), check_key=False),
    "market/timings": Route(S.TIMINGS, lambda b, d, x: b.timings(d["date"]), check_key=False),
    "search": Route(S.SEARCH, lambda b, d, x: b.search(d["query"], d.get("exchange"))),
    "symbol": Route(S.SYMBOL, lambda b, d, x: b.symbol(d["symbol"], d["exchange"])),
    "history": Route(S.HISTORY, lambda b, d, x: b.history.history(d, b.engine.now())),
    "intervals": Route(S.APIKEY_ONLY, lambda b, d, x: b.history.intervals()),
    "ping": Route(S.APIKEY_ONLY, lambda b, d, x: b.ping()),
    "analyzer": Route(S.APIKEY_ONLY, lambda b, d, x: b.analyzer_status()),
    "analyzer/toggle": Route(S.ANALYZER_TOGGLE, lambda b, d, x: b.analyzer_toggle(d["mode"])),
    # index options (paper.options): contracts, prices and greeks from the index quotes pushed
    "expiry": Route(O.EXPIRY, lambda b, d, x: O.expiry(b, d)),
    "optionsymbol": Route(O.OPTION_SYMBOL, lambda b, d, x: O.option_symbol_route(b, d)),
    "optionchain": Route(O.OPTION_CHAIN, lambda b, d, x: O.option_chain(b, d)),
    "optionsorder": Route(O.OPTIONS_ORDER, lambda b, d, x: O.options_order(b, d), "order"),
    "optiongreeks": Route(O.OPTION_GREEKS, lambda b, d, x: O.option_greeks(b, d), key_status=401),
}


def _margin(b: PaperBroker, d: dict) -> dict:
    for p in d["positions"]:
        O.refresh_quote(b, p["symbol"], p["exchange"])
    return b.margin(d["positions"])


def _option_aware(b: PaperBroker, d: dict, call: Callable[[str, str], dict]) -> dict:
    """A listed option's quote is its model price from the latest index quote, refreshed before it is read."""
    O.refresh_quote(b, d["symbol"], d["exchange"])
    return call(d["symbol"], d["exchange"])


class _Dropped(Exception):
    """Close the connection without answering (the lost-response fault)."""


class App:
    def __init__(self, broker: PaperBroker, api_key: str, limits: Limits = Limits(),
                 faults: FaultInjector | None = None):
        if not api_key:
            raise ValueError("the paper broker needs an API key")
        self.broker = broker
        self._key = api_key.encode()
        self.faults = faults or FaultInjector()
        self.rate_limited: dict[str, int] = {}
        self.refused_quotes = 0  # quote rows dropped from market pushes
        self._count_lock = threading.Lock()
        self.arrivals: deque[float] = deque(maxlen=200_000)  # when each /api/v1 request arrived (monotonic)
        self._windows = {"order": KeyedMovingWindows(limits.order_per_s),
                         "smart": KeyedMovingWindows(limits.smart_per_s),
                         "api": KeyedMovingWindows(limits.api_per_s)}

    def key_ok(self, key: Any) -> bool:
        return isinstance(key, str) and hmac.compare_digest(key.encode(), self._key)

    # ------------------------------------------------------------ OpenAlgo routes

    def api(self, name: str, raw: bytes, client_ip: str) -> tuple[int, dict]:
        with self._count_lock:
            self.arrivals.append(time.monotonic())
        route = ROUTES.get(name)
        if route is None:
            return 404, {"status": "error", "message": f"Unknown endpoint /api/v1/{name}"}
        if not self._windows[route.group].try_acquire((name, client_ip)):
            with self._count_lock:
                self.rate_limited[name] = self.rate_limited.get(name, 0) + 1
            return 429, dict(RATE_LIMITED_BODY)
        data = route.schema.load(_json(raw))
        if route.check_key and not self.key_ok(data.get("apikey")):
            raise INVALID_APIKEY if route.key_status == 403 else ApiError(route.key_status, dict(INVALID_APIKEY.body))
        self.broker.count_request()
        cfg = self.faults.config
        decision = self.faults.decide(name)
        extras = Extras()
        if name in PLACEMENT_ROUTES:
            extras = Extras(FillFaults(cfg.open_delay_s, cfg.partial_fills, cfg.partial_fill_span_s),
                            INJECTED_REJECTION if decision.reject else None)
        failed = PLACE_FAILED if name in PLACEMENT_ROUTES else UNEXPECTED
        if decision.error500:
            log.info("fault: 500 on %s (not processed)", name)
            return 500, dict(failed)
        if decision.timeout and not cfg.timeout_placed:
            log.info("fault: timeout on %s (not processed), answering after %.1fs", name, cfg.timeout_sleep_s)
            time.sleep(cfg.timeout_sleep_s)
            return 500, dict(failed)
        try:
            status, body = 200, route.call(self.broker, data, extras)
        except ApiError as e:
            status, body = e.http_status, e.body
        if decision.timeout:
            log.info("fault: timeout on %s (processed), answering after %.1fs", name, cfg.timeout_sleep_s)
            time.sleep(cfg.timeout_sleep_s)
        elif decision.lost_response:
            log.info("fault: lost response on %s (processed: %s)", name, body.get("orderid", body.get("status")))
            raise _Dropped()
        return status, body

    # ------------------------------------------------------------ admin routes

    def health(self) -> dict:
        """No key needed: says nothing secret. rate_limited counts 429s per route since start."""
        with self._count_lock:
            limited = dict(self.rate_limited)
        return {**self.broker.health(), "rate_limited": limited,
                "faults": self.faults.config.active}

    def requests_seen(self, clear: bool = False) -> dict:
        """Every /api/v1 request as it arrived, whatever its answer: the total, and the most in any one-second
        window (what a per-key limit like Fyers' 10/s counts). `clear` starts a new count."""
        with self._count_lock:
            times = list(self.arrivals)
            if clear:
                self.arrivals.clear()
        most, lo = 0, 0
        for hi, t in enumerate(times):
            while times[lo] <= t - 1.0:
                lo += 1
            most = max(most, hi - lo + 1)
        return {"status": "success", "total": len(times), "max_per_s": most}

    def admin(self, name: str, raw: bytes) -> tuple[int, dict]:
        if name == "health":
            return 200, self.health()
        data = _json(raw)
        if not isinstance(data, dict):
            raise _bad("the body must be a JSON object")
        if not self.key_ok(data.get("apikey")):
            raise INVALID_APIKEY
        if name == "market":
            _only(data, {"apikey", "clock", "quotes"})
            try:
                quotes, refused = parse_rows(data.get("quotes", []))
            except ValueError as e:
                raise _bad(str(e)) from None
            body = self.broker.push_market(quotes, _clock(data.get("clock"), "clock"))
            if refused:  # dropped and counted, not the whole batch: the other quotes are good prices
                with self._count_lock:
                    self.refused_quotes += len(refused)
                log.warning("market: dropped %d bad quote row(s) of %d (%s); %d dropped so far", len(refused),
                            len(refused) + len(quotes), refused[0], self.refused_quotes)
                body = {**body, "rejected": len(refused), "rejected_rows": refused[:5]}
            return 200, body
        if name == "clock":
            _only(data, {"apikey", "clock"})
            clock = _clock(data.get("clock"), "clock")
            if clock is None:
                raise _bad("clock is required: epoch seconds")
            return 200, self.broker.push_market([], clock)
        if name == "reset":
            _only(data, {"apikey", "clock_mode", "clock", "funds"})
            mode = data.get("clock_mode", "wall")
            if mode not in ("wall", "replay"):
                raise _bad(f"clock_mode must be 'wall' or 'replay', got {mode!r}")
            clock = _clock(data.get("clock"), "clock")
            if clock is not None and mode != "replay":
                raise _bad("a clock can only be given with clock_mode 'replay'")
            funds = _clock(data.get("funds"), "funds")
            if funds is not None and funds <= 0:
                raise _bad("funds must be positive")
            return 200, self.broker.reset(mode, clock, funds)
        if name == "requests":
            _only(data, {"apikey", "clear"})
            return 200, self.requests_seen(bool(data.get("clear", False)))
        if name == "faults":
            cfg_in = {k: v for k, v in data.items() if k != "apikey"}
            try:
                cfg = FaultConfig.from_dict(cfg_in)
            except ValueError as e:
                raise _bad(str(e)) from None
            self.faults.set(cfg)
            log.info("faults set: %s", cfg.to_dict() if cfg.active else "none")
            return 200, {"status": "success", "faults": cfg.to_dict()}
        return 404, {"status": "error", "message": f"Unknown endpoint /paper/v1/{name}"}


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, {"status": "error", "message": "Request body is not valid JSON"}) from None


def _bad(msg: str) -> ApiError:
    return ApiError(400, {"status": "error", "message": msg})


def _only(data: dict, allowed: set[str]) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise _bad(f"unknown field(s): {', '.join(extra)} (allowed: {', '.join(sorted(allowed))})")


def _clock(v: Any, name: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise _bad(f"{name} must be a non-negative number (epoch seconds) or null, got {v!r}")
    return float(v)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "PaperBroker/1.0"
    server: PaperHTTPServer

    def do_POST(self) -> None:
        self._dispatch(read_body=True)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/paper/v1/health":
            self._send(200, self.server.app.health())
        else:
            self._send(405, {"status": "error", "message": "Method not allowed: use POST with a JSON body"})

    def _dispatch(self, read_body: bool) -> None:
        app = self.server.app
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            n = -1
        if n < 0 or n > 10_000_000:
            self.close_connection = True
            self._send(400, {"status": "error", "message": "bad Content-Length"})
            return
        raw = self.rfile.read(n) if n else b""
        path = self.path.split("?", 1)[0].rstrip("/")
        api = path.startswith("/api/v1/")
        try:
            if api:
                status, body = app.api(path[len("/api/v1/"):], raw, self.client_address[0])
            elif path.startswith("/paper/v1/"):
                status, body = app.admin(path[len("/paper/v1/"):], raw)
            else:
                status, body = 404, {"status": "error", "message": f"Unknown path {path}"}
        except ApiError as e:
            status, body = e.http_status, e.body
        except _Dropped:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        except Exception:  # noqa: BLE001 - a bug must cost one request, not the server
            log.exception("unexpected error on %s", path)
            status, body = 500, dict(UNEXPECTED)
        if api and app.faults.config.slow_ms > 0:
            time.sleep(app.faults.config.slow_ms / 1000.0)
        self._send(status, body)

    def _send(self, status: int, body: dict) -> None:
        payload = _ENCODE(body).encode()
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
        head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n")
        if self.close_connection:
            head += "Connection: close\r\n"
        try:
            self.wfile.write(head.encode() + b"\r\n" + payload)
        except OSError:  # the client gave up (e.g. after the timeout fault)
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)


class PaperHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], app: App):
        self.app = app
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)


class Housekeeper(threading.Thread):
    """Runs due partial/delayed fills and the wall-clock square-off a few times a second."""

    def __init__(self, broker: PaperBroker, interval_s: float = 0.05):
        super().__init__(name="paper-housekeeping", daemon=True)
        self.broker = broker
        self.interval_s = interval_s
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.interval_s):
            try:
                self.broker.engine.housekeeping()
            except Exception:  # noqa: BLE001 - keep the broker alive; the log says what broke
                log.exception("housekeeping failed")

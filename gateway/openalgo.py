"""The one module that talks to OpenAlgo (a real server or the paper broker): typed results, no surprises.

- One kept-alive HTTP/1.1 connection per calling thread (gateway.transport, on http.client: requests cost
  about half of a loopback order's round trip), explicit (connect, read) timeouts on every call.
- A client-side moving-window limit per route, below the server's, that makes callers wait for a slot
  instead of dropping anything; a 429 is retried after a short wait, since the server did not take the call.
- One RequestBudget (optional) shared by every call: at most N requests a second to the broker in all, orders
  (placements, cancels) ahead of everything else.
- Every transport problem becomes a typed result (gateway.results), never an exception. The key is never
  logged or put in a result.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from gateway.ratelimit import ORDERS, POLLS, MovingWindow, RequestBudget
from gateway.results import (
    Accepted,
    CallResult,
    Deferred,
    FundsInfo,
    NoOrder,
    Ok,
    OrderInfo,
    PlaceResult,
    PositionInfo,
    QuoteInfo,
    Rejected,
    SmartResult,
    TradeInfo,
    Unavailable,
    Unknown,
    qty,
)
from gateway.transport import KeepAlive, NoAnswer, NotSent

log = logging.getLogger(__name__)
T = TypeVar("T")

ORDER_ROUTES = frozenset({"placeorder", "modifyorder", "cancelorder", "placesmartorder"})
# ahead of polls in the request budget: orders, and margin, which an entry's sizing waits for
FIRST_ROUTES = ORDER_ROUTES | {"cancelallorder", "closeposition", "margin"}
NO_POSITION = "No OpenPosition Found. Not placing Exit order."


class _Reply:
    """What came back over the wire, before it is interpreted per endpoint."""

    __slots__ = ("status", "data", "text")

    def __init__(self, status: int, data: Any, text: str):
        self.status, self.data, self.text = status, data, text

    def message(self) -> str:
        if isinstance(self.data, dict) and "message" in self.data:
            m = self.data["message"]
            return m if isinstance(m, str) else str(m)
        return self.text[:300]


def _s(x: float) -> str:
    """Numbers go out as strings, as the official client sends them (older servers accept only strings)."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


class OpenAlgoGateway:
    def __init__(self, host: str, api_key: str, timeout_s: float = 5.0, order_rate_per_s: float = 8.0,
                 api_rate_per_s: float = 40.0, *, connect_timeout_s: float | None = None,
                 retry_429_for_s: float = 5.0, rate_wait_max_s: float = 30.0, budget: RequestBudget | None = None):
        self.host = host.rstrip("/")
        self._key = api_key
        self.timeout = (connect_timeout_s if connect_timeout_s is not None else min(2.0, timeout_s), timeout_s)
        self.order_rate_per_s = order_rate_per_s
        self.api_rate_per_s = api_rate_per_s
        self.retry_429_for_s = retry_429_for_s
        self.rate_wait_max_s = rate_wait_max_s
        self._limiters: dict[str, MovingWindow] = {}
        self.budget = budget
        self._lock = threading.Lock()
        self._http = KeepAlive(self.host, *self.timeout)

    def __repr__(self) -> str:
        return f"OpenAlgoGateway(host={self.host!r}, timeout={self.timeout})"

    # ------------------------------------------------------------ plumbing

    def _limiter(self, route: str) -> MovingWindow:
        w = self._limiters.get(route)
        if w is None:
            with self._lock:
                rate = self.order_rate_per_s if route in ORDER_ROUTES else self.api_rate_per_s
                w = self._limiters.setdefault(route, MovingWindow(rate))
        return w

    def _call(self, route: str, payload: Mapping[str, Any],
              budget_wait_s: float | None = None) -> _Reply | Unavailable | Unknown:
        path = f"/api/v1/{route}"
        try:
            body = json.dumps({"apikey": self._key, **payload}, allow_nan=False).encode()
        except (TypeError, ValueError) as e:
            return Unavailable(f"{route}: the request could not be encoded ({e}); not sent")
        give_up_429 = time.monotonic() + self.retry_429_for_s
        attempt = 0
        while True:
            attempt += 1
            try:
                self._limiter(route).acquire(timeout_s=self.rate_wait_max_s)
            except TimeoutError:
                return Unavailable(f"{route}: no rate-limit slot within {self.rate_wait_max_s:.0f}s; not sent")
            token = None
            if self.budget is not None:  # last, just before sending; the slot is held until the answer is in
                wait = self.rate_wait_max_s if budget_wait_s is None else budget_wait_s
                try:
                    token = self.budget.acquire(ORDERS if route in FIRST_ROUTES else POLLS, timeout_s=wait)
                except TimeoutError:
                    return Deferred(f"{route}: no slot in the request budget within {wait:g}s; not sent")
            t0 = time.perf_counter()
            try:
                try:
                    status, raw = self._http.post(path, body)
                finally:
                    self._release(token)
            except NotSent as e:
                log.warning("%s: not sent (%s)", route, e.kind)
                return Unavailable(f"{route}: could not connect to {self.host} ({e.kind}); not sent")
            except NoAnswer as e:
                log.warning("%s: sent, no usable answer (%s)", route, e.kind)
                return Unknown(f"{route}: sent, then {e.kind}; the outcome is unknown")
            latency_ms = (time.perf_counter() - t0) * 1000
            if status == 429 and time.monotonic() < give_up_429:
                log.info("%s: HTTP 429, retrying (attempt %d)", route, attempt)
                time.sleep(min(0.1 * attempt, 0.5))
                continue
            try:
                data = json.loads(raw)
            except ValueError:  # not JSON, or not UTF-8
                data = None
            log.debug("%s: HTTP %d in %.2f ms", route, status, latency_ms)
            if status == 429:
                return Unavailable(f"{route}: still rate limited (HTTP 429) after {self.retry_429_for_s:.0f}s; "
                                   "not accepted")
            return _Reply(status, data, raw.decode("utf-8", "replace") if data is None else "")

    def _release(self, token: int | None) -> None:
        if token is not None:
            self.budget.release(token)

    def _interpret(self, route: str, reply: _Reply | Unavailable | Unknown,
                   parse: Callable[[dict], T]) -> CallResult[T]:
        """Generic reading: 200 success -> Ok(parse(body)); "no" -> Rejected; the rest -> Unknown."""
        if not isinstance(reply, _Reply):
            return reply
        data = reply.data
        if reply.status == 200:
            if not isinstance(data, dict):
                return Unknown(f"{route}: HTTP 200 with a body that is not a JSON object", 200, reply.text[:300])
            if data.get("status") == "success":
                try:
                    return Ok(parse(data), data)
                except (KeyError, TypeError, ValueError, AttributeError) as e:
                    return Unknown(f"{route}: unexpected success body ({type(e).__name__}: {e})", 200, data)
            return Rejected(reply.message(), 200, data)
        if 400 <= reply.status < 500:
            return Rejected(reply.message(), reply.status, data)
        return Unknown(f"{route}: HTTP {reply.status}: {reply.message()}", reply.status, data)

    def _request(self, route: str, payload: Mapping[str, Any], parse: Callable[[dict], T],
                 budget_wait_s: float | None = None) -> CallResult[T]:
        return self._interpret(route, self._call(route, payload, budget_wait_s), parse)

    # ------------------------------------------------------------ orders

    def place_order(self, *, symbol: str, exchange: str, action: str, quantity: int, strategy: str,
                    pricetype: str = "MARKET", product: str = "MIS", price: float = 0.0,
                    trigger_price: float = 0.0, disclosed_quantity: int = 0) -> PlaceResult:
        """Accepted(broker_order_id) | Rejected | Unavailable | Unknown. Never resend on Unknown: find_order."""
        _check_qty(quantity)
        payload = {"strategy": strategy, "symbol": symbol, "action": action.upper(), "exchange": exchange,
                   "pricetype": pricetype, "product": product, "quantity": _s(quantity), "price": _s(price),
                   "trigger_price": _s(trigger_price), "disclosed_quantity": _s(disclosed_quantity)}
        res = self._request("placeorder", payload, lambda d: str(d["orderid"]))
        if isinstance(res, Ok):
            if not res.value or res.value == "None":
                return Unknown("placeorder: success without an order id", 200, res.raw)
            res = Accepted(res.value, res.raw)
        log.debug("placeorder %s %s %s x%d: %s", strategy, action, symbol, quantity, res)
        return res

    def place_smart_order(self, *, symbol: str, exchange: str, action: str, quantity: int, position_size: int,
                          strategy: str, pricetype: str = "MARKET", product: str = "MIS", price: float = 0.0,
                          trigger_price: float = 0.0) -> SmartResult:
        """Target-position order: Accepted, NoOrder (already at the target), or a failure."""
        payload = {"strategy": strategy, "symbol": symbol, "action": action.upper(), "exchange": exchange,
                   "pricetype": pricetype, "product": product, "quantity": _s(quantity),
                   "position_size": _s(position_size), "price": _s(price), "trigger_price": _s(trigger_price)}
        reply = self._call("placesmartorder", payload)
        if isinstance(reply, _Reply) and reply.status == 500 and reply.message() == NO_POSITION:
            return NoOrder(NO_POSITION, reply.data or {})
        res = self._interpret("placesmartorder", reply, lambda d: d)
        if isinstance(res, Ok):
            oid = res.value.get("orderid")
            return Accepted(str(oid), res.raw) if oid else NoOrder(str(res.value.get("message", "")), res.raw)
        return res

    def modify_order(self, *, orderid: str, symbol: str, exchange: str, action: str, product: str,
                     pricetype: str, quantity: int, price: float, strategy: str, trigger_price: float = 0.0,
                     disclosed_quantity: int = 0) -> CallResult[str]:
        _check_qty(quantity)
        payload = {"orderid": str(orderid), "strategy": strategy, "symbol": symbol, "action": action.upper(),
                   "exchange": exchange, "pricetype": pricetype, "product": product, "quantity": _s(quantity),
                   "price": _s(price), "disclosed_quantity": _s(disclosed_quantity),
                   "trigger_price": _s(trigger_price)}
        return self._request("modifyorder", payload, lambda d: str(d.get("orderid", orderid)))

    def cancel_order(self, orderid: str, strategy: str) -> CallResult[str]:
        return self._request("cancelorder", {"orderid": str(orderid), "strategy": strategy},
                             lambda d: str(d.get("orderid", orderid)))

    def cancel_all_orders(self, strategy: str) -> CallResult[dict]:
        """Ok({"canceled": [ids], "failed": [...], "message": str})."""
        return self._request("cancelallorder", {"strategy": strategy},
                             lambda d: {"canceled": [str(x) for x in d.get("canceled_orders") or []],
                                        "failed": list(d.get("failed_cancellations") or []),
                                        "message": str(d.get("message", ""))})

    def close_position(self, strategy: str) -> CallResult[str]:
        return self._request("closeposition", {"strategy": strategy}, lambda d: str(d.get("message", "")))

    # ------------------------------------------------------------ books and account

    def order_status(self, orderid: str, strategy: str, budget_wait_s: float | None = None) -> CallResult[OrderInfo]:
        """Ok(OrderInfo) normalized across live and sandbox shapes; Rejected with http_status 404 if unknown.
        Deferred when the request budget had no slot within budget_wait_s."""
        return self._request("orderstatus", {"orderid": str(orderid), "strategy": strategy},
                             lambda d: OrderInfo.from_raw(d["data"]), budget_wait_s)

    def orderbook(self, budget_wait_s: float | None = None) -> CallResult[list[OrderInfo]]:
        return self._request("orderbook", {}, _parse_orderbook, budget_wait_s)

    def tradebook(self) -> CallResult[list[TradeInfo]]:
        return self._request("tradebook", {},
                             lambda d: [TradeInfo.from_raw(x) for x in d.get("data") or []])

    def positionbook(self) -> CallResult[list[PositionInfo]]:
        return self._request("positionbook", {},
                             lambda d: [PositionInfo.from_raw(x) for x in d.get("data") or []])

    def funds(self) -> CallResult[FundsInfo]:
        return self._request("funds", {}, lambda d: FundsInfo.from_raw(d["data"]))

    def open_position(self, symbol: str, exchange: str, product: str, strategy: str) -> CallResult[int]:
        payload = {"strategy": strategy, "symbol": symbol, "exchange": exchange, "product": product}
        return self._request("openposition", payload, lambda d: qty(d["quantity"]))

    def quotes(self, symbol: str, exchange: str) -> CallResult[QuoteInfo]:
        return self._request("quotes", {"symbol": symbol, "exchange": exchange},
                             lambda d: QuoteInfo.from_raw(d["data"]))

    def margin(self, positions: Iterable[Mapping[str, Any]]) -> CallResult[dict]:
        """positions: dicts with symbol, exchange, action, quantity, product, pricetype[, price, trigger_price]."""
        rows = [{k: (_s(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v) for k, v in p.items()}
                for p in positions]
        return self._request("margin", {"positions": rows}, lambda d: dict(d["data"]))

    # ------------------------------------------------------------ options (the raw body; options.* reads it)

    def expiry(self, symbol: str, exchange: str, instrumenttype: str = "options") -> CallResult[dict]:
        """The listed expiries of `symbol`'s contracts on `exchange` (NFO): data ["23-NOV-26", ...]."""
        return self._request("expiry", {"symbol": symbol, "exchange": exchange, "instrumenttype": instrumenttype},
                             dict)

    def option_chain(self, underlying: str, exchange: str, expiry_date: str, strike_count: int,
                     with_greeks: bool = False) -> CallResult[dict]:
        """The chain of one expiry (DDMMMYY) around the at-the-money strike, quotes per leg."""
        payload: dict[str, Any] = {"underlying": underlying, "exchange": exchange, "expiry_date": expiry_date,
                                   "strike_count": int(strike_count)}
        if with_greeks:
            payload["with_greeks"] = True
        return self._request("optionchain", payload, dict)

    def option_symbol(self, underlying: str, exchange: str, expiry_date: str, offset: str,
                      option_type: str) -> CallResult[dict]:
        """One contract by its offset from ATM: symbol, exchange, lotsize, tick_size, freeze_qty."""
        return self._request("optionsymbol", {"underlying": underlying, "exchange": exchange,
                                              "expiry_date": expiry_date, "offset": offset,
                                              "option_type": option_type}, dict)

    def holidays(self, year: int | None = None) -> CallResult[list[dict]]:
        payload = {} if year is None else {"year": int(year)}
        return self._request("market/holidays", payload, lambda d: list(d["data"]))

    def timings(self, date: str) -> CallResult[list[dict]]:
        return self._request("market/timings", {"date": date}, lambda d: list(d["data"]))

    def ping(self) -> CallResult[dict]:
        """OpenAlgo's authenticated ping: data carries the name of the broker the server trades through."""
        return self._request("ping", {}, lambda d: dict(d["data"]))

    def analyzer_status(self) -> CallResult[dict]:
        return self._request("analyzer", {}, lambda d: dict(d["data"]))

    def analyzer_toggle(self, mode: bool) -> CallResult[dict]:
        return self._request("analyzer/toggle", {"mode": bool(mode)}, lambda d: dict(d["data"]))

    # ------------------------------------------------------------ recovering an Unknown order

    def find_order(self, *, symbol: str, exchange: str, side: str, quantity: int, strategy: str,
                   placed_after_epoch: float, exclude_broker_ids: Iterable[str] = (),
                   slack_s: float = 2.0) -> CallResult[list[OrderInfo]]:
        """Orders in the book that could be the one whose placement ended Unknown, oldest first.

        Matches symbol, exchange, side and quantity; the strategy tag when the book carries one; and a
        timestamp no earlier than placed_after_epoch - slack_s (book times have one-second resolution and
        are the broker's clock). Orders the caller already owns go in exclude_broker_ids. The caller adopts
        a single candidate, or decides what several mean; zero means the order was not placed.
        """
        book = self.orderbook()
        if not isinstance(book, Ok):
            return book
        exclude = {str(x) for x in exclude_broker_ids}
        side = side.upper()
        found = []
        for o in book.value:
            if o.orderid in exclude or o.symbol != symbol or o.action != side or o.quantity != int(quantity):
                continue
            if o.exchange and o.exchange != exchange:
                continue
            if o.strategy and o.strategy != strategy:
                continue
            if o.timestamp_epoch is not None and o.timestamp_epoch < placed_after_epoch - slack_s:
                continue
            found.append(o)
        found.sort(key=lambda o: (o.timestamp_epoch or 0.0, o.orderid))
        return Ok(found, book.raw)

    def close(self) -> None:
        self._http.close()


def _check_qty(quantity: Any) -> None:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise ValueError(f"quantity must be a positive whole number, got {quantity!r}")


def _parse_orderbook(d: dict) -> list[OrderInfo]:
    data = d.get("data") or {}
    orders = data.get("orders", []) if isinstance(data, dict) else data
    return [OrderInfo.from_raw(x) for x in orders or []]

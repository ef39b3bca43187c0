"""Typed outcomes of OpenAlgo calls, so callers decide on facts rather than on exceptions or raw dicts.

The four outcomes of sending an order are the ones that matter for money:
  Accepted     the broker took it and gave an order id;
  Rejected     the broker answered "no" (a 4xx other than 429, or 200 with status "error"): not placed;
  Unavailable  the request never reached the broker (refused, connect timeout, rate-limit wait expired):
               not placed, safe to try again later;
  Unknown      the request may have reached it (read timeout, connection dropped after sending, 5xx,
               unreadable body): it may or may not exist. Never resolved by sending again; look it up
               with OpenAlgoGateway.find_order.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

import pytz

from core.enums import OrderStatus

IST = pytz.timezone("Asia/Kolkata")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Accepted:
    broker_order_id: str
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)
    kind: ClassVar[str] = "accepted"
    ok: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class NoOrder:
    """placesmartorder decided nothing needed doing (positions already matched)."""

    message: str
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)
    kind: ClassVar[str] = "no_order"
    ok: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class Ok(Generic[T]):
    value: T
    raw: Any = field(default=None, repr=False)
    kind: ClassVar[str] = "ok"
    ok: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class Rejected:
    message: str
    http_status: int
    raw: Any = field(default=None, repr=False)
    kind: ClassVar[str] = "rejected"
    ok: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class Unavailable:
    reason: str
    kind: ClassVar[str] = "unavailable"
    ok: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class Deferred(Unavailable):
    """Not sent: the daemon's request budget had no slot in time (orders first); the broker is not at fault."""

    kind: ClassVar[str] = "deferred"


@dataclass(frozen=True, slots=True)
class Unknown:
    reason: str
    http_status: int | None = None
    raw: Any = field(default=None, repr=False)
    kind: ClassVar[str] = "unknown"
    ok: ClassVar[bool] = False


PlaceResult = Accepted | Rejected | Unavailable | Unknown
SmartResult = Accepted | NoOrder | Rejected | Unavailable | Unknown
Failure = Rejected | Unavailable | Unknown
CallResult = Ok[T] | Rejected | Unavailable | Unknown


# ---------------------------------------------------------------- normalized records

def num(value: Any, default: float = 0.0) -> float:
    """OpenAlgo numbers arrive as JSON numbers or strings ("-10", "812.35", ""), depending on broker."""
    if value is None or value == "" or isinstance(value, bool):
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def qty(value: Any) -> int:
    return int(num(value))


_TS_FORMATS = ("%Y-%m-%d %H:%M:%S", "%d-%b-%Y %H:%M:%S", "%d-%m-%Y %H:%M:%S", "%Y-%m-%dT%H:%M:%S")


def parse_ist_timestamp(text: Any) -> float | None:
    """Epoch seconds of a broker timestamp string, read as IST (sandbox and Fyers formats)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    if not isinstance(text, str) or not text:
        return None
    s = text.strip().split(".", 1)[0]
    for fmt in _TS_FORMATS:
        try:
            return IST.localize(datetime.strptime(s, fmt)).timestamp()
        except ValueError:
            continue
    return None


_STATUS_MAP = {
    "open": OrderStatus.OPEN,
    "trigger pending": OrderStatus.OPEN,
    "complete": OrderStatus.EXECUTED,
    "rejected": OrderStatus.REJECTED,
    "cancelled": OrderStatus.CANCELLED,
    "canceled": OrderStatus.CANCELLED,
}


@dataclass(frozen=True, slots=True)
class OrderInfo:
    """One order from orderstatus or orderbook, whichever broker or sandbox shape it came in."""

    orderid: str
    status: str              # OpenAlgo's lower-case word: open, complete, rejected, cancelled, trigger pending
    symbol: str
    exchange: str
    action: str
    quantity: int
    filled_quantity: int
    average_price: float
    price: float
    trigger_price: float
    pricetype: str
    product: str
    strategy: str
    timestamp: str
    timestamp_epoch: float | None
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_raw(cls, d: Mapping[str, Any]) -> OrderInfo:
        status = str(d.get("order_status") or d.get("status") or "").strip().lower()
        quantity = qty(d.get("quantity"))
        if d.get("filled_quantity") not in (None, ""):
            filled = qty(d.get("filled_quantity"))
        else:
            filled = quantity if status == "complete" else 0
        return cls(
            orderid=str(d.get("orderid", "")),
            status=status,
            symbol=str(d.get("symbol", "")),
            exchange=str(d.get("exchange", "")),
            action=str(d.get("action", "")).upper(),
            quantity=quantity,
            filled_quantity=filled,
            average_price=num(d.get("average_price")),
            price=num(d.get("price")),
            trigger_price=num(d.get("trigger_price")),
            pricetype=str(d.get("pricetype") or d.get("price_type") or ""),
            product=str(d.get("product", "")),
            strategy=str(d.get("strategy") or ""),
            timestamp=str(d.get("timestamp") or ""),
            timestamp_epoch=parse_ist_timestamp(d.get("timestamp")),
            raw=dict(d),
        )

    @property
    def is_final(self) -> bool:
        return self.status in ("complete", "rejected", "cancelled", "canceled")

    @property
    def fill_priced(self) -> bool:
        """Whatever was filled comes with its price. A live OpenAlgo orderbook gives no average price (its
        orderstatus does, for a complete order), so such a row is not enough to apply a fill from."""
        return self.filled_quantity == 0 or self.average_price > 0

    @property
    def daemon_status(self) -> OrderStatus | None:
        """The daemon's vocabulary; None for a status word OpenAlgo does not define (e.g. 'unknown')."""
        st = _STATUS_MAP.get(self.status)
        if st is OrderStatus.OPEN and 0 < self.filled_quantity < self.quantity:
            return OrderStatus.PARTIALLY_FILLED
        return st


@dataclass(frozen=True, slots=True)
class TradeInfo:
    orderid: str
    symbol: str
    exchange: str
    product: str
    action: str
    quantity: int
    average_price: float
    trade_value: float
    timestamp: str
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_raw(cls, d: Mapping[str, Any]) -> TradeInfo:
        return cls(orderid=str(d.get("orderid", "")), symbol=str(d.get("symbol", "")),
                   exchange=str(d.get("exchange", "")), product=str(d.get("product", "")),
                   action=str(d.get("action", "")).upper(), quantity=qty(d.get("quantity")),
                   average_price=num(d.get("average_price")), trade_value=num(d.get("trade_value")),
                   timestamp=str(d.get("timestamp") or ""), raw=dict(d))


@dataclass(frozen=True, slots=True)
class PositionInfo:
    symbol: str
    exchange: str
    product: str
    quantity: int            # signed net quantity; 0 for a position closed today
    average_price: float
    ltp: float
    pnl: float
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_raw(cls, d: Mapping[str, Any]) -> PositionInfo:
        return cls(symbol=str(d.get("symbol", "")), exchange=str(d.get("exchange", "")),
                   product=str(d.get("product", "")), quantity=qty(d.get("quantity")),
                   average_price=num(d.get("average_price")), ltp=num(d.get("ltp")), pnl=num(d.get("pnl")),
                   raw=dict(d))


@dataclass(frozen=True, slots=True)
class FundsInfo:
    availablecash: float
    collateral: float
    m2mrealized: float
    m2munrealized: float
    utiliseddebits: float
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_raw(cls, d: Mapping[str, Any]) -> FundsInfo:
        return cls(availablecash=num(d.get("availablecash")), collateral=num(d.get("collateral")),
                   m2mrealized=num(d.get("m2mrealized")), m2munrealized=num(d.get("m2munrealized")),
                   utiliseddebits=num(d.get("utiliseddebits")), raw=dict(d))


@dataclass(frozen=True, slots=True)
class QuoteInfo:
    ltp: float
    bid: float
    ask: float
    open: float
    high: float
    low: float
    prev_close: float
    volume: float
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_raw(cls, d: Mapping[str, Any]) -> QuoteInfo:
        return cls(ltp=num(d.get("ltp")), bid=num(d.get("bid")), ask=num(d.get("ask")), open=num(d.get("open")),
                   high=num(d.get("high")), low=num(d.get("low")), prev_close=num(d.get("prev_close")),
                   volume=num(d.get("volume")), raw=dict(d))

"""The one definition of each value the processes share: a Fyers tick as it comes, the Tick record the
daemon works with, and a Signal."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

import msgspec

from core.enums import PositionSide, SignalType


class FyersTick(TypedDict, total=False):
    """A Fyers `SymbolUpdate` message in full mode (type 'sf'), exactly as the SDK hands it to on_message: what
    the feeds produce and record. The feed process turns each one it admits into a Tick (below), once.

    Keys may be absent when the exchange sent no value; times are epoch seconds (UTC epoch).
    """

    ltp: float
    vol_traded_today: int
    last_traded_time: int
    exch_feed_time: int
    bid_size: int
    ask_size: int
    bid_price: float
    ask_price: float
    last_traded_qty: int
    tot_buy_qty: int
    tot_sell_qty: int
    avg_trade_price: float
    low_price: float
    high_price: float
    lower_ckt: float
    upper_ckt: float
    open_price: float
    prev_close_price: float
    type: str
    symbol: str
    ch: float
    chp: float


# Field order as the SDK emits it (fyers-datasocket.md §2.2); also the MarketData column order.
TICK_FIELDS: tuple[str, ...] = (
    "ltp", "vol_traded_today", "last_traded_time", "exch_feed_time", "bid_size", "ask_size",
    "bid_price", "ask_price", "last_traded_qty", "tot_buy_qty", "tot_sell_qty", "avg_trade_price",
    "low_price", "high_price", "lower_ckt", "upper_ckt", "open_price", "prev_close_price",
    "type", "symbol", "ch", "chp",
)


Num = int | float  # as the exchange sent it: an int stays an int, so a replay computes exactly alike


class Tick(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """One tick inside the daemon: the compact record a FyersTick becomes at the feed edge (Tick.from_feed),
    which crosses the tick pipes (pipeline.messages) and which the worker and the strategies read by field.

    Why a record and not the dict: it encodes as a bare array (no key names on the wire) and decodes typed, a
    third of the dict's cost to unpickle; frozen, so a tick held back for a pending signal is kept as is.
    A field is None when the exchange sent no value. Field order is TICK_FIELDS (checked at import).
    """

    ltp: Num | None = None
    vol_traded_today: Num | None = None
    last_traded_time: Num | None = None
    exch_feed_time: Num | None = None
    bid_size: Num | None = None
    ask_size: Num | None = None
    bid_price: Num | None = None
    ask_price: Num | None = None
    last_traded_qty: Num | None = None
    tot_buy_qty: Num | None = None
    tot_sell_qty: Num | None = None
    avg_trade_price: Num | None = None
    low_price: Num | None = None
    high_price: Num | None = None
    lower_ckt: Num | None = None
    upper_ckt: Num | None = None
    open_price: Num | None = None
    prev_close_price: Num | None = None
    type: str | None = None
    symbol: str | None = None
    ch: Num | None = None
    chp: Num | None = None

    @classmethod
    def from_feed(cls, msg: Mapping[str, Any]) -> Tick:
        """The record of a Fyers tick dict; keys the record does not have are dropped. A value of the wrong
        kind (a string or bool where a number belongs: nothing the feed's TickValidator judges) becomes None,
        so one odd field cannot make a whole batch undecodable in the worker."""
        values = list(map(msg.get, TICK_FIELDS))
        try:
            return msgspec.convert(values, cls)  # checked in C: the common case costs no more than building it
        except msgspec.ValidationError:
            return cls(*(v if _fits(v, f) else None for v, f in zip(values, TICK_FIELDS, strict=False)))

    def time(self) -> Num | None:
        """The tick's feed time: exch_feed_time, else last_traded_time (None if neither came)."""
        t = self.exch_feed_time
        return self.last_traded_time if t is None else t


_TEXT_FIELDS = frozenset({"type", "symbol"})


def _fits(v: Any, field_name: str) -> bool:
    """Whether v can stand in this field of the record and cross a pipe (msgpack ints are 64-bit)."""
    if field_name in _TEXT_FIELDS:
        return type(v) is str
    return type(v) is float or (type(v) is int and -2**63 <= v < 2**64)


if Tick.__struct_fields__ != TICK_FIELDS:  # the wire order is the field order
    raise RuntimeError("core.types.Tick fields must follow TICK_FIELDS")


@dataclass(frozen=True, slots=True)
class Signal:
    """What a strategy wants done for one symbol; the TradeManager decides whether and how much.

    `symbol` is the OpenAlgo name (e.g. SBIN). `time` is the epoch second of the tick that produced it.
    `position_size` is a requested quantity (0: let the RiskManager size it); `close_fraction` is the
    share of the open quantity a take-profit closes.
    """

    symbol: str
    time: int
    price: float
    type: SignalType
    current_position: PositionSide
    strategy: str
    stop_loss: float | None = None
    take_profit_price: float | None = None
    position_size: int = 0
    close_fraction: float = 1.0
    note: str = ""
    attempt_count: int = 1
    forced: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def signal_id(self) -> str:
        """Deterministic id: the same tick stream yields the same ids, so a replayed or restarted
        day recognises signals it has already acted on."""
        return f"{self.strategy}:{self.symbol}:{self.time}:{self.type.value}:{self.current_position.value}"

    def replace(self, **changes: Any) -> Signal:
        return dataclasses.replace(self, **changes)

    def to_row(self) -> dict[str, Any]:
        """Columns of the StockSignals table."""
        return {
            "signal_id": self.signal_id,
            "symbol": self.symbol,
            "strategy": self.strategy,
            "time": self.time,
            "price": self.price,
            "type": self.type.value,
            "current_position": self.current_position.value,
            "stop_loss": self.stop_loss,
            "take_profit_price": self.take_profit_price,
            "position_size": self.position_size,
            "close_fraction": self.close_fraction,
            "note": self.note,
            "attempt_count": self.attempt_count,
        }

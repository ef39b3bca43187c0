"""The one definition of each message that crosses a process boundary."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypedDict

from core.enums import PositionSide, SignalType


class Tick(TypedDict, total=False):
    """A Fyers `SymbolUpdate` message in full mode (type 'sf'), exactly as the SDK hands it to on_message.

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

    def replace(self, **changes: Any) -> "Signal":
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

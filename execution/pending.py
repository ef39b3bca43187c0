"""An order the TradeManager is still following: what it needs in memory to act on the order's answers."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal

from core.enums import ExitReason, OrderPurpose, OrderSide, OrderStatus
from core.types import Signal


@dataclass
class Pending:
    """An order the TradeManager is still following, with what it needs to act on its fills."""

    order_id: int
    symbol: str
    signal: Signal | None
    purpose: OrderPurpose
    side: OrderSide
    quantity: int
    decision_time: int
    trade_id: int | None = None
    broker_order_id: str | None = None
    filled: int = 0
    avg: Decimal | None = None
    sent_mono: float = field(default_factory=time.monotonic)
    cancel_requested: bool = False
    lookups: int = 0
    next_lookup: float = 0.0
    exit_reason: str = ExitReason.SIGNAL.value
    status: OrderStatus = OrderStatus.SENT_TO_BROKER

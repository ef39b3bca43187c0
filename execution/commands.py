"""What the TradeManager asks of the broker threads (execution.broker_io), each as one frozen value.

Commands are imperative: the broker threads carry them out and report what happened as events
(broker_io.Placed, StatusSeen, LookedUp, CancelAnswered, Probed) on one queue.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class SubmitOrder:
    """Place an order already recorded as SENT_TO_BROKER (write-ahead: the row exists before the request)."""

    order_id: int
    symbol: str
    exchange: str
    action: str
    quantity: int
    product: str
    pricetype: str
    strategy: str


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Cancel a working order at the broker."""

    order_id: int
    broker_order_id: str
    strategy: str


@dataclass(frozen=True, slots=True)
class FindOrder:
    """Search the orderbook for an order whose placement went unanswered (gateway.find_order's criteria)."""

    order_id: int
    criteria: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProbeBroker:
    """Ask the broker something cheap (funds) to learn whether it answers again (circuit breaker)."""


BrokerCommand = SubmitOrder | CancelOrder | FindOrder | ProbeBroker

"""What start-up reconciliation found, each as one frozen, past-tense value (execution.reconcile emits them).

The Reconciler only reads (today's rows, the open trades, the broker's answers) and says what it found; the
TradeManager applies each finding through its own paths (`TradeManager.apply_reconciliation`), in the order
given, so a restart changes orders, positions and the trading state in the same order every time. A value with
a `finding` is also a line of the reconciliation report.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.enums import OutcomeStatus, PositionSide, UnknownPositionPolicy
from core.types import Signal
from execution.broker_io import StatusSeen
from gateway.results import Rejected, Unavailable, Unknown
from pipeline.messages import Outcome

if TYPE_CHECKING:
    from db import Order

BrokerFailure = Rejected | Unavailable | Unknown


# ---------------------------------------------------------------- signals already acted on
@dataclass(frozen=True, slots=True)
class SignalSettled:
    """A signal had no recorded outcome although all its orders had ended (a crash between the two): its
    outcome, read from its last order, is to be recorded so a resumed replay does not act on it again."""

    signal_id: str
    status: OutcomeStatus
    order_id: int
    order_status: str

    @property
    def note(self) -> str:
        return f"settled at restart from order {self.order_id} ({self.order_status})"

    @property
    def finding(self) -> str:
        return f"signal {self.signal_id} had no recorded outcome; its orders say {self.status.value}"


@dataclass(frozen=True, slots=True)
class SignalAnswered:
    """A signal was acted on earlier today: a resumed replay gets this outcome back, not a new order."""

    outcome: Outcome


@dataclass(frozen=True, slots=True)
class OrdersCounted:
    """`orders` orders were made today under one client order id base, so the next one is attempt n+1."""

    base: str
    orders: int


# ---------------------------------------------------------------- orders still working
@dataclass(frozen=True, slots=True)
class OrderNeverSent:
    """An order was recorded but never handed to the broker: it is failed, never sent."""

    order_id: int
    side: str
    quantity: int
    symbol: str

    @property
    def finding(self) -> str:
        return f"order {self.order_id} ({self.side} {self.quantity} {self.symbol}) was never sent: failed"


@dataclass(frozen=True, slots=True)
class OrderResumed:
    """An order handed to the broker before the restart is followed again (with the signal it came from,
    turned into a forced exit when the order closes a position; None when no signal row is left)."""

    order: Order
    signal: Signal | None


@dataclass(frozen=True, slots=True)
class OrderLookupUnanswered:
    """An unanswered placement could not be looked up (the orderbook was unreadable): it is looked up again."""

    order_id: int
    answer: BrokerFailure

    @property
    def finding(self) -> str:
        return (f"order {self.order_id}: the orderbook could not be read ({self.answer}); it stays unresolved and "
                "is looked up again")


@dataclass(frozen=True, slots=True)
class OrderNotAtBroker:
    """An unanswered placement is absent from the broker's orderbook: the broker never got it."""

    order_id: int
    side: str
    quantity: int
    symbol: str

    @property
    def finding(self) -> str:
        return f"order {self.order_id} ({self.side} {self.quantity} {self.symbol}) never reached the broker: failed"


@dataclass(frozen=True, slots=True)
class OrderFoundAtBroker:
    """An unanswered placement was found in the broker's orderbook under `broker_order_id`: it is adopted."""

    order_id: int
    side: str
    quantity: int
    symbol: str
    broker_order_id: str

    @property
    def finding(self) -> str:
        return (f"order {self.order_id} ({self.side} {self.quantity} {self.symbol}) found at the broker as "
                f"{self.broker_order_id}: adopted")


# ---------------------------------------------------------------- positions
@dataclass(frozen=True, slots=True)
class PositionsUnread:
    """The broker's positionbook could not be read: positions were not compared."""

    answer: BrokerFailure

    @property
    def finding(self) -> str:
        return f"positionbook unreadable ({self.answer}); positions not checked: trading stays halted"


@dataclass(frozen=True, slots=True)
class PositionMismatch:
    """The broker holds `broker_quantity` of a symbol (signed: short is negative) and the database
    `db_quantity`; `policy` (reconcile.unknown_position_policy) says what follows."""

    symbol: str
    broker_quantity: int
    db_quantity: int
    broker_average: float | None
    policy: UnknownPositionPolicy

    @property
    def what(self) -> str:
        return f"{self.symbol}: broker holds {self.broker_quantity:+d}, database {self.db_quantity:+d}"

    @property
    def finding(self) -> str:
        if self.policy is UnknownPositionPolicy.HALT:
            return f"{self.what}: trading halted until resolved by hand"
        if not self.broker_quantity:
            return f"{self.what}: the database's trade is closed at the last known price"
        if self.policy is UnknownPositionPolicy.FLATTEN:
            return f"{self.what}: database aligned to the broker and the position is being flattened"
        return f"{self.what}: adopted; it is managed and squared off with the day"


@dataclass(frozen=True, slots=True)
class TradeClosedInBooks:
    """An open trade the broker does not hold as the database says: it is closed at the last known price."""

    trade_id: int
    symbol: str
    quantity: int


@dataclass(frozen=True, slots=True)
class PositionAdopted:
    """A position the broker holds is taken into the books as an open trade ("adopted"); `flatten`: an
    exit for all of it is placed at once."""

    symbol: str
    side: PositionSide
    quantity: int
    average_price: float
    flatten: bool


@dataclass(frozen=True, slots=True)
class HaltHeld:
    """Trading stays HALTED once start-up ends, for `reason` (the first reason stays unless `replace`)."""

    reason: str
    replace: bool = False


Reconciled = (SignalSettled | SignalAnswered | OrdersCounted | OrderNeverSent | OrderResumed | OrderLookupUnanswered
              | OrderNotAtBroker | OrderFoundAtBroker | StatusSeen | PositionsUnread | PositionMismatch
              | TradeClosedInBooks | PositionAdopted | HaltHeld)


def findings(events: list[Reconciled]) -> list[str]:
    """The report's lines for `events`, in order."""
    return [ev.finding for ev in events if isinstance(ev, _REPORTED)]


_REPORTED = (SignalSettled, OrderNeverSent, OrderLookupUnanswered, OrderNotAtBroker, OrderFoundAtBroker,
             PositionsUnread, PositionMismatch)

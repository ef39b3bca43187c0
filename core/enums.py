"""Closed vocabularies. Values are the strings stored in the database and sent over queues."""
from __future__ import annotations

from enum import Enum, unique


class StrEnum(str, Enum):
    def __str__(self) -> str:  # log and store the value, not "Class.MEMBER"
        return str(self.value)


@unique
class SignalType(StrEnum):
    ENTRY = "entry"
    EXIT = "exit"
    TAKE_PROFIT = "take_profit"


@unique
class PositionSide(StrEnum):
    LONG = "long"
    SHORT = "short"


@unique
class OrderSide(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


@unique
class OrderPurpose(StrEnum):
    ENTRY = "entry"
    EXIT = "exit"
    TAKE_PROFIT = "take_profit"
    SQUARE_OFF = "square_off"


@unique
class OrderStatus(StrEnum):
    CREATED = "CREATED"
    SENT_TO_BROKER = "SENT_TO_BROKER"
    OPEN = "OPEN"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    EXECUTED = "EXECUTED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"

    @property
    def is_final(self) -> bool:
        return self in FINAL_ORDER_STATUSES


FINAL_ORDER_STATUSES = frozenset(
    {OrderStatus.EXECUTED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.FAILED}
)


@unique
class OutcomeStatus(StrEnum):
    """What became of a signal, as the worker hears it and as stock_signals.outcome stores it."""

    EXECUTED = "executed"      # the order filled (or signals_only recorded it)
    FAILED = "failed"          # nothing happened; an entry resets the strategy
    INCOMPLETE = "incomplete"  # an exit or take-profit did not complete; the next one merges with it
    IGNORED = "ignored"        # nothing to do, e.g. an exit for a position the daemon does not hold


@unique
class TradingState(StrEnum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"  # exits only
    HALTED = "HALTED"      # no new entries; exits still allowed


@unique
class ExecutionMode(StrEnum):
    SIGNALS_ONLY = "signals_only"
    PAPER = "paper"
    LIVE = "live"


@unique
class PriceType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"
    SL = "SL"
    SL_M = "SL-M"


@unique
class Product(StrEnum):
    MIS = "MIS"
    CNC = "CNC"
    NRML = "NRML"


@unique
class TickPersistence(StrEnum):
    OFF = "off"
    EVERY_TICK = "every_tick"
    SAMPLED = "sampled"


@unique
class UnknownPositionPolicy(StrEnum):
    ADOPT = "adopt"
    FLATTEN = "flatten"
    HALT = "halt"


@unique
class ExitReason(StrEnum):
    SIGNAL = "signal"
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    SYMBOL_LOSS_CAP = "symbol_loss_cap"
    SYMBOL_PROFIT_CAP = "symbol_profit_cap"
    RISK_HALT = "risk_halt"  # flattened by a global loss cap, daily loss limit or drawdown halt
    SQUARE_OFF = "square_off"
    END_OF_DAY = "end_of_day"
    RECONCILIATION = "reconciliation"
    OPERATOR = "operator"  # flattened from the dashboard

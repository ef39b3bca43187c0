"""What the daemon tells the trader's phone: one frozen definition per event, in the past tense.

Each event has a `kind` (its key under `notifications.events` in config.yaml), a default level, and the short
title and text a notification carries. Money is passed as Decimal or float and shown with two decimals.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import IntEnum
from typing import Any, ClassVar


class Level(IntEnum):
    """How much a notification matters; a channel sends those at or above its minimum."""

    INFO = 1
    WARNING = 2
    CRITICAL = 3


def _money(x: Decimal | float) -> str:
    return f"{x:+,.2f}"


@dataclass(frozen=True)
class Event:
    """Base of every notification event."""

    kind: ClassVar[str] = ""
    default_level: ClassVar[Level] = Level.INFO
    noun: ClassVar[str] = "notifications"  # for a storm summary: "12 more <noun> in the last 60 s"
    ends_storms: ClassVar[bool] = False  # the storms' summaries are sent before it (the day's summary comes last)

    def title(self) -> str:
        raise NotImplementedError

    def text(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class DaemonStarted(Event):
    """The daemon process came up and is about to reconcile and start its workers."""

    kind: ClassVar[str] = "daemon_started"
    noun: ClassVar[str] = "start-ups"
    day: str
    mode: str
    feed: str

    def title(self) -> str:
        return "Daemon started"

    def text(self) -> str:
        return f"Trading day {self.day}, mode {self.mode}, feed: {self.feed}. Reconciling with the broker."


@dataclass(frozen=True)
class DaemonReady(Event):
    """Reconciled, workers up, feed running: the daemon trades from now on."""

    kind: ClassVar[str] = "daemon_ready"
    noun: ClassVar[str] = "ready messages"
    symbols: int
    workers: int
    trading_state: str

    def title(self) -> str:
        return "Daemon ready"

    def text(self) -> str:
        return f"{self.symbols} symbols on {self.workers} workers; trading state {self.trading_state}."


@dataclass(frozen=True)
class OrderRejected(Event):
    """The broker said no to an order (at placement or later)."""

    kind: ClassVar[str] = "order_rejected"
    default_level: ClassVar[Level] = Level.WARNING
    noun: ClassVar[str] = "order rejections"
    symbol: str
    side: str
    quantity: int
    purpose: str
    reason: str

    def title(self) -> str:
        return f"Order rejected: {self.side} {self.quantity} {self.symbol}"

    def text(self) -> str:
        return f"The broker rejected the {self.purpose} order {self.side} {self.quantity} {self.symbol}: {self.reason}"


@dataclass(frozen=True)
class OrderFailed(Event):
    """An order never reached the broker (not delivered, or absent from its orderbook)."""

    kind: ClassVar[str] = "order_failed"
    default_level: ClassVar[Level] = Level.WARNING
    noun: ClassVar[str] = "order failures"
    symbol: str
    side: str
    quantity: int
    purpose: str
    reason: str

    def title(self) -> str:
        return f"Order failed: {self.side} {self.quantity} {self.symbol}"

    def text(self) -> str:
        return f"The {self.purpose} order {self.side} {self.quantity} {self.symbol} did not reach the broker: " \
               f"{self.reason}"


@dataclass(frozen=True)
class PositionOpened(Event):
    """An entry order filled: a new open position."""

    kind: ClassVar[str] = "position_opened"
    noun: ClassVar[str] = "positions opened"
    symbol: str
    side: str
    quantity: int
    price: Decimal
    strategy: str

    def title(self) -> str:
        return f"Opened {self.side} {self.symbol}"

    def text(self) -> str:
        return f"{self.side} {self.quantity} {self.symbol} @ {self.price:.2f} ({self.strategy})"


@dataclass(frozen=True)
class PositionClosed(Event):
    """A position's last quantity was closed; `net_pnl` is the whole position's, after charges."""

    kind: ClassVar[str] = "position_closed"
    noun: ClassVar[str] = "positions closed"
    symbol: str
    side: str
    quantity: int
    entry_price: Decimal
    exit_price: Decimal
    net_pnl: Decimal
    reason: str
    capital: Decimal

    def title(self) -> str:
        return f"Closed {self.symbol}: {_money(self.net_pnl)}"

    def text(self) -> str:
        return (f"{self.side} {self.quantity} {self.symbol}: {self.entry_price:.2f} -> {self.exit_price:.2f}, "
                f"net {_money(self.net_pnl)} ({self.reason}); capital {self.capital:,.2f}")


@dataclass(frozen=True)
class CapCrossed(Event):
    """A symbol's loss or profit cap was crossed: its position is being closed by a forced exit."""

    kind: ClassVar[str] = "cap_crossed"
    default_level: ClassVar[Level] = Level.WARNING
    noun: ClassVar[str] = "caps crossed"
    symbol: str
    cap: str
    price: float

    def title(self) -> str:
        return f"{self.symbol}: {self.cap.replace('_', ' ')} crossed"

    def text(self) -> str:
        return f"{self.symbol}: {self.cap.replace('_', ' ')} crossed at {self.price:.2f}; forcing an exit."


@dataclass(frozen=True)
class ExitsForced(Event):
    """A halt closed every open position with forced exits."""

    kind: ClassVar[str] = "exits_forced"
    default_level: ClassVar[Level] = Level.CRITICAL
    noun: ClassVar[str] = "forced flattenings"
    reason: str
    symbols: tuple[str, ...]

    def title(self) -> str:
        return f"Forced exit of {len(self.symbols)} position(s)"

    def text(self) -> str:
        return f"{self.reason}: closing {', '.join(self.symbols)}."


@dataclass(frozen=True)
class TradingHalted(Event):
    """A risk limit halted trading for the day: no new entries."""

    kind: ClassVar[str] = "trading_halted"
    default_level: ClassVar[Level] = Level.CRITICAL
    noun: ClassVar[str] = "halts"
    reason: str

    def title(self) -> str:
        return "Trading halted"

    def text(self) -> str:
        return f"No new entries for the rest of the day: {self.reason}"


@dataclass(frozen=True)
class BreakerOpened(Event):
    """The broker failed repeatedly: new entries stop until it answers again."""

    kind: ClassVar[str] = "breaker_opened"
    default_level: ClassVar[Level] = Level.CRITICAL
    noun: ClassVar[str] = "circuit breaker openings"
    failures: int
    reason: str

    def title(self) -> str:
        return "Broker circuit breaker open"

    def text(self) -> str:
        return f"{self.failures} consecutive broker failures (last: {self.reason}); new entries stop, exits go on."


@dataclass(frozen=True)
class BreakerClosed(Event):
    """The broker answers again: entries resume."""

    kind: ClassVar[str] = "breaker_closed"
    default_level: ClassVar[Level] = Level.WARNING
    noun: ClassVar[str] = "circuit breaker closings"

    def title(self) -> str:
        return "Broker circuit breaker closed"

    def text(self) -> str:
        return "The broker answers again; entries resume."


@dataclass(frozen=True)
class FeedSilent(Event):
    """No tick arrived for a while during market hours."""

    kind: ClassVar[str] = "feed_silent"
    default_level: ClassVar[Level] = Level.CRITICAL
    noun: ClassVar[str] = "feed silences"
    seconds: float

    def title(self) -> str:
        return "Feed silent"

    def text(self) -> str:
        return f"No tick for {self.seconds:.0f}s during market hours."


@dataclass(frozen=True)
class FeedResumed(Event):
    """Ticks arrive again after a silence."""

    kind: ClassVar[str] = "feed_resumed"
    default_level: ClassVar[Level] = Level.WARNING
    noun: ClassVar[str] = "feed recoveries"

    def title(self) -> str:
        return "Feed back"

    def text(self) -> str:
        return "Ticks arrive again."


@dataclass(frozen=True)
class WorkerRestarted(Event):
    """A worker (or the live feed process) died and was restarted."""

    kind: ClassVar[str] = "worker_restarted"
    default_level: ClassVar[Level] = Level.WARNING
    noun: ClassVar[str] = "restarts"
    process: str
    restarts: int

    def title(self) -> str:
        return f"{self.process} restarted"

    def text(self) -> str:
        return f"{self.process} died and was restarted ({self.restarts} restart(s) today)."


@dataclass(frozen=True)
class ReconciliationMismatched(Event):
    """Start-up reconciliation found the database and the broker disagreeing."""

    kind: ClassVar[str] = "reconciliation_mismatched"
    default_level: ClassVar[Level] = Level.CRITICAL
    noun: ClassVar[str] = "reconciliation findings"
    findings: tuple[str, ...]

    def title(self) -> str:
        return f"Reconciliation found {len(self.findings)} issue(s)"

    def text(self) -> str:
        shown = list(self.findings[:10])
        more = len(self.findings) - len(shown)
        return "\n".join(shown + ([f"... and {more} more (see the log)"] if more else []))


@dataclass(frozen=True)
class DayClosed(Event):
    """End of the day: the session report's headline figures."""

    kind: ClassVar[str] = "day_closed"
    noun: ClassVar[str] = "day summaries"
    ends_storms: ClassVar[bool] = True
    day: str
    exits: int
    wins: int
    losses: int
    net_pnl: Decimal
    costs: Decimal
    starting_capital: Decimal
    ending_capital: Decimal
    return_pct: float
    max_drawdown: Decimal
    positions_left: int

    @classmethod
    def from_summary(cls, s: Mapping[str, Any]) -> DayClosed:
        """From the report's summary (ops.report.build_summary)."""
        return cls(day=str(s["day"]), exits=int(s["trades"]), wins=int(s["wins"]), losses=int(s["losses"]),
                   net_pnl=Decimal(str(s["net_pnl"])), costs=Decimal(str(s["costs"])),
                   starting_capital=Decimal(str(s["starting_capital"])),
                   ending_capital=Decimal(str(s["ending_capital"])), return_pct=float(s["return_pct"]),
                   max_drawdown=Decimal(str(s["max_drawdown"])), positions_left=int(s.get("open_positions_left", 0)))

    def title(self) -> str:
        return f"Day {self.day}: net {_money(self.net_pnl)}"

    def text(self) -> str:
        left = f"; {self.positions_left} position(s) left open -- CHECK THE BROKER" if self.positions_left else ""
        return (f"{self.exits} exits ({self.wins} won, {self.losses} lost): net {_money(self.net_pnl)} after "
                f"costs {self.costs:,.2f}; capital {self.starting_capital:,.2f} -> {self.ending_capital:,.2f} "
                f"({self.return_pct:+.2f}%), max drawdown {self.max_drawdown:,.2f}{left}")


@dataclass(frozen=True)
class StormSummarized(Event):
    """What the rate limit held back: how many more of one event came in the last window."""

    kind: ClassVar[str] = "storm_summarized"
    count: int
    of: str
    window_s: float
    level: Level = Level.INFO

    def title(self) -> str:
        return f"{self.count} more {self.of}"

    def text(self) -> str:
        return f"{self.count} more {self.of} in the last {self.window_s:.0f} s (rate-limited; see the log)."


@dataclass(frozen=True)
class NotificationsDropped(Event):
    """A channel's queue was full: this many notifications were dropped, not sent."""

    kind: ClassVar[str] = "notifications_dropped"
    default_level: ClassVar[Level] = Level.WARNING
    count: int

    def title(self) -> str:
        return f"{self.count} notification(s) dropped"

    def text(self) -> str:
        return f"{self.count} notification(s) were dropped: the send queue was full (a slow endpoint?)."


EVENTS: tuple[type[Event], ...] = (DaemonStarted, DaemonReady, OrderRejected, OrderFailed, PositionOpened,
                                   PositionClosed, CapCrossed, ExitsForced, TradingHalted, BreakerOpened,
                                   BreakerClosed, FeedSilent, FeedResumed, WorkerRestarted, ReconciliationMismatched,
                                   DayClosed)
KINDS: dict[str, type[Event]] = {e.kind: e for e in EVENTS}

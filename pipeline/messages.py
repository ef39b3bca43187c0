"""What travels between the processes, with one definition each.

Tick pipe (feed process -> worker), raw frames written by the DataDispatcher:
    FRAME header (seq, through_ts, through_pos, t_wall), then the worker's batch for the cycle if it has one:
    the pickled pair (Fyers tick dicts in feed order, their feed positions). The header is the cycle's marker:
    every tick with time <= through_ts, and every tick numbered <= through_pos, has been dispatched. t_wall:
    when the batch's first tick reached the feed process (latency figures).

Control queue (driver -> worker):
    (CONTROL, n, Outcome | ForceExit | Watch | CapTriggers)
                                               feedback from the TradeManager; n counts this worker's controls
    (TICK_PIPE, connection)                    the feed process was restarted: read this pipe once the old one ends
    (STOP,)                                    drain the tick pipe, flush and exit

Signal queue (workers -> driver):
    (SIGNAL, worker_id, Signal, latency_ms, held, pos)   pos: its tick's feed position; held: the tick waited
                                                         for an earlier signal's outcome
    (WATERMARK, worker_id, seq, through_ts, through_pos, cap_ts, cap_pos, stats)
        echo of frame seq's marker once everything before it is processed, held back to cap_ts/cap_pos (the
        earliest signal awaiting its outcome, or quotes not yet at the paper broker; inf when none)
    (MARKS, worker_id, Marks, pos)                   an open position's price on its first tick of a
                                                     data-second, sequenced with signals at that tick's pos
    (CHECKPOINT, worker_id, seq, state)              strategy and handler state as of frame seq
    (STRATEGY_DISABLED, worker_id, StrategyDisabled) a symbol's strategy raised and is off for the day (once)
    (STOPPED, worker_id, stats)

Feed process -> driver (its report pipe), after each cycle:
    (DELIVERED, seq, through_ts, through_pos, sent, ticks, unroutable, not_ticks, feed_time, final, dropped,
     rejected)
    sent: the workers that were given a frame in this cycle (the others had nothing new); rejected: (reason,
    count) pairs of this cycle's ticks the feed's TickValidator refused
and (RESENT, worker, ticks) after a restarted worker's catch-up.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

FRAME = struct.Struct("<qqqd")

CONTROL = 2
STOP = 3
TICK_PIPE = 4

SIGNAL = 10
WATERMARK = 11
CHECKPOINT = 12
STOPPED = 13
READY = 14
STRATEGY_DISABLED = 15
MARKS = 16

DELIVERED = 20
RESENT = 21

END_OF_FEED = 2**62  # a marker's through_ts when the feed has finished


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of a signal; the worker holds the symbol's ticks until it knows.

    status: executed (the order filled, or signals_only recorded it), failed (nothing happened; an entry
    resets the strategy), incomplete (an exit/take-profit did not complete; the next one merges with it),
    ignored (nothing to do, e.g. an exit for a position the daemon does not hold).
    force_exit: the TradeManager turned the signal into a forced exit (cap crossed): reset the strategy.
    """

    signal_id: str
    symbol: str
    signal_type: str
    status: str
    force_exit: bool = False
    incomplete: dict[str, Any] | None = None  # seed chart 2 incomplete-trade record for this symbol
    note: str = ""


@dataclass(frozen=True, slots=True)
class ForceExit:
    """The TradeManager closed the symbol's position on its own (square-off, cap, reconciliation)."""

    symbol: str
    reason: str


@dataclass(frozen=True, slots=True)
class Watch:
    """Start or stop sending this symbol's quotes to the paper broker (it has an order or a position)."""

    symbol: str
    on: bool


@dataclass(frozen=True, slots=True)
class StrategyDisabled:
    """A symbol's strategy raised: the worker calls it no more today. The TradeManager records it (status
    shows it; a restart the same day keeps it off) and keeps managing the symbol's position."""

    symbol: str
    strategy: str
    reason: str  # the exception, one line; the traceback is in the worker's log
    time: int    # feed time of the tick it raised on (epoch seconds; 0 if not on a tick)


@dataclass(frozen=True, slots=True)
class CapTriggers:
    """The symbol's open position and the prices at which its per-symbol caps are crossed.

    Sent whenever the trade's books change (fill, partial exit, reconciliation); side None clears it (the
    position is closed). The worker checks every tick against the prices, so a cap acts on the crossing tick,
    and reports the position's last price (MARKS) for the global caps. A price of None: that cap is off
    (or force_exit_on_cap is false).
    """

    symbol: str
    side: str | None            # PositionSide value of the open trade
    loss_at: float | None = None    # long: ltp <= loss_at crosses; short: ltp >= loss_at
    profit_at: float | None = None  # long: ltp >= profit_at crosses; short: ltp <= profit_at
    since: int = 0  # feed time the position exists from: a resumed replay's earlier ticks are not checked


@dataclass(frozen=True, slots=True)
class Marks:
    """Prices of open positions at data-second `time`, for the global caps (RiskManager.price_tracker)."""

    time: int
    prices: dict[str, float]


@dataclass(slots=True)
class WorkerStats:
    ticks: int = 0
    bad_ticks: int = 0
    bad_by_reason: dict[str, int] = field(default_factory=dict)
    signals: int = 0
    rows_persisted: int = 0
    held_symbols: int = 0

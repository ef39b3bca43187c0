"""Positions the strategies take up at start: the ledger's open trades (execution/ledger.py, the one owner of
positions) opened before the run starts, so that a daemon restarted mid-day has its strategies manage them with
their own exits instead of leaving them to the TradeManager's caps and square-off.

Read once by the driver after reconciliation (the books are settled then) and handed to each worker with its
start arguments, as the warm-up candles are; a worker feeds them to its strategies after warm-up, before its first
tick (`Strategy.resume_position`). A worker restarted from a checkpoint does not: its strategies' state has the
position. Only a trade opened before the run's start is told: a replay from the open runs the ticks that open
the day's trades again, and the TradeManager answers their signals from the database.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping

from core.config import Config
from execution.ledger import OpenTrade
from strategies.base import HeldPosition

log = logging.getLogger(__name__)


def held_positions(trades: Iterable[OpenTrade], cfg: Config, now: int,
                   entry_note: Callable[[OpenTrade], str] = lambda t: "") -> dict[str, HeldPosition]:
    """Symbol -> the position its strategy resumes: a trade of that symbol's configured strategy, opened before
    `now`. A trade of another strategy (adopted from the broker, or the config changed) stays the TradeManager's
    alone, said once in the log."""
    configured: Mapping[str, str] = {s.symbol: s.strategy for s in cfg.symbols}
    out: dict[str, HeldPosition] = {}
    for t in trades:
        if t.entry_time >= now or t.remaining <= 0:
            continue
        want = configured.get(t.symbol)
        if want is None:
            continue  # an option contract or a symbol no longer configured: no strategy of ours runs on it
        if t.strategy != want:
            log.warning("%s: the open %s position (trade %d, strategy %s) is not strategy %s's: the TradeManager "
                        "manages it (caps, square-off)", t.symbol, t.side.value, t.trade_id, t.strategy, want)
            continue
        out[t.symbol] = HeldPosition(
            side=t.side, entry_price=float(t.entry_price), entry_time=int(t.entry_time), quantity=t.quantity,
            remaining=t.remaining, stop_loss=None if t.stop_loss is None else float(t.stop_loss),
            take_profit_price=None if t.take_profit_price is None else float(t.take_profit_price),
            entry_note=entry_note(t))
    if out:
        log.info("strategies resume %d open position(s) from before the start: %s", len(out),
                 ", ".join(f"{s} {h.side.value}" for s, h in sorted(out.items())))
    return out

"""What the dashboard reads from the database: the day's orders with their state history, signals with their
outcome, closed trades and the capital log; and, for a finished day (read-only), what the live view would hold.

The hub (dashboard.hub) calls these from its own thread, once for every client, and only when the live view
says something changed (a signal, an order, a fill), never per client or per second.
"""
from __future__ import annotations

from datetime import date, timedelta
from datetime import time as dtime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import ist_epoch
from db import ActiveTrade, CapitalLog, DBHandler, Order, OrderEvent, StockSignal, TradeLog

LIMIT = 200  # rows of each kind the page shows (the newest)


def _iso(v: Any) -> str | None:
    return None if v is None else v.isoformat(timespec="seconds")


def day_rows(db: DBHandler, day: date) -> dict[str, Any]:
    """Orders (newest first, each with its events), signals, closed trades and capital changes of the day."""
    t0 = ist_epoch(day, dtime(0, 0))
    t1 = ist_epoch(day + timedelta(days=1), dtime(0, 0))

    def read(s: Session) -> dict[str, Any]:
        orders = list(s.scalars(select(Order).where(Order.trading_date == day).order_by(Order.id.desc())
                                .limit(LIMIT)))
        events: dict[int, list[dict[str, Any]]] = {}
        if orders:
            for e in s.scalars(select(OrderEvent).where(OrderEvent.order_id.in_([o.id for o in orders]))
                               .order_by(OrderEvent.id)):
                events.setdefault(e.order_id, []).append({"ts": _iso(e.ts), "from": e.from_status,
                                                          "to": e.to_status, "detail": e.detail})
        signals = s.scalars(select(StockSignal).where(StockSignal.time >= t0, StockSignal.time < t1)
                            .order_by(StockSignal.id.desc()).limit(LIMIT))
        trades = s.scalars(select(TradeLog).where(TradeLog.trade_date == day).order_by(TradeLog.id.desc())
                           .limit(LIMIT))
        capital = s.scalars(select(CapitalLog).where(CapitalLog.trading_date == day).order_by(CapitalLog.id))
        return {
            "orders": [{"id": o.id, "symbol": o.symbol, "side": o.side, "purpose": o.purpose, "quantity": o.quantity,
                        "status": o.status, "filled": o.filled_quantity, "average_price": o.average_price,
                        "failure": o.failure_tag, "decision_time": o.decision_time, "created_at": _iso(o.created_at),
                        "history": events.get(o.id, [])} for o in orders],
            "signals": [{"signal_id": g.signal_id, "symbol": g.symbol, "strategy": g.strategy, "time": g.time,
                         "type": g.type, "position": g.current_position, "price": g.price, "note": g.note,
                         "outcome": g.outcome, "outcome_note": g.outcome_note} for g in signals],
            "trades": [{"trade_id": t.trade_id, "symbol": t.symbol, "side": t.side, "quantity": t.quantity,
                        "entry_price": t.entry_price, "exit_price": t.exit_price, "exit_time": t.exit_time,
                        "net_pnl": t.net_pnl, "exit_reason": t.exit_reason} for t in trades],
            "capital": [{"ts": _iso(c.ts), "capital": c.capital, "starting": c.starting_capital, "reason": c.reason}
                        for c in capital],
        }
    result: dict[str, Any] = db.transaction("reading the day for the dashboard", read)
    return result


def finished_view(db: DBHandler, day: date) -> dict[str, Any]:
    """The live view's keys for a day that is over, from its rows: positions left open, P&L, trading state."""
    def read(s: Session) -> list[ActiveTrade]:
        return list(s.scalars(select(ActiveTrade).where(ActiveTrade.trading_date == day)))
    open_trades = db.transaction("reading open positions", read)
    rows = day_rows(db, day)
    start = rows["capital"][0]["starting"] if rows["capital"] else None
    capital = rows["capital"][-1]["capital"] if rows["capital"] else start
    state = db.get_state("trading_state") or {}
    same_day = state.get("day") == day.isoformat()
    return {
        "positions": [{"trade_id": t.trade_id, "symbol": t.symbol, "strategy": t.strategy, "side": t.side,
                       "quantity": t.remaining_quantity, "entry_quantity": t.position_size,
                       "entry_price": t.entry_price, "allocated": t.allocated, "stop_loss": t.stop_loss,
                       "take_profit_price": t.take_profit_price, "entry_time": t.entry_time, "last_price": None,
                       "unrealized_pnl": None, "loss_cap_price": None, "profit_cap_price": None}
                      for t in open_trades],
        "pnl": {"capital": capital, "starting_capital": start,
                "realized": None if capital is None or start is None else Decimal(capital) - Decimal(start),
                "unrealized": None, "equity": capital, "high_water": None},
        "trading_state": state.get("state") if same_day else None,
        "state_reason": state.get("reason") if same_day else "no trading state recorded for this day",
        "rows": rows,
    }

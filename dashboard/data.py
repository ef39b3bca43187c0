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

LIMIT = 100  # rows of each kind the page shows (the newest)


def _iso(v: Any) -> str | None:
    return None if v is None else v.isoformat(timespec="seconds")


def day_rows(db: DBHandler, day: date, with_capital: bool = True) -> dict[str, Any]:
    """Orders (newest first, each with its events), signals, closed trades and (`with_capital`) capital changes
    of the day. Plain column selects, no ORM objects: the hub runs this beside the trading thread, every few
    seconds while signals come, and it should cost that thread as little of the interpreter as it can."""
    t0 = ist_epoch(day, dtime(0, 0))
    t1 = ist_epoch(day + timedelta(days=1), dtime(0, 0))

    def read(s: Session) -> dict[str, Any]:
        orders = s.execute(select(Order.id, Order.symbol, Order.side, Order.purpose, Order.quantity, Order.status,
                                  Order.filled_quantity, Order.average_price, Order.failure_tag, Order.decision_time,
                                  Order.created_at)
                           .where(Order.trading_date == day).order_by(Order.id.desc()).limit(LIMIT)).all()
        events: dict[int, list[dict[str, Any]]] = {}
        if orders:
            for oid, ts, frm, to, detail in s.execute(
                    select(OrderEvent.order_id, OrderEvent.ts, OrderEvent.from_status, OrderEvent.to_status,
                           OrderEvent.detail).where(OrderEvent.order_id.in_([o[0] for o in orders]))
                    .order_by(OrderEvent.id)):
                events.setdefault(oid, []).append({"ts": _iso(ts), "from": frm, "to": to, "detail": detail})
        signals = s.execute(select(StockSignal.signal_id, StockSignal.symbol, StockSignal.strategy, StockSignal.time,
                                   StockSignal.type, StockSignal.current_position, StockSignal.price,
                                   StockSignal.note, StockSignal.outcome, StockSignal.outcome_note)
                            .where(StockSignal.time >= t0, StockSignal.time < t1)
                            .order_by(StockSignal.id.desc()).limit(LIMIT)).all()
        trades = s.execute(select(TradeLog.trade_id, TradeLog.symbol, TradeLog.side, TradeLog.quantity,
                                  TradeLog.entry_price, TradeLog.exit_price, TradeLog.exit_time, TradeLog.net_pnl,
                                  TradeLog.exit_reason)
                           .where(TradeLog.trade_date == day).order_by(TradeLog.id.desc()).limit(LIMIT)).all()
        capital = s.execute(select(CapitalLog.ts, CapitalLog.capital, CapitalLog.starting_capital, CapitalLog.reason)
                            .where(CapitalLog.trading_date == day).order_by(CapitalLog.id)).all() \
            if with_capital else []
        order_keys = ("id", "symbol", "side", "purpose", "quantity", "status", "filled", "average_price", "failure",
                      "decision_time", "created_at")
        return {
            "orders": [{**dict(zip(order_keys, (*o[:10], _iso(o[10])), strict=True)), "history": events.get(o[0], [])}
                       for o in orders],
            "signals": [dict(zip(("signal_id", "symbol", "strategy", "time", "type", "position", "price", "note",
                                  "outcome", "outcome_note"), g, strict=True)) for g in signals],
            "trades": [dict(zip(("trade_id", "symbol", "side", "quantity", "entry_price", "exit_price", "exit_time",
                                 "net_pnl", "exit_reason"), t, strict=True)) for t in trades],
            "capital": [{"ts": _iso(c[0]), "capital": c[1], "starting": c[2], "reason": c[3]} for c in capital],
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

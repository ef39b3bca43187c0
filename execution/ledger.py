"""The ledger: capital, open trades (positions), margin reservations and the trade log, and the only writer of them.

Its operations take a typed fact (an entry or exit fill, a reservation) and write the database first -- the
ActiveTrade, TradeLog and CapitalLog rows and, for a broker fill, the order's Fill row, all in ONE transaction --
and change memory only once that has committed, so what the database says is what the daemon believes, and a
fill is never on the books without its Fill row (nor the reverse). Trade ids are assigned here only. Money is
Decimal throughout. Sizing and pre-trade checks read the ledger (risk_manager); they never write it.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, select, update
from sqlalchemy.orm import Session

import db_exec
import notify
from core.costs import NO_CHARGES, Charges, CostTable
from core.enums import PositionSide
from db import ActiveTrade, CapitalLog, DBHandler, TradeLog, Unit, insert_row
from execution.order_events import OrderFilled
from execution.orders import OrderStore
from notify.events import PositionClosed, PositionOpened
from options.contract import is_option_symbol

log = logging.getLogger(__name__)

ZERO = Decimal(0)
LONG = PositionSide.LONG


def D(x: Any) -> Decimal:
    """Decimal from a broker or feed number without binary-float noise."""
    if isinstance(x, Decimal):
        return x
    return Decimal(str(round(float(x), 4)))


def money(x: Decimal) -> Decimal:
    """Rupees to the ledger's precision (four places, half up), as the Money columns keep them."""
    return x.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


@dataclass
class OpenTrade:
    """An open position as the ledger holds it (the ActiveTrade row in memory); only the ledger changes it."""

    trade_id: int
    symbol: str
    strategy: str
    side: PositionSide
    entry_time: int
    entry_price: Decimal
    quantity: int            # filled at entry
    remaining: int
    allocated: Decimal       # margin blocked for the remaining quantity
    margin_multiplier: Decimal
    stop_loss: Decimal | None = None
    take_profit_price: Decimal | None = None
    charges: Charges = NO_CHARGES  # the entry order's charges, realized with the exit that closes the trade
    realized_tp: Decimal = ZERO
    closed_tp: int = 0
    entry_order_id: int | None = None

    @property
    def costs(self) -> Decimal:
        return self.charges.total

    def pnl(self, price: Decimal, qty: int) -> Decimal:
        """Gross P&L of `qty` of this trade at `price`."""
        diff = price - self.entry_price if self.side is PositionSide.LONG else self.entry_price - price
        return diff * qty


@dataclass(frozen=True, slots=True)
class FillReading:
    """The broker's cumulative reading of an order that a fill came from: the order's Fill row is keyed by it,
    so the same reading is never booked twice."""

    order_id: int
    cumulative_quantity: int
    average_price: Decimal


@dataclass(frozen=True, slots=True)
class EntryFilled:
    """An entry order filled `quantity` more at `price` (the delta of two readings). `trade_id` None opens a new
    trade; otherwise the fill adds to that trade. `reading` None: a position adopted at reconciliation (no order).
    `margin_multiplier` is the sizing's leverage for the symbol; only a new trade uses it."""

    symbol: str
    side: PositionSide
    quantity: int
    price: Decimal
    time: int
    margin_multiplier: Decimal
    strategy: str
    stop_loss: Decimal | None = None
    take_profit_price: Decimal | None = None
    reading: FillReading | None = None
    trade_id: int | None = None


@dataclass(frozen=True, slots=True)
class ExitFilled:
    """An exit order of trade `trade_id` filled `quantity` more at `price`; `charges` is what this fill added to its
    order's charges (charges are per order). `reading` None: a trade closed by reconciliation (no order)."""

    trade_id: int
    quantity: int
    price: Decimal
    time: int
    reason: str
    charges: Charges = NO_CHARGES
    reading: FillReading | None = None


@dataclass(frozen=True, slots=True)
class ExitBooked:
    """What an exit fill did to the books, for the caller's log, the cooldown and the worker's feedback."""

    trade_id: int
    symbol: str
    quantity: int
    price: Decimal
    gross: Decimal
    costs: Decimal
    net: Decimal
    full: bool
    capital: Decimal
    charges: Charges = NO_CHARGES  # costs, charge by charge


class Ledger:
    """Capital, open trades, reservations and the trade log of one trading day (one thread: the trading loop)."""

    def __init__(self, db: DBHandler, day: date, start_capital: Decimal, cost_table: CostTable):
        self.db = db
        self.day = day
        self.orders = OrderStore(db)
        self.cost_table = cost_table  # the day's charge rates; the config check made sure they cover it
        self._start_capital = start_capital
        self._capital = start_capital
        self._trades: dict[int, OpenTrade] = {}
        self._reserved: dict[int, Decimal] = {}  # entry order id -> margin reserved while it is pending
        self._prices: dict[str, Decimal] = {}    # last known price per symbol (marks and fills)
        self._last_trade_id = 0

    # ------------------------------------------------------------------ reading
    @property
    def capital(self) -> Decimal:
        return self._capital

    @property
    def start_capital(self) -> Decimal:
        return self._start_capital

    @property
    def trades(self) -> Mapping[int, OpenTrade]:
        """Open trades by id (read only: the ledger changes them)."""
        return self._trades

    @property
    def reserved(self) -> Mapping[int, Decimal]:
        return self._reserved

    @property
    def prices(self) -> Mapping[str, Decimal]:
        return self._prices

    @property
    def available_capital(self) -> Decimal:
        """Capital less the margin of open trades and of pending entries."""
        used = sum((t.allocated for t in self._trades.values()), ZERO) + sum(self._reserved.values(), ZERO)
        return self._capital - used

    def trade_for(self, symbol: str) -> OpenTrade | None:
        return next((t for t in self._trades.values() if t.symbol == symbol), None)

    def unrealized_pnl(self) -> Decimal:
        """Open trades at their last known prices (a trade without one counts nothing)."""
        total = ZERO
        prices = self._prices
        for t in self._trades.values():  # t.pnl(price, t.remaining), inlined: this runs on every mark
            price = prices.get(t.symbol)
            if price is not None:
                total += (price - t.entry_price if t.side is LONG else t.entry_price - price) * t.remaining
        return total

    def order_charges(self, is_buy: bool, price: Any, quantity: int, symbol: str = "") -> Charges:
        """The charges of one executed order of `quantity` at average `price` today; an option contract's
        (by its symbol) from the option rates, on the premium."""
        if quantity <= 0:
            return NO_CHARGES
        return self.cost_table.order(is_buy, D(price), quantity, self.day, option=is_option_symbol(symbol))

    # ------------------------------------------------------------------ state from the database
    def load(self) -> None:
        """Rebuild capital, open trades and the last trade id from the database (a day's first load records
        the day's starting capital)."""
        def go(s: Session) -> tuple[Decimal, Decimal, dict[int, OpenTrade], int]:
            start, capital = self._start_capital, self._capital
            last = s.scalars(select(CapitalLog).where(CapitalLog.trading_date == self.day)
                             .order_by(CapitalLog.id.desc()).limit(1)).first()
            if last is not None:
                start, capital = D(last.starting_capital), D(last.capital)
            else:
                s.add(CapitalLog(trading_date=self.day, starting_capital=start, capital=capital,
                                 change=ZERO, percent_gain=0.0, reason="start of day"))
            trades = {row.trade_id: _open_trade(row) for row in s.scalars(select(ActiveTrade))}
            top = max(s.execute(select(func.max(TradeLog.trade_id))).scalar() or 0,
                      s.execute(select(func.max(ActiveTrade.trade_id))).scalar() or 0)
            return start, capital, trades, int(top)
        self._start_capital, self._capital, self._trades, self._last_trade_id = \
            self.db.transaction("load the ledger", go)
        log.info("ledger: capital %s (day start %s), %d open trades", self._capital, self._start_capital,
                 len(self._trades))

    # ------------------------------------------------------------------ reservations and marks
    def reserve(self, order_id: int, amount: Decimal) -> None:
        """Hold margin for a pending entry order (persisted with the order itself, as Order.reserved)."""
        self._reserved[order_id] = amount

    def release(self, order_id: int) -> None:
        """The entry order is final: its fills are trades now, the rest of its margin is free."""
        self._reserved.pop(order_id, None)

    def mark(self, symbol: str, price: Decimal) -> None:
        """The symbol's last known price, for unrealized P&L."""
        self._prices[symbol] = price

    # ------------------------------------------------------------------ fills
    def _record_fill(self, s: Unit, reading: FillReading | None, quantity: int, price: Decimal,
                     trade_id: int | None) -> None:
        """The order's Fill row (and its filled quantity and average), in the ledger's transaction."""
        if reading is not None:
            self.orders.apply(reading.order_id, OrderFilled(reading.cumulative_quantity, reading.average_price,
                                                            quantity, price, trade_id), s=s)

    def entry(self, fill: EntryFilled) -> OpenTrade:
        """Book an entry fill: a new open trade (`fill.trade_id` None), or more quantity of an open one at a new
        average price. Returns the trade as booked."""
        if fill.trade_id is None:
            return self._open(fill)
        if fill.trade_id not in self._trades:  # its trade was closed (a forced exit) while the order still filled
            log.warning("entry order %s filled %d %s more after its trade %d closed: booked as a new trade",
                        None if fill.reading is None else fill.reading.order_id, fill.quantity, fill.symbol,
                        fill.trade_id)
            return self._open(fill)
        return self._add(fill.trade_id, fill)

    def _open(self, f: EntryFilled) -> OpenTrade:
        price, margin_val = f.price, f.margin_multiplier
        trade = OpenTrade(trade_id=self._last_trade_id + 1, symbol=f.symbol, strategy=f.strategy, side=f.side,
                          entry_time=int(f.time), entry_price=price, quantity=f.quantity, remaining=f.quantity,
                          allocated=money(f.quantity * price / margin_val), margin_multiplier=margin_val,
                          stop_loss=f.stop_loss, take_profit_price=f.take_profit_price,
                          charges=self.order_charges(f.side is PositionSide.LONG, price, f.quantity, f.symbol),
                          entry_order_id=None if f.reading is None else f.reading.order_id)

        def go(s: Unit) -> None:
            insert_row(s, ActiveTrade, dict(
                trade_id=trade.trade_id, symbol=f.symbol, strategy=f.strategy, side=f.side.value,
                trading_date=self.day, entry_time=trade.entry_time, entry_price=price, stop_loss=trade.stop_loss,
                take_profit_price=trade.take_profit_price, position_size=f.quantity, remaining_quantity=f.quantity,
                allocated=trade.allocated, margin_multiplier=margin_val, entry_order_id=trade.entry_order_id,
                costs=trade.costs, **trade.charges.as_dict()))
            self._record_fill(s, f.reading, f.quantity, price, trade.trade_id)
        self.db.unit(f"register entry {f.symbol}", go)
        self._last_trade_id = trade.trade_id
        self._trades[trade.trade_id] = trade
        self._prices.setdefault(f.symbol, price)
        log.info("entry registered: trade %d %s %s %d @ %s (margin %s)", trade.trade_id, f.side.value, f.symbol,
                 f.quantity, price, trade.allocated)
        notify.emit(PositionOpened(f.symbol, f.side.value, f.quantity, price, f.strategy))
        return trade

    def _add(self, trade_id: int, f: EntryFilled) -> OpenTrade:
        """A later partial fill of the same entry order. The order's charges are recomputed on its whole fill
        (brokerage is per order, capped once), at the broker's average price for the order when read."""
        t = self._trades[trade_id]
        new_qty = t.quantity + f.quantity
        avg = money((t.entry_price * t.quantity + f.price * f.quantity) / new_qty)
        remaining = t.remaining + f.quantity
        allocated = money(remaining * avg / t.margin_multiplier)
        order_avg = avg if f.reading is None else f.reading.average_price
        charges = self.order_charges(t.side is PositionSide.LONG, order_avg, new_qty, t.symbol)

        def go(s: Unit) -> None:
            _update_trade(s, trade_id, position_size=new_qty, remaining_quantity=remaining, entry_price=avg,
                          allocated=allocated, costs=charges.total, **charges.as_dict())
            self._record_fill(s, f.reading, f.quantity, f.price, trade_id)
        self.db.unit(f"add fill to trade {trade_id}", go)
        t.quantity, t.remaining, t.entry_price, t.allocated = new_qty, remaining, avg, allocated
        t.charges = charges
        return t

    def exit(self, fill: ExitFilled) -> ExitBooked | None:
        """Book an exit fill: partial when quantity stays open, full when it closes the trade. Capital moves by
        the net P&L: gross less the fill's charges and, when the trade closes, the entry's charges. A fill of a
        trade that is not open is recorded (its Fill row) and leaves the books alone: None."""
        t = self._trades.get(fill.trade_id)
        if t is None:
            log.error("order %s filled %d but its trade %s is not open; fill recorded, books unchanged",
                      None if fill.reading is None else fill.reading.order_id, fill.quantity, fill.trade_id)
            self.db.unit("record orphan fill", lambda s: self._record_fill(
                s, fill.reading, fill.quantity, fill.price, fill.trade_id))
            return None
        price = fill.price
        quantity = min(fill.quantity, t.remaining)
        full = quantity >= t.remaining
        gross = money(t.pnl(price, quantity))
        charges = fill.charges + (t.charges if full else NO_CHARGES)
        costs = money(charges.total)
        net = gross - costs
        capital = self._capital + net
        employed = money(quantity * t.entry_price / t.margin_multiplier)
        remaining = t.remaining - quantity
        allocated = ZERO if full else money(remaining * t.entry_price / t.margin_multiplier)
        pct = float(net / employed * 100) if employed else 0.0
        gain = float((capital - self._start_capital) / self._start_capital * 100)
        exit_order_id = None if fill.reading is None else fill.reading.order_id

        def go(s: Unit) -> None:
            insert_row(s, TradeLog, dict(
                trade_id=t.trade_id, trade_date=self.day, symbol=t.symbol, strategy=t.strategy, side=t.side.value,
                trade_type="full" if full else "partial", quantity=quantity, entry_time=t.entry_time,
                entry_price=t.entry_price, exit_time=int(fill.time), exit_price=price, gross_pnl=gross, costs=costs,
                net_pnl=net, capital_employed=employed, capital_at_exit=capital, percent_change=pct,
                exit_reason=fill.reason, exit_order_id=exit_order_id, **charges.as_dict()))
            insert_row(s, CapitalLog, dict(
                trading_date=self.day, trade_id=t.trade_id, starting_capital=self._start_capital, capital=capital,
                change=net, percent_gain=gain, reason=f"exit {t.symbol} ({fill.reason})"))
            if full:
                db_exec.run(s.connection(), _DELETE_TRADE, {"tid": t.trade_id})
            else:
                _update_trade(s, t.trade_id, remaining_quantity=remaining, allocated=allocated,
                              realized_pnl_tp=t.realized_tp + net, position_closed_tp=t.closed_tp + quantity)
            self._record_fill(s, fill.reading, fill.quantity, price, t.trade_id)
        self.db.unit(f"register exit {t.symbol}", go)
        self._capital = capital
        if full:
            del self._trades[t.trade_id]
        else:
            t.remaining, t.allocated = remaining, allocated
            t.realized_tp += net
            t.closed_tp += quantity
        self._prices[t.symbol] = price
        log.info("%s exit registered: trade %d %s %d @ %s, net %s (gross %s, costs %s); capital %s",
                 "full" if full else "partial", t.trade_id, t.symbol, quantity, price, net, gross, costs, capital)
        if full:
            notify.emit(PositionClosed(t.symbol, t.side.value, t.quantity, t.entry_price, price, t.realized_tp + net,
                                       fill.reason, capital))
        return ExitBooked(t.trade_id, t.symbol, quantity, price, gross, costs, net, full, capital, charges)


ACTIVE_TRADES = cast(Table, ActiveTrade.__table__)
# the SET clause is the execute parameters that name columns
_UPDATE_TRADE = update(ACTIVE_TRADES).where(ACTIVE_TRADES.c.trade_id == bindparam("tid"))
_DELETE_TRADE = delete(ACTIVE_TRADES).where(ACTIVE_TRADES.c.trade_id == bindparam("tid"))


def _update_trade(s: Unit, trade_id: int, **values: Any) -> None:
    """Change an open trade's row (it exists: the trade is open), as one Core UPDATE in `s`'s transaction."""
    done = db_exec.run(s.connection(), _UPDATE_TRADE, {**values, "tid": trade_id})
    if done.rowcount != 1:
        raise RuntimeError(f"open trade {trade_id} has no row in active_trades")


def _open_trade(row: ActiveTrade) -> OpenTrade:
    return OpenTrade(
        trade_id=row.trade_id, symbol=row.symbol, strategy=row.strategy, side=PositionSide(row.side),
        entry_time=row.entry_time, entry_price=D(row.entry_price), quantity=row.position_size,
        remaining=row.remaining_quantity, allocated=D(row.allocated), margin_multiplier=D(row.margin_multiplier),
        stop_loss=None if row.stop_loss is None else D(row.stop_loss),
        take_profit_price=None if row.take_profit_price is None else D(row.take_profit_price),
        charges=Charges.of(row), realized_tp=D(row.realized_pnl_tp), closed_tp=row.position_closed_tp,
        entry_order_id=row.entry_order_id)

"""RiskManager (seed chart 3): capital, position sizing, pre-trade checks, and the books of open trades.

It lives in the driver process beside the TradeManager and is the only owner of capital and active
trades. Every change is written to the database first and applied in memory only once the write has
committed, so what the database says is what the daemon believes. Money is Decimal throughout.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

import notify
from core.config import Config
from core.costs import NO_CHARGES, Charges
from core.enums import PositionSide, TradingState
from db import ActiveTrade, CapitalLog, DBHandler, TradeLog
from notify.events import PositionClosed, PositionOpened

log = logging.getLogger(__name__)

PAISE = Decimal("0.01")
ZERO = Decimal(0)


def D(x: Any) -> Decimal:
    """Decimal from a broker or feed number without binary-float noise."""
    if isinstance(x, Decimal):
        return x
    return Decimal(str(round(float(x), 4)))


def money(x: Decimal) -> Decimal:
    return x.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


@dataclass
class OpenTrade:
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
        diff = price - self.entry_price if self.side is PositionSide.LONG else self.entry_price - price
        return diff * qty


@dataclass(frozen=True)
class Assessment:
    eligible: bool
    units: int = 0
    allocated: Decimal = ZERO
    reason: str = ""
    tag: str | None = None


@dataclass
class Exit:
    """What an exit fill did, for the caller's log and the worker's feedback."""

    trade_id: int
    quantity: int
    price: Decimal
    gross: Decimal
    costs: Decimal
    net: Decimal
    full: bool
    capital: Decimal
    charges: Charges = NO_CHARGES  # costs, charge by charge


class RiskManager:
    def __init__(self, cfg: Config, db: DBHandler, day: date):
        self.cfg = cfg
        self.risk = cfg.risk
        self.db = db
        self.day = day
        self.lock = threading.RLock()  # readers (heartbeat, status) take it; the TradeManager thread writes
        self.start_capital = D(cfg.risk.capital)
        self.capital = self.start_capital
        self.active_trades: dict[int, OpenTrade] = {}
        self.reserved: dict[int, Decimal] = {}  # entry order id -> margin reserved while it is pending
        self.margin_dict: dict[str, Decimal] = {}
        self.price_tracker: dict[str, Decimal] = {}
        self.cooldown_until: dict[str, float] = {}
        self.state = TradingState.HALTED
        self.state_reason = "starting"
        self.high_water = self.start_capital
        self.trade_counter = 0
        self.halted_earlier: str | None = None  # a risk halt from before a restart today stays in force
        self.cost_table = cfg.costs.table  # the day's charge rates; the config check made sure they cover it
        self.halt_is_loss = False  # the last halt came from a loss cap, the daily loss limit or drawdown

    # ------------------------------------------------------------------ state from the database
    def load(self) -> None:
        """Rebuild capital, open trades, cooldowns and trading state from the database."""
        def go(s: Session) -> None:
            last = s.scalars(select(CapitalLog).where(CapitalLog.trading_date == self.day)
                             .order_by(CapitalLog.id.desc()).limit(1)).first()
            if last is not None:
                self.start_capital = D(last.starting_capital)
                self.capital = D(last.capital)
            else:
                s.add(CapitalLog(trading_date=self.day, starting_capital=self.start_capital, capital=self.capital,
                                 change=ZERO, percent_gain=0.0, reason="start of day"))
            self.active_trades = {}
            for row in s.scalars(select(ActiveTrade)):
                self.active_trades[row.trade_id] = OpenTrade(
                    trade_id=row.trade_id, symbol=row.symbol, strategy=row.strategy, side=PositionSide(row.side),
                    entry_time=row.entry_time, entry_price=D(row.entry_price), quantity=row.position_size,
                    remaining=row.remaining_quantity, allocated=D(row.allocated),
                    margin_multiplier=D(row.margin_multiplier),
                    stop_loss=None if row.stop_loss is None else D(row.stop_loss),
                    take_profit_price=None if row.take_profit_price is None else D(row.take_profit_price),
                    charges=Charges.of(row), realized_tp=D(row.realized_pnl_tp), closed_tp=row.position_closed_tp,
                    entry_order_id=row.entry_order_id)
            from sqlalchemy import func
            mx = [s.execute(select(func.max(TradeLog.trade_id))).scalar() or 0,
                  s.execute(select(func.max(ActiveTrade.trade_id))).scalar() or 0]
            self.trade_counter = max(mx)
        self.db.transaction("load risk state", go)
        saved = self.db.get_state("risk") or {}
        if saved.get("day") == self.day.isoformat():
            self.cooldown_until = {k: float(v) for k, v in saved.get("cooldown_until", {}).items()}
            self.high_water = D(saved.get("high_water", self.capital))
            if saved.get("state") == TradingState.HALTED.value and saved.get("sticky"):
                self.halted_earlier = saved.get("reason", "risk: halted earlier today")
        self.high_water = max(self.high_water, self.capital)
        log.info("risk state: capital %s (day start %s), %d open trades", self.capital, self.start_capital,
                 len(self.active_trades))

    def save_state(self) -> None:
        self.db.set_state("risk", {
            "day": self.day.isoformat(), "cooldown_until": self.cooldown_until, "high_water": str(self.high_water),
            "state": self.state.value, "reason": self.state_reason,
            "sticky": self.state is TradingState.HALTED and self.state_reason.startswith("risk:")})

    def set_state(self, state: TradingState, reason: str) -> None:
        """ACTIVE, REDUCING (exits only) or HALTED (no entries; exits still allowed); logged and persisted."""
        if state is self.state and reason == self.state_reason:
            return
        old = self.state
        self.db.set_state("trading_state", {"state": state.value, "reason": reason})
        with self.lock:
            self.state, self.state_reason = state, reason
        self.save_state()
        log.warning("trading state %s -> %s: %s", old.value, state.value, reason) if state is not TradingState.ACTIVE \
            else log.info("trading state %s -> %s: %s", old.value, state.value, reason)

    # ------------------------------------------------------------------ figures
    @property
    def available_capital(self) -> Decimal:
        used = sum((t.allocated for t in self.active_trades.values()), ZERO) + sum(self.reserved.values(), ZERO)
        return self.capital - used

    def unrealized_pnl(self) -> Decimal:
        total = ZERO
        for t in self.active_trades.values():
            price = self.price_tracker.get(t.symbol)
            if price is not None:
                total += t.pnl(price, t.remaining)
        return total

    def equity(self) -> Decimal:
        return self.capital + self.unrealized_pnl()

    def get_current_global_returns(self) -> float:
        return float((self.equity() - self.start_capital) / self.start_capital * 100)

    def get_current_returns_for_symbol(self, symbol: str, current_price: Any) -> float:
        price = D(current_price)
        returns = 0.0
        for t in self.active_trades.values():
            if t.symbol == symbol and t.allocated > 0:
                returns += float(t.pnl(price, t.remaining) / t.allocated * 100)
        return returns

    def cap_prices(self, trade: OpenTrade) -> tuple[Decimal | None, Decimal | None]:
        """The prices at which the trade's gross return on margin (get_current_returns_for_symbol) reaches
        symbol_max_loss_pct and symbol_max_profit_pct, so a worker can check each tick with one comparison.
        Long: at or below the loss price, at or above the profit price; short the other way round."""
        if trade.remaining <= 0 or trade.allocated <= 0:
            return None, None
        per_pct = trade.allocated / (100 * trade.remaining)  # price move per point of return on margin
        sign = 1 if trade.side is PositionSide.LONG else -1

        def at(pct: float | None) -> Decimal | None:
            return None if pct is None else trade.entry_price + sign * D(pct) * per_pct
        return at(self.risk.symbol_max_loss_pct), at(self.risk.symbol_max_profit_pct)

    def track_prices(self, symbol: str, price: Any) -> None:
        with self.lock:
            self.price_tracker[symbol] = D(price)

    def trade_for(self, symbol: str) -> OpenTrade | None:
        return next((t for t in self.active_trades.values() if t.symbol == symbol), None)

    def use_broker_margin(self, symbol: str, multiplier: Decimal) -> Decimal:
        """The broker's leverage for `symbol` (from its margin call) replaces the configured multiplier for the
        day's later sizing; returns it as kept (two decimals)."""
        lev = multiplier.quantize(Decimal("0.01"))
        with self.lock:
            self.margin_dict[symbol] = lev
        return lev

    def hold_halt(self, reason: str, replace: bool = False) -> None:
        """Keep trading HALTED once start-up ends (a reconciliation finding); the first reason stays unless
        `replace`."""
        if replace or not self.halted_earlier:
            self.halted_earlier = reason

    def margin_for(self, symbol: str) -> Decimal:
        return self.margin_dict.get(symbol, D(self.risk.margin_multiplier))

    # ------------------------------------------------------------------ sizing and checks
    def order_charges(self, is_buy: bool, price: Any, quantity: int) -> Charges:
        """The charges of one executed order of `quantity` at average `price` today."""
        if quantity <= 0:
            return NO_CHARGES
        return self.cost_table.order(is_buy, D(price), quantity, self.day)

    def _costs_blocker(self, units: int, entry: Decimal, stop: Decimal, long: bool) -> str | None:
        """Why a trade is not worth its charges: round trip (entry, exit at the stop) against planned risk."""
        share = self.risk.max_cost_share_of_risk
        if share is None:
            return None
        planned = units * abs(entry - stop)
        trip = self.cost_table.round_trip(long, entry, stop, units, self.day).total
        if planned > 0 and trip <= D(share) * planned:
            return None
        return (f"expected round-trip charges Rs {trip} exceed {share:g} of the planned risk "
                f"Rs {planned.quantize(PAISE)} ({units} x {abs(entry - stop)}) (risk.max_cost_share_of_risk)")

    def calculate_position_size(self, entry_price: Any, stop_loss: Any, margin_val: Decimal, symbol: str) -> int:
        entry, stop = D(entry_price), D(stop_loss)
        price_risk = abs(entry - stop)
        if price_risk <= 0 or entry <= 0:
            log.info("%s: non-positive price risk (entry %s, stop %s): 0 units", symbol, entry, stop)
            return 0
        risk_amount = self.capital * D(self.risk.risk_per_trade)
        margin_price = entry / margin_val
        units_risk = risk_amount / price_risk
        units_afford = max(self.available_capital, ZERO) / margin_price
        units_cap = D(self.risk.max_allocation) / margin_price
        units_notional = D(self.risk.max_order_notional) / entry
        final = int(min(units_risk, units_afford, units_cap, units_notional))
        log.debug("%s sizing: risk %s afford %s cap %s notional %s -> %d", symbol, int(units_risk), int(units_afford),
                  int(units_cap), int(units_notional), final)
        return max(final, 0)

    def assess_trade(self, symbol: str, entry_price: Any, stop_loss: Any, now: float, pending_entries: int = 0,
                     long: bool | None = None) -> Assessment:
        """Size an entry and check it; `long` defaults to what the stop implies (below the entry: long)."""
        if self.state is not TradingState.ACTIVE:
            return Assessment(False, reason=f"trading {self.state.value}: {self.state_reason}",
                              tag=f"RISK_TRADING_{self.state.value}")
        until = self.cooldown_until.get(symbol, 0.0)
        if now < until:
            return Assessment(False, reason=f"cooling down after a losing exit for {int(until - now)}s more",
                              tag="RISK_COOLDOWN")
        if stop_loss is None:
            return Assessment(False, reason="signal has no stop loss to size from", tag="RISK_NO_STOP")
        margin_val = self.margin_for(symbol)
        units = self.calculate_position_size(entry_price, stop_loss, margin_val, symbol)
        allocated = money(units * D(entry_price) / margin_val)
        if units <= 0:
            return Assessment(False, reason="zero units calculated", tag="RISK_ZERO_UNITS")
        if self.available_capital < allocated:
            return Assessment(False, units, allocated, "insufficient capital", "RISK_INSUFFICIENT_CAPITAL")
        if len(self.active_trades) + pending_entries >= self.risk.max_active_trades:
            return Assessment(False, units, allocated, "max active trades reached", "RISK_MAX_ACTIVE_TRADES")
        if units * D(entry_price) > D(self.risk.max_order_notional):
            return Assessment(False, units, allocated, "order notional above the cap", "RISK_NOTIONAL_CAP")
        entry, stop = D(entry_price), D(stop_loss)
        why = self._costs_blocker(units, entry, stop, long if long is not None else stop < entry)
        if why is not None:
            return Assessment(False, units, allocated, why, "RISK_COSTS_TOO_HIGH")
        return Assessment(True, units, allocated, "trade approved")

    def halt_trading_check(self) -> tuple[bool, str]:
        """Global caps, daily loss limit and drawdown from the day's high-water mark; a halt is sticky.
        `halt_is_loss` says whether the halt came from losing money (not the profit cap)."""
        if self.state is TradingState.HALTED:
            return True, self.state_reason
        r = self.risk
        equity = self.equity()
        if equity > self.high_water:
            self.high_water = equity
        returns = float((equity - self.start_capital) / self.start_capital * 100)
        reason = None
        if r.global_max_loss_pct is not None and returns <= r.global_max_loss_pct:
            reason = f"risk: global loss cap breached ({returns:.2f}% <= {r.global_max_loss_pct}%)"
        elif r.global_max_profit_pct is not None and returns >= r.global_max_profit_pct:
            reason = f"risk: global profit cap reached ({returns:.2f}% >= {r.global_max_profit_pct}%)"
        elif r.daily_loss_limit is not None and self.start_capital - equity >= D(r.daily_loss_limit):
            reason = f"risk: daily loss limit reached (loss {self.start_capital - equity:.2f} >= {r.daily_loss_limit})"
        elif r.max_drawdown_pct is not None and self.high_water > 0:
            dd = float((self.high_water - equity) / self.high_water * 100)
            if dd >= r.max_drawdown_pct:
                reason = (f"risk: drawdown {dd:.2f}% from the day's high of {self.high_water:.2f} "
                          f">= {r.max_drawdown_pct}%")
        if reason:
            self.halt_is_loss = "profit cap" not in reason
            self.set_state(TradingState.HALTED, reason)
            return True, reason
        return False, ""

    # ------------------------------------------------------------------ books
    def reserve(self, order_id: int, amount: Decimal) -> None:
        with self.lock:
            self.reserved[order_id] = amount

    def release(self, order_id: int) -> None:
        with self.lock:
            self.reserved.pop(order_id, None)

    def next_trade_id(self) -> int:
        """The id the next registered entry gets. Trade ids are assigned here only, so the entry's Fill row,
        written in the same transaction as the trade, names the trade it opens."""
        return self.trade_counter + 1

    def register_trade_entry(self, *, symbol: str, strategy: str, side: PositionSide, quantity: int, price: Any,
                             time: int, stop_loss: Any, take_profit_price: Any, entry_order_id: int | None,
                             extra: Callable[[Session], None] | None = None) -> int:
        """A new open trade from the entry order's actual fill."""
        price = D(price)
        margin_val = self.margin_for(symbol)
        trade = OpenTrade(trade_id=self.next_trade_id(), symbol=symbol, strategy=strategy, side=side,
                          entry_time=int(time), entry_price=price, quantity=quantity, remaining=quantity,
                          allocated=money(quantity * price / margin_val), margin_multiplier=margin_val,
                          stop_loss=None if stop_loss is None else D(stop_loss),
                          take_profit_price=None if take_profit_price is None else D(take_profit_price),
                          charges=self.order_charges(side is PositionSide.LONG, price, quantity),
                          entry_order_id=entry_order_id)

        def go(s: Session) -> None:
            s.add(ActiveTrade(trade_id=trade.trade_id, symbol=symbol, strategy=strategy, side=side.value,
                              trading_date=self.day, entry_time=trade.entry_time, entry_price=price,
                              stop_loss=trade.stop_loss, take_profit_price=trade.take_profit_price,
                              position_size=quantity, remaining_quantity=quantity, allocated=trade.allocated,
                              margin_multiplier=margin_val, entry_order_id=entry_order_id, costs=trade.costs,
                              **trade.charges.as_dict()))
            if extra:
                extra(s)
        self.db.transaction(f"register entry {symbol}", go)
        with self.lock:
            self.trade_counter = trade.trade_id
            self.active_trades[trade.trade_id] = trade
            self.price_tracker.setdefault(symbol, price)
        log.info("entry registered: trade %d %s %s %d @ %s (margin %s)", trade.trade_id, side.value, symbol,
                 quantity, price, trade.allocated)
        notify.emit(PositionOpened(symbol, side.value, quantity, price, strategy))
        return trade.trade_id

    def add_to_entry(self, trade_id: int, quantity: int, price: Any,
                     extra: Callable[[Session], None] | None = None, order_avg: Any = None) -> None:
        """A later partial fill of the same entry order: more quantity at a new average price. The order's
        charges are recomputed on its whole fill (brokerage is per order, capped once), at the broker's
        average price for the order when given."""
        t = self.active_trades[trade_id]
        price = D(price)
        new_qty = t.quantity + quantity
        avg = money((t.entry_price * t.quantity + price * quantity) / new_qty)
        allocated = money((t.remaining + quantity) * avg / t.margin_multiplier)
        charges = self.order_charges(t.side is PositionSide.LONG, avg if order_avg is None else order_avg, new_qty)

        def go(s: Session) -> None:
            row = s.get_one(ActiveTrade, trade_id)  # the trade is active: its row exists
            row.position_size, row.remaining_quantity = new_qty, t.remaining + quantity
            row.entry_price, row.allocated = avg, allocated
            row.costs = charges.total
            for name, value in charges.as_dict().items():
                setattr(row, name, value)
            if extra:
                extra(s)
        self.db.transaction(f"add fill to trade {trade_id}", go)
        with self.lock:
            t.quantity, t.remaining, t.entry_price, t.allocated = new_qty, t.remaining + quantity, avg, allocated
            t.charges = charges

    def register_exit(self, trade_id: int, quantity: int, price: Any, time: int, reason: str,
                      exit_order_id: int | None, order_charges: Charges,
                      extra: Callable[[Session], None] | None = None) -> Exit:
        """An exit fill: partial when quantity remains open, full when it closes the trade (seed
        register_partial_trade_exit / register_full_trade_exit). Capital moves by the net P&L: gross less
        `order_charges` (what this fill added to its exit order's charges) and, when the trade closes, the
        entry's charges."""
        t = self.active_trades[trade_id]
        price = D(price)
        quantity = min(quantity, t.remaining)
        full = quantity >= t.remaining
        gross = money(t.pnl(price, quantity))
        charges = order_charges + (t.charges if full else NO_CHARGES)
        costs = money(charges.total)
        net = gross - costs
        capital = self.capital + net
        employed = money(quantity * t.entry_price / t.margin_multiplier)
        remaining = t.remaining - quantity
        allocated = ZERO if full else money(remaining * t.entry_price / t.margin_multiplier)
        pct = float(net / employed * 100) if employed else 0.0
        gain = float((capital - self.start_capital) / self.start_capital * 100)

        def go(s: Session) -> None:
            s.add(TradeLog(trade_id=trade_id, trade_date=self.day, symbol=t.symbol, strategy=t.strategy,
                           side=t.side.value, trade_type="full" if full else "partial", quantity=quantity,
                           entry_time=t.entry_time, entry_price=t.entry_price, exit_time=int(time), exit_price=price,
                           gross_pnl=gross, costs=costs, net_pnl=net, capital_employed=employed,
                           capital_at_exit=capital, percent_change=pct, exit_reason=reason,
                           exit_order_id=exit_order_id, **charges.as_dict()))
            s.add(CapitalLog(trading_date=self.day, trade_id=trade_id, starting_capital=self.start_capital,
                             capital=capital, change=net, percent_gain=gain, reason=f"exit {t.symbol} ({reason})"))
            if full:
                s.execute(delete(ActiveTrade).where(ActiveTrade.trade_id == trade_id))
            else:
                row = s.get_one(ActiveTrade, trade_id)  # the trade is active: its row exists
                row.remaining_quantity, row.allocated = remaining, allocated
                row.realized_pnl_tp = t.realized_tp + net
                row.position_closed_tp = t.closed_tp + quantity
            if extra:
                extra(s)
        self.db.transaction(f"register exit {t.symbol}", go)
        with self.lock:
            self.capital = capital
            if full:
                del self.active_trades[trade_id]
            else:
                t.remaining, t.allocated = remaining, allocated
                t.realized_tp += net
                t.closed_tp += quantity
            self.price_tracker[t.symbol] = price
        if full and net < 0 and self.risk.cooldown_minutes > 0:
            self.cooldown_until[t.symbol] = float(time) + self.risk.cooldown_minutes * 60
            self.save_state()
        log.info("%s exit registered: trade %d %s %d @ %s, net %s (gross %s, costs %s); capital %s",
                 "full" if full else "partial", trade_id, t.symbol, quantity, price, net, gross, costs, capital)
        if full:
            notify.emit(PositionClosed(t.symbol, t.side.value, t.quantity, t.entry_price, price, t.realized_tp + net,
                                       reason, capital))
        return Exit(trade_id, quantity, price, gross, costs, net, full, capital, charges)

    # the seed's names for the two kinds of exit
    def register_partial_trade_exit(self, trade_id: int, quantity: int, price: Any, time: int, reason: str,
                                    exit_order_id: int | None, order_charges: Charges) -> Exit:
        if quantity >= self.active_trades[trade_id].remaining:
            raise ValueError(f"a partial exit of trade {trade_id} must leave quantity open")
        return self.register_exit(trade_id, quantity, price, time, reason, exit_order_id, order_charges)

    def register_full_trade_exit(self, trade_id: int, price: Any, time: int, reason: str,
                                 exit_order_id: int | None, order_charges: Charges) -> Exit:
        return self.register_exit(trade_id, self.active_trades[trade_id].remaining, price, time, reason,
                                  exit_order_id, order_charges)

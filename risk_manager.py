"""RiskManager (seed chart 3): position sizing, pre-trade checks, the global caps and the trading state.

It lives in the driver process beside the TradeManager. It READS the books -- capital, open trades and
reservations are the ledger's (execution.ledger), which alone writes them -- and decides: how many units an entry
gets, whether it may go (an Approved or a Denied value), and whether trading must halt. The trading state (state,
reason, sticky halt, high-water mark, cooldowns) is one database row, written in one transaction, database first
and memory after. Money is Decimal throughout.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from core.config import Config
from core.costs import Charges
from core.enums import PositionSide, TradingState
from db import DBHandler
from execution.ledger import D, ExitBooked, Ledger, OpenTrade, money

log = logging.getLogger(__name__)

PAISE = Decimal("0.01")

__all__ = ["D", "Approved", "Assessment", "Denied", "OpenTrade", "RiskManager", "money"]


@dataclass(frozen=True, slots=True)
class Approved:
    """The entry passed every pre-trade check: `units` to buy or sell, `allocated` margin to hold for them."""

    units: int
    allocated: Decimal


@dataclass(frozen=True, slots=True)
class Denied:
    """A pre-trade check said no: `tag` (stored as the order's failure tag) and why; units and margin as far as
    sizing got (0 when it did not)."""

    tag: str
    reason: str
    units: int = 0
    allocated: Decimal = Decimal(0)


Assessment = Approved | Denied


TRADING_STATE_KEY = "trading_state"  # the one row of the trading state (daemon_state)
OLD_RISK_KEY = "risk"  # where a database written before that row kept the day, high-water mark and cooldowns


class RiskManager:
    """Sizing, pre-trade checks, caps and the trading state of one day; reads the ledger, never writes it."""

    def __init__(self, cfg: Config, db: DBHandler, day: date, ledger: Ledger | None = None):
        self.cfg = cfg
        self.risk = cfg.risk
        self.db = db
        self.day = day
        self.ledger = ledger if ledger is not None else Ledger(db, day, D(cfg.risk.capital), cfg.costs.table)
        self.cost_table = self.ledger.cost_table
        self._margin: dict[str, Decimal] = {}  # the broker's leverage per symbol (use_broker_margin)
        self.cooldown_until: dict[str, float] = {}
        self.state = TradingState.HALTED
        self.state_reason = "starting"
        self.state_since: str | None = None
        self.high_water = self.ledger.start_capital
        self._halted_earlier: str | None = None  # set by load and hold_halt only
        self.halt_is_loss = False  # the last halt came from a loss cap, the daily loss limit or drawdown
        self._loss_limit = D(self.risk.daily_loss_limit or 0)  # converted once (checked on every mark)
        self._calm: tuple[Decimal, Decimal, Decimal] | None = None  # (equity, high water, start) of the last check
        # that found nothing to halt for
        self._inactive: tuple[tuple[TradingState, str], Denied] | None = None  # _not_active's last answer
        self.on_halted: Callable[[str], None] | None = None  # told every change to HALTED, with its reason

    # ------------------------------------------------------------------ the books, read from the ledger
    @property
    def capital(self) -> Decimal:
        return self.ledger.capital

    @property
    def start_capital(self) -> Decimal:
        return self.ledger.start_capital

    @property
    def active_trades(self) -> Mapping[int, OpenTrade]:
        return self.ledger.trades

    @property
    def reserved(self) -> Mapping[int, Decimal]:
        return self.ledger.reserved

    @property
    def price_tracker(self) -> Mapping[str, Decimal]:
        return self.ledger.prices

    @property
    def available_capital(self) -> Decimal:
        return self.ledger.available_capital

    @property
    def halted_earlier(self) -> str | None:
        """A halt that stays in force once start-up ends: a risk halt from before a restart today, or a
        reconciliation finding (hold_halt)."""
        return self._halted_earlier

    # ------------------------------------------------------------------ state from the database
    def load(self) -> None:
        """Load the ledger, then the day's trading state: cooldowns, high-water mark and a sticky halt."""
        self.ledger.load()
        saved = self._saved_state()
        if saved.get("day") == self.day.isoformat():
            self.cooldown_until = {k: float(v) for k, v in saved.get("cooldown_until", {}).items()}
            self.high_water = D(saved.get("high_water", self.capital))
            if saved.get("state") == TradingState.HALTED.value and saved.get("sticky"):
                self._halted_earlier = saved.get("reason", "risk: halted earlier today")
            elif saved.get("held"):  # a restart stopped during reconciliation, whose halt stood in for this one
                self._halted_earlier = str(saved["held"])
        self.high_water = max(self.high_water, self.capital)
        log.info("risk state: capital %s (day start %s), %d open trades", self.capital, self.start_capital,
                 len(self.active_trades))

    def _saved_state(self) -> dict[str, Any]:
        """The trading-state row; a database from before it was one row keeps the day's part under "risk"."""
        doc = self.db.get_state(TRADING_STATE_KEY) or {}
        if "day" not in doc:
            doc = self.db.get_state(OLD_RISK_KEY) or {}
        return dict(doc)

    def _state_doc(self, state: TradingState, reason: str, since: str | None) -> dict[str, Any]:
        # "held": a risk halt from earlier today that start-up is keeping while another reason shows (the
        # reconciliation's HALTED), so a crash before start-up ends cannot drop it
        held = self._halted_earlier if self._halted_earlier and self._halted_earlier.startswith("risk:") else None
        return {"state": state.value, "reason": reason, "since": since, "day": self.day.isoformat(),
                "sticky": state is TradingState.HALTED and reason.startswith("risk:"), "held": held,
                "high_water": str(self.high_water), "cooldown_until": self.cooldown_until}

    def save_state(self) -> None:
        """Write the trading state as it is (one row, one transaction)."""
        self.db.set_state(TRADING_STATE_KEY, self._state_doc(self.state, self.state_reason, self.state_since))

    def set_state(self, state: TradingState, reason: str) -> None:
        """ACTIVE, REDUCING (exits only) or HALTED (no entries; exits still allowed); logged and persisted."""
        if state is self.state and reason == self.state_reason:
            return
        old = self.state
        since = datetime.now(UTC).isoformat(timespec="seconds")
        self.db.set_state(TRADING_STATE_KEY, self._state_doc(state, reason, since))
        self.state, self.state_reason, self.state_since = state, reason, since
        if state is TradingState.ACTIVE:
            log.info("trading state %s -> %s: %s", old.value, state.value, reason)
        else:
            log.warning("trading state %s -> %s: %s", old.value, state.value, reason)
        if state is TradingState.HALTED and self.on_halted is not None:
            self.on_halted(reason)

    def note_exit(self, ex: ExitBooked, time: float) -> None:
        """A trade closed at a loss starts its symbol's cooldown (risk.cooldown_minutes), kept across a restart."""
        if ex.full and ex.net < 0 and self.risk.cooldown_minutes > 0:
            self.cooldown_until[ex.symbol] = float(time) + self.risk.cooldown_minutes * 60
            self.save_state()

    # ------------------------------------------------------------------ figures
    def unrealized_pnl(self) -> Decimal:
        return self.ledger.unrealized_pnl()

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
        self.ledger.mark(symbol, D(price))

    def trade_for(self, symbol: str) -> OpenTrade | None:
        return self.ledger.trade_for(symbol)

    def use_broker_margin(self, symbol: str, multiplier: Decimal) -> Decimal:
        """The broker's leverage for `symbol` (from its margin call) replaces the configured multiplier for the
        day's later sizing; returns it as kept (two decimals)."""
        lev = multiplier.quantize(Decimal("0.01"))
        self._margin[symbol] = lev
        return lev

    def hold_halt(self, reason: str, replace: bool = False) -> None:
        """Keep trading HALTED once start-up ends (a reconciliation finding); the first reason stays unless
        `replace`."""
        if replace or not self._halted_earlier:
            self._halted_earlier = reason

    def margin_for(self, symbol: str) -> Decimal:
        return self._margin.get(symbol, D(self.risk.margin_multiplier))

    # ------------------------------------------------------------------ sizing and checks
    def order_charges(self, is_buy: bool, price: Any, quantity: int) -> Charges:
        """The charges of one executed order of `quantity` at average `price` today."""
        return self.ledger.order_charges(is_buy, price, quantity)

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
        units_afford = max(self.available_capital, Decimal(0)) / margin_price
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
            return self._not_active()
        until = self.cooldown_until.get(symbol, 0.0)
        if now < until:
            return Denied("RISK_COOLDOWN", f"cooling down after a losing exit for {int(until - now)}s more")
        if stop_loss is None:
            return Denied("RISK_NO_STOP", "signal has no stop loss to size from")
        margin_val = self.margin_for(symbol)
        units = self.calculate_position_size(entry_price, stop_loss, margin_val, symbol)
        allocated = money(units * D(entry_price) / margin_val)
        if units <= 0:
            return Denied("RISK_ZERO_UNITS", "zero units calculated")
        if self.available_capital < allocated:
            return Denied("RISK_INSUFFICIENT_CAPITAL", "insufficient capital", units, allocated)
        if len(self.active_trades) + pending_entries >= self.risk.max_active_trades:
            return Denied("RISK_MAX_ACTIVE_TRADES", "max active trades reached", units, allocated)
        if units * D(entry_price) > D(self.risk.max_order_notional):
            return Denied("RISK_NOTIONAL_CAP", "order notional above the cap", units, allocated)
        entry, stop = D(entry_price), D(stop_loss)
        why = self._costs_blocker(units, entry, stop, long if long is not None else stop < entry)
        if why is not None:
            return Denied("RISK_COSTS_TOO_HIGH", why, units, allocated)
        return Approved(units, allocated)

    def _not_active(self) -> Denied:
        """Every entry's refusal while trading is not ACTIVE: one value per state and reason (it is frozen), built
        once and not for each of a halted day's signals."""
        key = (self.state, self.state_reason)
        kept = self._inactive
        if kept is None or kept[0] != key:
            kept = self._inactive = (key, Denied(f"RISK_TRADING_{self.state.value}",
                                                 f"trading {self.state.value}: {self.state_reason}"))
        return kept[1]

    def halt_trading_check(self) -> tuple[bool, str]:
        """Global caps, daily loss limit and drawdown from the day's high-water mark; a halt is sticky.
        `halt_is_loss` says whether the halt came from losing money (not the profit cap)."""
        if self.state is TradingState.HALTED:
            return True, self.state_reason
        r = self.risk
        led = self.ledger
        equity = led.capital + led.unrealized_pnl()  # self.equity(), without two calls on every mark
        if equity > self.high_water:
            self.high_water = equity
        # every check below is a function of these three: the same figures as the last calm check, the same answer
        # (most marks of a flat book, or of an unchanged price, need no Decimal division)
        figures = (equity, self.high_water, led.start_capital)
        if figures == self._calm:
            return False, ""
        returns = float((equity - self.start_capital) / self.start_capital * 100)
        reason = None
        if r.global_max_loss_pct is not None and returns <= r.global_max_loss_pct:
            reason = f"risk: global loss cap breached ({returns:.2f}% <= {r.global_max_loss_pct}%)"
        elif r.global_max_profit_pct is not None and returns >= r.global_max_profit_pct:
            reason = f"risk: global profit cap reached ({returns:.2f}% >= {r.global_max_profit_pct}%)"
        elif r.daily_loss_limit is not None and self.start_capital - equity >= self._loss_limit:
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
        self._calm = figures
        return False, ""

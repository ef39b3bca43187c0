"""Index signals as option orders, daemon side: the contract asked of the broker, and the orders that trade it.

The TradeManager hands every signal on an `instrument: options` symbol here. An entry asks the broker (OpenAlgo,
through the gateway) for the listed expiries (`/expiry`, once a day per index), the chain of the chosen expiry
(`/optionchain`, with greeks when the scoring weighs delta or IV) and the contract's freeze quantity
(`/optionsymbol`); options.plan turns those into one buy in whole lots, split at the freeze quantity. Each child
goes through the TradeManager's own write-ahead path (recorded, checked, then sent), so reconciliation, caps,
halts and the books treat it as any other order; the books hold the contract under its own symbol, bought
(long) whatever the view, premium paid in full. An exit signal on the index (the strategy's view reversed or
ended) closes every contract held for it. signals_only mode asks the same questions and records the contract
that would have been traded, and why, on the signal's outcome.
"""
# The executor is the TradeManager's options branch: it runs inside the TradeManager's unit of work and uses its
# order steps (record, deny, send, outcome) so an option order takes exactly the equity order's path.
# ruff: noqa: SLF001
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from core.clock import ist_date, to_ist
from core.enums import ExecutionMode, OrderPurpose, OrderSide, OutcomeStatus, PositionSide, TradingState
from core.types import Signal
from execution.pending import Pending
from gateway.results import CallResult, Ok
from options.chain import ChainDataError, parse_chain
from options.contract import parse_option_symbol
from options.expiry import ExpiryDataError, NoExpiry, choose_expiry, parse_expiry_list
from options.plan import NoTrade, OptionOrderPlan, plan_order
from options.premium import CHECK_EVERY_S, EXPIRY_ROLL, PremiumPoller, exit_reason, expiry_rolled, levels, next_check
from options.spec import OptionsSpec
from options.strikes import NoStrike, select_strike
from pipeline.messages import CapTriggers, ForceExit, Watch

log = logging.getLogger(__name__)

FO_EXCHANGE = "NFO"          # where NSE index options trade
INDEX_EXCHANGE = "NSE_INDEX"  # where the index's own quote lives (optionchain's and optionsymbol's exchange)


class OptionsBroker(Protocol):
    """The gateway's read calls the resolution uses (gateway.openalgo.OpenAlgoGateway)."""

    def expiry(self, symbol: str, exchange: str, instrumenttype: str = "options") -> CallResult[dict[str, Any]]: ...

    def option_chain(self, underlying: str, exchange: str, expiry_date: str, strike_count: int,
                     with_greeks: bool = False) -> CallResult[dict[str, Any]]: ...

    def option_symbol(self, underlying: str, exchange: str, expiry_date: str, offset: str,
                      option_type: str) -> CallResult[dict[str, Any]]: ...


def _why_not(what: str, res: Any) -> str:
    return f"{what}: {type(res).__name__}: {getattr(res, 'message', None) or getattr(res, 'reason', '')}"


def strike_count(spec: OptionsSpec) -> int:
    """Strikes either side of ATM the chain must list for the spec's choice to be in it."""
    if spec.offset is not None:
        digits = "".join(ch for ch in spec.offset if ch.isdigit())
        return max(1, int(digits or 0))
    return max(1, spec.scoring.max_strikes_from_atm if spec.scoring is not None else 1)


def wants_greeks(spec: OptionsSpec) -> bool:
    w = spec.scoring.weights if spec.scoring is not None and spec.offset is None else None
    return w is not None and (w.delta > 0 or w.iv_rank > 0)


class ContractResolver:
    """Which contract an index signal trades, asked of the broker; expiries and freeze quantities are cached
    for the day (they do not change intraday)."""

    def __init__(self, broker: OptionsBroker):
        self.broker = broker
        self._expiries: dict[tuple[str, date], list[date]] = {}
        self._freeze: dict[tuple[str, str], int] = {}

    def plan(self, underlying: str, spec: OptionsSpec, view: PositionSide, now: float, risk: float,
             funds: float | None) -> OptionOrderPlan | NoTrade:
        """The buy order for a `view` on `underlying` at `now` (epoch): expiry, strike, size and exits."""
        ist = to_ist(now)
        today = ist_date(now)
        listed = self._expiries.get((underlying, today))
        if listed is None:
            res = self.broker.expiry(underlying, FO_EXCHANGE)
            if not isinstance(res, Ok):
                return NoTrade(_why_not("expiry", res))
            try:
                listed = parse_expiry_list(res.value)
            except ExpiryDataError as e:
                return NoTrade(str(e))
            self._expiries[(underlying, today)] = listed
        exp = choose_expiry(listed, spec.expiry, today, ist.time().replace(tzinfo=None), spec.roll_after)
        if isinstance(exp, NoExpiry):
            return NoTrade(exp.reason)
        res = self.broker.option_chain(underlying, INDEX_EXCHANGE, exp.code, strike_count(spec), wants_greeks(spec))
        if not isinstance(res, Ok):
            return NoTrade(_why_not(f"option chain {underlying} {exp.code}", res))
        try:
            chain = parse_chain(res.value)
        except ChainDataError as e:
            return NoTrade(str(e))
        pick = select_strike(chain, view, spec)
        if isinstance(pick, NoStrike):
            return NoTrade(str(pick))
        freeze = self._freeze_qty(underlying, exp.code, pick.leg.option_type)
        if isinstance(freeze, NoTrade):
            return freeze
        return plan_order(pick, exp, spec, risk, funds, freeze, FO_EXCHANGE)

    def _freeze_qty(self, underlying: str, code: str, option_type: str) -> int | NoTrade:
        key = (underlying, code)
        if key not in self._freeze:
            res = self.broker.option_symbol(underlying, INDEX_EXCHANGE, code, "ATM", option_type)
            if not isinstance(res, Ok):
                return NoTrade(_why_not(f"optionsymbol {underlying} {code}", res))
            q = res.value.get("freeze_qty")
            if isinstance(q, bool) or not isinstance(q, (int, float)) or q < 1:
                return NoTrade(f"optionsymbol {underlying} {code}: freeze_qty {q!r} is not a quantity")
            self._freeze[key] = int(q)
        return self._freeze[key]


class OptionsExecutor:
    """The TradeManager's options path: entries and exits of index symbols traded as options."""

    def __init__(self, specs: Mapping[str, OptionsSpec], resolver: ContractResolver | None, gateway: Any = None):
        self.specs = dict(specs)
        self.resolver = resolver
        self.gateway = gateway  # reads of its own: a replay's premiums, signals_only's contracts
        self.plans: dict[str, OptionOrderPlan] = {}  # signal id -> the contract its entry bought
        self.next_at: dict[int, int] = {}  # trade id -> the next premium check point (replay)
        self.poller: PremiumPoller | None = None  # live: the held contracts' quotes, read off the trading thread
        self._held_now: frozenset[str] = frozenset()

    def handles(self, symbol: str) -> bool:
        return symbol in self.specs

    def underlying(self, symbol: str) -> str | None:
        """The configured index a contract symbol belongs to; None for anything else."""
        c = parse_option_symbol(symbol)
        return c.underlying if c is not None and c.underlying in self.specs else None

    def route(self, send: Callable[[str, Any], None]) -> Callable[[str, Any], None]:
        """The worker feedback path with contracts mapped to their index: a square-off's ForceExit resets the
        index's strategy; a contract's Watch and CapTriggers are not the worker's (it prices the index, not the
        premium), so they are dropped. With no index configured nothing is a contract of ours: `send` itself (a
        halted day answers every signal through here)."""
        if not self.specs:
            return send

        def go(symbol: str, msg: Any) -> None:
            index = self.underlying(symbol)
            if index is None:
                send(symbol, msg)
            elif isinstance(msg, ForceExit):
                send(index, ForceExit(index, msg.reason))
            elif not isinstance(msg, (Watch, CapTriggers)):
                send(index, msg)
        return go

    def open_for(self, tm: Any, index: str) -> list[Any]:
        """The open trades on `index`'s contracts with no exit working, oldest first."""
        return [t for t in self._watched(tm) if self.underlying(t.symbol) == index]

    # ------------------------------------------------------------------ entries
    def entry(self, tm: Any, sig: Signal) -> None:
        """An entry signal on an options index: plan the contract, then record and send each child order
        (signals_only: record the contract and why on the signal, send nothing). Runs inside the signal's
        unit of work (tm._unit), as the TradeManager's own entry does."""
        now = int(sig.time)
        spec = self.specs[sig.symbol]
        side = OrderSide.BUY
        block = self._blocker(tm, sig, now)
        plan: OptionOrderPlan | NoTrade | None = None
        if block is None:
            if self.resolver is None:
                block = ("OPTIONS_NO_BROKER", "no broker to resolve the contract from")
            else:
                if tm.replay and tm.admin is not None and now > tm.broker_clock:
                    tm._push_clock(now)  # the paper broker prices the chain at its clock: the signal's time
                risk = float(tm.rm.capital) * tm.cfg.risk.risk_per_trade
                funds = float(tm.rm.available_capital)
                plan = self.resolver.plan(sig.symbol, spec, sig.current_position, now, risk, funds)
                if isinstance(plan, NoTrade):
                    block = ("OPTIONS_NO_CONTRACT", plan.reason)
                elif plan.quantity * plan.premium > tm.cfg.risk.max_order_notional:
                    block = ("RISK_NOTIONAL_CAP", f"premium {plan.quantity * plan.premium:,.2f} above "
                                                  f"max_order_notional {tm.cfg.risk.max_order_notional:g}")
        if block is not None or not isinstance(plan, OptionOrderPlan):
            tag, reason = block or ("OPTIONS_NO_CONTRACT", "no contract")
            order = tm._create_order(sig, OrderPurpose.ENTRY, side, 0, sig.price)
            tm._fail(order, tag, reason)
            tm._count_failure(sig.symbol)
            tm._outcome(sig, OutcomeStatus.FAILED, note=f"{tag}: {reason}")
            return
        what = f"{plan.symbol} {plan.exchange} BUY {plan.quantity}"
        log.info("%s %s signal -> %s: %s", sig.symbol, sig.current_position.value, what, plan.why)
        if tm.mode is ExecutionMode.SIGNALS_ONLY:
            order = tm._create_order(sig, OrderPurpose.ENTRY, side, plan.quantity, plan.premium,
                                     symbol=plan.symbol)
            tm._fail(order, "SIGNALS_ONLY", f"not sent (signals_only): {what} @ ~{plan.premium:g}; {plan.why}")
            tm._later(lambda: tm.virtual.__setitem__(sig.symbol, (sig.current_position, plan.quantity)))
            tm._outcome(sig, OutcomeStatus.EXECUTED, note=f"signals_only: {what}; {plan.why}")
            return
        tm._later(lambda: tm.rm.track_prices(plan.symbol, plan.premium))
        for qty in plan.children:
            order = tm._create_order(sig, OrderPurpose.ENTRY, side, qty, plan.premium, symbol=plan.symbol)
            reserved = Decimal(str(round(qty * plan.premium, 2)))
            order.reserved = reserved  # persisted with the order: a restart holds the same premium for it
            tm._later(lambda o=order, r=reserved: tm.ledger.reserve(o.id, r))
            tm._send(order, lambda oid, q=qty: Pending(oid, plan.symbol, sig, OrderPurpose.ENTRY, side, q, now))
        self.plans[sig.signal_id] = plan

    def outcome_note(self, sig: Signal, note: str) -> str:
        """An entry's outcome note with the contract it traded and why (what paper mode records)."""
        plan = self.plans.get(sig.signal_id)
        return note if plan is None else f"{note} {plan.symbol} {plan.exchange}; {plan.why}"

    def _blocker(self, tm: Any, sig: Signal, now: int) -> tuple[str, str] | None:
        """The TradeManager's entry checks, for an option buy: session, trading state, one position or order per
        index, max active trades, the circuit breaker. (The cool-down after a losing exit is kept per traded
        symbol, the contract, so it does not apply to the index's next entry.)"""
        s = tm.session
        if not (s.open <= now < s.entry_cutoff):
            return ("SESSION_NO_ENTRIES", "entries are allowed from the open to the entry cut-off")
        rm = tm.rm
        if rm.state is not TradingState.ACTIVE:
            return (f"RISK_TRADING_{rm.state.value}", f"trading {rm.state.value}: {rm.state_reason}")
        # a contract already being sold does not count: when its sale is booked depends on the broker's timing,
        # and a replay must decide alike every run
        if self.open_for(tm, sig.symbol) or sig.symbol in tm.virtual or any(
                p.purpose is OrderPurpose.ENTRY and p.signal is not None and p.signal.symbol == sig.symbol
                for p in tm.pending.values()):
            return ("EXEC_GUARD_POSITION_OR_ORDER_OPEN", "the index already has a contract held or an order pending")
        pending_entries = sum(1 for p in tm.pending.values() if p.purpose is OrderPurpose.ENTRY)
        if len(rm.active_trades) + pending_entries >= tm.cfg.risk.max_active_trades:
            return ("RISK_MAX_ACTIVE_TRADES", "max active trades reached")
        if tm.breaker.is_open:
            return ("BROKER_CIRCUIT_OPEN", f"broker failing: {tm.breaker.last_reason}")
        return None

    # ------------------------------------------------------------------ the premium
    def next_due(self) -> float:
        """The earliest premium check not yet made (replay): the paper broker's clock is held there."""
        return min(self.next_at.values(), default=float("inf"))

    def _watched(self, tm: Any) -> list[Any]:
        """Held contracts of the configured indexes with no exit already working, oldest first."""
        exiting = {p.trade_id for p in tm.pending.values() if p.purpose is not OrderPurpose.ENTRY}
        return [t for t in tm.rm.active_trades.values()
                if self.underlying(t.symbol) is not None and t.trade_id not in exiting]

    def on_clock(self, tm: Any, now: float) -> None:
        """Check the held options' premiums against their stop and target, and their expiry against the roll.
        Replay: at every check point up to `now`, the broker's clock moved there first; live: the poller's
        latest readings."""
        if not self.specs or tm.mode is ExecutionMode.SIGNALS_ONLY or tm.squared_off:
            return
        trades = self._watched(tm)
        ids = {t.trade_id for t in trades}
        for tid in [k for k in self.next_at if k not in ids]:
            del self.next_at[tid]
        if not trades:
            self._held_now = frozenset()
            return
        if not tm.replay:
            self._live(tm, trades)
            return
        for t in trades:
            self.next_at.setdefault(t.trade_id, next_check(t.entry_time, self._every(t.symbol)))
        end = tm.session.square_off
        while True:
            at = min((self.next_at[t.trade_id] for t in self._watched(tm) if t.trade_id in self.next_at),
                     default=None)
            if at is None or at > now or at >= end:
                return
            if tm.admin is not None and at > tm.broker_clock:
                tm._push_clock(at)
            quotes: dict[str, float | None] = {}
            for t in self._watched(tm):
                if self.next_at.get(t.trade_id) != at:
                    continue
                self.next_at[t.trade_id] = at + self._every(t.symbol)
                if t.symbol not in quotes:
                    quotes[t.symbol] = self._quote(tm, t.symbol)
                self._decide(tm, t, quotes[t.symbol], at)

    def _every(self, symbol: str) -> int:
        index = self.underlying(symbol)
        return self.specs[index].check_every_s if index is not None else CHECK_EVERY_S

    def _quote(self, tm: Any, symbol: str) -> float | None:
        """Replay: the premium at the paper broker's clock, read outside the daemon's request budget (it models
        the live broker's limit per wall second; a replay's seconds pass faster)."""
        res = self.gateway.quotes(symbol, FO_EXCHANGE)
        if not isinstance(res, Ok):
            log.warning("could not read the premium of %s: %s", symbol, _why_not("quotes", res))
            return None
        return float(res.value.ltp)

    def _live(self, tm: Any, trades: list[Any]) -> None:
        self._held_now = frozenset(t.symbol for t in trades)
        if self.poller is None:
            gw = tm.gateway or self.gateway
            every = min(self._every(t.symbol) for t in trades)
            self.poller = PremiumPoller(lambda s: _ltp(gw.quotes(s, FO_EXCHANGE)), lambda: self._held_now,
                                        tm.clock.now, every)
            self.poller.start()
        for seen in self.poller.take():
            for t in self._watched(tm):
                if t.symbol == seen.symbol:
                    self._decide(tm, t, seen.ltp, int(seen.time))

    def _decide(self, tm: Any, t: Any, ltp: float | None, at: int) -> None:
        index = self.underlying(t.symbol)
        c = parse_option_symbol(t.symbol)
        if index is None or c is None:
            return
        spec = self.specs[index]
        reason = None
        if expiry_rolled(c.expiry, to_ist(at), spec.roll_after):
            reason = EXPIRY_ROLL
        elif ltp is not None:
            reason = exit_reason(ltp, levels(spec, float(t.entry_price), None))
        if reason is None:
            return
        log.info("%s (trade %d, %s): %s at premium %s", t.symbol, t.trade_id, index, reason.replace("_", " "), ltp)
        # the index's strategy is not reset: its view stands (it enters again only after its own exit), and a
        # replay must not depend on when a reset would reach the worker
        tm._place_exit(t, t.remaining, OrderPurpose.EXIT, reason, None, at)

    def stop(self) -> None:
        if self.poller is not None:
            self.poller.stop()
        if self.gateway is not None:
            self.gateway.close()

    # ------------------------------------------------------------------ exits
    def exit(self, tm: Any, sig: Signal, reason: str) -> None:
        """An exit (or take-profit) signal on the index closes the contracts held for it: the strategy's view
        ended or reversed, and the option bought for it follows."""
        if tm.mode is ExecutionMode.SIGNALS_ONLY:
            held_v = tm.virtual.get(sig.symbol)
            if held_v is None:
                tm._outcome(sig, OutcomeStatus.IGNORED, note="no position")
                return
            tm._later(lambda: tm.virtual.pop(sig.symbol, None))
            tm._outcome(sig, OutcomeStatus.EXECUTED, note="signals_only: the contract would be sold")
            return
        trades = self.open_for(tm, sig.symbol)
        if not trades:  # one note whether its contract was sold or is being sold: a replay records alike
            tm._outcome(sig, OutcomeStatus.IGNORED, note="no open position for this exit (no contract held, or "
                                                         "its sale is already decided)")
            return
        for i, t in enumerate(trades):
            # a take-profit closes the whole contract: a fraction of it need not be whole lots
            # the signal's outcome follows the last of them
            tm._place_exit(t, t.remaining, OrderPurpose.EXIT, reason, sig if i == len(trades) - 1 else None,
                           int(sig.time))


def _ltp(res: Any) -> float | None:
    return float(res.value.ltp) if isinstance(res, Ok) else None


def options_executor(cfg: Any, secrets: Any, gateway: Any) -> OptionsExecutor:
    """The executor for `cfg`'s options symbols. Contracts are resolved through the TradeManager's gateway (within
    its request budget), or in signals_only mode, which has none, through a gateway of the executor's own; that
    one also reads a replay's premiums."""
    specs = {s.symbol: s.options for s in cfg.symbols if s.options is not None}
    if not specs:
        return OptionsExecutor({}, None)
    from gateway.openalgo import OpenAlgoGateway

    own = OpenAlgoGateway(secrets.host_server, secrets.app_key or "", cfg.orders.request_timeout_s)
    return OptionsExecutor(specs, ContractResolver(gateway or own), own)

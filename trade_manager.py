"""TradeManager (seed chart 4): turns signals into sized, risk-checked orders and real positions.

It runs on the driver's signal-loop thread. It books fills through the ledger (execution.ledger), the only
writer of capital, open trades and the trade log, and asks its RiskManager whether an entry may go.
Every order follows seed 002's path: recorded as CREATED, checked by blockers (risk, execution guard,
duplicate), marked SENT_TO_BROKER, handed to a sender thread, then updated from the broker's own answers
(acknowledgement, status polls). Fills are applied from the broker's filled quantity and average price,
once each (a Fill row per cumulative quantity), never assumed. An order whose placement ended without an
answer is looked up in the orderbook, never sent again. A signal whose checks refuse its order (or that
signals_only mode only records) is known before anything is built: its rows, the same as that path's, are written
plainly (execution.denials), since nothing is sent and nothing is left to follow.

Placement never blocks the signal loop: the senders and the status poller report back as events, which
`poll()` applies on this thread in arrival order, so capital accounting has exactly one writer.
"""
from __future__ import annotations

import logging
import math
import queue
import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any, NamedTuple, cast
from urllib.parse import urlparse

import msgspec
from sqlalchemy import Table, bindparam, update

import db_exec
import notify
from core.clock import fmt_ist
from core.config import Config, OrdersConfig, Secrets
from core.enums import (
    ExecutionMode,
    ExitReason,
    OrderPurpose,
    OrderSide,
    OrderStatus,
    OutcomeStatus,
    PositionSide,
    SignalType,
    TradingState,
)
from core.errors import StartupError
from core.faults import crash_point
from core.net import is_loopback_url
from core.session import SessionTimes, in_market_hours
from core.types import Signal
from db import DBHandler, Order, StockSignal, Unit, disabled_strategies_key, insert_row, utcnow
from execution.broker_io import BrokerIO, CancelAnswered, LookedUp, Placed, Probed, StatusSeen
from execution.broker_port import BrokerPort, SimulatedBroker
from execution.circuit_breaker import CircuitBreaker
from execution.commands import CancelOrder, FindOrder, ProbeBroker, SubmitOrder
from execution.control_log import ControlLog
from execution.denials import Denial, DeniedOrder
from execution.denials import write as write_denials
from execution.events import EventApplier
from execution.ledger import EntryFilled, ExitFilled, FillReading, Ledger
from execution.order_events import (
    OrderAccepted,
    OrderAdopted,
    OrderDenied,
    OrderFailed,
    OrderNoted,
    OrderRejected,
    OrderSent,
    OrderWorking,
    broker_final,
)
from execution.orders import OrderRecord, fill_delta
from execution.pending import Pending
from execution.reconcile import HeldTrade, Reconciler, RestartRecords, report
from execution.reconcile_events import (
    HaltHeld,
    OrderFoundAtBroker,
    OrderLookupUnanswered,
    OrderNeverSent,
    OrderNotAtBroker,
    OrderResumed,
    OrdersCounted,
    PositionAdopted,
    PositionMismatch,
    PositionsUnread,
    Reconciled,
    SignalAnswered,
    SignalSettled,
    TradeClosedInBooks,
    findings,
)
from gateway.openalgo import OpenAlgoGateway
from gateway.ratelimit import RequestBudget
from gateway.results import Accepted, Ok, Rejected, Unavailable, Unknown
from notify.events import CapCrossed, ExitsForced, TradingHalted
from options.contract import is_option_symbol
from options.executor import FO_EXCHANGE, options_executor
from pipeline.messages import CapTriggers, DayHalted, ForceExit, Marks, Outcome, StrategyDisabled, Watch
from pipeline.shared_state import INCOMPLETE_KEYS, SharedState
from risk_manager import D, Denied, RiskManager, money

log = logging.getLogger(__name__)


class TradeManager:
    def __init__(self, cfg: Config, secrets: Secrets, db: DBHandler, shared: SharedState | None, clock: Any,
                 replay: bool, day: date, broker: SimulatedBroker | None = None):
        """`broker`: an in-process broker (a backtest's fill model) that takes the gateway's and the broker
        threads' place; None: the OpenAlgo gateway at HOST_SERVER, as configured."""
        self.cfg = cfg
        self.secrets = secrets
        self.db = db
        self.shared = shared
        self.clock = clock
        self.replay = replay
        self.day = day
        self.mode = cfg.mode
        self.tag = cfg.orders.strategy_tag
        self._product = cfg.product.value
        self._exchanges: dict[str, str] = {}  # symbol -> where it is ordered (_exchange_of)
        self.ledger = Ledger(db, day, D(cfg.risk.capital), cfg.costs.table)  # the only writer of the books
        self.rm = RiskManager(cfg, db, day, self.ledger)
        self.rm.on_halted = self._halted_for_day
        self._started = False  # start-up's own HALTED (starting, reconciling) is not the day's halt
        self._halt_told = False
        self.orders = self.ledger.orders  # one store: it knows each order's last written state
        self.session = SessionTimes.for_day(cfg.session, day)
        self.breaker = CircuitBreaker(cfg.orders.circuit_breaker_failures, cfg.orders.circuit_breaker_cooldown_s)
        self.gateway: OpenAlgoGateway | SimulatedBroker | None = None
        self.io: BrokerIO | BrokerPort | None = None
        self.admin: Any = None
        self.simulated = broker is not None
        if broker is not None:
            self.gateway, self.io = broker, broker
        elif self.mode is not ExecutionMode.SIGNALS_ONLY:
            self.gateway = OpenAlgoGateway(secrets.host_server, secrets.app_key or "", cfg.orders.request_timeout_s,
                                           order_rate_per_s=cfg.orders.rate_limit_per_s,
                                           budget=_request_budget(cfg.orders))
            self.io = BrokerIO(self.gateway, cfg.orders.poll_interval_s)
        self.notify: Callable[[str, Any], None] = lambda sym, ctl: None
        self.options = options_executor(cfg, secrets, self.gateway)  # instrument: options symbols (issue 18)
        self.events = EventApplier()  # broker events whose application failed wait here, in order
        self.pending: dict[int, Pending] = {}
        self.outcomes: dict[str, Outcome] = {}
        self.controls = ControlLog(db, day)  # a replayed day's worker controls, sent again on a rerun
        self.signal_orders: dict[str, int] = {}  # client order id base -> orders made for it (attempt number)
        self.exit_attempts: dict[int, int] = {}  # trade_id -> exit orders that did not complete
        self.retry_at: dict[int, tuple[float, str]] = {}  # trade_id -> (monotonic time, reason)
        self.virtual: dict[str, tuple[PositionSide, int]] = {}  # signals_only: what we would hold
        self.failed_trades: dict[str, int] = {}
        self.disabled: dict[str, dict[str, Any]] = {}  # symbol -> {strategy, reason, time}: strategies off today
        self.margin_asked: set[str] = set()
        self._s: Unit | None = None  # the open unit (one transaction), while a decision is being recorded
        self._signal_row: dict[str, Any] | None = None  # the signal recorded in that unit, its outcome set on it
        self._after: list[Callable[[], None]] | None = None
        self.squared_off = False
        self.cutoff_done = False
        self.broker_clock = 0.0
        self._last_clock_push = 0.0
        self._last_halt_check = 0.0
        self.flattening = False  # a loss halt closed every position: an entry filling after it is closed too

    # ------------------------------------------------------------------ wiring
    @property
    def broker(self) -> BrokerIO | BrokerPort:
        """The broker threads; every caller is on a path that only a mode with a broker reaches."""
        if self.io is None:
            raise RuntimeError(f"no broker in {self.mode.value} mode")
        return self.io

    @property
    def books(self) -> OpenAlgoGateway | SimulatedBroker:
        """The gateway, for reads on this thread (start-up checks); absent only in signals_only mode."""
        if self.gateway is None:
            raise RuntimeError(f"no broker in {self.mode.value} mode")
        return self.gateway

    def set_notify(self, fn: Callable[[str, Any], None]) -> None:
        """How feedback reaches the worker that owns a symbol (an option contract's, its index's worker)."""
        self.notify = self.options.route(fn)

    def quote_sink_target(self) -> tuple[str, str] | None:
        """Workers send the paper broker the quotes it fills at (paper mode), or prices options from (a replay
        with options symbols, signals_only too: the contract it records is priced there)."""
        if (self.mode is ExecutionMode.PAPER or self._replays_options) and not self.simulated:
            return (self.secrets.host_server, self.secrets.app_key or "")
        return None

    def start(self) -> None:
        self.rm.load()
        if self.replay:
            self.controls.load()
        self.disabled = dict(self.db.get_state(disabled_strategies_key(self.day)) or {})
        if self.disabled:
            log.warning("strategies disabled earlier today stay off: %s", ", ".join(sorted(self.disabled)))
        if (self.mode is ExecutionMode.PAPER or self._replays_options) and not self.simulated:
            self._ensure_paper_broker()
        if self.io is not None:
            self.io.start()
        self.reconcile()
        for sym in sorted({t.symbol for t in self.rm.active_trades.values()}):
            self._send_cap_triggers(sym)
        self._publish()
        self._started = True
        if self.rm.halted_earlier:
            self.rm.set_state(TradingState.HALTED, self.rm.halted_earlier)
        else:
            self.rm.set_state(TradingState.ACTIVE, "ready")

    def _halted_for_day(self, reason: str) -> None:
        """A halt once start-up has ended holds for the day: tell every symbol's worker once (DayHalted), so
        the strategies of flat symbols stop instead of signalling entries that could only be refused."""
        if not self._started or self._halt_told:
            return
        self._halt_told = True
        log.info("trading halted for the day (%s): the strategies of flat symbols stop", reason)
        for s in self.cfg.symbols:
            self.notify(s.symbol, DayHalted(s.symbol, reason))

    # ------------------------------------------------------------------ start-up reconciliation
    def reconcile(self) -> None:
        """Check the database against the broker before any worker may trade (execution.reconcile), trading
        HALTED throughout. Each phase is applied before the next is read: the orders' fills change the
        positions that are compared last."""
        self.rm.set_state(TradingState.HALTED, "reconciling with the broker after start-up")
        records = RestartRecords.read(self.db, self.orders, self.session, with_working=self.io is not None)
        rec = Reconciler(records, self.gateway, self.tag, self.replay)
        found = self.apply_reconciliation(rec.signals())
        if self.io is not None:
            found += self.apply_reconciliation(rec.orders())
            held = [HeldTrade(t.trade_id, t.symbol, t.side, t.remaining) for t in self.rm.active_trades.values()]
            found += self.apply_reconciliation(rec.positions(
                held, {p.symbol for p in self.pending.values()}, self.cfg.product.value, self.cfg.exchange,
                self.cfg.reconcile.unknown_position_policy, FO_EXCHANGE if self.options.specs else None))
        report(found, len(self.rm.active_trades), len(self.pending))

    def apply_reconciliation(self, events: list[Reconciled]) -> list[str]:
        """Apply what reconciliation found, in the order found, through this manager's own order and books
        paths (the one place a restart changes them); returns the report's lines."""
        for ev in events:
            if isinstance(ev, SignalSettled):
                self.db.execute_sql("UPDATE stock_signals SET outcome = :o, outcome_note = :n WHERE signal_id = :s",
                                    {"o": ev.status.value, "n": ev.note, "s": ev.signal_id}, fetch=False)
            elif isinstance(ev, SignalAnswered):
                self.outcomes[ev.outcome.signal_id] = ev.outcome
            elif isinstance(ev, OrdersCounted):
                self.signal_orders[ev.base] = self.signal_orders.get(ev.base, 0) + ev.orders
            elif isinstance(ev, OrderNeverSent):
                self._fail(ev.order_id, "RESTART_NEVER_SENT",
                           "recorded before a restart and never handed to the broker")
            elif isinstance(ev, OrderResumed):
                o, purpose = ev.order, OrderPurpose(ev.order.purpose)
                self.pending[o.id] = Pending(
                    o.id, o.symbol, ev.signal, purpose, OrderSide(o.side), o.quantity, o.decision_time or 0,
                    trade_id=o.trade_id, broker_order_id=o.broker_order_id, filled=o.filled_quantity,
                    avg=o.average_price, status=OrderStatus(o.status), exit_reason=ExitReason.RECONCILIATION.value
                    if purpose is not OrderPurpose.ENTRY else ExitReason.SIGNAL.value)
                if purpose is OrderPurpose.ENTRY:
                    self.ledger.reserve(o.id, self._reservation(o))
            elif isinstance(ev, OrderLookupUnanswered):
                p = self.pending[ev.order_id]
                p.lookups, p.next_lookup = 1, time.monotonic() + 1
            elif isinstance(ev, OrderNotAtBroker):
                self.orders.apply(ev.order_id, OrderFailed("RESTART_NOT_AT_BROKER",
                                                           "handed over before a crash; the broker never got it",
                                                           "restart: not in the broker's orderbook"))
                self._finish(self.pending[ev.order_id], OrderStatus.FAILED)
            elif isinstance(ev, OrderFoundAtBroker):
                self.pending[ev.order_id].broker_order_id = ev.broker_order_id
                self.orders.apply(ev.order_id, OrderAdopted(
                    ev.broker_order_id, f"restart: found in the orderbook as {ev.broker_order_id}; adopted"))
            elif isinstance(ev, StatusSeen):
                p = self.pending[ev.order_id]
                self._on_status(p, ev.result)
                if p.order_id in self.pending and p.broker_order_id:
                    self.broker.track(p.order_id, p.broker_order_id, self.tag)
            elif isinstance(ev, PositionMismatch):
                log.error("POSITION MISMATCH %s (policy: %s)", ev.what, ev.policy.value)
            elif isinstance(ev, HaltHeld):
                self.rm.hold_halt(ev.reason, replace=ev.replace)
            elif isinstance(ev, TradeClosedInBooks):
                t = self.rm.active_trades[ev.trade_id]
                when = int(self.clock.now() or time.time())
                booked = self.ledger.exit(ExitFilled(t.trade_id, ev.quantity,
                                                     self.rm.price_tracker.get(t.symbol, t.entry_price), when,
                                                     ExitReason.RECONCILIATION.value))
                if booked is not None:
                    self.rm.note_exit(booked, when)
            elif isinstance(ev, PositionAdopted):
                now = int(self.clock.now() or time.time())
                trade = self.ledger.entry(EntryFilled(
                    symbol=ev.symbol, side=ev.side, quantity=ev.quantity, price=D(ev.average_price), time=now,
                    margin_multiplier=self.rm.margin_for(ev.symbol), strategy="adopted"))
                log.warning("reconciliation: the broker's %s %s %d adopted as trade %d", ev.side.value, ev.symbol,
                            ev.quantity, trade.trade_id)
                if ev.flatten:
                    self._place_exit(trade, trade.remaining, OrderPurpose.SQUARE_OFF, ExitReason.RECONCILIATION.value,
                                     None, now)
            elif not isinstance(ev, PositionsUnread):  # a finding only: HaltHeld follows it
                raise TypeError(f"unexpected reconciliation finding {ev!r}")
        return findings(events)

    def _reservation(self, o: Order) -> Decimal:
        """The margin an entry held before the restart (recorded with it); an order recorded before that column
        existed gets its whole quantity at its reference price, the same rule the sizing used."""
        if o.reserved is not None:
            return Decimal(o.reserved)
        return money(o.quantity * Decimal(o.price or 0) / self.rm.margin_for(o.symbol))

    def disabled_strategies(self) -> dict[str, str]:
        """Symbol -> reason, for the workers: strategies that raised earlier today are not run again."""
        return {sym: str(d.get("reason", "")) for sym, d in self.disabled.items()}

    def strategy_disabled(self, ev: StrategyDisabled) -> None:
        """A worker turned a symbol's strategy off for the day (it raised). Recorded once, so `status` shows it
        and a restart keeps it off; the symbol's position stays in the books, managed and squared off as usual."""
        if ev.symbol in self.disabled:
            return
        doc = {**self.disabled, ev.symbol: {"strategy": ev.strategy, "reason": ev.reason, "time": ev.time}}
        try:
            self.db.set_state(disabled_strategies_key(self.day), doc)
        except Exception as e:  # noqa: BLE001 - the worker has already stopped calling it; keep trading the rest
            log.error("could not record that %s's strategy is disabled: %s", ev.symbol, e)
        self.disabled = doc
        trade = self.rm.trade_for(ev.symbol)
        log.warning("%s: strategy %s disabled for the rest of the day (%s); %s", ev.symbol, ev.strategy, ev.reason,
                    f"its {trade.side.value} position stays managed and is squared off as usual" if trade is not None
                    else "no position open")

    def in_market_hours(self, now: float) -> bool:
        return in_market_hours(self.cfg.session, now)

    def stop(self) -> None:
        self.options.stop()
        if self.io is not None:
            self.io.stop()
        if self.gateway is not None:
            self.gateway.close()

    def _ensure_paper_broker(self) -> None:
        from paper.client import PaperBrokerAdmin, PaperBrokerError
        from paper.launcher import start_broker, wait_ready

        self.admin = PaperBrokerAdmin(self.secrets.host_server, self.secrets.app_key or "")
        if not self.admin.is_up():
            url = urlparse(self.secrets.host_server)
            if not is_loopback_url(self.secrets.host_server):
                raise StartupError(f"HOST_SERVER {self.secrets.host_server} is not answering, and the paper broker "
                                   "is only started on loopback")
            pb = self.cfg.paper_broker
            log_dir = self.cfg.resolve_path(self.cfg.monitoring.log_dir)
            log_dir.mkdir(parents=True, exist_ok=True)
            proc = start_broker(url.port or 80, host=url.hostname or "127.0.0.1",
                                state_file=self.cfg.resolve_path(pb.state_file), api_key=self.secrets.app_key,
                                args=["--leverage", str(pb.leverage), "--funds", str(pb.starting_funds),
                                      "--order-rate", str(pb.order_rate_limit_per_s), "--log-dir", str(log_dir)],
                                detached=True)
            try:
                wait_ready(proc, self.admin, timeout_s=20)
            except PaperBrokerError as e:
                raise StartupError(f"could not start the paper broker: {e} (see logs/paper_broker.log)") from None
            log.info("started the paper broker at %s (pid %d); it keeps running after the daemon exits",
                     self.secrets.host_server, proc.pid)
        if self.replay:
            self._rewind_paper_clock()

    @property
    def _replays_options(self) -> bool:
        return self.replay and bool(self.options.specs)

    def _rewind_paper_clock(self) -> None:
        """A replayed day needs the paper broker's clock at that day's start. Its clock never goes back while
        it holds positions or open orders, so only an idle broker is reset."""
        books = self.gateway if self.gateway is not None else self.options.gateway
        positions = books.positionbook()
        orders = books.orderbook()
        if not isinstance(positions, Ok) or not isinstance(orders, Ok):
            bad = orders if isinstance(positions, Ok) else positions
            host = self.secrets.host_server
            hint = ""
            if isinstance(bad, Rejected) and bad.http_status in (401, 403):
                hint = (f"; the server at {host} refuses this APP_KEY: a paper broker started with another key "
                        "(another checkout?) is listening there -- stop it, or put its key in .env")
            raise StartupError(f"the paper broker at {host} did not answer positionbook/orderbook "
                               f"({_describe(bad)}){hint}; cannot start the replay")
        busy = any(p.quantity for p in positions.value) or any(not o.is_final for o in orders.value)
        start = self.session.pre_open
        # handed over (sent_at) counts too: a crash before the acknowledgement leaves no broker id, but the order
        # may be at the broker, and reconciliation (next) looks it up and adopts it
        rows = self.db.execute_sql("SELECT COUNT(*) FROM orders WHERE trading_date = :d AND "
                                   "(broker_order_id IS NOT NULL OR sent_at IS NOT NULL)", {"d": self.day}) or [(0,)]
        ours = rows[0][0]
        if ours:
            return  # this day was (partly) traded already: continue it on the broker's books, never wipe them
        if busy:
            raise StartupError("the paper broker holds positions or open orders the database does not know; "
                               "reset it (python paper_broker.py --reset) or run reconciliation")
        self.admin.reset(clock_mode="replay", clock=start)
        self.broker_clock = start

    # ------------------------------------------------------------------ signals
    def process_signal(self, sig: Signal) -> None:
        """Decide what a signal means and start its order; never waits for the broker."""
        sid = sig.signal_id  # built from the signal's fields on every read: read once
        if log.isEnabledFor(logging.DEBUG):
            log.debug("signal %s (attempt %d)", sid, sig.attempt_count)
        done = self.outcomes.get(sid)
        if done is not None:  # a restarted worker, or a resumed replay, sent it again: answer the same
            caps = self.controls.caps_for(sid) if self.replay else None
            if caps is not None:  # and arm (or clear) its cap triggers as the first run did before this answer
                self.notify(sig.symbol, caps)
            if self.replay and not done.force_exit and self.controls.was_forced(sid):
                # a cap turned it into a forced exit: reset the strategy
                done = msgspec.structs.replace(done, force_exit=True)
            self.notify(sig.symbol, done)
            return
        if self.pending and any(p.signal is not None and p.signal.signal_id == sid for p in self.pending.values()):
            return  # its order (from before a restart) is still working; the outcome follows when it is final
        try:
            price = D(sig.price)  # the mark, and a refused order's price: converted once
            self.ledger.mark(sig.symbol, price)  # rm.track_prices, one call less per signal
            check: _EntryCheck | None = None
            if sig.type is SignalType.ENTRY:
                self._check_halt(int(sig.time))  # may write the trading state: not inside the unit below
                self._learn_margin(sig.symbol, sig.price)
                cap = self._cap_reason(sig)
                if cap is None and not self.options.handles(sig.symbol):
                    # every refused entry is known here, before anything is built: one path writes them all
                    check = self._entry_check(sig)
                    if check.block is not None or self.mode is ExecutionMode.SIGNALS_ONLY:
                        self._refuse_entry(sig, sid, check, price)
                        return
            else:
                cap = self._cap_reason(sig)
                if (self.mode is ExecutionMode.SIGNALS_ONLY and not sig.forced and cap is None
                        and not self.options.handles(sig.symbol)):
                    self._signals_only_exit(sig, sid, price)
                    return

            def decide(s: Unit) -> None:
                self._signal_row = sig.to_row()  # written with the unit's end, its outcome set on it by then
                if sig.forced:
                    self._forced_notices(sig)
                forced = self._apply_symbol_caps(sig, cap)
                if forced.type is SignalType.ENTRY:
                    self._entry(forced, check)
                else:
                    purpose = OrderPurpose.EXIT if forced.type is SignalType.EXIT else OrderPurpose.TAKE_PROFIT
                    reason = ExitReason.SIGNAL.value if not forced.forced else forced.note or "forced"
                    self._exit(forced, purpose, reason)
            self._unit(f"signal {sid}", decide)
        except Exception as e:  # noqa: BLE001 - the worker must hear back, and the daemon must keep running
            log.exception("could not process signal %s: %s", sid, e)
            self._outcome(sig, OutcomeStatus.FAILED, note=f"internal error: {e}")

    def _forced_notices(self, sig: Signal) -> None:
        """A worker saw a cap crossed on a tick (a forced signal): the dashboard and the notifier hear of it once
        the decision is recorded."""
        shared = self.shared
        if shared is not None:
            self._later(lambda: shared.update_entry("force_exit_triggered_symbols", sig.symbol, sig.note))
        self._later(lambda: notify.emit(CapCrossed(sig.symbol, sig.note, sig.price)))

    def _learn_margin(self, symbol: str, price: float) -> None:
        """Margin per symbol from the broker where it can tell (OpenAlgo /margin), once a day per symbol;
        else the configured margin_multiplier stays in force."""
        if self.gateway is None or symbol in self.margin_asked or self.options.handles(symbol):
            return
        self.margin_asked.add(symbol)
        res = self.gateway.margin([{"symbol": symbol, "exchange": self.cfg.exchange, "action": "BUY", "quantity": 1,
                                    "product": self.cfg.product.value, "pricetype": "LIMIT", "price": price}])
        required = res.value.get("total_margin_required") if isinstance(res, Ok) else None
        try:
            mult = D(price) / D(required)
        except Exception:  # noqa: BLE001 - not given, zero or not a number: keep the configured multiplier
            log.info("%s: the broker gave no margin (%s); using margin_multiplier %s", symbol,
                     _describe(res) if not isinstance(res, Ok) else required, self.cfg.risk.margin_multiplier)
            return
        if mult >= 1:
            lev = self.rm.use_broker_margin(symbol, mult)
            log.info("%s: broker margin %s per share at %s: leverage %sx", symbol, required, price, lev)

    def _unit(self, what: str, fn: Callable[[Unit], None]) -> None:
        """Run one decision's writes in one transaction; what it does in memory or sends (pending orders,
        feedback, HTTP) waits in `_after` and happens only once the transaction has committed."""
        if self._s is not None:
            fn(self._s)
            return
        after: list[Callable[[], None]] = []

        def go(s: Unit) -> None:
            after.clear()
            self._s, self._after = s, after
            try:
                fn(s)
                self.orders.flush(s)
                if self._signal_row is not None:
                    insert_row(s, StockSignal, self._signal_row)
            finally:
                self._s, self._after, self._signal_row = None, None, None
        self.db.unit(what, go)
        for action in after:
            action()

    def _later(self, action: Callable[[], None]) -> None:
        if self._after is not None:
            self._after.append(action)
        else:
            action()

    def _apply_symbol_caps(self, sig: Signal, reason: str | None) -> Signal:
        """Seed chart 4: a per-symbol loss or profit cap crossed (`reason`, from _cap_reason) turns the signal
        into a forced exit."""
        trade = self.rm.trade_for(sig.symbol) if reason is not None else None
        if trade is None or reason is None:
            return sig
        log.warning("%s: %s (%.2f%% on margin); forcing an exit", sig.symbol, reason.replace("_", " "),
                    self.rm.get_current_returns_for_symbol(sig.symbol, sig.price))
        self._later(lambda: notify.emit(CapCrossed(sig.symbol, reason, sig.price)))
        shared = self.shared
        if shared is not None:
            self._later(lambda: shared.update_entry("force_exit_triggered_symbols", sig.symbol, reason))
        return sig.replace(type=SignalType.EXIT, current_position=trade.side, forced=True, note=reason,
                           origin_id=sig.signal_id, origin_type=sig.type)

    def _cap_reason(self, sig: Signal) -> str | None:
        """The per-symbol cap that the signal's price crosses on the symbol's open trade (which turns the signal
        into a forced exit), or None; reads only."""
        r = self.cfg.risk
        if not r.force_exit_on_cap or sig.type is SignalType.EXIT:
            return None
        if self.rm.trade_for(sig.symbol) is None:
            return None
        ret = self.rm.get_current_returns_for_symbol(sig.symbol, sig.price)
        if r.symbol_max_loss_pct is not None and ret <= r.symbol_max_loss_pct:
            return ExitReason.SYMBOL_LOSS_CAP.value
        if r.symbol_max_profit_pct is not None and ret >= r.symbol_max_profit_pct:
            return ExitReason.SYMBOL_PROFIT_CAP.value
        return None

    def _entry(self, sig: Signal, check: _EntryCheck | None) -> None:
        """`check`: the entry's checks as process_signal made them for this signal (nothing changed since), which
        passed them (a refused entry never gets here: _refuse_entry wrote it); None for an option's entry, which
        the options executor sizes and checks."""
        if self.options.handles(sig.symbol):
            self.options.entry(self, sig)
            return
        if check is None or check.block is not None or self.mode is ExecutionMode.SIGNALS_ONLY:
            raise RuntimeError(f"entry {sig.signal_id} reached the order path unchecked or refused")
        side, units, allocated, _block = check
        now = int(sig.time)
        order = self._create_order(sig, OrderPurpose.ENTRY, side, units, sig.price)
        order.reserved = allocated  # persisted with the order, so a restart holds the same margin for it
        self._later(lambda: self.ledger.reserve(order.id, allocated))
        self._send(order, lambda oid: Pending(oid, sig.symbol, sig, OrderPurpose.ENTRY, side, units, now))

    def _entry_check(self, sig: Signal) -> _EntryCheck:
        """The entry's side, size and margin, and the first check that refuses it (None: it may go); reads only,
        so a refusal is known before anything is built or written."""
        side = OrderSide.BUY if sig.current_position is PositionSide.LONG else OrderSide.SELL
        now = int(sig.time)
        block: tuple[str, str] | None = None
        units, allocated = 0, Decimal(0)
        if not (self.session.open <= now < self.session.entry_cutoff):
            block = ("SESSION_NO_ENTRIES", f"entries are allowed from {fmt_ist(self.session.open)} "
                                           f"to {fmt_ist(self.session.entry_cutoff)}")
        if block is None:
            pending_entries = (sum(1 for p in self.pending.values() if p.purpose is OrderPurpose.ENTRY)
                               if self.pending else 0)
            slip = self.cfg.costs.slippage_pct / 100  # size for the price a market order will likely get
            est = sig.price * (1 + slip if side is OrderSide.BUY else 1 - slip)
            a = self.rm.assess_trade(sig.symbol, est, sig.stop_loss, now, pending_entries,
                                     long=side is OrderSide.BUY)
            units, allocated = a.units, a.allocated
            if isinstance(a, Denied):
                block = (a.tag, a.reason)
        if block is None and (self.rm.trade_for(sig.symbol) is not None or sig.symbol in self.virtual
                              or any(p.symbol == sig.symbol for p in self.pending.values())):
            block = ("EXEC_GUARD_POSITION_OR_ORDER_OPEN", "the symbol already has a position or a pending order")
        if block is None and any(p.symbol == sig.symbol and p.side is side and p.quantity == units
                                 for p in self.pending.values()):
            block = ("DUPLICATE_PENDING_ORDER", "an identical order is pending")
        if block is None and self.breaker.is_open:
            block = ("BROKER_CIRCUIT_OPEN", f"broker failing: {self.breaker.last_reason}")
        return _EntryCheck(side, units, allocated, block)

    # ------------------------------------------------------------------ decisions that send nothing
    def _refuse_entry(self, sig: Signal, sid: str, check: _EntryCheck, price: Decimal) -> None:
        """An entry refused by its checks, or only recorded (signals_only): its order, events and signal as plain
        rows (execution.denials), no order object and no unit of its own around them. The worker hears of it and
        memory changes only once the rows are written (committed, in the daemon), as on the sent path. The one
        path of every refused entry (a forced one's notices too, as its decision would have sent them).
        `price`: D(sig.price), as process_signal converted it."""
        side, units, _allocated, block = check
        if block is None:  # signals_only: what we would have sent
            block = ("SIGNALS_ONLY", f"not sent (signals_only): {side.value} {units} {sig.symbol} @ ~{sig.price}")
        order = self._denied_order(sig, sid, _ENTRY, side, units, block, price)
        status, note = ((OutcomeStatus.EXECUTED, "signals_only") if block[0] == "SIGNALS_ONLY"
                        else (OutcomeStatus.FAILED, block[0]))
        self._record_refusal(sig, sid, [order], status, note)
        if sig.forced:
            self._forced_notices(sig)
        if status is OutcomeStatus.FAILED:
            self._count_failure(sig.symbol)
        else:
            self.virtual[sig.symbol] = (sig.current_position, units)
        self._tell(sig, status, note)

    def _signals_only_exit(self, sig: Signal, sid: str, price: Decimal) -> None:
        """An exit in signals_only mode: recorded against what we would hold (`_exit`'s rule), never sent."""
        held = self.virtual.get(sig.symbol)
        if held is None:
            self._record_refusal(sig, sid, [], OutcomeStatus.IGNORED, "no position")
            self._tell(sig, OutcomeStatus.IGNORED, "no position")
            return
        purpose = OrderPurpose.EXIT if sig.type is SignalType.EXIT else OrderPurpose.TAKE_PROFIT
        qty = held[1] if purpose is OrderPurpose.EXIT else max(1, math.floor(held[1] * sig.close_fraction))
        side = OrderSide.SELL if held[0] is PositionSide.LONG else OrderSide.BUY
        order = self._denied_order(sig, sid, purpose.value, side, qty,
                                   ("SIGNALS_ONLY", f"not sent (signals_only): {side.value} {qty} {sig.symbol}"),
                                   price)
        self._record_refusal(sig, sid, [order], OutcomeStatus.EXECUTED, "signals_only")
        if qty >= held[1]:
            self.virtual.pop(sig.symbol, None)
        else:
            self.virtual[sig.symbol] = (held[0], held[1] - qty)
        self._tell(sig, OutcomeStatus.EXECUTED, "signals_only")

    def _denied_order(self, sig: Signal, sid: str, purpose: str, side: OrderSide, qty: int,
                      block: tuple[str, str], price: Decimal) -> DeniedOrder:
        """The columns `_create_order` gives the signal's order, for an order refused before it is sent
        (`sid`: the signal's id, `purpose`: an OrderPurpose's value, `price`: D(sig.price))."""
        attempt = self.signal_orders.get(sid, 0) + 1
        self.signal_orders[sid] = attempt
        symbol = sig.symbol
        return DeniedOrder(dict(
            client_order_id=f"{sid}#{attempt}", signal_id=sid if sig.origin_id is None else sig.origin_id,
            trade_id=None, trading_date=self.day, symbol=symbol,
            exchange=self._exchange_of(symbol), side=_SIDE[side], purpose=purpose,
            quantity=qty, product=self._product, price_type="MARKET", price=price,
            strategy_tag=self.tag, decision_time=int(sig.time)), block[0], block[1])

    def _record_refusal(self, sig: Signal, sid: str, orders: list[DeniedOrder], status: OutcomeStatus,
                        note: str) -> None:
        """Write a signal that sent nothing: its orders and its row with the outcome. In the daemon that is one
        transaction, committed here; a backtest's day keeps such records and writes many together (nothing was
        sent, and no one outside the run hears of them before the day's one commit: backtest.day_db)."""
        row = sig.to_row()
        row["outcome"], row["outcome_note"] = _STATUS[status], note or None
        self.db.record(f"signal {sid}", Denial(row, orders), write_denials)

    def _exit(self, sig: Signal, purpose: OrderPurpose, reason: str) -> None:
        if self.options.handles(sig.symbol):
            self.options.exit(self, sig, reason)
            return
        if self.mode is ExecutionMode.SIGNALS_ONLY:
            held = self.virtual.get(sig.symbol)
            if held is None:
                self._outcome(sig, OutcomeStatus.IGNORED, note="no position")
                return
            qty = held[1] if purpose is OrderPurpose.EXIT else max(1, math.floor(held[1] * sig.close_fraction))
            side = OrderSide.SELL if held[0] is PositionSide.LONG else OrderSide.BUY
            order = self._create_order(sig, purpose, side, qty, sig.price)
            self._fail(order, "SIGNALS_ONLY", f"not sent (signals_only): {side.value} {qty} {sig.symbol}")

            def shrink() -> None:
                if qty >= held[1]:
                    self.virtual.pop(sig.symbol, None)
                else:
                    self.virtual[sig.symbol] = (held[0], held[1] - qty)
            self._later(shrink)
            self._outcome(sig, OutcomeStatus.EXECUTED, note="signals_only")
            return
        trade = self.rm.trade_for(sig.symbol)
        if trade is None or trade.side is not sig.current_position:
            self._outcome(sig, OutcomeStatus.IGNORED, note="no open position for this exit")
            return
        if any(p.trade_id == trade.trade_id and p.purpose is not OrderPurpose.ENTRY for p in self.pending.values()):
            self._outcome(sig, OutcomeStatus.IGNORED, note="an exit for this position is already pending")
            return
        qty = trade.remaining
        if purpose is OrderPurpose.TAKE_PROFIT:
            qty = max(1, math.floor(trade.remaining * sig.close_fraction))
            if qty >= trade.remaining:
                purpose = OrderPurpose.EXIT
        self._place_exit(trade, qty, purpose, reason, sig, int(sig.time))

    def _place_exit(self, trade: Any, qty: int, purpose: OrderPurpose, reason: str, sig: Signal | None,
                    now: int) -> None:
        side = OrderSide.SELL if trade.side is PositionSide.LONG else OrderSide.BUY

        def go(s: Unit) -> None:
            order = self._create_order(sig, purpose, side, qty, self.rm.price_tracker.get(trade.symbol), trade=trade,
                                       now=now)
            self._send(order, lambda oid: Pending(oid, trade.symbol, sig, purpose, side, qty, now,
                                                  trade_id=trade.trade_id, exit_reason=reason))
        self._unit(f"exit {trade.symbol}", go)

    # ------------------------------------------------------------------ order helpers
    def _create_order(self, sig: Signal | None, purpose: OrderPurpose, side: OrderSide, qty: int, price: Any,
                      trade: Any = None, now: int | None = None, symbol: str | None = None) -> OrderRecord:
        symbol = symbol or (trade.symbol if trade is not None else sig.symbol if sig is not None else "")
        base = sig.signal_id if sig is not None else f"{purpose.value}:{symbol}:{now}"
        attempt = self.signal_orders.get(base, 0) + 1
        order = self.orders.create(
            s=self._s, client_order_id=f"{base}#{attempt}",
            signal_id=sig.emitted_id if sig is not None else None,
            trade_id=trade.trade_id if trade is not None else None, trading_date=self.day, symbol=symbol,
            exchange=self._exchange_of(symbol), side=side.value, purpose=purpose.value, quantity=qty,
            product=self.cfg.product.value, price_type="MARKET", price=None if price is None else D(price),
            strategy_tag=self.tag, decision_time=int(sig.time if sig is not None else now or 0))
        self.signal_orders[base] = attempt
        return order

    def _exchange_of(self, symbol: str) -> str:
        """Where `symbol` is ordered: an option contract on NFO, the rest on the config's exchange (looked up once
        per symbol: every refused entry asks)."""
        ex = self._exchanges.get(symbol)
        if ex is None:
            ex = self._exchanges[symbol] = FO_EXCHANGE if is_option_symbol(symbol) else self.cfg.exchange
        return ex

    def _written(self, order: OrderRecord) -> int:
        """The order's id, writing the unit's rows so far if it has none yet (it is about to be sent)."""
        if order.id is None:
            if self._s is None:
                raise RuntimeError("an order is written inside a decision's unit only")
            self.orders.flush(self._s)
        return order.id

    def _fail(self, order: int | OrderRecord, tag: str, reason: str) -> None:
        """The order is denied before it is sent (`order`: a row of the open unit, or an id)."""
        self.orders.apply(order, OrderDenied(tag, reason), s=self._s)
        self._later(lambda: log.info("order %d not sent: %s (%s)", order if isinstance(order, int) else order.id,
                                     tag, reason))

    def _send(self, order: OrderRecord, pending: Callable[[int], Pending]) -> None:
        # committed as SENT_TO_BROKER before the request leaves: a crash in between is found by reconciliation.
        # Marked before its first write, so the order is one INSERT (with its CREATED and SENT events)
        self.orders.apply(order, OrderSent(utcnow()), s=self._s)
        p = pending(self._written(order))
        req = SubmitOrder(order.id, order.symbol, order.exchange, order.side, order.quantity, order.product,
                          "MARKET", self.tag)

        def go() -> None:
            self.pending[order.id] = p
            if self.replay and self.admin is not None and p.decision_time > self.broker_clock:
                self._push_clock(p.decision_time)
            crash_point("order_committed")
            self.broker.send(req)
            self._publish()
        self._later(go)

    def _push_clock(self, t: float) -> None:
        try:
            self.admin.set_clock(t)
            self.broker_clock = t
        except Exception as e:  # noqa: BLE001 - the fill may then use an older price; say so
            log.warning("could not advance the paper broker's clock to %s: %s", fmt_ist(t), e)

    def _count_failure(self, symbol: str) -> None:
        """Count a failed order for `symbol` once the unit's writes have committed (now, when no unit is open:
        a refused entry, whose rows are written already)."""
        self._later(lambda: self._failed(symbol))

    def _failed(self, symbol: str) -> None:
        self.failed_trades[symbol] = self.failed_trades.get(symbol, 0) + 1
        if self.shared is not None:
            self.shared.set(failed_trades=dict(self.failed_trades))

    # ------------------------------------------------------------------ events from the broker threads
    def poll(self) -> None:
        """Apply what the sender and poller threads learned, then act on timeouts and retries."""
        if self.io is None:
            return
        applier, answers = self.events, self.io.events
        # the common call finds nothing: no exception raised for an empty queue, no clock read for nothing held
        n = applier.retry_due(self._apply_event, time.monotonic()) if applier.held else 0
        while not answers.empty():
            try:
                ev = answers.get_nowait()
            except queue.Empty:
                break
            n += 1
            applier.apply(ev, self._apply_event, time.monotonic())
        if not self.pending and not self.retry_at:
            if n:
                self._publish()
            return
        mono = time.monotonic()
        for p in list(self.pending.values()):
            if p.broker_order_id and not p.cancel_requested and mono - p.sent_mono > self.cfg.orders.fill_timeout_s:
                p.cancel_requested = True
                log.warning("order %d (%s) unfilled after %.0fs: cancelling it", p.order_id, p.broker_order_id,
                            self.cfg.orders.fill_timeout_s)
                self.orders.apply(p.order_id, OrderNoted("fill timeout: cancel requested"))
                self.broker.send(CancelOrder(p.order_id, p.broker_order_id, self.tag))
            if p.broker_order_id is None and p.lookups and mono >= p.next_lookup > 0:
                p.next_lookup = 0
                self._lookup(p)
        for trade_id, (when, reason) in list(self.retry_at.items()):
            if mono >= when:
                del self.retry_at[trade_id]
                trade = self.rm.active_trades.get(trade_id)
                if trade is not None and not any(q.trade_id == trade_id and q.purpose is not OrderPurpose.ENTRY
                                                 for q in self.pending.values()):
                    log.info("retrying the exit of trade %d (%s)", trade_id, trade.symbol)
                    self._place_exit(trade, trade.remaining, OrderPurpose.EXIT, reason, None, int(self.clock.now()))
        if n:
            self._publish()

    def _apply_event(self, ev: Any) -> None:
        if isinstance(ev, Probed):
            (self.breaker.success() if ev.ok else self.breaker.failure(ev.reason or "probe failed"))
            return
        p = self.pending.get(ev.order_id)
        if p is None:
            return
        if isinstance(ev, Placed):
            self._on_placed(p, ev.result)
        elif isinstance(ev, StatusSeen):
            self._on_status(p, ev.result)
        elif isinstance(ev, LookedUp):
            self._on_lookup(p, ev.result)
        elif isinstance(ev, CancelAnswered):
            self.orders.apply(p.order_id, OrderNoted(f"cancel answered: {_describe(ev.result)}"))
            self.broker.poll_now(p.order_id)

    def _on_placed(self, p: Pending, res: Any) -> None:
        if isinstance(res, Accepted):
            crash_point("order_acknowledged")
            self.breaker.success()
            self.orders.apply(p.order_id, OrderAccepted(res.broker_order_id, utcnow()))
            # only once committed: a held acknowledgement (the database away) must not look acknowledged to
            # the fill-timeout cancel or to the caller waiting for it
            p.broker_order_id = res.broker_order_id
            self.broker.track(p.order_id, res.broker_order_id, self.tag)
        elif isinstance(res, Rejected):
            self.breaker.success()  # the broker answered; it said no
            self.orders.apply(p.order_id, OrderRejected(res.message))
            self._finish(p, OrderStatus.REJECTED)
        elif isinstance(res, Unavailable):
            self.breaker.failure(res.reason)
            self.orders.apply(p.order_id, OrderFailed("BROKER_UNAVAILABLE", res.reason, f"not delivered: {res.reason}"))
            self._finish(p, OrderStatus.FAILED)
        elif isinstance(res, Unknown):
            self.breaker.failure(res.reason)
            self.orders.apply(p.order_id, OrderNoted(f"no answer to placeorder ({res.reason}); looking it up in the "
                                                     "orderbook"))
            log.warning("order %d: placement outcome unknown (%s); resolving from the orderbook", p.order_id,
                        res.reason)
            p.lookups = 1
            p.next_lookup = time.monotonic() + 0.2
        else:
            raise TypeError(f"unexpected placement result {res!r}")

    def _lookup(self, p: Pending) -> None:
        known = [q.broker_order_id for q in self.pending.values() if q.broker_order_id]
        placed_after = p.decision_time if self.replay else time.time() - (time.monotonic() - p.sent_mono)
        self.broker.send(FindOrder(p.order_id, dict(symbol=p.symbol, exchange=self._exchange_of(p.symbol),
                                                side=p.side.value, quantity=p.quantity, strategy=self.tag,
                                                placed_after_epoch=placed_after - 5,
                                                exclude_broker_ids=known + self._adopted_ids())))

    def _adopted_ids(self) -> list[str]:
        from sqlalchemy import select

        return self.db.transaction("known broker ids", lambda s: [x for x in s.scalars(
            select(Order.broker_order_id).where(Order.trading_date == self.day, Order.broker_order_id.isnot(None)))
            if x is not None])

    def _on_lookup(self, p: Pending, res: Any) -> None:
        if isinstance(res, Ok):
            self.breaker.success()
            if res.value:
                found = res.value[0]
                p.broker_order_id = found.orderid
                self.orders.apply(p.order_id, OrderAdopted(
                    found.orderid, f"found in the orderbook as {found.orderid} ({found.status}); adopted"))
                log.info("order %d found in the orderbook as %s; adopted", p.order_id, found.orderid)
                self.broker.track(p.order_id, found.orderid, self.tag)
                return
            if p.lookups >= 3:
                self.orders.apply(p.order_id, OrderFailed(
                    "BROKER_ERROR_NOT_PLACED", "placement unanswered and absent from the orderbook",
                    "not in the broker's orderbook after 3 lookups: it was not placed"))
                self._finish(p, OrderStatus.FAILED)
                return
        else:
            self.breaker.failure(_describe(res))
        p.lookups += 1
        p.next_lookup = time.monotonic() + min(0.5 * p.lookups, self.cfg.orders.poll_interval_s * 2)

    def _on_status(self, p: Pending, res: Any) -> None:
        if not isinstance(res, Ok):
            if isinstance(res, (Unavailable, Unknown)):
                self.breaker.failure(_describe(res))
            else:
                self.orders.apply(p.order_id, OrderNoted(f"orderstatus: {_describe(res)}"))
            return
        self.breaker.success()
        info = res.value
        status = info.daemon_status
        if status is None:
            log.warning("order %d: broker status %r not understood; polling on", p.order_id, info.status)
            return
        if info.filled_quantity > p.filled and info.average_price > 0:
            crash_point("fill_seen")
            self._apply_fill(p, info.filled_quantity, D(info.average_price))
        if status is OrderStatus.OPEN and p.filled:
            status = OrderStatus.PARTIALLY_FILLED
        if status.is_final:
            self.orders.apply(p.order_id, broker_final(status, info.status, p.filled, p.avg))
            self._finish(p, status)
        else:
            if status is not p.status:
                self.orders.apply(p.order_id, OrderWorking(status, info.status))
                p.status = status

    def _apply_fill(self, p: Pending, cum_qty: int, cum_avg: Decimal) -> None:
        """Book the fills between the last reading and this one: once, the ledger writing the Fill row with them."""
        delta, price = fill_delta(p.filled, p.avg, cum_qty, cum_avg)
        if delta <= 0:
            return
        reading = FillReading(p.order_id, cum_qty, cum_avg)
        new_trade = p.purpose is OrderPurpose.ENTRY and (p.trade_id is None or p.trade_id not in self.rm.active_trades)
        when = p.decision_time if self.replay else int(time.time())
        watch: bool | None = None
        if p.purpose is OrderPurpose.ENTRY:
            sig = p.signal
            option = is_option_symbol(p.symbol)  # bought whatever the view; the signal's levels are the index's
            side = (PositionSide.LONG if option else sig.current_position if sig is not None else
                    PositionSide.LONG if p.side is OrderSide.BUY else PositionSide.SHORT)
            lv = None if option else sig
            trade = self.ledger.entry(EntryFilled(
                symbol=p.symbol, side=side, quantity=delta, price=price, time=when,
                margin_multiplier=D(1) if option else self.rm.margin_for(p.symbol),  # a premium is paid in full
                strategy=sig.strategy if sig is not None else "recovered",
                stop_loss=None if lv is None or lv.stop_loss is None else D(lv.stop_loss),
                take_profit_price=None if lv is None or lv.take_profit_price is None else D(lv.take_profit_price),
                reading=reading, trade_id=p.trade_id))
            p.trade_id = trade.trade_id
            watch = True if new_trade else None
        else:
            # charges are per order: this fill adds what the order's charges grew by
            is_buy = p.side is OrderSide.BUY
            charges = (self.ledger.order_charges(is_buy, cum_avg, cum_qty, p.symbol)
                       - self.ledger.order_charges(is_buy, p.avg, p.filled, p.symbol))
            ex = self.ledger.exit(ExitFilled(_exit_trade(p), delta, price, when, p.exit_reason, charges, reading))
            if ex is not None:
                self.rm.note_exit(ex, when)
                if ex.full:
                    watch = False
        p.filled, p.avg = cum_qty, cum_avg  # only once the fill is committed
        if watch is not None:
            self.notify(p.symbol, Watch(p.symbol, watch))
        # before the Outcome that releases the symbol's held ticks
        self._send_cap_triggers(p.symbol, p.signal, p.decision_time)
        if new_trade and self.flattening and p.trade_id is not None and p.trade_id in self.rm.active_trades:
            self._close_forced(self.rm.active_trades[p.trade_id], p.decision_time if self.replay else int(time.time()))

    def _send_cap_triggers(self, symbol: str, sig: Signal | None = None, at: int | None = None) -> None:
        """The symbol's books changed: tell its worker the prices that cross its caps (or that it is flat),
        so a cap acts on the crossing tick rather than on the next signal. `sig`: the signal whose outcome
        follows (`at`: the order's decision time, when no signal did); a replay records the triggers, so a
        rerun that answers the signal from the database, or reaches that time, arms the worker alike. An option
        contract's caps are not its index worker's (it sees the index, not the premium)."""
        if self.mode is ExecutionMode.SIGNALS_ONLY or is_option_symbol(symbol):
            return
        trade = self.rm.trade_for(symbol)
        if trade is None:
            msg = CapTriggers(symbol, None)
        else:
            loss = profit = None
            if self.cfg.risk.force_exit_on_cap:
                loss, profit = self.rm.cap_prices(trade)
            # a resumed replay runs the day's ticks from the open again: none before the trade existed is checked
            msg = CapTriggers(symbol, trade.side.value, None if loss is None else float(loss),
                              None if profit is None else float(profit), trade.entry_time if self.replay else 0)
        self.notify(symbol, msg)
        if self.replay and sig is not None:
            self._record_control(lambda: self.controls.caps_sent(sig.emitted_id, msg))
        elif self.replay and at is not None:
            self._record_control(lambda: self.controls.sent_at(at, msg))

    def _record_control(self, fn: Callable[[], None]) -> None:
        """Keep a worker control for a rerun; failing to keep it never stops trading."""
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - only a rerun of the day is affected
            log.warning("could not record a worker control for a rerun of the day: %s", e)

    def _force_exit(self, symbol: str, reason: str, now: int) -> None:
        """Reset the symbol's strategy: the TradeManager closes its position on its own."""
        msg = ForceExit(symbol, reason)
        self.notify(symbol, msg)
        if self.replay:
            self._record_control(lambda: self.controls.sent_at(now, msg))

    def _finish(self, p: Pending, status: OrderStatus) -> None:
        """The order is final: release what it held and tell the worker what became of its signal."""
        self.pending.pop(p.order_id, None)
        if self.io is not None:
            self.io.untrack(p.order_id)
        if p.purpose is OrderPurpose.ENTRY:
            self.ledger.release(p.order_id)
        sig = p.signal
        if p.purpose is OrderPurpose.ENTRY:
            if sig is None:
                return
            if any(q.signal is not None and q.signal.signal_id == sig.signal_id for q in self.pending.values()):
                return  # an option entry's other child orders are working: the outcome follows the last
            if p.filled > 0:
                self._outcome(sig, OutcomeStatus.EXECUTED,
                              note=self.options.outcome_note(sig, f"filled {p.filled}/{p.quantity}"))
            else:
                self._count_failure(sig.symbol)
                self._outcome(sig, OutcomeStatus.FAILED, note=status.value)
            return
        tid = _exit_trade(p)
        trade = self.rm.active_trades.get(tid)
        complete = p.filled >= p.quantity
        if trade is not None and p.filled == 0:
            # the worker disarmed them when it forced an exit: re-arm
            self._send_cap_triggers(trade.symbol, sig, p.decision_time)
        if trade is not None and not complete and p.purpose is not OrderPurpose.TAKE_PROFIT:
            n = self.exit_attempts.get(tid, 0) + 1
            self.exit_attempts[tid] = n
            if n < self.cfg.risk.max_incomplete_attempts:
                delay = min(2.0 ** n, 30.0)
                self.retry_at[tid] = (time.monotonic() + delay, p.exit_reason)
                log.warning("exit of trade %d (%s) incomplete (%s, filled %d/%d); retry %d in %.0fs", p.trade_id,
                            trade.symbol, status.value, p.filled, p.quantity, n + 1, delay)
            else:
                log.error("exit of trade %d (%s) failed %d times; the position stays open: check the broker. "
                          "It will be squared off with the session.", p.trade_id, trade.symbol, n)
        elif trade is None:
            self.exit_attempts.pop(tid, None)
        if sig is None:
            return
        if complete:
            self._outcome(sig, OutcomeStatus.EXECUTED, note=f"filled {p.filled}")
        else:
            self._count_failure(sig.symbol)
            record = {"signal": {"stop_loss": sig.stop_loss, "take_profit_price": sig.take_profit_price,
                                 "position_size": sig.position_size, "close_fraction": sig.close_fraction,
                                 "note": sig.note},
                      "order_id": p.order_id, "reason": status.value, "timestamp": time.time(),
                      "attempt_count": sig.attempt_count}
            self._outcome(sig, OutcomeStatus.INCOMPLETE, note=status.value, incomplete=record)

    def _outcome(self, sig: Signal, status: OutcomeStatus, note: str = "",
                 incomplete: dict[str, Any] | None = None) -> None:
        """Tell the worker what became of the signal it emitted (under the id it emitted, even when the
        TradeManager turned it into a forced exit)."""
        sid = sig.emitted_id

        def record(s: Unit) -> None:
            row = self._signal_row
            if row is not None and row["signal_id"] == sid:  # recorded in this unit: written with it, at its end
                row["outcome"], row["outcome_note"] = status.value, note or None
                return
            db_exec.run(s.connection(), _SET_OUTCOME,
                        {"sid": sid, "outcome": status.value, "outcome_note": note or None})
        try:
            self._unit(f"outcome of {sid}", record)
        except Exception as e:  # noqa: BLE001 - the worker must still hear back; the order rows say what happened
            log.warning("could not record the outcome of %s: %s", sid, e)
        self._later(lambda: self._tell(sig, status, note, incomplete))

    def _tell(self, sig: Signal, status: OutcomeStatus, note: str, incomplete: dict[str, Any] | None = None) -> None:
        """The worker hears the signal's outcome (once it is recorded), under the id it emitted."""
        sid = sig.emitted_id
        out = Outcome(sid, sig.symbol, sig.emitted_type.value, status, force_exit=sig.forced,
                      incomplete=incomplete, note=note)
        self.outcomes[sid] = out
        if self.replay and out.force_exit:
            self._record_control(lambda: self.controls.outcome_forced(sid))
        self.notify(sig.symbol, out)
        if self.shared is not None:
            key = INCOMPLETE_KEYS[out.signal_type]
            unfinished = status in (OutcomeStatus.INCOMPLETE, OutcomeStatus.FAILED)
            self.shared.update_entry(key, sig.symbol, incomplete if unfinished and
                                     (incomplete or out.signal_type == SignalType.ENTRY.value) else None)

    # ------------------------------------------------------------------ time
    def on_clock(self, now: float) -> None:
        """Session rules on the daemon's clock (tick time in replay, wall time live)."""
        st = self.session
        if self.replay:  # a rerun: the square-offs and halts an earlier run of the day forced, at their time
            for msg in self.controls.due(now):
                self.notify(msg.symbol, msg)
        self.options.on_clock(self, now)  # held options: premium stop and target, expiry roll
        if now >= st.entry_cutoff and not self.cutoff_done:
            self.cutoff_done = True
            if self.rm.state is TradingState.ACTIVE:
                self.rm.set_state(TradingState.REDUCING, f"entry cut-off {fmt_ist(st.entry_cutoff)}: exits only")
            for p in list(self.pending.values()):
                if p.purpose is OrderPurpose.ENTRY and p.broker_order_id and not p.cancel_requested:
                    p.cancel_requested = True
                    self.broker.send(CancelOrder(p.order_id, p.broker_order_id, self.tag))
        if now >= st.square_off and not self.squared_off:
            # decided at the scheduled time, not whenever the clock was next seen: a replay squares off alike
            self.square_off_all(st.square_off if self.replay else int(now), ExitReason.SQUARE_OFF.value)
        mono = time.monotonic()
        if self.replay and self.admin is not None and mono - self._last_clock_push >= 0.2:
            self._last_clock_push = mono
            target = min([now, *(p.decision_time for p in self.pending.values()), self.options.next_due()])
            if target > self.broker_clock:
                self._push_clock(target)
        if mono - self._last_halt_check >= 1.0:
            self._last_halt_check = mono
            if not self.replay:  # a replay checks at marks and signals only: the same tick every run
                self._check_halt(int(now))
            if self.io is not None and self.breaker.probe_due():
                self.broker.send(ProbeBroker())

    def on_marks(self, marks: Marks) -> None:
        """Open positions' prices from the ticks (in feed order, at most once per data-second per position):
        the global caps, daily loss limit and drawdown act on price movement, not only when a signal comes."""
        mark = self.ledger.mark  # rm.track_prices, one call less per price
        for sym, price in marks.prices.items():
            mark(sym, D(price))
        self._check_halt(marks.time)

    def _check_halt(self, now: int) -> None:
        """Run the halt check; a new halt from losing money (global loss cap, daily loss limit, drawdown)
        also closes every open position when risk.flatten_on_halt is set. The profit cap only stops entries."""
        if self.rm.state is TradingState.HALTED:
            return
        halted, reason = self.rm.halt_trading_check()
        if halted:  # new: an earlier halt returned above
            notify.emit(TradingHalted(reason))
        if halted and self.rm.halt_is_loss and self.cfg.risk.flatten_on_halt:
            self.flatten(now, reason)

    def flatten(self, now: int, why: str) -> None:
        """Close every open position with a forced exit decided now, and cancel working entry orders."""
        self.flattening = True
        for p in list(self.pending.values()):
            if p.purpose is OrderPurpose.ENTRY and p.broker_order_id and not p.cancel_requested and self.io:
                p.cancel_requested = True
                self.broker.send(CancelOrder(p.order_id, p.broker_order_id, self.tag))
        trades = list(self.rm.active_trades.values())
        if self.mode is ExecutionMode.SIGNALS_ONLY or not trades:
            return
        log.warning("%s: closing %d open position(s) at %s", why, len(trades), fmt_ist(now))
        notify.emit(ExitsForced(why, tuple(t.symbol for t in trades)))
        for t in trades:
            self._close_forced(t, now)

    def close_symbol(self, symbol: str, reason: str, now: int) -> str:
        """An operator's flatten of one symbol (execution.operator): a forced exit decided now, written ahead
        like any order; what happened, in a few words."""
        trade = self.rm.trade_for(symbol)
        if trade is None:
            return "no open position"
        if self.mode is ExecutionMode.SIGNALS_ONLY:
            return "signals_only: no broker position to close"
        if any(p.trade_id == trade.trade_id and p.purpose is not OrderPurpose.ENTRY for p in self.pending.values()):
            return "an exit order for it is already working"
        self._close_forced(trade, now, reason)
        return f"exit order for {trade.remaining} placed"

    def cancel_entries(self) -> int:
        """Cancel the working entry orders at the broker (an operator's flatten-all); how many were asked."""
        n = 0
        for p in list(self.pending.values()):
            if p.purpose is OrderPurpose.ENTRY and p.broker_order_id and not p.cancel_requested and self.io:
                p.cancel_requested = True
                self.broker.send(CancelOrder(p.order_id, p.broker_order_id, self.tag))
                n += 1
        return n

    def _close_forced(self, t: Any, now: int, reason: str = ExitReason.RISK_HALT.value) -> None:
        if not any(p.trade_id == t.trade_id and p.purpose is not OrderPurpose.ENTRY for p in self.pending.values()):
            self._place_exit(t, t.remaining, OrderPurpose.EXIT, reason, None, now)
        self._force_exit(t.symbol, reason, now)

    def square_off_all(self, now: int, reason: str) -> None:
        """Close every open position with a market order (session square-off, end of replay)."""
        self.squared_off = True
        if self.mode is ExecutionMode.SIGNALS_ONLY:
            self.virtual.clear()
            return
        trades = list(self.rm.active_trades.values())
        if trades:
            log.info("square-off at %s: closing %d open position(s)", fmt_ist(now), len(trades))
        for t in trades:
            if any(p.trade_id == t.trade_id and p.purpose is not OrderPurpose.ENTRY for p in self.pending.values()):
                continue
            self._place_exit(t, t.remaining, OrderPurpose.SQUARE_OFF, reason, None, now)
            self._force_exit(t.symbol, reason, now)

    def close_session(self, now: float) -> None:
        """End of a replay: square off, wait (bounded) for every order to finish, and report."""
        if not self.squared_off or self.rm.active_trades:
            self.square_off_all(int(now), ExitReason.END_OF_DAY.value)
        deadline = time.monotonic() + self.cfg.orders.fill_timeout_s + 10
        while (self.pending or self.retry_at) and time.monotonic() < deadline:
            self.poll()
            time.sleep(0.01)
        if self.pending:
            log.error("%d order(s) still unresolved at session close: %s", len(self.pending),
                      ", ".join(str(i) for i in self.pending))
        realized = self.rm.capital - self.rm.start_capital
        log.info("session closed: capital %s (start %s, realized net %s), %d position(s) open",
                 self.rm.capital, self.rm.start_capital, realized, len(self.rm.active_trades))
        self._publish()

    # ------------------------------------------------------------------ restart
    # ------------------------------------------------------------------ visibility
    def _publish(self) -> None:
        if self.shared is None:
            return
        self.shared.set(active_trades=len(self.rm.active_trades),
                        active_order_ids=[p.broker_order_id or f"local-{p.order_id}" for p in self.pending.values()],
                        trading_state=self.rm.state.value)


# enum values read on every refused signal (an enum member's .value is a descriptor call)
_ENTRY = OrderPurpose.ENTRY.value
_SIDE = {side: side.value for side in OrderSide}
_STATUS = {status: status.value for status in OutcomeStatus}

# a signal's outcome, set on every row recorded under its id (the SET clause is the other parameters)
_SET_OUTCOME = update(cast(Table, StockSignal.__table__)).where(StockSignal.__table__.c.signal_id == bindparam("sid"))


class _EntryCheck(NamedTuple):
    """An entry's side, size and margin as sized, and the check that refuses it (tag, reason), None if none."""

    side: OrderSide
    units: int
    allocated: Decimal
    block: tuple[str, str] | None


def _exit_trade(p: Pending) -> int:
    """The trade an exit order closes: every exit is placed for an open trade, so a missing id is a bug."""
    if p.trade_id is None:
        raise ValueError(f"exit order {p.order_id} names no trade")
    return p.trade_id


def _request_budget(o: OrdersConfig) -> RequestBudget:
    """Polls leave room for a second's worth of orders at the order rate, so following orders never delays
    sending one (with the defaults, 10 requests/s: 8 for orders, polls use what orders leave)."""
    reserve = min(o.broker_requests_per_s - 1, math.ceil(o.rate_limit_per_s))
    return RequestBudget(o.broker_requests_per_s, order_reserve=reserve)


def _describe(res: Any) -> str:
    for attr in ("message", "reason"):
        v = getattr(res, attr, None)
        if v:
            return f"{type(res).__name__}: {v}"
    return type(res).__name__

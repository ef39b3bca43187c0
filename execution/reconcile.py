"""Start-up reconciliation: before any worker may trade, rebuild what the database says and check it
against the broker's own books (orderbook, order status, positionbook).

- An order recorded but never handed to the broker is failed with a clear tag.
- One handed over without an answer is looked up in the orderbook (symbol, side, quantity, strategy tag,
  time) and adopted or failed; it is never sent again.
- One the broker knows is polled once: fills that happened while the daemon was down are applied, once.
- A position the broker holds that the database does not know (or the reverse) is reported loudly and
  handled by `reconcile.unknown_position_policy`: adopt and manage it, flatten it, or halt.
The trading state is HALTED throughout and the log says what was found and what was done.
"""
from __future__ import annotations

import logging
import time
from collections import defaultdict
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import select

import notify
from core.costs import NO_CHARGES
from core.enums import (
    ExitReason,
    OrderPurpose,
    OrderSide,
    OrderStatus,
    OutcomeStatus,
    PositionSide,
    SignalType,
    TradingState,
    UnknownPositionPolicy,
)
from core.types import Signal
from db import Order, StockSignal
from execution.order_events import OrderAdopted, OrderFailed
from execution.pending import Pending
from gateway.results import Ok, OrderInfo
from notify.events import ReconciliationMismatched
from pipeline.messages import Outcome

if TYPE_CHECKING:
    from trade_manager import TradeManager

log = logging.getLogger(__name__)


def signal_from_row(row: StockSignal) -> Signal:
    return Signal(symbol=row.symbol, time=int(row.time), price=float(row.price), type=SignalType(row.type),
                  current_position=PositionSide(row.current_position), strategy=row.strategy,
                  stop_loss=row.stop_loss, take_profit_price=row.take_profit_price,
                  position_size=row.position_size or 0, close_fraction=row.close_fraction or 1.0,
                  note=row.note or "", attempt_count=row.attempt_count or 1)


class Reconciler:
    def __init__(self, tm: TradeManager):
        self.tm = tm
        self.findings: list[str] = []

    def run(self) -> None:
        tm = self.tm
        tm.rm.set_state(TradingState.HALTED, "reconciling with the broker after start-up")
        signals = self._load_signals()
        if tm.io is not None:
            self._orders(signals)
            self._positions()
        if self.findings:
            log.warning("reconciliation found %d issue(s):\n  %s", len(self.findings), "\n  ".join(self.findings))
            notify.emit(ReconciliationMismatched(tuple(self.findings)))
        else:
            log.info("reconciliation: database and broker agree (%d open trade(s), %d order(s) still working)",
                     len(tm.rm.active_trades), len(tm.pending))

    # ------------------------------------------------------------------ signals already acted on
    def _load_signals(self) -> dict[str, StockSignal]:
        """Outcomes of today's signals, so a resumed replay is answered, not traded again."""
        tm = self.tm
        lo, hi = tm.session.pre_open - 6 * 3600, tm.session.close + 6 * 3600

        def go(s):  # noqa: ANN001
            rows = list(s.scalars(select(StockSignal).where(StockSignal.time >= lo, StockSignal.time <= hi)))
            orders = list(s.scalars(select(Order).where(Order.trading_date == tm.day)))
            return rows, orders
        rows, orders = tm.db.transaction("load today's signals", go)
        client_ids = [o.client_order_id for o in orders]
        self._settle_unanswered(rows, orders)
        by_id = {}
        for r in rows:
            by_id[r.signal_id] = r
            if r.outcome:
                status, note = OutcomeStatus(r.outcome), r.outcome_note or ""
                # an exit a worker forced on a cap-crossing tick resets the strategy again when it is replayed
                forced = r.type == SignalType.EXIT.value and r.note in (ExitReason.SYMBOL_LOSS_CAP.value,
                                                                         ExitReason.SYMBOL_PROFIT_CAP.value)
                tm.outcomes[r.signal_id] = Outcome(r.signal_id, r.symbol, r.type, status, force_exit=forced, note=note)
        for cid in client_ids:
            base = cid.rsplit("#", 1)[0]
            tm.signal_orders[base] = tm.signal_orders.get(base, 0) + 1
        if tm.outcomes:
            log.info("restart: %d signal(s) already acted on today will be answered from the database",
                     len(tm.outcomes))
        return by_id

    def _settle_unanswered(self, rows: list[StockSignal], orders: list[Order]) -> None:
        """A crash between an order's final status and its signal's outcome leaves the signal unanswered;
        its fate is in its (final) orders, so record it now, or a resumed replay would act on it again."""
        by_signal: dict[str, list[Order]] = defaultdict(list)
        for o in orders:
            if o.signal_id:
                by_signal[o.signal_id].append(o)
        for r in rows:
            mine = by_signal.get(r.signal_id, [])
            if r.outcome or not mine or any(not OrderStatus(o.status).is_final for o in mine):
                continue
            last = max(mine, key=lambda o: o.id)
            if last.purpose == OrderPurpose.ENTRY.value:
                status = OutcomeStatus.EXECUTED if last.filled_quantity else OutcomeStatus.FAILED
            else:
                status = OutcomeStatus.EXECUTED if last.filled_quantity >= last.quantity else OutcomeStatus.INCOMPLETE
            r.outcome = status.value
            r.outcome_note = f"settled at restart from order {last.id} ({last.status})"
            self.tm.db.execute_sql("UPDATE stock_signals SET outcome = :o, outcome_note = :n WHERE signal_id = :s",
                                   {"o": r.outcome, "n": r.outcome_note, "s": r.signal_id}, fetch=False)
            self.findings.append(f"signal {r.signal_id} had no recorded outcome; its orders say {status.value}")

    # ------------------------------------------------------------------ orders
    def _orders(self, signals: dict[str, StockSignal]) -> None:
        tm = self.tm
        known = [o.broker_order_id for o in tm.orders.non_final(None) if o.broker_order_id]
        working = tm.orders.non_final(tm.day)
        book = self._book(working)
        for o in working:
            if o.status == OrderStatus.CREATED.value:
                tm._fail(o.id, "RESTART_NEVER_SENT", "recorded before a restart and never handed to the broker")
                self.findings.append(f"order {o.id} ({o.side} {o.quantity} {o.symbol}) was never sent: failed")
                continue
            row = signals.get(o.signal_id) if o.signal_id else None
            sig = signal_from_row(row) if row is not None else None
            purpose = OrderPurpose(o.purpose)
            if sig is not None and purpose is not OrderPurpose.ENTRY and sig.type is SignalType.ENTRY:
                sig = sig.replace(forced=True)
            p = Pending(o.id, o.symbol, sig, purpose, OrderSide(o.side), o.quantity, o.decision_time or 0,
                        trade_id=o.trade_id, broker_order_id=o.broker_order_id, filled=o.filled_quantity,
                        avg=o.average_price, exit_reason=ExitReason.RECONCILIATION.value
                        if purpose is not OrderPurpose.ENTRY else ExitReason.SIGNAL.value,
                        status=OrderStatus(o.status))
            tm.pending[o.id] = p
            if purpose is OrderPurpose.ENTRY:
                tm.rm.reserve(o.id, self._reservation(o))
            if not o.broker_order_id:
                placed_after = (o.decision_time or 0) if tm.replay else (
                    (o.sent_at or o.created_at).timestamp())
                res = tm.gateway.find_order(symbol=o.symbol, exchange=o.exchange, side=o.side, quantity=o.quantity,
                                            strategy=o.strategy_tag, placed_after_epoch=placed_after - 5,
                                            exclude_broker_ids=known)
                if not isinstance(res, Ok):
                    self.findings.append(f"order {o.id}: the orderbook could not be read ({res}); it stays "
                                         "unresolved and is looked up again")
                    p.lookups, p.next_lookup = 1, time.monotonic() + 1
                    continue
                if not res.value:
                    tm.orders.apply(o.id, OrderFailed("RESTART_NOT_AT_BROKER",
                                                      "handed over before a crash; the broker never got it",
                                                      "restart: not in the broker's orderbook"))
                    self.findings.append(f"order {o.id} ({o.side} {o.quantity} {o.symbol}) never reached the "
                                         "broker: failed")
                    tm._finish(p, OrderStatus.FAILED)
                    continue
                found = res.value[0]
                known.append(found.orderid)
                p.broker_order_id = found.orderid
                tm.orders.apply(o.id, OrderAdopted(found.orderid,
                                                   f"restart: found in the orderbook as {found.orderid}; adopted"))
                self.findings.append(f"order {o.id} ({o.side} {o.quantity} {o.symbol}) found at the broker as "
                                     f"{found.orderid}: adopted")
            row = book.get(p.broker_order_id)
            if row is not None and row.fill_priced:
                status = Ok(row, row.raw)
            else:  # not in the book, or filled without a price (a live book gives none): ask for it alone
                status = tm.gateway.order_status(p.broker_order_id, tm.tag)
            tm._on_status(p, status)
            if p.order_id in tm.pending:
                tm.io.track(p.order_id, p.broker_order_id, tm.tag)

    def _book(self, working: list[Order]) -> dict[str, OrderInfo]:
        """The broker's orderbook by order id, read once when several orders are to be checked: one request
        instead of one per order (the request budget is shared with everything else); {} otherwise."""
        if sum(1 for o in working if o.status != OrderStatus.CREATED.value) < 2:
            return {}
        res = self.tm.gateway.orderbook()
        if not isinstance(res, Ok):
            log.warning("restart: the orderbook could not be read (%s); asking for each order", res)
            return {}
        return {row.orderid: row for row in res.value}

    def _reservation(self, o: Order) -> Decimal:
        """The margin the entry held before the restart (recorded with it); an order recorded before that
        column existed gets its whole quantity at its reference price, the same rule the sizing used."""
        if o.reserved is not None:
            return Decimal(o.reserved)
        from risk_manager import money

        return money(o.quantity * Decimal(o.price or 0) / self.tm.rm.margin_for(o.symbol))

    # ------------------------------------------------------------------ positions
    def _positions(self) -> None:
        tm = self.tm
        book = tm.gateway.positionbook()
        if not isinstance(book, Ok):
            self.findings.append(f"positionbook unreadable ({book}); positions not checked: trading stays halted")
            tm.rm.hold_halt("reconciliation: the broker's positions could not be read")
            return
        broker: dict[str, int] = defaultdict(int)
        avg: dict[str, float] = {}
        for pos in book.value:
            if (pos.quantity and pos.product == tm.cfg.product.value
                    and (not pos.exchange or pos.exchange == tm.cfg.exchange)):
                broker[pos.symbol] += pos.quantity
                avg[pos.symbol] = pos.average_price
        ours: dict[str, int] = defaultdict(int)
        for t in tm.rm.active_trades.values():
            ours[t.symbol] += t.remaining if t.side is PositionSide.LONG else -t.remaining
        working = {p.symbol for p in tm.pending.values()}
        policy = tm.cfg.reconcile.unknown_position_policy
        for sym in sorted(set(broker) | set(ours)):
            b, d = broker.get(sym, 0), ours.get(sym, 0)
            if b == d or sym in working:
                continue
            msg = f"{sym}: broker holds {b:+d}, database {d:+d}"
            log.error("POSITION MISMATCH %s (policy: %s)", msg, policy.value)
            if policy is UnknownPositionPolicy.HALT:
                self.findings.append(f"{msg}: trading halted until resolved by hand")
                tm.rm.hold_halt(f"reconciliation: position mismatch ({msg})", replace=True)
                continue
            # both other policies first make the database agree with what the broker really holds
            for t in [t for t in tm.rm.active_trades.values() if t.symbol == sym]:
                price = tm.rm.price_tracker.get(sym, t.entry_price)
                tm.rm.register_exit(t.trade_id, t.remaining, price, int(tm.clock.now() or time.time()),
                                    ExitReason.RECONCILIATION.value, None, NO_CHARGES)
            if b:
                side = PositionSide.LONG if b > 0 else PositionSide.SHORT
                tid = tm.rm.register_trade_entry(symbol=sym, strategy="adopted", side=side, quantity=abs(b),
                                                 price=avg.get(sym) or 0.0001, time=int(tm.clock.now() or time.time()),
                                                 stop_loss=None, take_profit_price=None, entry_order_id=None)
                if policy is UnknownPositionPolicy.FLATTEN:
                    trade = tm.rm.active_trades[tid]
                    tm._place_exit(trade, trade.remaining, OrderPurpose.SQUARE_OFF, ExitReason.RECONCILIATION.value,
                                   None, int(tm.clock.now() or time.time()))
                    self.findings.append(f"{msg}: database aligned to the broker and the position is being flattened")
                else:
                    self.findings.append(f"{msg}: adopted as trade {tid}; it is managed and squared off with the day")
            else:
                self.findings.append(f"{msg}: the database's trade is closed at the last known price")

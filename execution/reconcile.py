"""Start-up reconciliation: before any worker may trade, read what the database says and check it against the
broker's own books (orderbook, order status, positionbook).

- An order recorded but never handed to the broker is failed with a clear tag.
- One handed over without an answer is looked up in the orderbook (symbol, side, quantity, strategy tag,
  time) and adopted or failed; it is never sent again.
- One the broker knows is polled once: fills that happened while the daemon was down are applied, once.
- A position the broker holds that the database does not know (or the reverse) is reported loudly and
  handled by `reconcile.unknown_position_policy`: adopt and manage it, flatten it, or halt.

The Reconciler only reads: it is given today's rows, the open trades and a gateway to ask, and returns what it
found as values (execution.reconcile_events). The TradeManager applies them, in order, through its own paths,
with trading HALTED throughout. It runs in three phases, each applied before the next is read: signals, orders
(whose fills change the positions), then positions.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

import notify
from core.enums import (
    ExitReason,
    OrderPurpose,
    OrderStatus,
    OutcomeStatus,
    PositionSide,
    SignalType,
    UnknownPositionPolicy,
)
from core.session import SessionTimes
from core.types import Signal
from db import DBHandler, Order, StockSignal
from execution.broker_io import StatusSeen
from execution.orders import OrderStore
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
)
from gateway.results import CallResult, Ok, OrderInfo, PositionInfo
from notify.events import ReconciliationMismatched
from options.contract import is_option_symbol
from pipeline.messages import Outcome

log = logging.getLogger(__name__)


class BrokerBooks(Protocol):
    """What reconciliation asks of the broker (OpenAlgoGateway, or a test's fake): reads only."""

    def find_order(self, *, symbol: str, exchange: str, side: str, quantity: int, strategy: str,
                   placed_after_epoch: float, exclude_broker_ids: Iterable[str] = ()) -> CallResult[list[OrderInfo]]:
        ...

    def order_status(self, orderid: str, strategy: str) -> CallResult[OrderInfo]:
        ...

    def orderbook(self) -> CallResult[list[OrderInfo]]:
        ...

    def positionbook(self) -> CallResult[list[PositionInfo]]:
        ...


@dataclass(frozen=True, slots=True)
class RestartRecords:
    """Today's rows as the database holds them at start-up: what reconciliation compares with the broker."""

    signals: list[StockSignal]   # today's signals (the session's day, with six hours either side)
    orders: list[Order]          # every order of the trading day
    working: list[Order]         # the day's orders not yet final, by id
    known_broker_ids: list[str]  # broker ids of every order not yet final, any day: never adopted twice

    @classmethod
    def read(cls, db: DBHandler, store: OrderStore, session: SessionTimes, with_working: bool) -> RestartRecords:
        """Read them; `with_working` False (no broker to ask) skips the orders still working."""
        lo, hi = session.pre_open - 6 * 3600, session.close + 6 * 3600

        def go(s: Session) -> tuple[list[StockSignal], list[Order]]:
            rows = list(s.scalars(select(StockSignal).where(StockSignal.time >= lo, StockSignal.time <= hi)))
            orders = list(s.scalars(select(Order).where(Order.trading_date == session.day)))
            return rows, orders
        rows, orders = db.transaction("load today's signals", go)
        if not with_working:
            return cls(rows, orders, [], [])
        known = [o.broker_order_id for o in store.non_final(None) if o.broker_order_id]
        return cls(rows, orders, store.non_final(session.day), known)


@dataclass(frozen=True, slots=True)
class HeldTrade:
    """An open trade as the books hold it, for the comparison with the broker's positions."""

    trade_id: int
    symbol: str
    side: PositionSide
    remaining: int

    @property
    def signed(self) -> int:
        return self.remaining if self.side is PositionSide.LONG else -self.remaining


class Reconciler:
    """Compares today's records with the broker's books and says what it found; it changes nothing itself."""

    def __init__(self, records: RestartRecords, books: BrokerBooks | None, strategy_tag: str, replay: bool):
        self.records = records
        self.books = books
        self.tag = strategy_tag
        self.replay = replay

    # ------------------------------------------------------------------ signals already acted on
    def signals(self) -> list[Reconciled]:
        """Outcomes of today's signals, so a resumed replay is answered, not traded again; and how many orders
        each client order id base has had, so a new attempt gets the next number."""
        rows = self.records.signals
        settled = settle_unanswered(rows, self.records.orders)
        events: list[Reconciled] = list(settled.values())
        for i, r in enumerate(rows):
            done = settled.get(i)
            outcome = done.status.value if done is not None else r.outcome
            if not outcome:
                continue
            note = done.note if done is not None else r.outcome_note or ""
            # an exit a worker forced on a cap-crossing tick resets the strategy again when it is replayed
            forced = r.type == SignalType.EXIT.value and r.note in (ExitReason.SYMBOL_LOSS_CAP.value,
                                                                     ExitReason.SYMBOL_PROFIT_CAP.value)
            events.append(SignalAnswered(Outcome(r.signal_id, r.symbol, r.type, OutcomeStatus(outcome),
                                                 force_exit=forced, note=note)))
        counts: dict[str, int] = {}
        for o in self.records.orders:
            base = o.client_order_id.rsplit("#", 1)[0]
            counts[base] = counts.get(base, 0) + 1
        events.extend(OrdersCounted(base, n) for base, n in counts.items())
        answered = len({ev.outcome.signal_id for ev in events if isinstance(ev, SignalAnswered)})
        if answered:
            log.info("restart: %d signal(s) already acted on today will be answered from the database", answered)
        return events

    # ------------------------------------------------------------------ orders
    def orders(self) -> list[Reconciled]:
        """Each order still working today: failed if never sent, looked up if its placement went unanswered,
        and its status read once (fills made while the daemon was down come with it)."""
        books = self._books()
        by_id = {r.signal_id: r for r in self.records.signals}
        known = list(self.records.known_broker_ids)
        working = self.records.working
        book = self._book(working)
        events: list[Reconciled] = []
        for o in working:
            if o.status == OrderStatus.CREATED.value:
                events.append(OrderNeverSent(o.id, o.side, o.quantity, o.symbol))
                continue
            row = by_id.get(o.signal_id) if o.signal_id else None
            sig = Signal.from_row(row) if row is not None else None
            if sig is not None and o.purpose != OrderPurpose.ENTRY.value and sig.type is SignalType.ENTRY:
                sig = sig.replace(forced=True)
            events.append(OrderResumed(o, sig))
            broker_id = o.broker_order_id
            if not broker_id:
                placed_after = (o.decision_time or 0) if self.replay else (o.sent_at or o.created_at).timestamp()
                res = books.find_order(symbol=o.symbol, exchange=o.exchange, side=o.side, quantity=o.quantity,
                                       strategy=o.strategy_tag, placed_after_epoch=placed_after - 5,
                                       exclude_broker_ids=known)
                if not isinstance(res, Ok):
                    events.append(OrderLookupUnanswered(o.id, res))
                    continue
                if not res.value:
                    events.append(OrderNotAtBroker(o.id, o.side, o.quantity, o.symbol))
                    continue
                broker_id = res.value[0].orderid
                known.append(broker_id)
                events.append(OrderFoundAtBroker(o.id, o.side, o.quantity, o.symbol, broker_id))
            seen = book.get(broker_id)
            if seen is not None and seen.fill_priced:
                status: CallResult[OrderInfo] = Ok(seen, seen.raw)
            else:  # not in the book, or filled without a price (a live book gives none): ask for it alone
                status = books.order_status(broker_id, self.tag)
            events.append(StatusSeen(o.id, status))
        return events

    def _book(self, working: list[Order]) -> dict[str, OrderInfo]:
        """The broker's orderbook by order id, read once when several orders are to be checked: one request
        instead of one per order (the request budget is shared with everything else); {} otherwise."""
        if sum(1 for o in working if o.status != OrderStatus.CREATED.value) < 2:
            return {}
        res = self._books().orderbook()
        if not isinstance(res, Ok):
            log.warning("restart: the orderbook could not be read (%s); asking for each order", res)
            return {}
        return {row.orderid: row for row in res.value}

    # ------------------------------------------------------------------ positions
    def positions(self, held: Sequence[HeldTrade], working: Collection[str], product: str, exchange: str,
                  policy: UnknownPositionPolicy, option_exchange: str | None = None) -> list[Reconciled]:
        """The broker's positions (of this product and exchange, and option contracts on `option_exchange` when
        options are traded) against the open trades `held`, once the orders are reconciled; a symbol with an
        order still `working` is left to that order."""
        book = self._books().positionbook()
        if not isinstance(book, Ok):
            return [PositionsUnread(book), HaltHeld("reconciliation: the broker's positions could not be read")]
        broker: dict[str, int] = defaultdict(int)
        avg: dict[str, float] = {}
        for pos in book.value:
            if pos.quantity and pos.product == product and (not pos.exchange or pos.exchange in (
                    exchange, option_exchange if is_option_symbol(pos.symbol) else exchange)):
                broker[pos.symbol] += pos.quantity
                avg[pos.symbol] = pos.average_price
        ours: dict[str, int] = defaultdict(int)
        for t in held:
            ours[t.symbol] += t.signed
        events: list[Reconciled] = []
        for sym in sorted(set(broker) | set(ours)):
            b, d = broker.get(sym, 0), ours.get(sym, 0)
            if b == d or sym in working:
                continue
            mismatch = PositionMismatch(sym, b, d, avg.get(sym), policy)
            events.append(mismatch)
            if policy is UnknownPositionPolicy.HALT:
                events.append(HaltHeld(f"reconciliation: position mismatch ({mismatch.what})", replace=True))
                continue
            # both other policies first make the database agree with what the broker really holds
            events.extend(TradeClosedInBooks(t.trade_id, sym, t.remaining) for t in held if t.symbol == sym)
            if b:
                events.append(PositionAdopted(sym, PositionSide.LONG if b > 0 else PositionSide.SHORT, abs(b),
                                              avg.get(sym) or 0.0001, flatten=policy is UnknownPositionPolicy.FLATTEN))
        return events

    def _books(self) -> BrokerBooks:
        if self.books is None:
            raise RuntimeError("no broker to reconcile with (signals_only)")
        return self.books


def settle_unanswered(rows: Sequence[StockSignal], orders: Iterable[Order]) -> dict[int, SignalSettled]:
    """A crash between an order's final status and its signal's outcome leaves the signal unanswered; its fate
    is in its (final) orders. Returns, by index in `rows`, the outcome each such signal is to get."""
    by_signal: dict[str, list[Order]] = defaultdict(list)
    for o in orders:
        if o.signal_id:
            by_signal[o.signal_id].append(o)
    settled: dict[int, SignalSettled] = {}
    for i, r in enumerate(rows):
        mine = by_signal.get(r.signal_id, [])
        if r.outcome or not mine or any(not OrderStatus(o.status).is_final for o in mine):
            continue
        last = max(mine, key=lambda o: o.id)
        if last.purpose == OrderPurpose.ENTRY.value:
            status = OutcomeStatus.EXECUTED if last.filled_quantity else OutcomeStatus.FAILED
        else:
            status = OutcomeStatus.EXECUTED if last.filled_quantity >= last.quantity else OutcomeStatus.INCOMPLETE
        settled[i] = SignalSettled(r.signal_id, status, last.id, last.status)
    return settled


def report(found: list[str], open_trades: int, working: int) -> None:
    """Log what reconciliation found, or that the database and the broker agree."""
    if found:
        log.warning("reconciliation found %d issue(s):\n  %s", len(found), "\n  ".join(found))
        notify.emit(ReconciliationMismatched(tuple(found)))
    else:
        log.info("reconciliation: database and broker agree (%d open trade(s), %d order(s) still working)",
                 open_trades, working)

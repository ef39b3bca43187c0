"""The threads that talk to the broker on the TradeManager's behalf.

Sending an order can take as long as the broker's rate limit and latency make it; the TradeManager must
not wait for that. Sender threads place orders, a poller follows every non-final order (one orderbook call
for all of them, orderstatus when only one is open), and both report back as events on one queue that the
TradeManager applies on its own thread, in the order they happened. Each event also writes a byte to
`wake_fd`, which the driver's loop waits on with the workers' queue: an acknowledgement is applied when it
arrives, not when the loop next wakes for a tick (up to its 20 ms wait on a quiet feed).
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

from core.switching import shorten_switch_interval
from execution.commands import BrokerCommand, CancelOrder, FindOrder, ProbeBroker, SubmitOrder
from gateway.openalgo import OpenAlgoGateway
from gateway.results import Deferred, Ok, Unknown

log = logging.getLogger(__name__)

FAST_POLLS = (0.0, 0.05, 0.15, 0.35, 0.75)  # after an acknowledgement, before settling to the poll interval
POLL_BUDGET_WAIT_S = 0.05  # a poll waits this long at most for the request budget, then is tried again
DEFER_S = 0.1  # a poll the budget deferred is tried again after this


@dataclass(frozen=True, slots=True)
class Placed:
    """A SubmitOrder's answer."""

    order_id: int
    result: Any  # Accepted | Rejected | Unavailable | Unknown


@dataclass(frozen=True, slots=True)
class StatusSeen:
    """A status poll's answer for one tracked order."""

    order_id: int
    result: Any  # Ok[OrderInfo] | Rejected | Unavailable | Unknown


@dataclass(frozen=True, slots=True)
class LookedUp:
    """A FindOrder's answer."""

    order_id: int
    result: Any  # Ok[list[OrderInfo]] | failure


@dataclass(frozen=True, slots=True)
class CancelAnswered:
    """A CancelOrder's answer (the order's status still comes from the books)."""

    order_id: int
    result: Any


@dataclass(frozen=True, slots=True)
class Probed:
    """A ProbeBroker's answer."""

    ok: bool
    reason: str = ""


BrokerAnswer = Placed | StatusSeen | LookedUp | CancelAnswered | Probed


class BrokerIO:
    def __init__(self, gateway: OpenAlgoGateway, poll_interval_s: float, senders: int = 4):
        self.gw = gateway
        self.poll_interval = poll_interval_s
        self.events: queue.SimpleQueue[BrokerAnswer] = queue.SimpleQueue()
        self.wake_fd, self._wake_w = os.pipe()  # readable while events may be waiting (see take_wakes)
        os.set_blocking(self.wake_fd, False)
        os.set_blocking(self._wake_w, False)
        self._work: queue.Queue[BrokerCommand | None] = queue.Queue()
        self._tracked: dict[int, tuple[str, str, int, float]] = {}  # order_id -> (broker id, strategy, n, next)
        self._tlock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads = [threading.Thread(target=self._sender, name=f"order-sender-{i}", daemon=True)
                         for i in range(senders)]
        self._threads.append(threading.Thread(target=self._poller, name="order-status", daemon=True))

    def start(self) -> None:
        """Start the sender and poller threads. An answer they read must not wait the default 5 ms for the
        interpreter lock while the trading thread computes (core.switching)."""
        shorten_switch_interval()
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for _ in range(len(self._threads)):
            self._work.put(None)
        for t in self._threads:
            if t.ident is not None:  # a start-up that failed early never started them
                t.join(timeout=2)
        if any(t.is_alive() for t in self._threads):
            # a thread still inside an HTTP call writes a wake-up when it returns: closing the pipe now could let
            # that byte land in whatever file reuses the descriptor, so the pipe is left to the process's exit
            log.debug("broker threads still in a call at stop; the wake pipe stays open")
            return
        for fd in (self.wake_fd, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def _report(self, ev: BrokerAnswer) -> None:
        """An answer for the TradeManager's thread, and a wake-up for the loop that runs it."""
        self.events.put(ev)
        try:
            os.write(self._wake_w, b"\0")
        except (BlockingIOError, OSError):
            pass  # enough wake-ups are waiting already (or stop() closed the pipe)

    def take_wakes(self) -> None:
        """Empty the wake-up pipe (the loop's thread, before it applies the events)."""
        try:
            while os.read(self.wake_fd, 65536):
                pass
        except (BlockingIOError, OSError):
            pass

    # ---------------------------------------------------------------- requests from the TradeManager
    def send(self, cmd: BrokerCommand) -> None:
        """Hand a command to the sender threads; its answer comes back on `events`."""
        self._work.put(cmd)

    def track(self, order_id: int, broker_order_id: str, strategy: str) -> None:
        with self._tlock:
            self._tracked[order_id] = (broker_order_id, strategy, 0, time.monotonic())
        self._wake.set()

    def untrack(self, order_id: int) -> None:
        with self._tlock:
            self._tracked.pop(order_id, None)

    def poll_now(self, order_id: int) -> None:
        with self._tlock:
            t = self._tracked.get(order_id)
            if t:
                self._tracked[order_id] = (t[0], t[1], t[2], time.monotonic())
        self._wake.set()

    @property
    def tracked(self) -> int:
        return len(self._tracked)

    # ---------------------------------------------------------------- threads
    def _sender(self) -> None:
        while not self._stop.is_set():
            item = self._work.get()
            if item is None:
                return
            try:
                if isinstance(item, SubmitOrder):
                    res = self.gw.place_order(symbol=item.symbol, exchange=item.exchange, action=item.action,
                                              quantity=item.quantity, strategy=item.strategy,
                                              pricetype=item.pricetype, product=item.product)
                    self._report(Placed(item.order_id, res))
                elif isinstance(item, CancelOrder):
                    self._report(CancelAnswered(item.order_id, self.gw.cancel_order(item.broker_order_id,
                                                                                       item.strategy)))
                elif isinstance(item, FindOrder):
                    self._report(LookedUp(item.order_id, self.gw.find_order(**item.criteria)))
                elif isinstance(item, ProbeBroker):
                    funds = self.gw.funds()
                    self._report(Probed(isinstance(funds, Ok),
                                           getattr(funds, "reason", "") or getattr(funds, "message", "")))
                else:
                    raise TypeError(f"not a broker command: {item!r}")
            except Exception as e:  # noqa: BLE001 - a bug here must not kill the thread; the order stays tracked
                log.exception("broker call failed unexpectedly: %s", e)
                if isinstance(item, SubmitOrder):  # it may have reached the broker: looked up, never sent again
                    self._report(Placed(item.order_id, Unknown(f"placeorder: {type(e).__name__}: {e}; "
                                                               "the outcome is unknown")))

    def _poller(self) -> None:
        """Follow every tracked order: one orderbook call covers them all when several are open, orderstatus
        when one is. A poll waits only briefly for the request budget (orders go first) and is otherwise
        tried again shortly; the broker is not blamed for it."""
        while not self._stop.is_set():
            now = time.monotonic()
            with self._tlock:
                due = [oid for oid, t in self._tracked.items() if t[3] <= now]
                single = len(self._tracked) == 1
            if due:
                if single:
                    self._poll_one(due[0])
                else:
                    self._poll_book(due)
            with self._tlock:
                nxt = min((t[3] for t in self._tracked.values()), default=now + self.poll_interval)
            self._wake.wait(max(0.0, min(nxt - time.monotonic(), self.poll_interval)))
            self._wake.clear()

    def _polled(self, oid: int, res: Any) -> None:
        """Schedule the order's next poll (fast just after its acknowledgement), then report what was seen."""
        with self._tlock:
            t = self._tracked.get(oid)
            if t is not None:
                n = t[2]
                delay = FAST_POLLS[n + 1] - FAST_POLLS[n] if n + 1 < len(FAST_POLLS) else self.poll_interval
                self._tracked[oid] = (t[0], t[1], n + 1, time.monotonic() + delay)
        self._report(StatusSeen(oid, res))

    def _defer(self, oids: list[int]) -> None:
        with self._tlock:
            for oid in oids:
                t = self._tracked.get(oid)
                if t is not None:
                    self._tracked[oid] = (t[0], t[1], t[2], time.monotonic() + DEFER_S)

    def _poll_one(self, oid: int) -> None:
        with self._tlock:
            t = self._tracked.get(oid)
        if t is None:
            return
        res = self.gw.order_status(t[0], t[1], budget_wait_s=POLL_BUDGET_WAIT_S)
        if isinstance(res, Deferred):
            self._defer([oid])
        else:
            self._polled(oid, res)

    def _poll_book(self, due: list[int]) -> None:
        res = self.gw.orderbook(budget_wait_s=POLL_BUDGET_WAIT_S)
        if isinstance(res, Deferred):
            self._defer(due)
            return
        if not isinstance(res, Ok):
            self._defer(due[1:])
            self._polled(due[0], res)  # one failed call counts once against the broker
            return
        book = {o.orderid: o for o in res.value}
        with self._tlock:
            tracked = list(self._tracked.items())
        for oid, (bid, _strat, _n, _next) in tracked:
            info = book.get(bid)
            if info is not None and info.fill_priced:
                self._polled(oid, Ok(info, info.raw))
            elif oid in due:  # not in the book, or filled without a price (a live book has none): ask it alone
                self._poll_one(oid)

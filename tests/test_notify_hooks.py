"""The places in the daemon that emit notifications, each with a notifier installed that delivers through Apprise
to a real local JSON webhook (tests/notify_receiver.py): the circuit breaker, the order store and the supervisor,
whose events a whole-daemon run cannot bring about on demand (tests/test_notify_faults.py has the rest)."""
from __future__ import annotations

import threading
from datetime import UTC, date, datetime

import pytest

import db
import notify
from execution.circuit_breaker import CircuitBreaker
from execution.order_events import OrderDenied, OrderFailed, OrderRejected, OrderSent
from execution.orders import OrderStore
from notify.config import Channel, NotificationsConfig
from notify.events import Level
from notify.notifier import Notifier
from tests.notify_receiver import Receiver

LEVELS = {"info": Level.INFO, "warning": Level.WARNING, "failure": Level.CRITICAL}  # Apprise's json "type"


@pytest.fixture
def sent(monkeypatch):
    """Install a notifier sending to a webhook; yields a function that waits for and returns the (title, body,
    level) received there."""
    with Receiver() as receiver:
        n = Notifier(NotificationsConfig(), [Channel("urls[0] (json)", receiver.url(), Level.INFO, ())])
        n.start()
        monkeypatch.setattr(notify, "_current", n)

        def wait(count: int) -> list[tuple[str, str, Level]]:
            receiver.wait_for(lambda: len(receiver.messages()) >= count)
            return [(m["title"], m["message"], LEVELS[m["type"]]) for m in receiver.messages()]
        yield wait
        n.close()


def test_the_circuit_breaker_notifies_opening_and_closing(sent):
    b = CircuitBreaker(max_failures=2, cooldown_s=30)
    b.failure("timeout")
    b.failure("connection refused")
    b.failure("still down")  # already open: no second message
    b.success()
    (t1, m1, l1), (t2, _, l2) = sent(2)
    assert (t1, l1) == ("Broker circuit breaker open", Level.CRITICAL) and "last: connection refused" in m1
    assert (t2, l2) == ("Broker circuit breaker closed", Level.WARNING)


def test_the_order_store_notifies_rejected_and_failed_orders_once_recorded(sent, tmp_path):
    url = f"sqlite:///{tmp_path / 'o.sqlite'}"
    db.initialize_database(url)
    store = OrderStore(db.DBHandler(db.setup(url)[0]))

    def new(cid: str) -> int:
        o = store.create(client_order_id=cid, trading_date=date(2026, 11, 20), symbol="SBIN", side="BUY",
                         purpose="entry", quantity=12, strategy_tag="t")
        return o.id
    a, b, c = new("a#1"), new("b#1"), new("c#1")
    store.apply(a, OrderDenied("RISK_COOLDOWN", "cooling down"))  # a decision, not a failure: no message
    store.apply(b, OrderSent(datetime.now(UTC)))
    store.apply(b, OrderRejected("insufficient funds"))
    store.apply(c, OrderSent(datetime.now(UTC)))
    store.apply(c, OrderFailed("BROKER_UNAVAILABLE", "connection refused", "not delivered"))
    (t1, m1, l1), (t2, m2, _) = sent(2)
    assert t1 == "Order rejected: BUY 12 SBIN" and m1.endswith("insufficient funds") and l1 is Level.WARNING
    assert t2 == "Order failed: BUY 12 SBIN" and m2.endswith("did not reach the broker: connection refused")


def test_the_supervisor_notifies_a_restarted_worker(sent):
    from pipeline.supervisor import Supervisor

    class Pool:
        restarts = [0, 0]

        def dead_workers(self) -> list[int]:
            return [1]

        def restart(self, i: int, feed: object, sequencer: object) -> None:
            self.restarts[i] += 1

    class Feed:
        failed = False

    Supervisor(Pool(), Feed(), None, threading.Lock(), False, {"worker_restarts": 0}, 5).check()
    (title, body, level), = sent(1)
    assert (title, level) == ("worker 1 restarted", Level.WARNING) and "(1 restart(s) today)" in body

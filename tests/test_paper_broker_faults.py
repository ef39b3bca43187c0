"""Fault injection: each fault as the daemon will meet it, through the gateway and raw HTTP."""
from __future__ import annotations

import time

import pytest
import requests

from gateway.results import Accepted, Ok, Rejected, Unknown
from paper.client import PaperBrokerError
from tests.conftest import wait_for
from tests.paper_fixtures import ORDER, T, broker, broker_proc, launch, q, status  # noqa: F401 - fixtures

PLACE = dict(symbol="SBIN", exchange="NSE", action="BUY", quantity=10, strategy="t")


@pytest.fixture
def market(broker):
    broker.admin().push_market([q("SBIN", T(10), 500, 499, 501)], clock=T(10))
    return broker


def orders(b):
    return b.post("orderbook").json()["data"]["orders"]


def test_reject_fault_stores_a_rejected_order(market):
    market.admin().set_faults(reject_rate=1.0)
    r = market.post("placeorder", ORDER)
    assert r.status_code == 400
    body = r.json()
    assert body["status"] == "error" and body["mode"] == "analyze" and "injected" in body["message"]
    (o,) = orders(market)
    assert o["orderid"] == body["orderid"] and o["order_status"] == "rejected"
    assert o["rejection_reason"] == body["message"]
    res = market.gateway().place_order(**PLACE)
    assert isinstance(res, Rejected) and res.http_status == 400


def test_error500_places_nothing(market):
    market.admin().set_faults(error500_rate=1.0)
    r = market.post("placeorder", ORDER)
    assert r.status_code == 500
    assert r.json() == {"status": "error", "message": "Failed to place order due to internal error"}
    gw = market.gateway()
    res = gw.place_order(**PLACE)
    assert isinstance(res, Unknown) and res.http_status == 500
    found = gw.find_order(symbol="SBIN", exchange="NSE", side="BUY", quantity=10, strategy="t",
                          placed_after_epoch=T(10))
    assert isinstance(found, Ok) and found.value == []
    assert orders(market) == []


def test_slow_responses(market):
    market.admin().set_faults(slow_ms=200)
    t0 = time.monotonic()
    assert market.post("funds").status_code == 200
    assert time.monotonic() - t0 >= 0.2
    t0 = time.monotonic()
    market.admin().health()                       # admin routes are not slowed
    assert time.monotonic() - t0 < 0.2


def test_timeout_before_placing(market):
    market.admin().set_faults(timeout_rate=1.0, timeout_sleep_s=0.6)
    gw = market.gateway(timeout_s=0.3)
    res = gw.place_order(**PLACE)
    assert isinstance(res, Unknown) and "ReadTimeout" in res.reason
    r = market.post("placeorder", ORDER, timeout=10)     # the late answer, when someone waits for it
    assert r.status_code == 500
    market.admin().clear_faults()
    assert orders(market) == []


def test_timeout_after_placing(market):
    market.admin().set_faults(timeout_rate=1.0, timeout_sleep_s=0.6, timeout_placed=True)
    gw = market.gateway(timeout_s=0.3)
    res = gw.place_order(**PLACE)
    assert isinstance(res, Unknown)
    market.admin().clear_faults()
    found = gw.find_order(symbol="SBIN", exchange="NSE", side="BUY", quantity=10, strategy="t",
                          placed_after_epoch=T(10))
    assert isinstance(found, Ok) and len(found.value) == 1 and found.value[0].status == "complete"


def test_lost_response_order_exists_and_is_found(market):
    gw = market.gateway()
    earlier = gw.place_order(**PLACE)
    assert isinstance(earlier, Accepted)
    market.admin().set_faults(lost_response_rate=1.0)
    res = gw.place_order(**PLACE)
    assert isinstance(res, Unknown)
    with pytest.raises(requests.ConnectionError):
        market.post("placeorder", ORDER)
    market.admin().clear_faults()
    found = gw.find_order(symbol="SBIN", exchange="NSE", side="BUY", quantity=10, strategy="t",
                          placed_after_epoch=T(10), exclude_broker_ids=[earlier.broker_order_id])
    assert isinstance(found, Ok) and len(found.value) == 2          # both lost answers placed an order
    assert earlier.broker_order_id not in {o.orderid for o in found.value}
    assert isinstance(gw.place_order(**PLACE), Accepted)            # the session recovers


def test_open_delay_fills_later_at_the_then_current_quote(market):
    adm = market.admin()
    adm.set_faults(open_delay_s=0.4)
    oid = market.post("placeorder", ORDER).json()["orderid"]
    s = status(market, oid)
    assert (s["order_status"], s["filled_quantity"]) == ("open", 0)
    adm.push_market([q("SBIN", T(10, 1), 510, 509, 511)], clock=T(10, 1))
    s = wait_for(lambda: (x := status(market, oid))["order_status"] == "complete" and x, 10, what="delayed fill")
    assert s["average_price"] == 511


def test_partial_fills_grow_while_open(market):
    market.admin().set_faults(partial_fills=3, partial_fill_span_s=2.0)
    oid = market.post("placeorder", {**ORDER, "quantity": "10"}).json()["orderid"]
    s = status(market, oid)
    assert (s["order_status"], s["filled_quantity"], s["pending_quantity"]) == ("open", 4, 6)
    gw = market.gateway()
    info = gw.order_status(oid, "t").value
    assert info.daemon_status.value == "PARTIALLY_FILLED"
    s = wait_for(lambda: (x := status(market, oid))["order_status"] == "complete" and x, 10, what="all parts")
    assert s["filled_quantity"] == 10 and s["average_price"] == 501
    assert [t["quantity"] for t in market.post("tradebook").json()["data"]] == [3, 3, 4]  # newest first


def test_faults_are_deterministic_given_a_seed(market):
    adm = market.admin()

    def pattern():
        adm.set_faults(reject_rate=0.5, seed=7)
        return [market.post("placeorder", ORDER).status_code for _ in range(12)]

    a, b = pattern(), pattern()
    assert a == b and set(a) == {200, 400}


def test_fault_settings_are_validated(market):
    adm = market.admin()
    with pytest.raises(PaperBrokerError) as e:
        adm.set_faults(reject_rate=2)
    assert e.value.http_status == 400
    with pytest.raises(PaperBrokerError, match="unknown fault"):
        adm.set_faults(explode=True)
    assert adm.set_faults(slow_ms=5)["slow_ms"] == 5
    assert adm.clear_faults()["slow_ms"] == 0


def test_fault_flags_on_the_command_line(tmp_path):
    b = launch(tmp_path, args=["--error500-rate", "1", "--seed", "3"], name="cli-faults")
    try:
        b.admin().reset("replay", T(10))
        b.admin().push_market([q("SBIN", T(10), 500)], clock=T(10))
        assert b.post("placeorder", ORDER).status_code == 500
        assert b.admin().health()["faults"] is True
    finally:
        b.stop()

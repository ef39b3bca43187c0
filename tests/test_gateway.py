"""The OpenAlgo gateway against the real paper broker and against small misbehaving HTTP servers."""
from __future__ import annotations

import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gateway.openalgo import OpenAlgoGateway
from gateway.ratelimit import MovingWindow
from gateway.results import (
    Accepted,
    FundsInfo,
    NoOrder,
    Ok,
    OrderInfo,
    PositionInfo,
    QuoteInfo,
    Rejected,
    TradeInfo,
    Unavailable,
    Unknown,
    parse_ist_timestamp,
)
from tests.conftest import free_port
from tests.paper_fixtures import T, broker, broker_proc, launch, q  # noqa: F401 - fixtures

PLACE = dict(symbol="SBIN", exchange="NSE", action="BUY", quantity=10, strategy="gw")


@pytest.fixture
def market(broker):
    broker.admin().push_market([q("SBIN", T(10), 500, 499, 501), q("INFY", T(10), 1500, 1499, 1501)], clock=T(10))
    return broker


def test_every_wrapper_returns_typed_values(market):
    gw = market.gateway()
    r = gw.place_order(**PLACE)
    assert isinstance(r, Accepted) and r.ok and r.kind == "accepted"
    lim = gw.place_order(**{**PLACE, "quantity": 5}, pricetype="LIMIT", price=480.5)
    st = gw.order_status(lim.broker_order_id, "gw")
    assert isinstance(st, Ok) and isinstance(st.value, OrderInfo)
    v = st.value
    assert (v.status, v.pricetype, v.price, v.filled_quantity) == ("open", "LIMIT", 480.5, 0)
    assert st.value.timestamp_epoch == T(10)
    m = gw.modify_order(orderid=lim.broker_order_id, symbol="SBIN", exchange="NSE", action="BUY", product="MIS",
                        pricetype="LIMIT", quantity=6, price=481, strategy="gw")
    assert m == Ok(lim.broker_order_id, m.raw)
    book = gw.orderbook().value
    assert {o.orderid for o in book} == {r.broker_order_id, lim.broker_order_id}
    assert [t.average_price for t in gw.tradebook().value] == [501]
    assert isinstance(gw.tradebook().value[0], TradeInfo)
    (pos,) = gw.positionbook().value
    assert isinstance(pos, PositionInfo) and (pos.symbol, pos.quantity, pos.average_price) == ("SBIN", 10, 501)
    f = gw.funds().value
    assert isinstance(f, FundsInfo) and f.utiliseddebits > 0
    assert gw.open_position("SBIN", "NSE", "MIS", "gw").value == 10
    quote = gw.quotes("SBIN", "NSE").value
    assert isinstance(quote, QuoteInfo) and (quote.bid, quote.ask) == (499, 501)
    assert gw.cancel_order(lim.broker_order_id, "gw").value == lim.broker_order_id
    again = gw.cancel_order(lim.broker_order_id, "gw")
    assert isinstance(again, Rejected) and again.http_status == 400
    smart = gw.place_smart_order(symbol="SBIN", exchange="NSE", action="BUY", quantity=10, position_size=10,
                                 strategy="gw")
    assert isinstance(smart, NoOrder) and "Already Matched" in smart.message
    assert isinstance(gw.place_smart_order(symbol="SBIN", exchange="NSE", action="BUY", quantity=0,
                                           position_size=12, strategy="gw"), Accepted)
    gw.place_order(**{**PLACE, "quantity": 1}, pricetype="LIMIT", price=400)
    assert len(gw.cancel_all_orders("gw").value["canceled"]) == 1
    assert gw.close_position("gw").value == "Closed 1 positions"
    mg = gw.margin([{"symbol": "SBIN", "exchange": "NSE", "action": "BUY", "quantity": 10, "product": "MIS",
                     "pricetype": "LIMIT", "price": 500}])
    assert mg.value["total_margin_required"] == 1000
    assert gw.holidays(2026).value == []
    assert any(x["exchange"] == "NSE" for x in gw.timings("2026-11-20").value)
    assert gw.analyzer_status().value["mode"] == "analyze"
    assert gw.analyzer_toggle(True).value["analyze_mode"] is True
    nf = gw.order_status("12345678901234", "gw")
    assert isinstance(nf, Rejected) and nf.http_status == 404


def test_rejections(market):
    gw = market.gateway()
    r = gw.place_order(**{**PLACE, "symbol": "NOPE"})
    assert isinstance(r, Rejected) and (r.http_status, r.message) == (400, "Symbol NOPE not found on NSE")
    bad = OpenAlgoGateway(market.url, "wrong-key", order_rate_per_s=1000).place_order(**PLACE)
    assert isinstance(bad, Rejected) and (bad.http_status, bad.message) == (403, "Invalid openalgo apikey")
    with pytest.raises(ValueError):
        gw.place_order(**{**PLACE, "quantity": 0})


def test_connection_refused_is_unavailable():
    gw = OpenAlgoGateway(f"http://127.0.0.1:{free_port()}", "k", timeout_s=1)
    r = gw.place_order(**PLACE)
    assert isinstance(r, Unavailable) and "not sent" in r.reason
    assert isinstance(gw.orderbook(), Unavailable)
    assert isinstance(gw.find_order(symbol="SBIN", exchange="NSE", side="BUY", quantity=1, strategy="x",
                                    placed_after_epoch=0), Unavailable)


def test_connect_timeout_is_unavailable():
    srv = socket.socket()                          # listens but never accepts: once its backlog is full,
    srv.bind(("127.0.0.1", 0))                     # new connections cannot complete
    srv.listen(0)
    port = srv.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", port))
            fillers.append(c)
        gw = OpenAlgoGateway(f"http://127.0.0.1:{port}", "k", timeout_s=2, connect_timeout_s=0.2)
        r = gw.place_order(**PLACE)
        assert isinstance(r, Unavailable) and "ConnectTimeout" in r.reason
    finally:
        for c in fillers:
            c.close()
        srv.close()


class _Scripted(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    replies: dict[str, tuple[int, bytes]] = {}

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, body = self.replies[self.path.rsplit("/", 1)[-1]]
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture
def scripted():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_malformed_and_odd_answers(scripted):
    _Scripted.replies = {
        "placeorder": (200, b"<html>oops"),
        "orderbook": (502, b'{"status":"error","message":"bad gateway"}'),
        "funds": (200, b'{"status":"error","message":"session expired"}'),
        "orderstatus": (200, b'{"status":"success","data":{"orderid":"1","order_status":"complete",'
                             b'"quantity":"7","average_price":"101.5","pricetype":"MARKET",'
                             b'"timestamp":"28-Aug-2025 09:59:10"}}'),
        "placesmartorder": (500, b'{"status":"error","message":"No OpenPosition Found. Not placing Exit order."}'),
        "positionbook": (200, b'{"status":"success","data":"nonsense"}'),
    }
    gw = OpenAlgoGateway(f"http://127.0.0.1:{scripted.server_address[1]}", "k")
    r = gw.place_order(**PLACE)
    assert isinstance(r, Unknown) and r.http_status == 200
    ob = gw.orderbook()
    assert isinstance(ob, Unknown) and ob.http_status == 502 and "bad gateway" in ob.reason
    f = gw.funds()
    assert isinstance(f, Rejected) and (f.http_status, f.message) == (200, "session expired")
    st = gw.order_status("1", "x").value       # live shape: no filled_quantity, string numbers, Fyers time
    assert (st.status, st.quantity, st.filled_quantity, st.average_price) == ("complete", 7, 7, 101.5)
    assert st.timestamp_epoch == parse_ist_timestamp("2025-08-28 09:59:10")
    assert isinstance(gw.place_smart_order(symbol="SBIN", exchange="NSE", action="SELL", quantity=0,
                                           position_size=0, strategy="x"), NoOrder)
    assert isinstance(gw.positionbook(), Unknown)


def test_order_info_normalization():
    live_open = OrderInfo.from_raw({"orderid": 5, "order_status": "open", "quantity": "10", "price": "0"})
    assert (live_open.filled_quantity, live_open.daemon_status.value) == (0, "OPEN")
    rej = OrderInfo.from_raw({"orderid": "6", "order_status": "rejected", "quantity": 3})
    assert rej.is_final and rej.daemon_status.value == "REJECTED"
    odd = OrderInfo.from_raw({"orderid": "7", "order_status": "unknown", "quantity": 3})
    assert odd.daemon_status is None and not odd.is_final


def test_rate_limit_429_and_the_gateway_queue(tmp_path):
    b = launch(tmp_path, args=[], name="limits")          # OpenAlgo defaults: 10/s orders, 50/s the rest
    try:
        adm = b.admin()
        adm.reset("replay", T(10))
        adm.push_market([q("SBIN", T(10), 500)], clock=T(10))
        gw = b.gateway(order_rate_per_s=8)
        assert all(isinstance(gw.place_order(**PLACE), Accepted) for _ in range(14))
        assert adm.health()["rate_limited"] == {}
        raw = [b.post("placeorder", {"strategy": "x", "symbol": "SBIN", "exchange": "NSE", "action": "BUY",
                                     "quantity": 1}) for _ in range(15)]
        limited = [r for r in raw if r.status_code == 429]
        assert limited
        assert limited[0].json() == {"status": "error", "message": "Rate limit exceeded. Please slow down your "
                                     "requests.", "retry_after": 60}
        assert "Retry-After" not in limited[0].headers
        greedy = b.gateway(order_rate_per_s=1000)
        assert all(isinstance(greedy.place_order(**PLACE), Accepted) for _ in range(15))
        assert adm.health()["rate_limited"]["placeorder"] > len(limited)
    finally:
        b.stop()


def test_moving_window_arithmetic():
    now = [0.0]
    w = MovingWindow(3, 1.0, clock=lambda: now[0])
    assert [w.try_acquire() for _ in range(4)] == [True, True, True, False]
    now[0] = 0.999
    assert not w.try_acquire()
    now[0] = 1.0001                                # all three hits left the window together
    assert [w.try_acquire() for _ in range(4)] == [True, True, True, False]
    real = MovingWindow(2, 0.2)
    real.acquire()
    real.acquire()
    assert real.acquire() >= 0.15                  # the third caller queued until the window moved on
    blocked = MovingWindow(1, 5.0)
    blocked.acquire()
    with pytest.raises(TimeoutError):
        blocked.acquire(timeout_s=0.05)


def test_threads_share_one_gateway(market):
    gw = market.gateway()
    ids: list[str] = []
    lock = threading.Lock()

    def worker():
        for _ in range(20):
            r = gw.place_order(**{**PLACE, "quantity": 1})
            assert isinstance(r, Accepted)
            with lock:
                ids.append(r.broker_order_id)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(ids) == 80 and len(set(ids)) == 80
    assert len(gw.orderbook().value) == 80
    gw.close()


def test_find_order_filters(market):
    gw = market.gateway()
    a = gw.place_order(**PLACE).broker_order_id
    b = gw.place_order(**{**PLACE, "strategy": "other"}).broker_order_id
    gw.place_order(**{**PLACE, "quantity": 11})
    gw.place_order(**{**PLACE, "action": "SELL"})
    gw.place_order(**{**PLACE, "symbol": "INFY"})

    def find(**kw):
        args = dict(symbol="SBIN", exchange="NSE", side="BUY", quantity=10, strategy="gw", placed_after_epoch=T(10))
        return [o.orderid for o in gw.find_order(**{**args, **kw}).value]

    assert find() == [a]
    assert find(strategy="other") == [b]
    assert find(exclude_broker_ids=[a]) == []
    assert find(placed_after_epoch=T(10, 5)) == []


def test_the_key_is_never_logged(market, caplog):
    caplog.set_level(logging.DEBUG)
    gw = market.gateway(timeout_s=0.3)
    gw.place_order(**PLACE)
    gw.orderbook()
    market.admin().set_faults(timeout_rate=1.0, timeout_sleep_s=0.5, lost_response_rate=1.0)
    gw.place_order(**PLACE)
    market.admin().clear_faults()
    OpenAlgoGateway(f"http://127.0.0.1:{free_port()}", market.key).funds()
    assert market.key not in caplog.text
    assert market.key not in repr(gw)
    assert caplog.records                          # the calls did log

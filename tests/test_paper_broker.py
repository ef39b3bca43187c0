"""The paper broker as a real process: OpenAlgo's API contract, fills, money, clock, persistence."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import requests
from openalgo import api

from paper.client import PaperBrokerAdmin
from tests.conftest import ROOT, free_port, wait_for
from tests.paper_fixtures import ORDER, T, broker, broker_proc, launch, q, status  # noqa: F401 - fixtures


def place(b, **over):
    return b.post("placeorder", {**ORDER, **over})


def funds(b):
    return b.post("funds").json()["data"]


def positions(b):
    return {(p["symbol"], p["product"]): p for p in b.post("positionbook").json()["data"]}


# ---------------------------------------------------------------- process, auth, admin

def test_refuses_non_loopback_host():
    r = subprocess.run([sys.executable, str(ROOT / "paper_broker.py"), "--host", "0.0.0.0", "--port", str(free_port())],
                       capture_output=True, text=True, timeout=30, env={"APP_KEY": "x", "PATH": "/usr/bin"})
    assert r.returncode == 2
    assert "loopback only" in r.stderr
    assert "Traceback" not in r.stderr


def test_detached_broker_outlives_its_parent(tmp_path):
    port = free_port()
    parent = (f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
              "from paper.launcher import start_broker\n"
              f"p = start_broker({port}, state_file={str(tmp_path / 'd.sqlite')!r}, api_key='k', detached=True)\n"
              "print(p.pid, flush=True)\n"
              "import signal; signal.pause()\n")  # until the test kills it
    proc = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    pid = int(proc.stdout.readline())
    try:
        adm = PaperBrokerAdmin(f"http://127.0.0.1:{port}", "k")
        wait_for(adm.is_up, 20, what="detached broker")
        os.killpg(proc.pid, signal.SIGKILL)       # the daemon crashes, its whole process group with it
        proc.wait(5)
        assert adm.health()["pid"] == pid
    finally:
        os.kill(pid, signal.SIGTERM)


def test_health_needs_no_key_but_admin_does(broker):
    h = requests.get(f"{broker.url}/paper/v1/health", timeout=5).json()
    assert h["status"] == "ok" and h["clock_mode"] == "replay"
    assert broker.key not in json.dumps(h)
    r = requests.post(f"{broker.url}/paper/v1/market", json={"apikey": "wrong", "quotes": []}, timeout=5)
    assert r.status_code == 403 and r.json()["message"] == "Invalid openalgo apikey"
    r = requests.post(f"{broker.url}/paper/v1/market", json={"apikey": broker.key, "quotes": "SBIN"}, timeout=5)
    assert r.status_code == 400 and "quotes must be a list" in r.json()["message"]


def test_bad_apikey_is_403_and_schema_runs_first(broker):
    r = broker.post("funds", {"apikey": "nope"}, key=False)
    assert r.status_code == 403
    assert r.json() == {"status": "error", "message": "Invalid openalgo apikey"}
    r = place(broker, apikey="nope", quantity="0")
    assert r.status_code == 400
    assert r.json()["message"] == "{'quantity': ['Quantity must be a positive number.']}"


# ---------------------------------------------------------------- validation

@pytest.mark.parametrize("over, message", [
    ({"foo": "1"}, "{'foo': ['Unknown field.']}"),
    ({"quantity": "0"}, "{'quantity': ['Quantity must be a positive number.']}"),
    ({"quantity": -3}, "{'quantity': ['Quantity must be a positive number.']}"),
    ({"quantity": "1.5"}, "{'quantity': ['Fractional quantity (1.5) is not allowed for non-crypto exchanges.']}"),
    ({"quantity": "abc"}, "{'quantity': ['Not a valid number.']}"),
    ({"action": "HOLD"}, "{'action': ['Must be one of: BUY, SELL, buy, sell.']}"),
    ({"pricetype": "STOP"}, "{'pricetype': ['Must be one of: MARKET, LIMIT, SL, SL-M.']}"),
    ({"price": "-1"}, "{'price': ['Price must be a non-negative number.']}"),
    ({"strategy": None}, "{'strategy': ['Field may not be null.']}"),
])
def test_placeorder_400_messages_are_repr_strings(broker, over, message):
    r = place(broker, **over)
    assert r.status_code == 400
    assert r.json() == {"status": "error", "message": message}


def test_missing_required_fields_listed_in_schema_order(broker):
    r = broker.post("placeorder", {"symbol": "SBIN", "zzz": 1})
    assert r.status_code == 400
    assert r.json()["message"] == ("{'strategy': ['Missing data for required field.'], 'exchange': ['Missing data "
                                   "for required field.'], 'action': ['Missing data for required field.'], "
                                   "'quantity': ['Missing data for required field.'], 'zzz': ['Unknown field.']}")


@pytest.mark.parametrize("route, body", [
    ("cancelorder", {"orderid": "1"}), ("cancelallorder", {}), ("closeposition", {}),
    ("orderstatus", {"orderid": "1"}), ("openposition", {"symbol": "SBIN", "exchange": "NSE", "product": "MIS"}),
])
def test_strategy_is_required(broker, route, body):
    r = broker.post(route, body)
    assert r.status_code == 400
    assert r.json()["message"] == "{'strategy': ['Missing data for required field.']}"


def test_account_routes_give_the_error_dict_itself(broker):
    for route in ("orderbook", "tradebook", "positionbook", "funds"):
        r = broker.post(route, {"extra": 1})
        assert r.status_code == 400
        assert r.json()["message"] == {"extra": ["Unknown field."]}
    r = broker.post("quotes", {"symbol": "SBIN", "exchange": "XYZ"})
    assert r.json()["message"]["exchange"][0].startswith("Must be one of: NSE, NFO")


def test_numbers_as_strings_or_json_numbers(broker):
    broker.admin().push_market([q("SBIN", T(10), 500, 499.9, 500.1)], clock=T(10))
    assert place(broker, quantity="2", price="0").status_code == 200
    assert place(broker, quantity=2, price=0).status_code == 200
    assert place(broker, quantity=2.0).status_code == 200
    assert broker.post("openposition", {"strategy": "t", "symbol": "SBIN", "exchange": "NSE",
                                        "product": "MIS"}).json()["quantity"] == 6


def test_unknown_order_is_404(broker):
    for route, extra in (("orderstatus", {}), ("cancelorder", {}),
                         ("modifyorder", {"symbol": "SBIN", "exchange": "NSE", "action": "BUY", "product": "MIS",
                                          "pricetype": "LIMIT", "price": "1", "quantity": "1",
                                          "disclosed_quantity": "0", "trigger_price": "0"})):
        r = broker.post(route, {"strategy": "t", "orderid": "99999999999999", **extra})
        assert r.status_code == 404, route
        assert r.json() == {"status": "error", "message": "Order 99999999999999 not found", "mode": "analyze"}


def test_bad_json_and_unknown_route(broker):
    r = requests.post(f"{broker.url}/api/v1/placeorder", data=b"{not json", timeout=5,
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["status"] == "error"
    assert broker.post("nosuchroute").status_code == 404


# ---------------------------------------------------------------- fills

def test_market_buy_at_ask_sell_at_bid_and_ltp_fallback(broker):
    adm = broker.admin()
    adm.push_market([q("SBIN", T(10), 500, 499.5, 500.5), q("INFY", T(10), 1500, 0, 0)], clock=T(10))
    buy = place(broker).json()
    assert buy["status"] == "success" and buy["mode"] == "analyze"
    assert len(buy["orderid"]) == 14 and buy["orderid"].isdigit() and buy["orderid"].startswith("261120")
    s = status(broker, buy["orderid"])
    assert (s["order_status"], s["average_price"], s["filled_quantity"], s["pending_quantity"]) == \
        ("complete", 500.5, 10, 0)
    assert s["price_type"] == "MARKET" and s["price"] == 500 and s["timestamp"] == "2026-11-20 10:00:00"
    sell = place(broker, action="sell").json()
    assert status(broker, sell["orderid"])["average_price"] == 499.5
    infy = place(broker, symbol="INFY").json()
    assert status(broker, infy["orderid"])["average_price"] == 1500


def test_a_bad_quote_row_is_dropped_and_counted_and_the_rest_of_the_batch_applies(broker):
    """One bad row used to refuse the whole push (HTTP 400), and the daemon retried that batch forever."""
    adm = broker.admin()
    res = adm.push_market([q("INFY", T(10), -1500, 0, 0), q("SBIN", T(10), 500, 499.5, 500.5),
                           ["TCS", "NSE", T(10), 0.0], ["LT", "NSE", 1], "junk"], clock=T(10))
    assert res["status"] == "success" and res["received"] == 1 and res["rejected"] == 4
    assert any("quotes[0]: ltp must not be negative" in m for m in res["rejected_rows"])
    assert any("quotes[2]: ltp must be positive" in m for m in res["rejected_rows"])
    buy = place(broker).json()
    assert status(broker, buy["orderid"])["average_price"] == 500.5  # SBIN's quote from the same push
    r = place(broker, symbol="INFY")  # in the instrument master, but its only quote was the bad row
    assert r.status_code == 400 and r.json()["message"].startswith("Cannot place MARKET order for INFY - unable")


def test_market_without_a_quote_is_400(broker):
    broker.admin().push_market([q("SBIN", T(11), 500)])  # known, but stamped after the clock
    r = place(broker)
    assert r.status_code == 400
    assert r.json()["message"].startswith("Cannot place MARKET order for SBIN - unable to fetch current price")
    r = place(broker, symbol="NOSUCH")
    assert r.status_code == 400 and r.json()["message"] == "Symbol NOSUCH not found on NSE"
    r = place(broker, exchange="NSE_INDEX")
    assert r.status_code == 400 and r.json()["message"].startswith("Invalid exchange. Must be one of NSE, BSE")
    r = place(broker, product="NRML")
    assert r.status_code == 400 and r.json()["message"].startswith("NRML product not allowed for NSE")


def test_limit_marketable_fills_at_ltp_else_rests_until_crossed(broker):
    adm = broker.admin()
    adm.push_market([q("SBIN", T(10), 500, 499.5, 500.5)], clock=T(10))
    m = place(broker, pricetype="LIMIT", price="505").json()["orderid"]
    assert status(broker, m)["average_price"] == 500
    rest = place(broker, pricetype="LIMIT", price="495").json()["orderid"]
    sell = place(broker, action="SELL", pricetype="LIMIT", price="510").json()["orderid"]
    assert status(broker, rest)["order_status"] == "open"
    adm.push_market([q("SBIN", T(10, 1), 496), q("SBIN", T(10, 2), 494), q("SBIN", T(10, 3), 512)], clock=T(10, 3))
    s = status(broker, rest)
    assert (s["order_status"], s["average_price"]) == ("complete", 495)
    t = broker.post("tradebook").json()["data"]
    assert [x["timestamp"] for x in t if x["orderid"] == rest] == ["2026-11-20 10:02:00"]
    assert status(broker, sell)["average_price"] == 510


def test_sl_and_slm_trigger(broker):
    adm = broker.admin()
    adm.push_market([q("SBIN", T(10), 500)], clock=T(10))
    slm = place(broker, action="SELL", pricetype="SL-M", trigger_price="495").json()["orderid"]
    sl = place(broker, action="BUY", pricetype="SL", trigger_price="505", price="506").json()["orderid"]
    assert status(broker, slm)["order_status"] == "trigger pending"
    assert status(broker, sl)["order_status"] == "trigger pending"
    adm.push_market([q("SBIN", T(10, 1), 507)], clock=T(10, 1))
    assert status(broker, sl)["order_status"] == "open"          # triggered, limit 506 not satisfiable at 507
    adm.push_market([q("SBIN", T(10, 2), 505.5)], clock=T(10, 2))
    s = status(broker, sl)
    assert (s["order_status"], s["average_price"]) == ("complete", 505.5)
    adm.push_market([q("SBIN", T(10, 3), 494)], clock=T(10, 3))
    s = status(broker, slm)
    assert (s["order_status"], s["average_price"]) == ("complete", 494)
    r = place(broker, pricetype="SL-M")
    assert r.status_code == 400 and r.json()["message"] == "SL-M orders require trigger_price"


def test_margin_leverage_and_insufficient_funds(broker):
    adm = broker.admin()
    adm.reset("replay", T(10), funds=100_000)
    adm.push_market([q("SBIN", T(10), 1000, 1000, 1000)], clock=T(10))
    assert place(broker, quantity="100").status_code == 200
    f = funds(broker)
    assert f["utiliseddebits"] == 20_000 and f["availablecash"] == 80_000
    rest = place(broker, pricetype="LIMIT", price="900", quantity="100").json()["orderid"]
    assert funds(broker)["utiliseddebits"] == 38_000
    r = place(broker, quantity="400")
    assert r.status_code == 400
    assert r.json()["message"] == "Insufficient funds. Required: ₹80000.00, Available: ₹62000.00, Shortage: ₹18000.00"
    cancel = broker.post("cancelorder", {"strategy": "t", "orderid": rest}).json()
    assert cancel["message"] == "Order cancelled successfully"
    assert funds(broker)["utiliseddebits"] == 20_000
    assert place(broker, product="CNC", quantity="50").status_code == 200   # CNC is 1x
    assert funds(broker)["utiliseddebits"] == 70_000


def test_funds_after_round_trip(broker):
    adm = broker.admin()
    adm.push_market([q("SBIN", T(10), 500, 500, 500)], clock=T(10))
    place(broker, quantity="100")
    adm.push_market([q("SBIN", T(10, 5), 510, 510, 510)], clock=T(10, 5))
    f = funds(broker)
    assert (f["m2munrealized"], f["m2mrealized"], f["utiliseddebits"]) == (1000, 0, 10_000)
    place(broker, action="SELL", quantity="100")
    f = funds(broker)
    assert (f["m2munrealized"], f["m2mrealized"], f["utiliseddebits"]) == (0, 1000, 0)
    assert f["availablecash"] == 10_001_000 and f["totalpnl"] == 1000
    p = positions(broker)[("SBIN", "MIS")]
    assert (p["quantity"], p["pnl"]) == (0, 1000)     # closed positions stay, with quantity 0


def test_realized_pnl_partial_close_and_flip(broker):
    adm = broker.admin()

    def at(minute, px):
        adm.push_market([q("SBIN", T(10, minute), px, px, px)], clock=T(10, minute))

    at(0, 100)
    place(broker, quantity="10")                  # +10 @100
    at(1, 110)
    place(broker, quantity="10")                  # +20 @105
    at(2, 120)
    place(broker, action="SELL", quantity="5")    # +15 @105, realized 75
    p = positions(broker)[("SBIN", "MIS")]
    assert (p["quantity"], p["average_price"]) == (15, 105)
    assert funds(broker)["m2mrealized"] == 75
    at(3, 90)
    place(broker, action="SELL", quantity="25")   # closes 15 (-225), flips to -10 @90
    p = positions(broker)[("SBIN", "MIS")]
    assert (p["quantity"], p["average_price"]) == (-10, 90)
    f = funds(broker)
    assert f["m2mrealized"] == -150 and f["utiliseddebits"] == 180
    at(4, 80)
    place(broker, quantity="10")                  # cover: +100
    f = funds(broker)
    assert (f["m2mrealized"], f["utiliseddebits"], f["availablecash"]) == (-50, 0, 10_000_000 - 50)


def test_square_off_at_1515_and_mis_refused_after(broker):
    adm = broker.admin()
    adm.push_market([q("SBIN", T(15, 0), 500, 499, 501), q("INFY", T(15, 0), 1500, 1499, 1501)], clock=T(15))
    place(broker, quantity="10")
    place(broker, symbol="INFY", action="SELL", quantity="4")
    place(broker, symbol="INFY", product="CNC", quantity="3")
    resting = place(broker, pricetype="LIMIT", price="400").json()["orderid"]
    adm.push_market([q("SBIN", T(15, 14, 59), 505, 504, 506), q("SBIN", T(15, 15, 1), 600, 599, 601),
                     q("INFY", T(15, 10), 1490, 1489, 1491)], clock=T(15, 20))
    pos = positions(broker)
    assert pos[("SBIN", "MIS")]["quantity"] == 0 and pos[("INFY", "MIS")]["quantity"] == 0
    assert pos[("INFY", "CNC")]["quantity"] == 3
    assert status(broker, resting)["order_status"] == "cancelled"
    book = broker.post("orderbook").json()["data"]["orders"]
    sq = {o["symbol"]: o for o in book if o["strategy"] == "AUTO_SQUARE_OFF"}
    assert sq["SBIN"]["average_price"] == 504 and sq["SBIN"]["timestamp"] == "2026-11-20 15:15:00"
    assert sq["INFY"]["average_price"] == 1491 and sq["INFY"]["action"] == "BUY"
    assert funds(broker)["m2mrealized"] == (504 - 501) * 10 + (1499 - 1491) * 4
    r = place(broker)
    assert r.status_code == 400
    assert r.json() == {"status": "error", "mode": "analyze", "message": "MIS orders cannot be placed after "
                        "square-off time (15:15 IST). Trading resumes at 09:00 AM IST."}
    assert place(broker, product="CNC").status_code == 200


def test_mis_reducing_allowed_in_blocked_window(broker):
    adm = broker.admin()
    adm.reset("replay", T(8, 30))
    adm.push_market([q("SBIN", T(8, 30), 500)], clock=T(8, 30))
    assert place(broker).status_code == 400                      # before 09:00
    adm.push_market([q("SBIN", T(9, 1), 500)], clock=T(9, 1))
    assert place(broker, action="SELL").status_code == 200        # short 10
    adm.set_clock(T(15, 30))                                      # square-off closes it
    assert positions(broker)[("SBIN", "MIS")]["quantity"] == 0


def test_replay_never_fills_at_a_future_price(broker):
    adm = broker.admin()
    adm.push_market([q("SBIN", T(10), 500, 499, 501), q("SBIN", T(10, 30), 300, 299, 301),
                     q("SBIN", T(10, 10), 480, 479, 481)], clock=T(10))
    assert broker.post("quotes", {"symbol": "SBIN", "exchange": "NSE"}).json()["data"]["ltp"] == 500
    buy = place(broker).json()["orderid"]
    assert status(broker, buy)["average_price"] == 501
    lim = place(broker, pricetype="LIMIT", price="350").json()["orderid"]
    assert status(broker, lim)["order_status"] == "open"
    assert adm.health()["pending_quotes"] == 2
    adm.set_clock(T(10, 20))
    assert status(broker, lim)["order_status"] == "open"
    assert broker.post("quotes", {"symbol": "SBIN", "exchange": "NSE"}).json()["data"]["ltp"] == 480
    adm.set_clock(T(10, 5))                                       # never backwards
    assert adm.health()["clock"] == T(10, 20)
    adm.set_clock(T(10, 30))
    assert status(broker, lim)["average_price"] == 350
    assert adm.health()["pending_quotes"] == 0
    adm.push_market([q("SBIN", T(10, 25), 999)])                  # older than the current quote: ignored
    assert broker.post("quotes", {"symbol": "SBIN", "exchange": "NSE"}).json()["data"]["ltp"] == 300


def test_modify_cancel_cancelall_closeposition(broker):
    adm = broker.admin()
    adm.push_market([q("SBIN", T(10), 500, 500, 500), q("INFY", T(10), 1500, 1500, 1500)], clock=T(10))
    a = place(broker, pricetype="LIMIT", price="490").json()["orderid"]
    r = broker.post("modifyorder", {"strategy": "t", "orderid": a, "symbol": "SBIN", "exchange": "NSE",
                                    "action": "BUY", "product": "MIS", "pricetype": "LIMIT", "price": "495",
                                    "quantity": "20", "disclosed_quantity": "0", "trigger_price": "0"})
    assert r.json() == {"status": "success", "orderid": a, "message": "Order modified successfully", "mode": "analyze"}
    s = status(broker, a)
    assert (s["quantity"], s["price"], s["pending_quantity"]) == (20, 495, 20)
    place(broker, pricetype="SL-M", action="SELL", trigger_price="400")
    place(broker, symbol="INFY", quantity="2")
    r = broker.post("cancelallorder", {"strategy": "t"}).json()
    assert r["message"] == "Canceled 2 orders. Failed to cancel 0 orders." and a in r["canceled_orders"]
    assert broker.post("cancelallorder", {"strategy": "t"}).json()["message"] == "No open orders to cancel"
    r = broker.post("cancelorder", {"strategy": "t", "orderid": a})
    assert r.status_code == 400 and r.json()["message"] == "Cannot cancel order in cancelled status"
    place(broker, action="SELL", quantity="3")
    r = broker.post("closeposition", {"strategy": "t"}).json()
    assert r == {"status": "success", "message": "Closed 2 positions", "closed_positions": 2, "failed_closures": 0,
                 "mode": "analyze"}
    assert all(p["quantity"] == 0 for p in positions(broker).values())
    assert broker.post("closeposition", {"strategy": "t"}).json()["message"] == "No open positions to close"


def test_smart_order_decision_table(broker):
    broker.admin().push_market([q("SBIN", T(10), 500)], clock=T(10))

    def smart(action, quantity, size):
        return broker.post("placesmartorder", {**ORDER, "action": action, "quantity": str(quantity),
                                               "position_size": str(size)}).json()

    def net():
        return broker.post("openposition", {"strategy": "t", "symbol": "SBIN", "exchange": "NSE",
                                            "product": "MIS"}).json()["quantity"]

    assert "orderid" in smart("BUY", 5, 0) and net() == 5
    assert smart("BUY", 5, 5)["message"] == "Positions Already Matched. No Action needed."
    assert "orderid" in smart("BUY", 0, 8) and net() == 8
    assert "orderid" in smart("BUY", 0, -2) and net() == -2
    assert "orderid" in smart("SELL", 0, 0) and net() == 0
    assert smart("SELL", 0, 0)["message"] == "No OpenPosition Found. Not placing Exit order."


def test_quotes_margin_holidays_timings_analyzer(broker):
    broker.admin().push_market([q("SBIN", T(10), 500, 499, 501)], clock=T(10))
    d = broker.post("quotes", {"symbol": "SBIN", "exchange": "NSE"}).json()
    assert d["data"] == {"open": 500, "high": 510, "low": 490, "ltp": 500, "ask": 501, "bid": 499,
                         "prev_close": 500, "volume": 1000, "oi": 0}
    r = broker.post("quotes", {"symbol": "NOPE", "exchange": "NSE"})
    assert r.status_code == 400 and "Symbol 'NOPE' not found for exchange 'NSE'" in r.json()["message"]
    pos = [{"symbol": "SBIN", "exchange": "NSE", "action": "BUY", "quantity": "10", "product": "MIS",
            "pricetype": "MARKET"}]
    assert broker.post("margin", {"positions": pos}).json()["data"]["total_margin_required"] == 1000
    r = broker.post("margin", {"positions": [{**pos[0], "quantity": 10}]})
    assert r.status_code == 400 and r.json()["message"] == "{'positions': {0: {'quantity': ['Not a valid string.']}}}"
    h = requests.post(f"{broker.url}/api/v1/market/holidays", json={"apikey": "any", "year": 2026}, timeout=5).json()
    assert h == {"status": "success", "year": 2026, "timezone": "Asia/Kolkata", "data": []}
    t = broker.post("market/timings", {"date": "2026-11-20"}).json()["data"]
    nse = next(x for x in t if x["exchange"] == "NSE")
    assert (nse["start_time"], nse["end_time"]) == (T(9, 15) * 1000, T(15, 30) * 1000)
    assert [x["exchange"] for x in broker.post("market/timings", {"date": "2026-11-21"}).json()["data"]] == ["CRYPTO"]
    r = broker.post("market/timings", {"date": "20-11-2026"})
    assert r.status_code == 400 and r.json()["message"] == "Invalid date format. Use YYYY-MM-DD"
    a = broker.post("analyzer").json()["data"]
    assert a["analyze_mode"] is True and a["mode"] == "analyze" and a["total_logs"] > 0
    off = broker.post("analyzer/toggle", {"mode": False}).json()["data"]
    assert off["message"] == "Analyzer mode switched to live" and off["analyze_mode"] is False
    assert broker.post("analyzer/toggle", {"mode": True}).json()["data"]["mode"] == "analyze"
    assert broker.post("analyzer/toggle", {"mode": "maybe"}).json()["message"] == {"mode": ["Not a valid boolean."]}


def test_ping_names_the_paper_broker_as_no_openalgo_would(broker):
    """OpenAlgo's ping names a broker plugin (a Python package: no hyphen) and has no paper_broker key."""
    r = broker.post("ping")
    assert r.status_code == 200
    assert r.json() == {"status": "success",
                        "data": {"message": "pong", "broker": "paper-broker", "paper_broker": True}}
    bad = broker.post("ping", {"apikey": "wrong"})
    assert bad.status_code == 403 and bad.json() == {"status": "error", "message": "Invalid openalgo apikey"}


def test_reset_wipes_books_and_restores_funds(broker):
    adm = broker.admin()
    adm.push_market([q("SBIN", T(10), 500)], clock=T(10))
    place(broker)
    before = funds(broker)["reset_count"]
    out = adm.reset("wall")
    assert out["clock_mode"] == "wall" and out["clock"] is None
    assert broker.post("orderbook").json()["data"]["orders"] == []
    assert broker.post("tradebook").json()["data"] == []
    assert broker.post("positionbook").json()["data"] == []
    f = funds(broker)
    assert f["availablecash"] == 10_000_000 and f["reset_count"] == before + 1
    r = requests.post(f"{broker.url}/paper/v1/reset", json={"apikey": broker.key, "clock_mode": "wall", "clock": 5},
                      timeout=5)
    assert r.status_code == 400


# ---------------------------------------------------------------- official client and persistence

def test_official_client_every_method_it_has(broker):
    broker.admin().push_market([q("SBIN", T(10), 500, 499, 501)], clock=T(10))
    c = api(api_key=broker.key, host=broker.url)
    r = c.placeorder(strategy="py", symbol="SBIN", action="BUY", exchange="NSE", price_type="MARKET",
                     product="MIS", quantity=10)
    assert r["status"] == "success" and r["mode"] == "analyze"
    oid = r["orderid"]
    assert c.orderstatus(order_id=oid, strategy="py")["data"]["order_status"] == "complete"
    lim = c.placeorder(strategy="py", symbol="SBIN", action="BUY", exchange="NSE", price_type="LIMIT",
                       product="MIS", quantity=5, price=450)["orderid"]
    assert c.modifyorder(order_id=lim, strategy="py", symbol="SBIN", action="BUY", exchange="NSE",
                         price_type="LIMIT", product="MIS", quantity=6, price=455)["status"] == "success"
    assert c.cancelorder(order_id=lim, strategy="py")["status"] == "success"
    assert c.openposition(strategy="py", symbol="SBIN", exchange="NSE", product="MIS")["quantity"] == 10
    assert c.placesmartorder(strategy="py", symbol="SBIN", action="BUY", exchange="NSE", quantity=0,
                             position_size=12)["status"] == "success"
    assert len(c.orderbook()["data"]["orders"]) == 3
    assert len(c.tradebook()["data"]) == 2
    assert c.positionbook()["data"][0]["quantity"] == 12
    assert c.funds()["data"]["utiliseddebits"] > 0
    assert c.quotes(symbol="SBIN", exchange="NSE")["data"]["ltp"] == 500
    assert c.cancelallorder(strategy="py")["message"] == "No open orders to cancel"
    assert c.closeposition(strategy="py")["closed_positions"] == 1
    bad = c.placeorder(strategy="py", symbol="SBIN", action="BUY", exchange="NSE", quantity=0)
    assert bad["message"].startswith("HTTP 400: ")
    assert api(api_key="wrong", host=broker.url).funds()["message"].startswith("HTTP 403")


def test_state_survives_kill_9(tmp_path):
    b = launch(tmp_path, name="persist")
    try:
        adm = b.admin()
        adm.reset("replay", T(10))
        adm.push_market([q("SBIN", T(10), 500, 499, 501), q("INFY", T(10), 1500), q("SBIN", T(11), 520)],
                        clock=T(10))
        place(b, quantity="7")
        place(b, symbol="INFY", action="SELL", quantity="3")
        place(b, pricetype="LIMIT", price="480")
        place(b, pricetype="SL-M", action="SELL", trigger_price="450")
        place(b, action="SELL", quantity="2")
        books = {r: b.post(r).json() for r in ("orderbook", "tradebook", "positionbook", "funds")}
        before = adm.health()
        b.kill9()
        b.start()
        after = b.admin().health()
        assert (after["clock"], after["clock_mode"], after["pending_quotes"]) == (T(10), "replay", 1)
        assert after["pid"] != before["pid"]
        for route, body in books.items():
            assert b.post(route).json() == body, route
        b.admin().set_clock(T(11))                         # the persisted future quote still arrives
        assert b.post("quotes", {"symbol": "SBIN", "exchange": "NSE"}).json()["data"]["ltp"] == 520
        assert b.post("openposition", {"strategy": "t", "symbol": "SBIN", "exchange": "NSE",
                                       "product": "MIS"}).json()["quantity"] == 5
    finally:
        b.stop()


def test_wall_mode_quote_applies_on_arrival(broker):
    adm = broker.admin()
    adm.reset("wall")
    adm.push_market([q("SBIN", 1.0, 500, 499, 501)])
    assert broker.post("quotes", {"symbol": "SBIN", "exchange": "NSE"}).json()["data"]["ltp"] == 500
    r = place(broker, product="CNC")
    assert r.status_code == 200
    assert status(broker, r.json()["orderid"])["average_price"] == 501
    wait_for(lambda: adm.health()["now"] > 0, 2)

"""The paper broker against OpenAlgo's sandbox rules (its test/sandbox/* as HTTP probes, equity only).

Each test drives a real paper broker process through the official `openalgo` client (plain HTTP for the
admin clock), in replay mode so the session boundary (03:00 IST) and T+1 settlement (00:00 IST) follow the
clock the test sets.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from openalgo import api

from tests.paper_fixtures import DAY, T, broker, broker_proc, launch, q  # noqa: F401 - fixtures

START = 10_000_000.0
DAY2, DAY3 = DAY + timedelta(days=1), DAY + timedelta(days=2)


def client(b) -> api:
    return api(api_key=b.key, host=b.url)


def market(b, rows: list, clock: float) -> None:
    b.admin().push_market(rows, clock=clock)


def order(c, symbol: str, action: str, qty: int, product: str = "CNC", pricetype: str = "MARKET",
          **kw) -> dict:
    return c.placeorder(strategy="probe", symbol=symbol, action=action, exchange="NSE", price_type=pricetype,
                        product=product, quantity=qty, **kw)


def used(c) -> float:
    return c.funds()["data"]["utiliseddebits"]


def stale(symbol: str, ts: float, ltp: float, low: float, high: float) -> list:
    """A quote whose LTP may lie outside its own day range (the sandbox's stale-quote case)."""
    return [symbol, "NSE", ts, ltp, 0, 0, high, low, low, low, 1000]


# ---------------------------------------------------------------- margin (test_margin_scenarios.py)

def test_margin_partial_closes_cycle_and_add(broker):
    """BUY 100 -> SELL 50 -> SELL 50, then BUY 100 twice: margin follows the position, blocked at the LTP."""
    market(broker, [q("ZEEL", T(10), 112.37)], T(10))
    c = client(broker)
    assert order(c, "ZEEL", "BUY", 100)["status"] == "success"
    assert used(c) == pytest.approx(100 * 112.37, abs=0.01)
    order(c, "ZEEL", "SELL", 50)
    assert used(c) == pytest.approx(50 * 112.37, abs=0.01)
    order(c, "ZEEL", "SELL", 50)
    assert used(c) == 0
    order(c, "ZEEL", "BUY", 100)
    order(c, "ZEEL", "BUY", 100)
    assert used(c) == pytest.approx(200 * 112.37, abs=0.01)
    assert c.funds()["data"]["availablecash"] == pytest.approx(START - 200 * 112.37, abs=0.01)


def test_margin_is_what_placement_blocked_not_the_fill_price(broker):
    """MARKET blocks LTP x qty and fills at the ask; a marketable LIMIT blocks the limit price and fills at the
    LTP. Either way the position keeps the placement margin and closing releases exactly that."""
    market(broker, [q("ZEEL", T(10), 112.0, 111.9, 112.5)], T(10))
    c = client(broker)
    mkt = order(c, "ZEEL", "BUY", 100, product="MIS")["orderid"]
    assert c.orderstatus(order_id=mkt, strategy="probe")["data"]["average_price"] == 112.5
    assert used(c) == pytest.approx(100 * 112.0 / 5, abs=0.01)          # MIS: 5x, on the LTP
    lim = order(c, "ZEEL", "BUY", 100, pricetype="LIMIT", price=120)["orderid"]
    assert c.orderstatus(order_id=lim, strategy="probe")["data"]["average_price"] == 112.0
    assert used(c) == pytest.approx(2240 + 100 * 120.0, abs=0.01)       # CNC: the limit price, not 112
    order(c, "ZEEL", "SELL", 100)                                       # CNC closes at the bid
    order(c, "ZEEL", "SELL", 100, product="MIS")
    f = c.funds()["data"]
    assert f["utiliseddebits"] == 0
    realized = 100 * (111.9 - 112.0) + 100 * (111.9 - 112.5)
    assert f["m2mrealized"] == pytest.approx(realized, abs=0.01)
    assert f["availablecash"] == pytest.approx(START + realized, abs=0.01)


def test_resting_limit_reserves_its_price_and_cancel_releases_it(broker):
    market(broker, [q("ZEEL", T(10), 112.0)], T(10))
    c = client(broker)
    oid = order(c, "ZEEL", "BUY", 100, pricetype="LIMIT", price=100)["orderid"]
    assert used(c) == pytest.approx(10_000, abs=0.01)
    market(broker, [q("ZEEL", T(10, 1), 99.0)], T(10, 1))              # crosses: fills at the limit price
    assert c.orderstatus(order_id=oid, strategy="probe")["data"]["order_status"] == "complete"
    assert used(c) == pytest.approx(10_000, abs=0.01)
    oid2 = order(c, "ZEEL", "BUY", 10, pricetype="LIMIT", price=90)["orderid"]
    assert used(c) == pytest.approx(10_900, abs=0.01)
    assert c.cancelorder(order_id=oid2, strategy="probe")["status"] == "success"
    assert used(c) == pytest.approx(10_000, abs=0.01)


# ---------------------------------------------------------------- CNC sell rules (test_cnc_sell_validation.py,
#                                                                   test_rejected_order.py, test_orderbook_api.py)

def test_cnc_sell_without_shares_is_rejected_and_kept_in_the_orderbook(broker):
    market(broker, [q("ZEEL", T(10), 112.0)], T(10))
    c = client(broker)
    res = broker.post("placeorder", {"strategy": "probe", "symbol": "ZEEL", "exchange": "NSE", "action": "SELL",
                                     "quantity": "100", "pricetype": "MARKET", "product": "CNC"})
    r = res.json()   # the official client folds a 400 into its message text, so this one is plain HTTP
    assert res.status_code == 400 and r["status"] == "error" and r["mode"] == "analyze"
    assert "No positions or holdings available" in r["message"]
    book = c.orderbook()["data"]
    [row] = book["orders"]
    assert row["orderid"] == r["orderid"] and row["order_status"] == "rejected"
    assert "No positions or holdings available" in row["rejection_reason"]
    assert book["statistics"]["total_rejected_orders"] == 1 and book["statistics"]["total_sell_orders"] == 1
    assert used(c) == 0


def test_cnc_sell_counts_position_and_mis_may_short(broker):
    market(broker, [q("RELIANCE", T(10), 2500.0)], T(10))
    c = client(broker)
    order(c, "RELIANCE", "BUY", 50)
    r = order(c, "RELIANCE", "SELL", 100)
    assert r["status"] == "error"
    assert "Only 50 shares available (Position: 50, Holdings: 0)" in r["message"]
    assert order(c, "RELIANCE", "SELL", 50)["status"] == "success"
    assert order(c, "RELIANCE", "SELL", 100, product="MIS")["status"] == "success"


# ---------------------------------------------------------------- T+1 and holdings (test_holdings_sell.py)

def test_cnc_buy_settles_into_holdings_at_midnight_and_sells_from_them(broker):
    market(broker, [q("RELIANCE", T(10), 2400.0)], T(10))
    c = client(broker)
    order(c, "RELIANCE", "BUY", 200)
    assert c.holdings()["data"]["holdings"] == []
    market(broker, [q("RELIANCE", T(23, 59), 2410.0)], T(23, 59))
    assert c.holdings()["data"]["holdings"] == []                    # not before midnight
    market(broker, [q("RELIANCE", T(0, 0, 1, day=DAY2), 2410.0)], T(0, 0, 1, day=DAY2))
    h = c.holdings()
    assert h["status"] == "success" and h["mode"] == "analyze"
    [row] = h["data"]["holdings"]
    assert (row["symbol"], row["exchange"], row["product"], row["quantity"]) == ("RELIANCE", "NSE", "CNC", 200)
    assert row["average_price"] == 2400 and row["ltp"] == 2410 and row["pnl"] == 2000
    assert row["settlement_date"] == DAY2.isoformat()
    assert set(row) == {"symbol", "exchange", "product", "quantity", "average_price", "ltp", "pnl", "pnlpercent",
                        "current_value", "settlement_date"}
    assert h["data"]["statistics"]["totalinvvalue"] == 480_000
    f = c.funds()["data"]
    assert f["utiliseddebits"] == 0                                   # the margin went into the holding
    assert f["availablecash"] == pytest.approx(START - 480_000)
    assert [p for p in c.positionbook()["data"] if p["quantity"]] == []

    market(broker, [q("RELIANCE", T(10, day=DAY2), 2500.0)], T(10, day=DAY2))
    assert order(c, "RELIANCE", "SELL", 150)["status"] == "success"      # from the holding
    [pos] = c.positionbook()["data"]
    assert pos["quantity"] == -150 and pos["product"] == "CNC"
    assert c.holdings()["data"]["holdings"][0]["quantity"] == 200        # until settlement
    r = order(c, "RELIANCE", "SELL", 100)
    assert "Only 50 shares available (Position: -150, Holdings: 200)" in r["message"]
    assert c.funds()["data"]["availablecash"] == pytest.approx(START - 480_000)   # proceeds wait for T+1

    market(broker, [q("RELIANCE", T(0, 5, day=DAY3), 2500.0)], T(0, 5, day=DAY3))
    [row] = c.holdings()["data"]["holdings"]
    assert row["quantity"] == 50 and row["average_price"] == 2400
    assert c.funds()["data"]["availablecash"] == pytest.approx(START - 480_000 + 150 * 2500)


def test_a_sale_across_position_and_holding_closes_the_position_first(broker):
    """Long 50 today + a 100 holding, SELL 120: the 50 close (realized), 70 come out of the holding at T+1."""
    market(broker, [q("RELIANCE", T(10), 2400.0)], T(10))
    c = client(broker)
    order(c, "RELIANCE", "BUY", 100)
    market(broker, [q("RELIANCE", T(10, day=DAY2), 2500.0)], T(10, day=DAY2))
    order(c, "RELIANCE", "BUY", 50)
    market(broker, [q("RELIANCE", T(11, day=DAY2), 2600.0)], T(11, day=DAY2))
    assert order(c, "RELIANCE", "SELL", 120)["status"] == "success"
    [pos] = c.positionbook()["data"]
    assert pos["quantity"] == -70 and pos["today_realized_pnl"] == 5000
    assert c.holdings()["data"]["holdings"][0]["quantity"] == 100
    f = c.funds()["data"]
    assert f["utiliseddebits"] == 0 and f["m2mrealized"] == 5000
    market(broker, [q("RELIANCE", T(0, 1, day=DAY3), 2600.0)], T(0, 1, day=DAY3))
    assert c.holdings()["data"]["holdings"][0]["quantity"] == 30
    assert c.funds()["data"]["availablecash"] == pytest.approx(START - 240_000 + 5000 + 70 * 2600)


def test_holdings_survive_a_restart(tmp_path):
    b = launch(tmp_path)
    try:
        b.admin().reset("replay", T(10))
        market(b, [q("ZEEL", T(10), 100.0)], T(10))
        c = client(b)
        order(c, "ZEEL", "BUY", 10)
        market(b, [q("ZEEL", T(9, day=DAY2), 100.0)], T(9, day=DAY2))
        before = c.holdings(), c.funds()
        b.kill9()
        b.start()
        after = c.holdings(), c.funds()
        assert after == before and after[0]["data"]["holdings"][0]["quantity"] == 10
    finally:
        b.stop()


# ---------------------------------------------------------------- session boundary

def test_books_and_m2mrealized_start_again_at_0300_ist(broker):
    market(broker, [q("SBIN", T(10), 500.0)], T(10))
    c = client(broker)
    order(c, "SBIN", "BUY", 10, product="MIS")
    market(broker, [q("SBIN", T(11), 510.0)], T(11))
    order(c, "SBIN", "SELL", 10, product="MIS")
    order(c, "SBIN", "BUY", 10, product="MIS", pricetype="LIMIT", price=400)   # cancelled at 15:15
    f = c.funds()["data"]
    assert f["m2mrealized"] == 100 and f["total_realized_pnl"] == 100
    market(broker, [q("SBIN", T(2, 59, day=DAY2), 510.0)], T(2, 59, day=DAY2))
    assert len(c.tradebook()["data"]) == 2 and len(c.orderbook()["data"]["orders"]) == 3
    assert c.funds()["data"]["m2mrealized"] == 100

    broker.admin().set_clock(T(3, 0, day=DAY2))
    assert c.orderbook()["data"]["orders"] == [] and c.orderbook()["data"]["statistics"]["total_buy_orders"] == 0
    assert c.tradebook()["data"] == [] and c.positionbook()["data"] == []
    f = c.funds()["data"]
    assert f["m2mrealized"] == 0 and f["today_realized_pnl"] == 0 and f["total_realized_pnl"] == 100
    assert f["availablecash"] == START + 100

    market(broker, [q("SBIN", T(10, day=DAY2), 520.0)], T(10, day=DAY2))
    oid = order(c, "SBIN", "SELL", 5, product="MIS")["orderid"]
    assert [o["orderid"] for o in c.orderbook()["data"]["orders"]] == [oid]
    [p] = c.positionbook()["data"]
    assert p["quantity"] == -5 and p["today_realized_pnl"] == 0


def test_positionbook_rows_in_the_sandbox_shape(broker):
    market(broker, [q("SBIN", T(10), 500.0)], T(10))
    c = client(broker)
    order(c, "SBIN", "BUY", 10, product="MIS")
    order(c, "SBIN", "SELL", 4, product="MIS", pricetype="LIMIT", price=490)   # marketable: fills at 500
    market(broker, [q("SBIN", T(10, 5), 520.0)], T(10, 5))
    book = c.positionbook()
    [p] = book["data"]
    assert p["quantity"] == 6 and p["average_price"] == 500 and p["ltp"] == 520
    assert p["unrealized_pnl"] == 120 and p["today_realized_pnl"] == 0 and p["pnl"] == 120
    assert p["pnlpercent"] == pytest.approx(4.0)
    assert book["total_pnl"] == 120 and book["total_unrealized_pnl"] == 120
    order(c, "SBIN", "SELL", 6, product="MIS")
    [p] = c.positionbook()["data"]
    assert p["quantity"] == 0 and p["average_price"] == 0 and p["pnl"] == 120   # flat: today's realized


# ---------------------------------------------------------------- stale-quote guard

def test_market_order_waits_for_a_coherent_quote(broker):
    market(broker, [stale("SBIN", T(10), 600.0, low=490, high=510)], T(10))
    c = client(broker)
    oid = order(c, "SBIN", "BUY", 10, product="MIS")["orderid"]
    s = c.orderstatus(order_id=oid, strategy="probe")["data"]
    assert s["order_status"] == "open" and s["filled_quantity"] == 0
    assert c.tradebook()["data"] == []
    market(broker, [stale("SBIN", T(10, 0, 1), 480.0, low=490, high=510)], T(10, 0, 1))
    assert c.orderstatus(order_id=oid, strategy="probe")["data"]["order_status"] == "open"
    market(broker, [stale("SBIN", T(10, 0, 2), 505.0, low=490, high=510)], T(10, 0, 2))
    s = c.orderstatus(order_id=oid, strategy="probe")["data"]
    assert s["order_status"] == "complete" and s["average_price"] == 505


def test_marketable_limit_and_stop_ignore_a_stale_ltp(broker):
    market(broker, [stale("SBIN", T(10), 500.0, low=490, high=510)], T(10))
    c = client(broker)
    lim = order(c, "SBIN", "BUY", 10, product="MIS", pricetype="LIMIT", price=450)["orderid"]
    stop = order(c, "SBIN", "SELL", 10, product="MIS", pricetype="SL-M", trigger_price=495)["orderid"]
    market(broker, [stale("SBIN", T(10, 0, 1), 440.0, low=490, high=510)], T(10, 0, 1))   # below the low
    st = lambda oid: c.orderstatus(order_id=oid, strategy="probe")["data"]["order_status"]  # noqa: E731
    assert (st(lim), st(stop)) == ("open", "trigger pending")
    market(broker, [stale("SBIN", T(10, 0, 2), 440.0, low=430, high=510)], T(10, 0, 2))   # the range caught up
    assert (st(lim), st(stop)) == ("complete", "complete")


def test_quote_without_a_day_range_is_not_checked(broker):
    market(broker, [["SBIN", "NSE", T(10), 500.0]], T(10))
    c = client(broker)
    oid = order(c, "SBIN", "BUY", 1, product="MIS")["orderid"]
    assert c.orderstatus(order_id=oid, strategy="probe")["data"]["order_status"] == "complete"


# ---------------------------------------------------------------- tradebook and funds rows

def test_tradebook_rows_carry_tradeid_price_strategy_newest_first(broker):
    market(broker, [q("SBIN", T(10), 500.0)], T(10))
    c = client(broker)
    first = order(c, "SBIN", "BUY", 10, product="MIS")["orderid"]
    market(broker, [q("SBIN", T(10, 1), 502.0)], T(10, 1))
    second = order(c, "SBIN", "SELL", 10, product="MIS")["orderid"]
    rows = c.tradebook()["data"]
    assert [r["orderid"] for r in rows] == [second, first]
    r = rows[0]
    assert set(r) == {"tradeid", "orderid", "symbol", "exchange", "action", "quantity", "average_price", "price",
                      "trade_value", "product", "strategy", "timestamp"}
    assert r["tradeid"].startswith("TRADE-20261120-1001") and r["tradeid"] != rows[1]["tradeid"]
    assert r["price"] == r["average_price"] == 502 and r["trade_value"] == 5020 and r["strategy"] == "probe"


def test_funds_fields(broker):
    f = client(broker).funds()
    assert f["mode"] == "analyze"
    assert set(f["data"]) == {"availablecash", "collateral", "m2munrealized", "m2mrealized", "total_realized_pnl",
                              "today_realized_pnl", "utiliseddebits", "grossexposure", "totalpnl", "last_reset",
                              "reset_count"}
    assert f["data"]["availablecash"] == START


# ---------------------------------------------------------------- GTT (test_gtt_manager.py); the official client
#                                                                   has no GTT calls, so these are plain HTTP

GTT = {"strategy": "gtt", "exchange": "NSE", "symbol": "SBIN", "action": "BUY", "product": "CNC", "quantity": 10,
       "pricetype": "LIMIT", "price": 480, "triggerprice_sl": 485, "triggerprice_tg": 0}
OCO = {**GTT, "trigger_type": "OCO", "action": "SELL", "price": 0, "triggerprice_sl": 480, "stoploss": 478,
       "triggerprice_tg": 520, "target": 522}


def gtt(b, route: str, body: dict) -> tuple[int, dict]:
    r = b.post(route, body)
    return r.status_code, r.json()


def gtt_book(b) -> list[dict]:
    return b.post("gttorderbook").json()["data"]


def test_gtt_single_blocks_margin_fires_on_the_dip_and_hands_over_to_the_book(broker):
    market(broker, [q("SBIN", T(10), 500.0)], T(10))
    c = client(broker)
    code, r = gtt(broker, "placegttorder", {**GTT, "trigger_type": "SINGLE", "unknown_field": 1})
    assert code == 200 and r["status"] == "success" and r["mode"] == "analyze"
    tid = r["trigger_id"]
    assert tid.startswith("GTT-261120-")
    assert used(c) == 4800                                          # 10 x the leg's limit, CNC 1x
    [row] = gtt_book(broker)
    assert (row["trigger_id"], row["status"], row["trigger_type"]) == (tid, "active", "single")
    assert row["trigger_prices"] == [485] and row["last_price"] == 500 and row["margin_blocked"] == 4800
    assert row["legs"] == [{"action": "BUY", "quantity": 10, "price": 480, "pricetype": "LIMIT", "product": "CNC"}]
    market(broker, [q("SBIN", T(10, 1), 490.0)], T(10, 1))
    assert len(gtt_book(broker)) == 1 and c.orderbook()["data"]["orders"] == []
    market(broker, [q("SBIN", T(10, 2), 485.0)], T(10, 2))          # touched: inclusive
    assert gtt_book(broker) == []
    [o] = c.orderbook()["data"]["orders"]
    assert (o["pricetype"], o["price"], o["order_status"], o["strategy"]) == ("LIMIT", 480, "open", "gtt")
    assert used(c) == 4800                                          # the order's own reservation now
    market(broker, [q("SBIN", T(10, 3), 479.0)], T(10, 3))
    assert c.orderstatus(order_id=o["orderid"], strategy="gtt")["data"]["order_status"] == "complete"
    code, r = gtt(broker, "cancelgttorder", {"strategy": "gtt", "trigger_id": tid})
    assert code == 404 and r["message"] == f"No active GTT with trigger_id '{tid}'"


def test_gtt_oco_blocks_the_larger_leg_and_only_one_leg_fires(broker):
    market(broker, [q("SBIN", T(10), 500.0)], T(10))
    c = client(broker)
    order(c, "SBIN", "BUY", 10)
    base = used(c)
    code, r = gtt(broker, "placegttorder", OCO)
    assert code == 200, r
    assert used(c) == pytest.approx(base + 10 * 522)                # max(478, 522) x 10, not both
    [row] = gtt_book(broker)
    assert row["trigger_type"] == "two-leg" and row["trigger_prices"] == [480, 520]
    market(broker, [q("SBIN", T(10, 1), 521.0)], T(10, 1))          # the target leg
    assert gtt_book(broker) == []
    [o, _buy] = c.orderbook()["data"]["orders"]
    assert (o["action"], o["price"], o["order_status"]) == ("SELL", 522, "open")
    market(broker, [q("SBIN", T(10, 2), 470.0)], T(10, 2))          # the stoploss leg is cancelled: no 2nd order
    assert len(c.orderbook()["data"]["orders"]) == 2
    assert used(c) == pytest.approx(base)


@pytest.mark.parametrize("body, text", [
    ({**GTT, "trigger_type": "SINGLE", "product": "MIS"}, "GTT supports only CNC"),
    ({**GTT, "trigger_type": "BRACKET"}, "Must be 'SINGLE' or 'OCO'."),
    ({**GTT, "trigger_type": "SINGLE", "triggerprice_sl": 0}, "requires a positive triggerprice_sl"),
    ({**GTT, "trigger_type": "SINGLE", "triggerprice_tg": 520}, "exactly one of triggerprice_sl"),
    ({**OCO, "target": None}, "Required for OCO (target leg limit)."),
    ({**OCO, "triggerprice_tg": 470}, "Stoploss trigger must be less than target trigger"),
])
def test_gtt_placement_is_validated(broker, body, text):
    market(broker, [q("SBIN", T(10), 500.0)], T(10))
    code, r = gtt(broker, "placegttorder", body)
    assert code == 400 and r["status"] == "error" and text in r["message"]
    assert gtt_book(broker) == [] and used(client(broker)) == 0


def test_gtt_cancel_releases_exactly_and_modify_keeps_what_is_fixed(broker):
    market(broker, [q("SBIN", T(10), 500.0)], T(10))
    c = client(broker)
    tid = gtt(broker, "placegttorder", {**GTT, "trigger_type": "SINGLE"})[1]["trigger_id"]
    code, r = gtt(broker, "modifygttorder", {**GTT, "trigger_type": "SINGLE", "trigger_id": tid, "action": "SELL"})
    assert code == 400 and "action cannot be changed on an existing GTT (BUY -> SELL)" in r["message"]
    code, r = gtt(broker, "modifygttorder", {**GTT, "trigger_type": "OCO", "trigger_id": tid, "stoploss": 470,
                                             "target": 530, "triggerprice_sl": 475, "triggerprice_tg": 525})
    assert code == 400 and "trigger_type cannot be changed (SINGLE -> OCO)" in r["message"]
    code, r = gtt(broker, "modifygttorder", {**GTT, "trigger_type": "SINGLE", "trigger_id": tid, "price": 470,
                                             "triggerprice_sl": 475})
    assert code == 200 and r["trigger_id"] == tid
    assert gtt_book(broker)[0]["trigger_prices"] == [475] and used(c) == 4700
    assert gtt(broker, "cancelgttorder", {"strategy": "gtt", "trigger_id": tid})[0] == 200
    assert used(c) == 0 and gtt_book(broker) == []
    assert gtt(broker, "cancelgttorder", {"strategy": "gtt", "trigger_id": tid})[0] == 404   # no double release
    assert used(c) == 0


def test_gtt_expires_at_is_honoured_and_releases_the_margin(broker):
    market(broker, [q("SBIN", T(10), 500.0)], T(10))
    c = client(broker)
    gtt(broker, "placegttorder", {**GTT, "trigger_type": "SINGLE", "expires_at": f"{DAY.isoformat()} 12:00:00"})
    assert used(c) == 4800
    broker.admin().set_clock(T(12, 0, 1))
    assert gtt_book(broker) == [] and used(c) == 0

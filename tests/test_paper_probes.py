"""Held-out probes: every test of OpenAlgo's test/sandbox/ (and its analyzer-mode order matrix in
test/test_broker_integration.py) turned into HTTP calls against a fresh paper broker process.

Each probe names the sandbox test it stands for (`SB:<file>::<test>`). The sandbox tests call its Python
managers directly; a probe asks the same question through /api/v1 only (the official `openalgo` client where
it has the call, plain HTTP for GTT and admin). Sandbox tests with no HTTP-visible behaviour (mocked commits,
thread claims, private fund primitives, direction strings) and the F&O ones are listed in PROBE_MAP at the
end with the reason they have no probe. One broker per module, reset to 10:00 IST before every probe.

Count (OpenAlgo 60156bc): 122 sandbox tests -- 120 test functions in test/sandbox/ (100 in test_gtt_manager.py)
and its two scripts. 79 have an equity HTTP probe here (all pass); 3 are F&O (the NFO/BFO 15:40 close); 1 is
unreachable through the request schema; 39 drive private objects (mocked commits, thread claims, crash rows,
fund primitives). The analyzer order matrix of test/test_broker_integration.py and the rest of the API surface
(basketorder, splitorder, depth, modify rules, ping, analyzer, symbol, search) are probed after them.
"""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from openalgo import api

from tests.paper_fixtures import DAY, T, broker, broker_proc, launch, q  # noqa: F401 - fixtures

START = 10_000_000.0
DAY2 = DAY + timedelta(days=1)


def client(b) -> api:
    return api(api_key=b.key, host=b.url)


def market(b, rows: list, clock: float) -> None:
    b.admin().push_market(rows, clock=clock)


def order(c, symbol: str, action: str, qty: int, product: str = "CNC", pricetype: str = "MARKET", **kw) -> dict:
    return c.placeorder(strategy="probe", symbol=symbol, action=action, exchange="NSE", price_type=pricetype,
                        product=product, quantity=qty, **kw)


def funds(c) -> dict:
    return c.funds()["data"]


def used(c) -> float:
    return funds(c)["utiliseddebits"]


def holding_of(b, symbol: str, qty: int, price: float) -> None:
    """A settled holding, the way the sandbox gets one: a CNC buy today, midnight (T+1), then 10:00 next day."""
    market(b, [q(symbol, T(10), price)], T(10))
    assert order(client(b), symbol, "BUY", qty)["status"] == "success"
    market(b, [q(symbol, T(10, day=DAY2), price)], T(10, day=DAY2))
    [h] = client(b).holdings()["data"]["holdings"]
    assert h["quantity"] == qty


# ================================================================ test_cnc_sell_validation.py (6)

def test_cnc_sell_without_position(broker):
    """SB:test_cnc_sell_validation::test_cnc_sell_without_position"""
    market(broker, [q("RELIANCE", T(10), 2500.0)], T(10))
    r = broker.post("placeorder", {"strategy": "p", "symbol": "RELIANCE", "exchange": "NSE", "action": "SELL",
                                   "quantity": 100, "pricetype": "MARKET", "product": "CNC"})
    assert r.status_code == 400 and "No positions or holdings available" in r.json()["message"]


def test_cnc_sell_with_position(broker):
    """SB:test_cnc_sell_validation::test_cnc_sell_with_position"""
    market(broker, [q("RELIANCE", T(10), 2500.0)], T(10))
    c = client(broker)
    order(c, "RELIANCE", "BUY", 100)
    assert order(c, "RELIANCE", "SELL", 50)["status"] == "success"


def test_cnc_sell_exceeding_position(broker):
    """SB:test_cnc_sell_validation::test_cnc_sell_exceeding_position"""
    market(broker, [q("RELIANCE", T(10), 2500.0)], T(10))
    c = client(broker)
    order(c, "RELIANCE", "BUY", 50)
    r = order(c, "RELIANCE", "SELL", 100)
    assert r["status"] == "error" and "Only 50 shares available" in r["message"]


def test_cnc_sell_with_holdings(broker):
    """SB:test_cnc_sell_validation::test_cnc_sell_with_holdings"""
    holding_of(broker, "RELIANCE", 200, 2400.0)
    assert order(client(broker), "RELIANCE", "SELL", 150)["status"] == "success"


def test_mis_short_selling(broker):
    """SB:test_cnc_sell_validation::test_mis_short_selling"""
    market(broker, [q("RELIANCE", T(10), 2500.0)], T(10))
    c = client(broker)
    assert order(c, "RELIANCE", "SELL", 100, product="MIS")["status"] == "success"
    assert c.openposition(strategy="p", symbol="RELIANCE", exchange="NSE", product="MIS")["quantity"] == -100


def test_cnc_sell_with_position_and_holdings(broker):
    """SB:test_cnc_sell_validation::test_cnc_sell_with_position_and_holdings"""
    holding_of(broker, "RELIANCE", 100, 2400.0)
    c = client(broker)
    order(c, "RELIANCE", "BUY", 50)
    assert order(c, "RELIANCE", "SELL", 120)["status"] == "success"


# ================================================================ test_execution_backlog.py (2)

def _resting(b, n: int) -> None:
    c = client(b)
    for _ in range(n):
        assert order(c, "SBIN", "BUY", 1, product="MIS", pricetype="LIMIT", price=100)["status"] == "success"


def _cycle_s(b, second: int) -> float:
    t0 = time.perf_counter()
    market(b, [q("SBIN", T(10, 0, second), 500.0)], T(10, 0, second))
    return time.perf_counter() - t0


def test_cycle_does_not_stall_on_a_large_backlog(broker):
    """SB:test_execution_backlog::test_cycle_does_not_stall_on_a_large_backlog -- 150 resting orders, one
    quote: the evaluation (inside the push) takes well under 3 s, and a new MARKET order still fills at once."""
    market(broker, [q("SBIN", T(10), 500.0)], T(10))
    _resting(broker, 150)
    assert _cycle_s(broker, 1) < 3.0
    c = client(broker)
    oid = order(c, "SBIN", "BUY", 1, product="MIS")["orderid"]
    assert c.orderstatus(order_id=oid, strategy="p")["data"]["order_status"] == "complete"


def test_cycle_cost_is_flat_in_queue_depth(broker):
    """SB:test_execution_backlog::test_cycle_cost_is_flat_in_queue_depth"""
    market(broker, [q("SBIN", T(10), 500.0)], T(10))
    _resting(broker, 10)
    small = _cycle_s(broker, 1)
    _resting(broker, 140)
    large = _cycle_s(broker, 2)
    assert large - small < 3.0


# ================================================================ test_fund_manager.py (5)

def test_fund_initialization(tmp_path):
    """SB:test_fund_manager::test_fund_initialization -- a fresh broker starts with 1 crore, twice."""
    b = launch(tmp_path)
    try:
        assert funds(client(b))["availablecash"] == START
        b.stop()
        b.start()
        assert funds(client(b))["availablecash"] == START
    finally:
        b.stop()


def test_margin_operations(broker):
    """SB:test_fund_manager::test_margin_operations -- block on entry, release with the profit on exit."""
    market(broker, [q("SBIN", T(10), 1000.0)], T(10))
    c = client(broker)
    order(c, "SBIN", "BUY", 100)
    f = funds(c)
    assert f["utiliseddebits"] == 100_000 and f["availablecash"] == START - 100_000
    market(broker, [q("SBIN", T(10, 1), 1050.0)], T(10, 1))
    order(c, "SBIN", "SELL", 100)
    f = funds(c)
    assert f["utiliseddebits"] == 0 and f["m2mrealized"] == 5000 and f["availablecash"] == START + 5000


def test_insufficient_funds(broker):
    """SB:test_fund_manager::test_insufficient_funds -- 1.5 crore of CNC is refused, nothing blocked."""
    market(broker, [q("SBIN", T(10), 1500.0)], T(10))
    c = client(broker)
    r = broker.post("placeorder", {"strategy": "p", "symbol": "SBIN", "exchange": "NSE", "action": "BUY",
                                   "quantity": 10_000, "pricetype": "MARKET", "product": "CNC"})
    assert r.status_code == 400 and "Insufficient funds" in r.json()["message"]
    assert used(c) == 0


@pytest.mark.parametrize("product, leverage", [("MIS", 5), ("CNC", 1)])
def test_leverage_calculations(broker, product, leverage):
    """SB:test_fund_manager::test_leverage_calculations -- equity MIS 5x, CNC 1x."""
    market(broker, [q("RELIANCE", T(10), 1500.0)], T(10))
    c = client(broker)
    order(c, "RELIANCE", "BUY", 100, product=product)
    assert used(c) == pytest.approx(100 * 1500 / leverage)


def test_unrealized_pnl(broker):
    """SB:test_fund_manager::test_unrealized_pnl -- m2munrealized and totalpnl follow the open position."""
    market(broker, [q("SBIN", T(10), 1000.0)], T(10))
    c = client(broker)
    order(c, "SBIN", "BUY", 100, product="MIS")
    market(broker, [q("SBIN", T(10, 1), 1250.0)], T(10, 1))
    f = funds(c)
    assert f["m2munrealized"] == 25_000 and f["totalpnl"] == 25_000


# ================================================================ test_holdings_sell.py (3)

@pytest.mark.parametrize("qty", [150, 200])
def test_holdings_sell(broker, qty):
    """SB:test_holdings_sell::test_partial_holdings_sell / test_full_holdings_sell -- the holding stands until
    T+1, the sale is a negative day position, and the balance does not move before settlement."""
    holding_of(broker, "RELIANCE", 200, 2400.0)
    c = client(broker)
    before = funds(c)["availablecash"]
    market(broker, [q("RELIANCE", T(11, day=DAY2), 2500.0)], T(11, day=DAY2))
    assert order(c, "RELIANCE", "SELL", qty)["status"] == "success"
    assert c.holdings()["data"]["holdings"][0]["quantity"] == 200
    [p] = c.positionbook()["data"]
    assert p["quantity"] == -qty
    assert funds(c)["availablecash"] == before


def test_position_then_holdings_sell(broker):
    """SB:test_holdings_sell::test_position_then_holdings_sell"""
    holding_of(broker, "RELIANCE", 100, 2400.0)
    c = client(broker)
    order(c, "RELIANCE", "BUY", 50)
    market(broker, [q("RELIANCE", T(11, day=DAY2), 2600.0)], T(11, day=DAY2))
    order(c, "RELIANCE", "SELL", 120)
    [p] = c.positionbook()["data"]
    assert p["quantity"] == -70
    assert c.holdings()["data"]["holdings"][0]["quantity"] == 100


# ================================================================ test_margin_scenarios.py (4)

@pytest.mark.parametrize("steps", [
    [("BUY", 100, 100), ("SELL", 50, 50), ("SELL", 50, 0)],
    [("BUY", 100, 100), ("SELL", 100, 0), ("BUY", 100, 100), ("SELL", 100, 0)],
    [("BUY", 100, 100), ("SELL", 200, 100)],
    [("BUY", 100, 100), ("BUY", 100, 200)],
], ids=["scenario_1", "scenario_2", "scenario_3", "scenario_4"])
def test_margin_scenarios(broker, steps):
    """SB:test_margin_scenarios::test_scenario_1, test_scenario_2, test_scenario_3, test_scenario_4 -- CNC
    MARKET orders on ZEEL at 112.37; after each step the used margin is (shares margined) x 112.37. Scenario
    3's SELL 200 against 100 is refused (CNC cannot go short), which leaves the 100's margin, as the sandbox
    test expects."""
    market(broker, [q("ZEEL", T(10), 112.37)], T(10))
    c = client(broker)
    for action, qty, margined in steps:
        order(c, "ZEEL", action, qty)
        assert used(c) == pytest.approx(margined * 112.37, abs=1)


# ================================================================ test_rejected_order.py, test_orderbook_api.py

def test_rejected_order_is_in_the_orderbook(broker):
    """SB:test_rejected_order (script) -- the refused CNC SELL is stored as rejected with its reason and
    blocks no margin."""
    market(broker, [q("ZEEL", T(10), 112.0)], T(10))
    r = broker.post("placeorder", {"strategy": "p", "symbol": "ZEEL", "exchange": "NSE", "action": "SELL",
                                   "quantity": 100, "pricetype": "MARKET", "product": "CNC"}).json()
    [o] = client(broker).orderbook()["data"]["orders"]
    assert o["orderid"] == r["orderid"] and o["order_status"] == "rejected"
    assert "No positions or holdings available" in o["rejection_reason"] and used(client(broker)) == 0


def test_orderbook_api_shape(broker):
    """SB:test_orderbook_api (script) -- data.orders rows with the sandbox fields, data.statistics counts."""
    market(broker, [q("ZEEL", T(10), 112.0)], T(10))
    c = client(broker)
    broker.post("placeorder", {"strategy": "p", "symbol": "ZEEL", "exchange": "NSE", "action": "SELL",
                               "quantity": 1, "pricetype": "MARKET", "product": "CNC"})
    order(c, "ZEEL", "BUY", 1)
    order(c, "ZEEL", "BUY", 1, pricetype="LIMIT", price=100)
    ob = c.orderbook()
    assert ob["status"] == "success" and ob["mode"] == "analyze"
    for row in ob["data"]["orders"]:
        assert {"orderid", "symbol", "exchange", "action", "quantity", "price", "trigger_price", "pricetype",
                "product", "order_status", "average_price", "filled_quantity", "pending_quantity",
                "rejection_reason", "strategy", "timestamp"} <= set(row)
    s = ob["data"]["statistics"]
    assert (s["total_buy_orders"], s["total_sell_orders"], s["total_open_orders"], s["total_completed_orders"],
            s["total_rejected_orders"]) == (2, 1, 1, 1, 1)


# ================================================================ test_gtt_manager.py (HTTP-visible ones)

def gtt(b, route: str, body: dict) -> tuple[int, dict]:
    r = b.post(route, body)
    return r.status_code, r.json()


def gtt_book(b) -> list[dict]:
    return b.post("gttorderbook").json()["data"]


def single(action: str = "SELL", sl: float = 95.0, tg: float = 0.0, qty: int = 10, price: float = 95.0,
           **kw) -> dict:
    return {"strategy": "gtt-test", "trigger_type": "SINGLE", "symbol": "ZEEL", "exchange": "NSE",
            "action": action, "product": "CNC", "quantity": qty, "pricetype": "LIMIT", "price": price,
            "triggerprice_sl": sl, "triggerprice_tg": tg, **kw}


def oco(sl: float = 95.0, tg: float = 110.0, qty: int = 10, **kw) -> dict:
    return {**single(qty=qty, price=100), "trigger_type": "OCO", "triggerprice_sl": sl, "stoploss": sl - 1,
            "triggerprice_tg": tg, "target": tg + 1, **kw}


def zeel(b, ltp: float, second: int = 0, minute: int = 0) -> None:
    market(b, [q("ZEEL", T(10, minute, second), ltp)], T(10, minute, second))


def orders(b) -> list[dict]:
    return client(b).orderbook()["data"]["orders"]


@pytest.mark.parametrize("key, trigger, ltp, fires", [
    ("triggerprice_tg", 100, 101, True), ("triggerprice_tg", 100, 100, True), ("triggerprice_tg", 100, 99, False),
    ("triggerprice_sl", 100, 99, True), ("triggerprice_sl", 100, 100, True), ("triggerprice_sl", 100, 101, False),
])
def test_trigger_direction(broker, key, trigger, ltp, fires):
    """SB:test_gtt_manager::TestTriggerEvaluation::test_direction -- above for _tg, below for _sl, touch fires."""
    zeel(broker, 100.5 if key == "triggerprice_tg" else 99.5)
    # a BUY so the child order is never refused for want of shares
    assert gtt(broker, "placegttorder", {**single("BUY", sl=0, price=90), key: trigger})[0] == 200
    zeel(broker, ltp, 1)
    assert (gtt_book(broker) == []) is fires and (len(orders(broker)) == 1) is fires


def test_trigger_compares_paise_exactly(broker):
    """SB:test_gtt_manager::TestTriggerEvaluation::test_decimal_and_float_compare_exactly"""
    zeel(broker, 99.0)
    gtt(broker, "placegttorder", single("BUY", sl=0, tg=100.05, price=90))
    zeel(broker, 100.04, 1)
    assert len(gtt_book(broker)) == 1
    zeel(broker, 100.05, 2)
    assert gtt_book(broker) == []


@pytest.mark.parametrize("action, key, trigger, cross, still", [
    ("BUY", "triggerprice_sl", 95, 94, 96),     # buy on dip
    ("SELL", "triggerprice_tg", 110, 111, 109),  # sell at target
    ("SELL", "triggerprice_sl", 95, 94, 96),     # sell stoploss
    ("BUY", "triggerprice_tg", 110, 111, 109),   # buy breakout
], ids=["buy_on_dip", "sell_at_target", "sell_stoploss", "buy_breakout"])
def test_documented_scenarios(broker, action, key, trigger, cross, still):
    """SB:test_gtt_manager::TestDocumentedScenarios::test_buy_on_dip_fires_when_price_falls,
    test_sell_at_target_fires_when_price_rises, test_sell_stoploss_fires_when_price_falls,
    test_buy_breakout_fires_when_price_rises"""
    if action == "SELL":
        market(broker, [q("ZEEL", T(10), 100.0)], T(10))
        order(client(broker), "ZEEL", "BUY", 10)
    zeel(broker, 100.0)
    assert gtt(broker, "placegttorder", {**single(action, sl=0, price=100), key: trigger})[0] == 200
    zeel(broker, still, 1)
    assert len(gtt_book(broker)) == 1
    zeel(broker, cross, 2)
    assert gtt_book(broker) == []
    child = orders(broker)[0]
    assert child["action"] == action and child["strategy"] == "gtt-test"


@pytest.mark.parametrize("ltp, leg_price", [(94.0, 94.0), (111.0, 111.0)], ids=["falls", "rises"])
def test_oco_legs_get_opposite_directions(broker, ltp, leg_price):
    """SB:test_gtt_manager::TestDocumentedScenarios::test_oco_legs_get_opposite_directions"""
    zeel(broker, 100.0)
    order(client(broker), "ZEEL", "BUY", 10)
    gtt(broker, "placegttorder", oco())
    zeel(broker, ltp, 1)
    assert gtt_book(broker) == []
    assert orders(broker)[0]["price"] == leg_price


@pytest.mark.parametrize("body, prices, limits", [
    (single(sl=96, price=95), [96], [95]),
    (single(sl=0, tg=109, price=110), [109], [110]),
    ({**oco(96, 109), "price": 0, "stoploss": 95.5, "target": 109.5}, [96, 109], [95.5, 109.5]),
], ids=["single_from_stoploss", "single_from_target", "oco_two_legs_own_limits"])
def test_leg_construction(broker, body, prices, limits):
    """SB:test_gtt_manager::TestLegConstruction::test_single_from_stoploss_trigger,
    test_single_from_target_trigger, test_oco_builds_two_legs_with_their_own_limits"""
    zeel(broker, 100.0)
    code, r = gtt(broker, "placegttorder", body)
    assert code == 200, r
    [row] = gtt_book(broker)
    assert row["trigger_prices"] == prices and [leg["price"] for leg in row["legs"]] == limits


@pytest.mark.parametrize("body", [
    single(sl=96, tg=109),
    single(sl=0),
    {**oco(), "triggerprice_tg": 0},
    {**oco(), "triggerprice_sl": 0},
    {**oco(), "triggerprice_sl": 0, "triggerprice_tg": 0},
    single(sl="not-a-number"),
], ids=["single_both", "single_none", "oco_no_target", "oco_no_stoploss", "oco_neither", "non_numeric"])
def test_bad_legs_are_refused_with_400(broker, body):
    """SB:test_gtt_manager::TestLegConstruction::test_single_with_both_triggers_is_rejected,
    test_single_without_any_trigger_is_rejected, test_oco_requires_both_triggers (x3),
    test_non_numeric_trigger_is_rejected_not_crashed -- 400, not a 500; nothing placed, nothing blocked."""
    zeel(broker, 100.0)
    code, r = gtt(broker, "placegttorder", body)
    assert code == 400 and r["status"] == "error"
    assert gtt_book(broker) == [] and used(client(broker)) == 0


def test_gtt_id_shape_and_uniqueness(broker):
    """SB:test_gtt_manager::TestIdFormat::test_gtt_id_shape, test_ids_are_unique"""
    zeel(broker, 100.0)
    ids = [gtt(broker, "placegttorder", single("BUY", sl=50, qty=1, price=50))[1]["trigger_id"] for _ in range(200)]
    assert len(set(ids)) == 200
    head, day, tail = ids[0].split("-")
    assert head == "GTT" and len(day) == 6 and day.isdigit() and len(tail) == 8


def test_placement_blocks_and_cancel_returns_exactly_once(broker):
    """SB:test_gtt_manager::TestGTTMargin::test_placement_blocks_margin,
    test_cancel_returns_the_margin_exactly, test_cancelling_twice_does_not_double_release;
    TestCancelReportsReleaseFailure::test_a_normal_cancel_still_succeeds;
    TestMarginUnderflowGuard::test_a_normal_gtt_cycle_is_unaffected"""
    zeel(broker, 100.0)
    c = client(broker)
    code, r = gtt(broker, "placegttorder", single())
    assert code == 200 and used(c) == 950
    assert gtt(broker, "cancelgttorder", {"strategy": "s", "trigger_id": r["trigger_id"]})[0] == 200
    assert used(c) == 0
    assert gtt(broker, "cancelgttorder", {"strategy": "s", "trigger_id": r["trigger_id"]})[0] == 404
    assert used(c) == 0 and funds(c)["availablecash"] == START


def test_oco_blocks_the_larger_leg_not_both(broker):
    """SB:test_gtt_manager::TestGTTMargin::test_oco_blocks_the_larger_leg_not_both"""
    zeel(broker, 100.0)
    gtt(broker, "placegttorder", {**oco(95, 120), "stoploss": 94, "target": 121})
    [row] = gtt_book(broker)
    assert row["margin_blocked"] == 1210 and used(client(broker)) == 1210


def test_expiry_releases_margin(broker):
    """SB:test_gtt_manager::TestGTTMargin::test_expiry_releases_margin; TestMarginTransitionsFailClosed::
    test_expiry_still_works_normally"""
    zeel(broker, 100.0)
    gtt(broker, "placegttorder", single(expires_at=f"{DAY.isoformat()} 11:00:00"))
    assert used(client(broker)) == 950
    broker.admin().set_clock(T(11, 0, 1))
    assert gtt_book(broker) == [] and used(client(broker)) == 0


def _concurrently(fns: list) -> list:
    out: list = [None] * len(fns)
    start = threading.Barrier(len(fns))

    def run(i: int) -> None:
        start.wait(timeout=10)
        out[i] = fns[i]()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return out


def test_only_one_of_many_crossings_fires(broker):
    """SB:test_gtt_manager::TestClaimConcurrency::test_only_one_of_many_threads_wins_the_claim,
    test_a_claimed_leg_cannot_be_claimed_again -- eight clients push crossing quotes at once: one order; a
    later crossing places nothing more."""
    zeel(broker, 100.0)
    gtt(broker, "placegttorder", single("BUY", sl=95, price=95))
    _concurrently([lambda i=i: market(broker, [q("ZEEL", T(10, 0, 1), 94.0 - i * 0.05)], T(10, 0, 1))
                   for i in range(8)])
    assert len(orders(broker)) == 1
    zeel(broker, 93.0, 5)
    assert len(orders(broker)) == 1


def test_oco_one_leg_only_under_contention(broker):
    """SB:test_gtt_manager::TestOCOExclusivity::test_only_one_leg_of_an_oco_can_be_claimed,
    test_concurrent_sibling_contention_yields_one_winner -- quotes crossing both legs raced: one order."""
    zeel(broker, 100.0)
    order(client(broker), "ZEEL", "BUY", 10)
    gtt(broker, "placegttorder", oco())
    _concurrently([lambda i=i: market(broker, [q("ZEEL", T(10, 0, 1), 94.0 if i % 2 else 111.0)], T(10, 0, 1))
                   for i in range(6)])
    gtt_orders = [o for o in orders(broker) if o["strategy"] == "gtt-test"]
    assert len(gtt_orders) == 1 and gtt_book(broker) == []


def test_active_and_cancelled_gtt_margin_reconcile(broker):
    """SB:test_gtt_manager::TestMarginReconciliation::
    test_active_gtt_margin_is_not_flagged_as_a_discrepancy, test_cancelled_gtt_margin_is_not_double_counted --
    used margin is exactly the GTTs' reservations, before and after a cancel."""
    zeel(broker, 100.0)
    c = client(broker)
    a = gtt(broker, "placegttorder", single())[1]["trigger_id"]
    gtt(broker, "placegttorder", single(qty=5))
    assert used(c) == sum(g["margin_blocked"] for g in gtt_book(broker)) == 950 + 475
    gtt(broker, "cancelgttorder", {"strategy": "s", "trigger_id": a})
    assert used(c) == sum(g["margin_blocked"] for g in gtt_book(broker)) == 475


def test_gtt_survives_a_restart_and_fires_once(tmp_path):
    """SB:test_gtt_manager::TestCatchUp::test_catch_up_is_exported_and_safe_with_no_gtts, and the crash-recovery
    classes' observable promise: after kill -9 a GTT is still armed with its margin, fires once, and a fired
    one is not re-armed."""
    b = launch(tmp_path)
    try:
        b.admin().reset("replay", T(10))
        assert gtt_book(b) == []
        zeel(b, 100.0)
        tid = gtt(b, "placegttorder", single("BUY", sl=95, price=95))[1]["trigger_id"]
        b.kill9()
        b.start()
        [row] = gtt_book(b)
        assert row["trigger_id"] == tid and used(client(b)) == 950
        zeel(b, 94.0, 1)
        assert gtt_book(b) == [] and len(orders(b)) == 1
        b.kill9()
        b.start()
        zeel(b, 93.0, 2)
        assert gtt_book(b) == [] and len(orders(b)) == 1
    finally:
        b.stop()


def test_cancelled_gtt_cannot_fire(broker):
    """SB:test_gtt_manager::TestCancelledGttCannotFire::test_claimed_leg_is_cancelled_with_the_parent,
    test_fire_refuses_when_the_parent_is_not_active"""
    zeel(broker, 100.0)
    tid = gtt(broker, "placegttorder", single("BUY", sl=95, price=95))[1]["trigger_id"]
    gtt(broker, "cancelgttorder", {"strategy": "s", "trigger_id": tid})
    zeel(broker, 90.0, 1)
    assert orders(broker) == [] and used(client(broker)) == 0


def test_market_leg_reserves_margin(broker):
    """SB:test_gtt_manager::TestMarketOrderMargin::test_market_leg_reserves_margin"""
    zeel(broker, 100.0)
    code, r = gtt(broker, "placegttorder", single(pricetype="MARKET", price=0, sl=95))
    assert code == 200, r
    assert gtt_book(broker)[0]["margin_blocked"] > 0 and used(client(broker)) > 0


def test_gtt_orderbook_contract_and_default_filter(broker):
    """SB:test_gtt_manager::TestOrderbookContract::test_entry_carries_trigger_prices,
    test_cancelled_gtts_are_hidden_by_default; TestServiceOrderbookDefault::test_service_layer_hides_cancelled_gtts"""
    zeel(broker, 100.0)
    gtt(broker, "placegttorder", oco())
    [entry] = gtt_book(broker)
    assert {"trigger_id", "trigger_type", "status", "symbol", "exchange", "trigger_prices", "last_price", "legs",
            "created_at", "expires_at"} <= set(entry)
    assert entry["trigger_prices"] == [95.0, 110.0]
    gtt(broker, "cancelgttorder", {"strategy": "s", "trigger_id": entry["trigger_id"]})
    assert gtt_book(broker) == []


@pytest.mark.parametrize("supplied, shown", [
    ("2026-12-31", "2026-12-31T00:00:00"),
    ("2026-12-31 13:00:00", "2026-12-31T13:00:00"),
    ("2026-12-31T13:00:00+05:30", "2026-12-31T13:00:00"),
    ("2026-12-31T13:00:00+00:00", "2026-12-31T18:30:00"),
], ids=["date_only", "naive_kept", "ist_offset", "utc_converted"])
def test_supplied_expiry(broker, supplied, shown):
    """SB:test_gtt_manager::TestSuppliedExpiry::test_expires_at_is_honoured;
    TestTimezoneAwareExpiry::test_offset_is_converted_not_ignored, test_naive_input_is_preserved,
    test_stored_value_is_naive (shown naive, in IST)"""
    zeel(broker, 100.0)
    assert gtt(broker, "placegttorder", single(expires_at=supplied))[0] == 200
    assert gtt_book(broker)[0]["expires_at"] == shown


def test_unparseable_expiry_falls_back(broker):
    """SB:test_gtt_manager::TestSuppliedExpiry::test_unparseable_expiry_falls_back_rather_than_rejecting"""
    zeel(broker, 100.0)
    assert gtt(broker, "placegttorder", single(expires_at="whenever"))[0] == 200
    assert gtt_book(broker)[0]["expires_at"].startswith("2027-11-20")


def test_cancel_and_fire_race_has_one_winner(broker):
    """SB:test_gtt_manager::TestCancelFireRace::test_cancel_after_revalidation_still_prevents_the_order,
    test_cancel_cannot_succeed_once_the_parent_is_claimed; TestAtomicCancel::
    test_cancel_pausing_after_its_read_cannot_clobber_a_fire -- a cancel and a crossing quote at once: either
    the cancel succeeded and no order exists, or the order exists and the cancel got 404."""
    for round_ in range(5):
        broker.admin().reset("replay", T(10))
        zeel(broker, 100.0)
        tid = gtt(broker, "placegttorder", single("BUY", sl=95, price=95))[1]["trigger_id"]
        code, _ = _concurrently([
            lambda tid=tid: broker.post("cancelgttorder", {"strategy": "s", "trigger_id": tid}).status_code,
            lambda: market(broker, [q("ZEEL", T(10, 0, 1), 94.0)], T(10, 0, 1))])
        n = len(orders(broker))
        assert (code, n) in ((200, 0), (404, 1)), (round_, code, n)
        assert used(client(broker)) == (0 if n == 0 else 950)


@pytest.mark.parametrize("change, text", [
    ({"action": "BUY"}, "action cannot be changed"),
    ({"symbol": "RELIANCE"}, "symbol cannot be changed"),
    ({"trigger_type": "OCO", "triggerprice_tg": 110, "stoploss": 94, "target": 111}, "trigger_type cannot be changed"),
], ids=["action", "symbol", "trigger_type"])
def test_modify_immutability(broker, change, text):
    """SB:test_gtt_manager::TestModifyImmutability::test_action_flip_is_rejected,
    test_symbol_change_is_rejected, test_trigger_type_change_is_rejected"""
    zeel(broker, 100.0)
    tid = gtt(broker, "placegttorder", single(sl=95))[1]["trigger_id"]
    code, r = gtt(broker, "modifygttorder", {**single(sl=95), **change, "trigger_id": tid})
    assert code == 400 and text in r["message"]


def test_a_legal_modify_and_mixed_activity_reconcile(broker):
    """SB:test_gtt_manager::TestModifyImmutability::test_a_legal_modify_still_works,
    TestConcurrentPlacementReservations::test_reservations_and_ledger_agree_after_mixed_activity"""
    zeel(broker, 100.0)
    c = client(broker)
    ids = [gtt(broker, "placegttorder", single(sl=95))[1]["trigger_id"] for _ in range(3)]
    assert gtt(broker, "cancelgttorder", {"strategy": "s", "trigger_id": ids[0]})[0] == 200
    assert gtt(broker, "modifygttorder", {**single(sl=95, qty=5), "trigger_id": ids[1]})[0] == 200
    assert gtt(broker, "modifygttorder", {**single(sl=90, price=90), "trigger_id": ids[2]})[0] == 200
    assert used(c) == sum(g["margin_blocked"] for g in gtt_book(broker)) == 475 + 900


def test_modify_and_expiry_respect_a_fire(broker):
    """SB:test_gtt_manager::TestExpiryAndModifyRespectAFire::test_expiry_cannot_overwrite_a_fired_gtt,
    test_modify_fails_against_an_already_fired_gtt -- a fired GTT cannot be modified (404) and its passing
    expiry releases nothing the child order holds."""
    zeel(broker, 100.0)
    c = client(broker)
    tid = gtt(broker, "placegttorder", single("BUY", sl=95, price=94, expires_at=f"{DAY} 11:00:00"))[1]["trigger_id"]
    zeel(broker, 96.0, 1)
    zeel(broker, 95.0, 2)
    [child] = orders(broker)
    assert child["order_status"] == "open" and used(c) == 940
    code, _ = gtt(broker, "modifygttorder", {**single("BUY", sl=90, price=90), "trigger_id": tid})
    assert code == 404
    broker.admin().set_clock(T(11, 0, 1))
    assert used(c) == 940 and orders(broker)[0]["order_status"] == "open"


def test_rejected_child_re_arms_the_gtt(broker):
    """SB:test_gtt_manager::TestRejectedOrdersDoNotPoisonCorrelation::test_rejected_child_is_not_correlated,
    test_recovery_re_arms_after_a_rejection, test_the_leg_can_fire_again_after_a_rejection -- a CNC SELL GTT
    with no shares fires into a refusal: the GTT is active again with its margin, and fires for real once
    shares exist."""
    zeel(broker, 100.0)
    c = client(broker)
    tid = gtt(broker, "placegttorder", single(sl=95))[1]["trigger_id"]
    zeel(broker, 94.0, 1)
    [row] = gtt_book(broker)
    assert row["trigger_id"] == tid and row["status"] == "active" and used(c) == 950
    zeel(broker, 100.0, 2)
    order(c, "ZEEL", "BUY", 10)
    zeel(broker, 94.0, 3)
    assert gtt_book(broker) == []
    assert any(o["strategy"] == "gtt-test" and o["order_status"] != "rejected" for o in orders(broker))


def test_simultaneous_placements_both_reserve(broker):
    """SB:test_gtt_manager::TestConcurrentPlacementReservations::test_two_simultaneous_placements_both_reserve"""
    zeel(broker, 100.0)
    codes = _concurrently([lambda: gtt(broker, "placegttorder", single())[0] for _ in range(8)])
    assert codes == [200] * 8
    assert used(client(broker)) == sum(g["margin_blocked"] for g in gtt_book(broker)) == 8 * 950


def test_a_placement_beyond_available_funds_is_refused(broker):
    """SB:test_gtt_manager::TestConcurrentPlacementReservations::test_a_placement_beyond_available_funds_is_refused"""
    zeel(broker, 100.0)
    code, r = gtt(broker, "placegttorder", single(qty=100_000_000, sl=95))
    assert code == 400 and "Insufficient funds" in r["message"] and used(client(broker)) == 0


# ================================================================ test_broker_integration.py::test_orders
#                                                                  (the analyzer-mode order matrix)

@pytest.mark.parametrize("pricetype, product, extra", [
    ("MARKET", "CNC", {}),
    ("LIMIT", "CNC", {"price": "250"}),
    ("SL", "CNC", {"price": "600.5", "trigger_price": "600"}),
    ("SL-M", "CNC", {"trigger_price": "600"}),
    ("LIMIT", "MIS", {"price": "250"}),
])
def test_order_matrix_place(broker, pricetype, product, extra):
    """OA:test_broker_integration::test_orders 4.1 -- each price type and product places with an orderid."""
    market(broker, [q("SBIN", T(10), 500.0)], T(10))
    r = broker.post("placeorder", {"strategy": "itest", "symbol": "SBIN", "exchange": "NSE", "action": "BUY",
                                   "product": product, "pricetype": pricetype, "quantity": "1", **extra}).json()
    assert r["status"] == "success" and r["orderid"] and r["mode"] == "analyze"


def test_order_matrix_modify_cancel_smart(broker):
    """OA:test_broker_integration::test_orders 4.2-4.4"""
    market(broker, [q("SBIN", T(10), 500.0)], T(10))
    c = client(broker)
    oid = order(c, "SBIN", "BUY", 1, pricetype="LIMIT", price=250)["orderid"]
    r = c.modifyorder(order_id=oid, strategy="itest", symbol="SBIN", action="BUY", exchange="NSE",
                      price_type="LIMIT", product="CNC", quantity=2, price=249.5, trigger_price=0,
                      disclosed_quantity=0)
    assert r["status"] == "success"
    assert c.cancelorder(order_id=oid, strategy="itest")["status"] == "success"
    r = c.placesmartorder(strategy="itest", symbol="SBIN", action="BUY", exchange="NSE", price_type="MARKET",
                          product="CNC", quantity=1, position_size=1)
    assert r["status"] == "success" and r["orderid"]


@pytest.mark.parametrize("pricetype, extra, change, text", [
    ("LIMIT", {"price": 250}, {"price": 249.5, "trigger_price": 240}, "LIMIT orders do not accept a trigger_price"),
    ("SL-M", {"trigger_price": 600}, {"price": 601, "trigger_price": 600}, "SL-M orders do not accept a price"),
])
def test_modify_takes_only_the_fields_of_the_price_type(broker, pricetype, extra, change, text):
    """The sandbox's modify: LIMIT takes a price, SL both, SL-M a trigger; anything else is a 400, order kept."""
    market(broker, [q("SBIN", T(10), 500.0)], T(10))
    c = client(broker)
    oid = order(c, "SBIN", "BUY", 1, pricetype=pricetype, **extra)["orderid"]
    r = broker.post("modifyorder", {"strategy": "itest", "symbol": "SBIN", "exchange": "NSE", "orderid": oid,
                                    "action": "BUY", "product": "CNC", "pricetype": pricetype, "quantity": 1,
                                    "disclosed_quantity": 0, "price": 0, "trigger_price": 0, **change})
    assert r.status_code == 400 and r.json()["message"] == text and r.json()["mode"] == "analyze"
    s = c.orderstatus(order_id=oid, strategy="p")["data"]
    assert (s["price"], s["trigger_price"]) == (extra.get("price", 0), extra.get("trigger_price", 0))


def test_order_matrix_basket(broker):
    """OA:test_broker_integration::test_orders 4.5 -- basketorder in analyzer mode: BUYs first, one result per
    leg with the sandbox's fields."""
    market(broker, [q("SBIN", T(10), 500.0)], T(10))
    c = client(broker)
    r = c.basketorder(strategy="itest", orders=[
        {"symbol": "SBIN", "exchange": "NSE", "action": "SELL", "quantity": "1", "pricetype": "LIMIT",
         "product": "MIS", "price": "750"},
        {"symbol": "SBIN", "exchange": "NSE", "action": "BUY", "quantity": "1", "pricetype": "MARKET",
         "product": "MIS"},
        {"symbol": "NOSUCH", "exchange": "NSE", "action": "BUY", "quantity": "1", "pricetype": "MARKET",
         "product": "MIS"}])
    assert r["status"] == "success" and r["mode"] == "analyze"
    buy, bad, sell = r["results"]
    assert buy == {"symbol": "SBIN", "exchange": "NSE", "product": "MIS", "status": "success",
                   "orderid": buy["orderid"], "batch_order": True, "is_last_order": False}
    assert bad["status"] == "error" and bad["symbol"] == "NOSUCH" and bad["message"]
    assert sell["status"] == "success" and sell["is_last_order"] is True
    book = {o["orderid"]: o for o in c.orderbook()["data"]["orders"]}
    assert book[buy["orderid"]]["order_status"] == "complete" and book[sell["orderid"]]["order_status"] == "open"
    assert book[buy["orderid"]]["strategy"] == "itest"
    bad = broker.post("basketorder", {"strategy": "itest", "orders": [
        {"symbol": "SBIN", "exchange": "NSE", "action": "BUY", "quantity": 0}]})
    assert bad.status_code == 400 and bad.json() == {
        "mode": "analyze", "status": "error",
        "message": "{'orders': {0: {'quantity': ['Quantity must be a positive number.']}}}"}


def test_order_matrix_split(broker):
    """OA:test_broker_integration::test_orders 4.6 -- splitorder 5 / 2 gives three children 2, 2, 1."""
    market(broker, [q("SBIN", T(10), 500.0)], T(10))
    c = client(broker)
    r = c.splitorder(strategy="itest", symbol="SBIN", action="SELL", exchange="NSE", quantity=5, splitsize=2,
                     price_type="MARKET", product="MIS")
    assert r["status"] == "success" and r["mode"] == "analyze"
    assert (r["total_quantity"], r["split_size"]) == (5, 2)
    assert [(x["order_num"], x["quantity"], x["status"]) for x in r["results"]] == [
        (1, 2, "success"), (2, 2, "success"), (3, 1, "success")]
    assert c.openposition(strategy="itest", symbol="SBIN", exchange="NSE", product="MIS")["quantity"] == -5
    bad = broker.post("splitorder", {"strategy": "itest", "symbol": "SBIN", "exchange": "NSE", "action": "SELL",
                                     "quantity": 500, "splitsize": 2, "product": "MIS"})
    assert bad.status_code == 400 and "maximum limit of 100" in bad.json()["message"]
    bad = broker.post("splitorder", {"strategy": "itest", "symbol": "SBIN", "exchange": "NSE", "action": "SELL",
                                     "quantity": 5, "splitsize": 0})
    assert bad.status_code == 400
    assert bad.json()["message"] == "{'splitsize': ['Split size must be a positive integer.']}"


def test_order_matrix_books_cancel_all_close_all(broker):
    """OA:test_broker_integration::test_orders 4.7, 4.9"""
    market(broker, [q("SBIN", T(10), 500.0)], T(10))
    c = client(broker)
    order(c, "SBIN", "BUY", 1, product="MIS")
    order(c, "SBIN", "BUY", 1, product="MIS", pricetype="LIMIT", price=250)
    for call in (c.orderbook, c.tradebook, c.positionbook, c.holdings, c.funds):
        assert call()["status"] == "success"
    assert len(c.cancelallorder(strategy="itest")["canceled_orders"]) == 1
    assert c.closeposition(strategy="itest")["status"] == "success"
    assert c.openposition(strategy="itest", symbol="SBIN", exchange="NSE", product="MIS")["quantity"] == 0


# ================================================================ the rest of the surface a rehearsal script calls

def test_depth_from_the_pushed_quote(broker):
    """depth (official client): OpenAlgo's shape, five levels a side, level 1 from the quote's bid and ask."""
    market(broker, [q("SBIN", T(10), 500.0, 499.9, 500.1)], T(10))
    c = client(broker)
    d = c.depth(symbol="SBIN", exchange="NSE")
    assert d["status"] == "success" and "mode" not in d
    data = d["data"]
    assert {"open", "high", "low", "ltp", "ltq", "prev_close", "volume", "oi", "totalbuyqty", "totalsellqty", "asks",
            "bids"} == set(data)
    assert data["ltp"] == 500 and len(data["asks"]) == len(data["bids"]) == 5
    assert data["asks"][0]["price"] == 500.1 and data["bids"][0]["price"] == 499.9
    assert data["asks"][1] == {"price": 0, "quantity": 0}
    r = broker.post("depth", {"symbol": "NOSUCH", "exchange": "NSE"})
    assert r.status_code == 400 and "Symbol 'NOSUCH' not found for exchange 'NSE'" in r.json()["message"]
    r = broker.post("depth", {"symbol": "TCS", "exchange": "NSE"})          # listed, no price pushed yet
    assert r.status_code == 500 and r.json()["message"] == "Failed to fetch market depth"


def test_ping_analyzer_symbol_search_shapes(broker):
    """ping, analyzer, symbol (official client), search: each answers in OpenAlgo's shape."""
    c = client(broker)
    p = broker.post("ping").json()
    assert p["status"] == "success" and p["data"]["message"] == "pong" and p["data"]["broker"]
    a = broker.post("analyzer").json()["data"]
    assert a["analyze_mode"] is True and a["mode"] == "analyze" and isinstance(a["total_logs"], int)
    sym = c.symbol(symbol="SBIN", exchange="NSE")
    assert sym["status"] == "success" and sym["data"]["tick_size"] == 0.05 and sym["data"]["lotsize"] == 1
    found = broker.post("search", {"query": "SBIN", "exchange": "NSE"}).json()
    assert found["status"] == "success" and "SBIN" in [row["symbol"] for row in found["data"]]


# ================================================================ the inventory

#: Every test function of OpenAlgo's test/sandbox/ at 60156bc (and the two scripts there), and what stands for
#: it here: "probe" (a test above; its docstring names it), "F&O" (left out by the acceptance), or why no HTTP
#: probe can exist -- the sandbox test drives a private object with no request behind it.
PRIVATE = "private: drives an internal object directly, nothing a request can reach"
MOCKED = "private: injects a failure (mocked commit/exception/refused fund move) inside one call"
CRASH = ("private: fabricates the rows a crash mid-fire leaves; here a fire is one step under the broker lock "
         "(the observable promise is probed across kill -9 by test_gtt_survives_a_restart_and_fires_once)")
GTT_MAP: dict[str, str] = {
    "TestTriggerEvaluation::test_direction": "probe", "TestTriggerEvaluation::test_case_insensitive": PRIVATE,
    "TestTriggerEvaluation::test_missing_values_never_trigger": PRIVATE,
    "TestTriggerEvaluation::test_decimal_and_float_compare_exactly": "probe",
    "TestTriggerEvaluation::test_unknown_direction_defaults_to_below": PRIVATE,
    **{f"TestDocumentedScenarios::{n}": "probe" for n in (
        "test_buy_on_dip_fires_when_price_falls", "test_sell_at_target_fires_when_price_rises",
        "test_sell_stoploss_fires_when_price_falls", "test_buy_breakout_fires_when_price_rises",
        "test_oco_legs_get_opposite_directions")},
    **{f"TestLegConstruction::{n}": "probe" for n in (
        "test_single_from_stoploss_trigger", "test_single_from_target_trigger",
        "test_single_with_both_triggers_is_rejected", "test_single_without_any_trigger_is_rejected",
        "test_oco_builds_two_legs_with_their_own_limits", "test_oco_requires_both_triggers",
        "test_non_numeric_trigger_is_rejected_not_crashed")},
    "TestLegConstruction::test_oco_falls_back_to_price_when_a_limit_is_absent":
        "unreachable: the request schema requires stoploss and target for OCO before the fallback",
    "TestIdFormat::test_gtt_id_shape": "probe", "TestIdFormat::test_ids_are_unique": "probe",
    **{f"TestGTTMargin::{n}": "probe" for n in (
        "test_placement_blocks_margin", "test_cancel_returns_the_margin_exactly",
        "test_oco_blocks_the_larger_leg_not_both", "test_expiry_releases_margin",
        "test_cancelling_twice_does_not_double_release")},
    "TestClaimConcurrency::test_only_one_of_many_threads_wins_the_claim": "probe",
    "TestClaimConcurrency::test_a_claimed_leg_cannot_be_claimed_again": "probe",
    "TestStrandedLegReclaim::test_stale_claim_is_reverted_to_pending": CRASH,
    "TestStrandedLegReclaim::test_a_fresh_claim_is_left_alone": CRASH,
    "TestMarginReconciliation::test_active_gtt_margin_is_not_flagged_as_a_discrepancy": "probe",
    "TestMarginReconciliation::test_cancelled_gtt_margin_is_not_double_counted": "probe",
    "TestMaintenanceThread::test_intervals_are_sane": PRIVATE,
    "TestMaintenanceThread::test_stop_is_idempotent": PRIVATE,
    "TestMaintenanceThread::test_thread_reclaims_and_stops": CRASH,
    "TestCatchUp::test_catch_up_is_exported_and_safe_with_no_gtts": "probe",
    "TestOCOExclusivity::test_only_one_leg_of_an_oco_can_be_claimed": "probe",
    "TestOCOExclusivity::test_concurrent_sibling_contention_yields_one_winner": "probe",
    "TestCancelledGttCannotFire::test_claimed_leg_is_cancelled_with_the_parent": "probe",
    "TestCancelledGttCannotFire::test_fire_refuses_when_the_parent_is_not_active": "probe",
    "TestMarketOrderMargin::test_market_leg_reserves_margin": "probe",
    "TestOrderbookContract::test_entry_carries_trigger_prices": "probe",
    "TestOrderbookContract::test_cancelled_gtts_are_hidden_by_default": "probe",
    "TestSuppliedExpiry::test_expires_at_is_honoured": "probe",
    "TestSuppliedExpiry::test_unparseable_expiry_falls_back_rather_than_rejecting": "probe",
    "TestEventPublishing::test_the_event_bus_import_resolves": PRIVATE,
    "TestCancelFireRace::test_cancel_after_revalidation_still_prevents_the_order": "probe",
    "TestCancelFireRace::test_cancel_cannot_succeed_once_the_parent_is_claimed": "probe",
    **{f"TestModifyImmutability::{n}": "probe" for n in (
        "test_action_flip_is_rejected", "test_symbol_change_is_rejected", "test_trigger_type_change_is_rejected",
        "test_a_legal_modify_still_works")},
    **{f"TestTimezoneAwareExpiry::{n}": "probe" for n in (
        "test_offset_is_converted_not_ignored", "test_naive_input_is_preserved", "test_stored_value_is_naive")},
    "TestServiceOrderbookDefault::test_service_layer_hides_cancelled_gtts": "probe",
    "TestAtomicCancel::test_cancel_pausing_after_its_read_cannot_clobber_a_fire": "probe",
    "TestFireExceptionCompensation::test_exception_after_release_restores_the_margin": MOCKED,
    "TestFireExceptionCompensation::test_unrestorable_margin_marks_the_gtt_rejected": MOCKED,
    "TestCrashRecovery::test_crash_before_the_child_order_returns_the_gtt_to_active": CRASH,
    "TestCrashRecovery::test_crash_after_the_child_order_is_finalised_not_undone": CRASH,
    "TestCrashRecovery::test_recovery_runs_from_the_normal_reaper": CRASH,
    "TestDurableOrderCorrelation::test_child_order_carries_the_leg_correlation": PRIVATE,
    "TestDurableOrderCorrelation::test_crash_before_the_marker_does_not_re_arm": CRASH,
    "TestDurableOrderCorrelation::test_the_correlation_is_unique": PRIVATE,
    "TestRecoveryDoesNotDoubleBlock::test_crash_before_the_release_keeps_one_reservation": CRASH,
    "TestCancelReportsReleaseFailure::test_cancel_fails_when_the_funds_cannot_be_returned": MOCKED,
    "TestCancelReportsReleaseFailure::test_a_normal_cancel_still_succeeds": "probe",
    **{f"TestRejectedOrdersDoNotPoisonCorrelation::{n}": "probe" for n in (
        "test_rejected_child_is_not_correlated", "test_recovery_re_arms_after_a_rejection",
        "test_the_leg_can_fire_again_after_a_rejection")},
    "TestMarginTransitionsFailClosed::test_fire_does_not_place_when_the_release_fails": MOCKED,
    "TestMarginTransitionsFailClosed::test_modify_reports_failure_when_the_release_fails": MOCKED,
    "TestMarginTransitionsFailClosed::test_expiry_leaves_the_gtt_active_when_the_release_fails": MOCKED,
    "TestMarginTransitionsFailClosed::test_expiry_still_works_normally": "probe",
    **{f"TestFundsAndStateCommitTogether::{n}": MOCKED for n in (
        "test_modify_decrease_commit_failure_leaves_both_unchanged",
        "test_modify_increase_commit_failure_leaves_both_unchanged",
        "test_expiry_commit_failure_does_not_release_funds")},
    "TestExpiryAndModifyRespectAFire::test_expiry_cannot_overwrite_a_fired_gtt": "probe",
    "TestExpiryAndModifyRespectAFire::test_modify_fails_against_an_already_fired_gtt": "probe",
    "TestExpiryAndModifyRespectAFire::test_modify_reading_active_then_losing_the_race": MOCKED,
    **{f"TestFireAndCancelCrashConsistency::{n}": MOCKED for n in (
        "test_fire_commit_failure_keeps_funds_and_row_together", "test_cancel_commit_failure_leaves_it_retryable",
        "test_placement_commit_failure_reserves_nothing")},
    "TestFireAndCancelCrashConsistency::test_recovery_after_a_fire_crash_leaves_a_funded_gtt": CRASH,
    **{f"TestConcurrentPlacementReservations::{n}": "probe" for n in (
        "test_two_simultaneous_placements_both_reserve", "test_reservations_and_ledger_agree_after_mixed_activity",
        "test_a_placement_beyond_available_funds_is_refused")},
    **{f"TestMarginUnderflowGuard::{n}": PRIVATE for n in (
        "test_staged_release_beyond_the_reservation_is_refused",
        "test_committed_release_beyond_the_reservation_is_refused", "test_used_margin_can_never_go_negative")},
    "TestMarginUnderflowGuard::test_a_normal_gtt_cycle_is_unaffected": "probe",
    **{f"TestFandOCloseFollowsCAS::{n}": "F&O" for n in (
        "test_default_timings_close_fo_at_1540", "test_expiry_settlement_matches_the_new_close",
        "test_migration_only_touches_rows_still_on_the_old_close")},
    **{f"TestFundPrimitivesRejectBadAmounts::{n}": PRIVATE for n in (
        "test_t1_transfer_cannot_underflow", "test_t1_transfer_still_works_normally",
        "test_block_refuses_non_positive", "test_release_refuses_negative", "test_credit_refuses_non_positive",
        "test_used_margin_never_goes_negative_across_the_primitives")},
}
PROBE_MAP: dict[str, str] = {
    **{f"test_cnc_sell_validation::{n}": "probe" for n in (
        "test_cnc_sell_without_position", "test_cnc_sell_with_position", "test_cnc_sell_exceeding_position",
        "test_cnc_sell_with_holdings", "test_mis_short_selling", "test_cnc_sell_with_position_and_holdings")},
    "test_execution_backlog::test_cycle_does_not_stall_on_a_large_backlog": "probe",
    "test_execution_backlog::test_cycle_cost_is_flat_in_queue_depth": "probe",
    **{f"test_fund_manager::{n}": "probe" for n in (
        "test_fund_initialization", "test_margin_operations", "test_insufficient_funds",
        "test_leverage_calculations", "test_unrealized_pnl")},
    **{f"test_holdings_sell::{n}": "probe" for n in (
        "test_partial_holdings_sell", "test_full_holdings_sell", "test_position_then_holdings_sell")},
    **{f"test_margin_scenarios::test_scenario_{i}": "probe" for i in (1, 2, 3, 4)},
    "test_orderbook_api (script)": "probe",
    "test_rejected_order (script)": "probe",
    **{f"test_gtt_manager::{k}": v for k, v in GTT_MAP.items()},
}


def test_every_mapped_probe_exists():
    """The inventory and the probes agree: each sandbox test marked "probe" is named by a probe's docstring."""
    docs = " ".join((f.__doc__ or "") for n, f in globals().items() if n.startswith("test_") and callable(f))
    docs = " ".join(docs.split())
    for name, what in PROBE_MAP.items():
        if what == "probe":
            leaf = name.split("::")[-1].replace(" (script)", "")
            assert leaf in docs, f"{name} is marked probed but no probe names it"

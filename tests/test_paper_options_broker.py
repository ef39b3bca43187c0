"""Index options on a real paper broker process: expiry -> optionsymbol -> optionsorder -> books and funds."""
from __future__ import annotations

import pytest

from tests.paper_fixtures import T, broker, broker_proc, q  # noqa: F401 - fixtures

SPOT = 26012.35
BASE = {"strategy": "t", "underlying": "NIFTY", "exchange": "NSE_INDEX", "expiry_date": "23NOV26", "offset": "ATM",
        "option_type": "CE", "action": "BUY", "quantity": 65, "pricetype": "MARKET", "product": "MIS"}


def push_index(b, ltp: float = SPOT, at: float | None = None) -> None:
    ts = T(10) if at is None else at
    b.admin().push_market([["NIFTY", "NSE_INDEX", ts, ltp, 0, 0, ltp + 80, ltp - 80, ltp, ltp - 20, 0]], clock=ts)


def ok(r) -> dict:
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success", body
    return body


def test_expiry_symbol_order_positions_and_funds(broker):
    push_index(broker)
    exp = ok(broker.post("expiry", {"symbol": "NIFTY", "exchange": "NFO", "instrumenttype": "options"}))
    assert exp["data"][:3] == ["23-NOV-26", "01-DEC-26", "08-DEC-26"]     # from the shipped calendar, clock 2026-11-20
    assert exp["message"] == f"Found {len(exp['data'])} expiry dates for NIFTY options in NFO"
    code = exp["data"][0].replace("-", "")

    sym = ok(broker.post("optionsymbol", {"underlying": "NIFTY", "exchange": "NSE_INDEX", "expiry_date": code,
                                          "offset": "ITM2", "option_type": "CE"}))
    assert sym == {"status": "success", "symbol": "NIFTY23NOV2625900CE", "exchange": "NFO", "lotsize": 65,
                   "tick_size": 0.05, "freeze_qty": 1800, "underlying_ltp": SPOT}

    cash0 = ok(broker.post("funds"))["data"]["availablecash"]
    body = ok(broker.post("optionsorder", {**BASE, "offset": "ITM2", "quantity": 130}))
    assert {k: body[k] for k in ("symbol", "exchange", "underlying", "underlying_ltp", "offset", "option_type",
                                 "mode")} == {"symbol": "NIFTY23NOV2625900CE", "exchange": "NFO", "underlying": "NIFTY",
                                              "underlying_ltp": SPOT, "offset": "ITM2", "option_type": "CE",
                                              "mode": "analyze"}
    order = ok(broker.post("orderstatus", {"strategy": "t", "orderid": body["orderid"]}))["data"]
    assert order["order_status"] == "complete" and order["exchange"] == "NFO" and order["filled_quantity"] == 130
    quote = ok(broker.post("quotes", {"symbol": "NIFTY23NOV2625900CE", "exchange": "NFO"}))["data"]
    assert order["average_price"] == quote["ask"] > quote["bid"] > 112.35   # a buy fills at the ask, above intrinsic

    pos = [p for p in ok(broker.post("positionbook"))["data"] if p["exchange"] == "NFO"]
    assert [(p["symbol"], p["quantity"], p["average_price"]) for p in pos] == \
        [("NIFTY23NOV2625900CE", 130, order["average_price"])]
    cash1 = ok(broker.post("funds"))["data"]["availablecash"]
    # the premium in full (blocked at the LTP, as the sandbox blocks margin), not a fifth of it as MIS equity would
    assert cash0 - cash1 == pytest.approx(130 * quote["ltp"], abs=0.01)

    m = ok(broker.post("margin", {"positions": [
        {"symbol": "NIFTY23NOV2625900CE", "exchange": "NFO", "action": "BUY", "quantity": "65", "product": "MIS",
         "pricetype": "MARKET"}]}))
    assert m["data"]["total_margin_required"] == pytest.approx(65 * quote["ltp"], abs=0.01)
    far = ok(broker.post("margin", {"positions": [        # a contract not traded yet is priced from the index too
        {"symbol": "NIFTY29DEC2626000PE", "exchange": "NFO", "action": "BUY", "quantity": "65", "product": "NRML",
         "pricetype": "MARKET"}]}))
    assert far["data"]["total_margin_required"] > 65 * 100

    push_index(broker, SPOT + 100, T(10, 5))            # the held option follows its index
    moved = [p for p in ok(broker.post("positionbook"))["data"] if p["exchange"] == "NFO"][0]
    assert moved["ltp"] > order["average_price"] + 50 and moved["unrealized_pnl"] > 0


def test_quantity_not_in_lots_refused(broker):
    push_index(broker)
    r = broker.post("optionsorder", {**BASE, "quantity": 100})
    assert r.status_code == 400
    assert r.json() == {"status": "error", "message": "Quantity must be in multiples of lot size 65", "mode": "analyze"}
    r = broker.post("placeorder", {"strategy": "t", "symbol": "NIFTY23NOV2626000PE", "exchange": "NFO",
                                   "action": "BUY", "quantity": "1", "pricetype": "MARKET", "product": "NRML"})
    assert r.status_code == 400 and "multiples of lot size 65" in r.json()["message"]
    assert ok(broker.post("orderbook"))["data"]["orders"] == []


def test_freeze_quantity_refused(broker):
    push_index(broker)
    r = broker.post("optionsorder", {**BASE, "quantity": 28 * 65})      # 1820 > NIFTY's freeze quantity 1800
    assert r.status_code == 400
    msg = r.json()["message"]
    assert "exceeds the freeze quantity 1800" in msg and "at most 1755 (27 lots of 65)" in msg
    ok(broker.post("optionsorder", {**BASE, "quantity": 27 * 65}))      # 1755 passes
    split = ok(broker.post("optionsorder", {**BASE, "quantity": 28 * 65, "splitsize": 14 * 65}))
    assert [(x["status"], x["quantity"]) for x in split["results"]] == [("success", 910), ("success", 910)]


def test_chain_and_greeks(broker):
    push_index(broker)
    ch = ok(broker.post("optionchain", {"underlying": "NIFTY", "exchange": "NSE_INDEX", "expiry_date": "23NOV26",
                                        "strike_count": 2, "with_greeks": True}))
    assert ch["atm_strike"] == 26000 and [r["strike"] for r in ch["chain"]] == [25900, 25950, 26000, 26050, 26100]
    assert [(r["ce"]["label"], r["pe"]["label"]) for r in ch["chain"]] == \
        [("ITM2", "OTM2"), ("ITM1", "OTM1"), ("ATM", "ATM"), ("OTM1", "ITM1"), ("OTM2", "ITM2")]
    atm = ch["chain"][2]
    assert atm["ce"]["symbol"] == "NIFTY23NOV2626000CE" and 11 < atm["ce"]["implied_volatility"] < 13
    assert ch["forward_price"] == pytest.approx(26000 + atm["ce"]["ltp"] - atm["pe"]["ltp"])

    g = ok(broker.post("optiongreeks", {"symbol": "NIFTY23NOV2626000CE", "exchange": "NFO"}))
    assert g["option_price"] == atm["ce"]["ltp"] and g["expiry_date"] == "23-Nov-2026"
    assert 11 < g["implied_volatility"] < 13 and 0.45 < g["greeks"]["delta"] < 0.6 and g["greeks"]["theta"] < 0
    assert set(g["greeks"]) == {"delta", "gamma", "theta", "vega", "rho"}


def test_errors_in_openalgo_shapes(broker):
    push_index(broker)
    r = broker.post("optionsymbol", {"underlying": "NIFTY", "exchange": "NSE_INDEX", "expiry_date": "23NOV26",
                                     "offset": "ITM51", "option_type": "CE"})
    assert r.status_code == 400
    assert r.json() == {"status": "error", "message": "Validation error",
                        "errors": {"offset": ["Offset must be ATM, ITM1-ITM50, or OTM1-OTM50"]}}
    r = broker.post("optionsymbol", {"underlying": "NIFTY", "exchange": "NSE_INDEX", "expiry_date": "24NOV26",
                                     "offset": "ATM", "option_type": "CE"})
    assert r.status_code == 404 and r.json()["message"].startswith("No strikes found for NIFTY expiring 24NOV26")
    r = broker.post("optiongreeks", {"symbol": "NIFTY23NOV2626000CE", "exchange": "NFO", "apikey": "wrong"})
    assert r.status_code == 401 and r.json() == {"status": "error", "message": "Invalid openalgo apikey"}
    r = broker.post("optiongreeks", {"symbol": "NIFTY23NOV2626000CE"})
    assert r.status_code == 400 and r.json()["message"] == "Validation failed"
    r = broker.post("expiry", {"symbol": "NIFTY", "exchange": "NSE", "instrumenttype": "options"})
    assert r.status_code == 400 and r.json() == {"status": "error", "message": {"exchange": [
        "Must be one of: NFO, BFO, MCX, CDS, NCO, BCD, NCDEX, CRYPTO."]}}

"""Option contracts of the paper broker: symbols, strike selection, the shipped calendar and tables, the desk."""
from __future__ import annotations

import json
from datetime import date

import pytest

from paper.engine import Engine
from paper.errors import ApiError
from paper.market import Quote
from paper.options.contracts import (
    EXPIRIES_FILE,
    Contract,
    OptionsTableError,
    atm_strike,
    expiry_code,
    expiry_label,
    labels,
    load,
    offset_strike,
    option_symbol,
    parse_symbol,
    split_underlying,
)
from paper.options.desk import OptionsDesk
from paper.store import Store
from tests.conftest import ROOT
from tests.paper_fixtures import T

BOOK = load()
DESK = OptionsDesk(BOOK)
NIFTY = BOOK.underlying("NIFTY")


def test_symbol_format_is_openalgos():
    assert option_symbol("NIFTY", "28NOV25", 24000.0, "ce") == "NIFTY28NOV2524000CE"
    assert option_symbol("VEDL", "25APR24", 292.5, "CE") == "VEDL25APR24292.5CE"
    assert expiry_code(date(2026, 11, 23)) == "23NOV26" and expiry_label(date(2026, 11, 23)) == "23-NOV-26"
    c = parse_symbol("NIFTY23NOV2626000PE")
    assert c == Contract("NIFTY", date(2026, 11, 23), 26000.0, "PE") and c.symbol == "NIFTY23NOV2626000PE"
    assert parse_symbol("NIFTY23XYZ2626000PE") is None and parse_symbol("NIFTY23NOV2626000") is None
    assert split_underlying("nifty23nov26fut") == ("NIFTY", "23NOV26") and split_underlying("NIFTY") == ("NIFTY", None)


def test_offsets_walk_the_strike_list_like_openalgo():
    strikes = [float(k) for k in range(23000, 24300, 100)]
    atm = atm_strike(23587.5, strikes)
    assert atm == 23600
    assert offset_strike(atm, "ATM", "CE", strikes) == 23600
    assert offset_strike(atm, "ITM2", "CE", strikes) == 23400      # an in-the-money call is below
    assert offset_strike(atm, "ITM2", "PE", strikes) == 23800      # an in-the-money put is above
    assert offset_strike(atm, "otm1", "ce", strikes) == 23700
    assert offset_strike(atm, "OTM1", "PE", strikes) == 23500
    assert offset_strike(atm, "OTM7", "CE", strikes) is None       # beyond the listed strikes
    assert offset_strike(atm, "ITM51", "CE", strikes) is None
    assert atm_strike(23550, strikes) == 23500                     # a tie goes to the lower strike
    assert labels(23400, atm, strikes) == ("ITM2", "OTM2") and labels(23700, atm, strikes) == ("OTM1", "ITM1")


def test_listed_strikes_are_on_the_grid_around_the_spot():
    ks = BOOK.strikes(NIFTY, 26012.35)
    assert len(ks) == 121 and ks[60] == 26000 and ks[0] == 23000 and ks[-1] == 29000
    assert {k % 50 for k in ks} == {0}
    assert BOOK.strikes(BOOK.underlying("BANKNIFTY"), 59049)[60] == 59000


def test_shipped_calendar_is_trading_days_and_monthly_is_the_last_of_its_month():
    holidays = json.loads((ROOT / "ops" / "nse_holidays.json").read_text())
    closed = {date.fromisoformat(h["date"]) for y in holidays["years"].values() for h in y["holidays"]}
    for name, rows in BOOK.expiries.items():
        assert rows, name
        for d, kind in rows:
            assert d.weekday() < 5 and d not in closed, (name, d)
            later = [x for x, _ in rows if x > d and (x.year, x.month) == (d.year, d.month)]
            assert (kind == "monthly") == (not later), (name, d, kind)
    assert {k for _, k in BOOK.expiries["NIFTY"]} == {"weekly", "monthly"}
    assert {k for _, k in BOOK.expiries["BANKNIFTY"]} == {"monthly"}


def test_expiry_choice_from_the_calendar():
    assert BOOK.listed_expiries("NIFTY", date(2026, 11, 20))[:2] == [date(2026, 11, 23), date(2026, 12, 1)]
    assert BOOK.listed_expiries("NIFTY", date(2026, 11, 23))[0] == date(2026, 11, 23)   # tradable on its day
    assert BOOK.listed_expiries("NIFTY", date(2026, 11, 24))[0] == date(2026, 12, 1)
    assert BOOK.listed_expiries("BANKNIFTY", date(2026, 11, 24))[0] == date(2026, 12, 29)
    assert BOOK.listed_expiries("NIFTY", date(2026, 12, 2), "monthly")[0] == date(2026, 12, 29)
    assert BOOK.contract("NIFTY23NOV2626000CE", "NFO", date(2026, 11, 24)) is None        # expired
    assert BOOK.contract("NIFTY24NOV2626000CE", "NFO", date(2026, 11, 20)) is None        # no such expiry
    assert BOOK.contract("NIFTY23NOV2626010CE", "NFO", date(2026, 11, 20)) is None        # off the grid
    assert BOOK.contract("NIFTY23NOV2626000CE", "NSE", date(2026, 11, 20)) is None
    assert BOOK.contract("NIFTY23NOV2626050CE", "NFO", date(2026, 11, 20)) is not None


def test_table_errors_name_the_line(tmp_path):
    bad = tmp_path / "u.csv"
    text = (ROOT / "paper" / "options" / "underlyings.csv").read_text().replace("NIFTY,NSE_INDEX,NFO,50,65,",
                                                                               "NIFTY,NSE_INDEX,NFO,50,6.5,")
    bad.write_text(text)
    with pytest.raises(OptionsTableError, match=r"u.csv:\d+: lot_size '6.5' must be a whole number"):
        load(bad, EXPIRIES_FILE)


def test_desk_quotes_are_deterministic_with_the_spread():
    index = Quote("NIFTY", "NSE_INDEX", T(10), 26012.35)
    c = Contract("NIFTY", date(2026, 11, 23), 26000.0, "CE")
    a, b = DESK.option_quote(c, NIFTY, index), DESK.option_quote(c, NIFTY, index)
    assert a == b and a.ts == index.ts and a.exchange == "NFO"
    assert a.bid < a.ask and a.ask - a.bid == pytest.approx(NIFTY.spread_ticks * NIFTY.tick_size)
    assert a.bid <= a.ltp <= a.ask and round(a.ltp / 0.05, 6) % 1 == 0
    deep = DESK.option_quote(Contract("NIFTY", date(2026, 11, 23), 29000.0, "CE"), NIFTY, index)
    assert deep.ltp == deep.bid == 0.05                                     # never below one tick


def test_desk_rules_lots_freeze_and_leverage():
    c = Contract("NIFTY", date(2026, 11, 23), 26000.0, "CE")
    DESK.check_quantity(c, NIFTY, 1755)
    with pytest.raises(ApiError, match="multiples of lot size 65"):
        DESK.check_quantity(c, NIFTY, 64)
    with pytest.raises(ApiError, match="exceeds the freeze quantity 1800"):
        DESK.check_quantity(c, NIFTY, 1820)
    assert DESK.leverage("NIFTY23NOV2626000CE", "NFO") == 1.0 and DESK.leverage("SBIN", "NSE") is None
    index = Quote("NIFTY", "NSE_INDEX", T(10), 26012.35)
    held = [("NIFTY23NOV2626000CE", "NFO"), ("NIFTYNXT5029DEC2670000CE", "NFO"), ("SBIN", "NSE")]
    assert [q.symbol for q in DESK.derived(index, held)] == ["NIFTY23NOV2626000CE"]


def test_engine_squares_off_an_option_at_its_model_price(tmp_path):
    e = Engine(Store(tmp_path / "s.sqlite"), derivatives=DESK)
    e.reset("replay", T(9, 30), None)
    e.push([Quote("NIFTY", "NSE_INDEX", T(10), 26012.35)], T(10))
    o = e.place({"symbol": "NIFTY23NOV2626000CE", "exchange": "NFO", "action": "BUY", "quantity": 65,
                 "pricetype": "MARKET", "product": "MIS", "strategy": "t"}, T(10))
    assert o["order_status"] == "complete"
    e.push([Quote("NIFTY", "NSE_INDEX", T(15), 26112.35)], T(15))
    held = e.book.current[("NIFTY23NOV2626000CE", "NFO")]
    assert held.ts == T(15) and held.ltp > o["average_price"]                # repriced from the later index quote
    e.push([Quote("NIFTY", "NSE_INDEX", T(15, 20), 26112.35)], T(15, 20))   # past the 15:15 square-off
    p = e.positions["NFO|NIFTY23NOV2626000CE|MIS"]
    assert p["quantity"] == 0 and e.trades[-1]["action"] == "SELL" and e.trades[-1]["average_price"] == held.bid
    assert p["realized"] == pytest.approx(65 * (held.bid - o["average_price"]))


def test_resting_option_limit_fills_when_the_index_moves(tmp_path):
    e = Engine(Store(tmp_path / "s.sqlite"), derivatives=DESK)
    e.reset("replay", T(9, 30), None)
    e.push([Quote("NIFTY", "NSE_INDEX", T(10), 26012.35)], T(10))
    now = e.book.current[("NIFTY", "NSE_INDEX")]
    put = DESK.option_quote(Contract("NIFTY", date(2026, 11, 23), 26000.0, "PE"), NIFTY, now)
    limit = round(put.ltp + 20, 1)                                       # a sell above the market rests
    o = e.place({"symbol": "NIFTY23NOV2626000PE", "exchange": "NFO", "action": "SELL", "quantity": 65,
                 "pricetype": "LIMIT", "price": limit, "product": "NRML", "strategy": "t"}, T(10))
    assert o["order_status"] == "open"
    with pytest.raises(ApiError, match="multiples of lot size 65"):
        e.modify(o, {"quantity": 100, "price": limit})
    e.push([Quote("NIFTY", "NSE_INDEX", T(10, 1), 26012.35)], T(10, 1))
    assert o["order_status"] == "open"
    e.push([Quote("NIFTY", "NSE_INDEX", T(10, 2), 25950.0)], T(10, 2))  # the index falls, the put rises through it
    assert o["order_status"] == "complete" and o["average_price"] == limit
    assert e.positions["NFO|NIFTY23NOV2626000PE|NRML"]["quantity"] == -65

"""The selectors read what a broker really answers: the paper broker's expiry and optionchain responses, and the
same strike as its optionsymbol resolves for every offset."""
from __future__ import annotations

from datetime import time as dtime

import pytest

from options.chain import ChainDataError, parse_chain
from options.expiry import ExpiryPick, choose_expiry, parse_expiry_list
from options.spec import ExpiryChoice, Filters, Scoring
from options.strikes import NoStrike, StrikePick, select_offset, select_scored
from tests.paper_fixtures import DAY, T, broker, broker_proc  # noqa: F401 - fixtures

SPOT = 26012.35


def ok(r) -> dict:
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success", body
    return body


def test_expiry_then_chain_then_strike_agree_with_the_brokers_own_resolution(broker):
    broker.admin().push_market([["NIFTY", "NSE_INDEX", T(10), SPOT, 0, 0, SPOT + 80, SPOT - 80, SPOT, SPOT - 20, 0]],
                               clock=T(10))
    listed = parse_expiry_list(ok(broker.post("expiry", {"symbol": "NIFTY", "exchange": "NFO",
                                                         "instrumenttype": "options"})))
    exp = choose_expiry(listed, ExpiryChoice.NEAREST_WEEKLY, DAY, dtime(10), dtime(14, 30))
    assert isinstance(exp, ExpiryPick) and exp.code == "23NOV26"
    body = ok(broker.post("optionchain", {"underlying": "NIFTY", "exchange": "NSE_INDEX", "expiry_date": exp.code,
                                          "strike_count": 4, "with_greeks": True}))
    chain = parse_chain(body)
    assert len(chain.rows) == 9 and chain.atm_strike == 26000.0 and chain.underlying_ltp == SPOT
    for offset in ("ATM", "ITM1", "ITM4", "OTM2", "OTM4"):
        for kind in ("CE", "PE"):
            pick = select_offset(chain, kind, offset, Filters())
            assert isinstance(pick, StrikePick)
            resolved = ok(broker.post("optionsymbol", {"underlying": "NIFTY", "exchange": "NSE_INDEX",
                                                       "expiry_date": exp.code, "offset": offset,
                                                       "option_type": kind}))
            assert pick.leg.symbol == resolved["symbol"] and pick.leg.lot_size == resolved["lotsize"]

    # the seed's score runs on the model's greeks; the paper chain reports no volume or OI, so liquidity is 0 for
    # every strike and a minimum OI turns every strike away
    scored = select_scored(chain, "CE", Scoring(), Filters(max_spread_pct=5.0))
    assert isinstance(scored, StrikePick) and scored.parts["liquidity"] == 0.0 and scored.score is not None
    assert abs(scored.leg.strike - chain.atm_strike) <= 3 * 50
    calls = [r.ce for r in chain.rows if r.ce is not None]
    assert len(calls) == 9 and all(c.delta is not None and c.iv is not None for c in calls)
    none = select_scored(chain, "PE", Scoring(), Filters(min_oi=1))
    assert isinstance(none, NoStrike) and len(none.rejected) == 7
    assert all(r.reason == "oi 0 below min_oi 1" for r in none.rejected)


def test_the_chain_parser_reads_the_brokers_error_answer(broker):
    broker.admin().push_market([["NIFTY", "NSE_INDEX", T(10), SPOT, 0, 0, SPOT + 80, SPOT - 80, SPOT, SPOT - 20, 0]],
                               clock=T(10))
    r = broker.post("optionchain", {"underlying": "NIFTY", "exchange": "NSE_INDEX", "expiry_date": "24NOV26"})
    assert r.status_code == 404                     # 24 Nov 2026 is a holiday: nothing expires then
    with pytest.raises(ChainDataError, match="'error' answer: 'No strikes found for NIFTY expiring 24NOV26"):
        parse_chain(r.json())

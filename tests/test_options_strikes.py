"""Strike selection against option chains written by hand: every offset, ATM ties, the seed's score and its
arithmetic, liquidity filters, and the NoStrike answer when nothing passes."""
from __future__ import annotations

from typing import Any

import pytest

from core.enums import PositionSide
from options.chain import ChainDataError, parse_chain
from options.spec import Filters, OptionsSpec, Scoring, Weights
from options.strikes import (
    NoStrike,
    StrikePick,
    atm_strike,
    option_type_for,
    select_offset,
    select_scored,
    select_strike,
)
from paper.options import contracts as paper_contracts

EXP = "24NOV26"


def leg(strike: float, kind: str, ltp: float, bid: float | None = None, ask: float | None = None, volume: int = 0,
        oi: int = 0, iv: float | None = None, delta: float | None = None) -> dict[str, Any]:
    """One leg in /optionchain's shape (label left empty: the selector does not read it)."""
    out: dict[str, Any] = {"symbol": f"NIFTY{EXP}{int(strike)}{kind}", "label": "", "ltp": ltp,
                           "bid": ltp - 0.5 if bid is None else bid, "ask": ltp + 0.5 if ask is None else ask,
                           "bid_qty": 0, "ask_qty": 0, "volume": volume, "oi": oi, "lotsize": 65, "tick_size": 0.05}
    if iv is not None:
        out["implied_volatility"] = iv
    if delta is not None:
        out["delta"] = delta
    return out


def body(rows: list[dict[str, Any]], ltp: float = 24012.5, atm: float | None = None) -> dict[str, Any]:
    b: dict[str, Any] = {"status": "success", "underlying": "NIFTY", "underlying_ltp": ltp, "expiry_date": EXP,
                         "chain": rows}
    if atm is not None:
        b["atm_strike"] = atm
    return b


STRIKES = [23850.0, 23900.0, 23950.0, 24000.0, 24050.0, 24100.0, 24150.0]


def plain_chain(ltp: float = 24012.5, atm: float | None = None) -> dict[str, Any]:
    return body([{"strike": k, "ce": leg(k, "CE", 100.0), "pe": leg(k, "PE", 100.0)} for k in STRIKES], ltp, atm)


# ---------------------------------------------------------------- offsets

# LTP 24012.5: 24000 is 12.5 away, 24050 is 37.5 -> ATM 24000 (list index 3). A call's ITMn is n strikes below,
# its OTMn n above; a put's the other way round.
@pytest.mark.parametrize(("offset", "kind", "strike"), [
    ("ATM", "CE", 24000), ("ITM1", "CE", 23950), ("ITM2", "CE", 23900), ("ITM3", "CE", 23850),
    ("OTM1", "CE", 24050), ("OTM2", "CE", 24100), ("OTM3", "CE", 24150),
    ("ATM", "PE", 24000), ("ITM1", "PE", 24050), ("ITM3", "PE", 24150), ("OTM1", "PE", 23950),
    ("OTM3", "PE", 23850), ("otm2", "PE", 23900),
])
def test_every_offset_walks_the_listed_strikes_from_atm(offset, kind, strike):
    pick = select_offset(parse_chain(plain_chain()), kind, offset, Filters())
    assert isinstance(pick, StrikePick)
    assert (pick.leg.strike, pick.leg.option_type, pick.atm) == (strike, kind, 24000)
    assert pick.leg.symbol == f"NIFTY{EXP}{strike}{kind}"
    assert pick.steps == int(offset[3:] or 0) and pick.score is None


@pytest.mark.parametrize(("offset", "kind"), [("OTM4", "CE"), ("ITM4", "CE"), ("ITM4", "PE"), ("OTM50", "PE")])
def test_an_offset_beyond_the_chain_is_no_strike_not_an_error(offset, kind):
    pick = select_offset(parse_chain(plain_chain()), kind, offset, Filters())
    assert isinstance(pick, NoStrike)
    assert "beyond the chain's strikes 23850-24150 around ATM 24000" in pick.reason and "strike_count" in pick.reason


def test_atm_tie_takes_the_lower_strike_as_the_paper_broker_does():
    # LTP 24025 is 25 from both 24000 and 24050: the lower one is ATM
    assert atm_strike(24025.0, STRIKES) == 24000 == paper_contracts.atm_strike(24025.0, STRIKES)
    assert atm_strike(24025.01, STRIKES) == 24050 == paper_contracts.atm_strike(24025.01, STRIKES)
    chain = parse_chain(plain_chain(ltp=24025.0))
    ce = select_offset(chain, "CE", "OTM1", Filters())
    assert isinstance(ce, StrikePick) and (ce.atm, ce.leg.strike) == (24000, 24050)
    # and every offset agrees with the paper broker's resolution on the same list
    for offset in ("ATM", "ITM1", "ITM3", "OTM2"):
        for kind in ("CE", "PE"):
            pick = select_offset(chain, kind, offset, Filters())
            assert isinstance(pick, StrikePick)
            assert pick.leg.strike == paper_contracts.offset_strike(24000.0, offset, kind, STRIKES)


def test_the_brokers_atm_strike_wins_when_the_chain_carries_it():
    pick = select_offset(parse_chain(plain_chain(ltp=24025.0, atm=24050.0)), "CE", "ATM", Filters())
    assert isinstance(pick, StrikePick) and pick.leg.strike == 24050


def test_an_offset_strike_failing_the_filters_or_not_listed_is_no_strike_with_its_reason():
    rows = [{"strike": k, "ce": leg(k, "CE", 100.0, volume=50), "pe": None} for k in STRIKES]
    chain = parse_chain(body(rows))
    thin = select_offset(chain, "CE", "ATM", Filters(min_volume=100))
    assert isinstance(thin, NoStrike) and thin.option_type == "CE"
    assert [(r.strike, r.reason) for r in thin.rejected] == [(24000, "volume 50 below min_volume 100")]
    missing = select_offset(chain, "PE", "ITM1", Filters())
    assert isinstance(missing, NoStrike) and str(missing).endswith("24050: no PE contract listed")


def test_long_view_buys_calls_short_view_buys_puts():
    assert option_type_for(PositionSide.LONG) == "CE" and option_type_for(PositionSide.SHORT) == "PE"
    chain = parse_chain(plain_chain())
    short = select_strike(chain, PositionSide.SHORT, OptionsSpec(offset="ITM1"))
    assert isinstance(short, StrikePick) and short.leg.symbol == f"NIFTY{EXP}24050PE"


# ---------------------------------------------------------------- the score

# CE legs around ATM 24000 (LTP 24012.5), each with a round spread: spread% = (ask - bid) / mid x 100
#  strike   ltp   bid    ask    spread%  volume  oi     iv    delta
#  23900   160   159.2  160.8   1.0     1000    5000   14    0.70
#  23950   125   124.5  125.5   0.8     3000    8000   13    0.60
#  24000   100    99.5  100.5   1.0     4000   10000   12    0.50
#  24050    80    79.2   80.8   2.0     2000    6000   12.5  0.40
#  24100    50    49.0   51.0   4.0     1000    4000   13    0.30
SCORED = [(23900, 160, 159.2, 160.8, 1000, 5000, 14.0, 0.70), (23950, 125, 124.5, 125.5, 3000, 8000, 13.0, 0.60),
          (24000, 100, 99.5, 100.5, 4000, 10000, 12.0, 0.50), (24050, 80, 79.2, 80.8, 2000, 6000, 12.5, 0.40),
          (24100, 50, 49.0, 51.0, 1000, 4000, 13.0, 0.30)]


def scored_chain(drop: tuple[float, ...] = (), greeks: bool = True) -> dict[str, Any]:
    rows = []
    for k, ltp, bid, ask, vol, oi, iv, delta in SCORED:
        ce = None if k in drop else leg(k, "CE", ltp, bid, ask, vol, oi, iv if greeks else None,
                                        delta if greeks else None)
        rows.append({"strike": float(k), "ce": ce, "pe": leg(k, "PE", 100.0)})
    return body(rows)


def test_the_seeds_score_by_hand_with_the_default_weights():
    # max_strikes_from_atm 2: candidates 23900..24100, steps 2 1 0 1 2; distance = 1 - steps/3
    # parts         distance  delta  iv_rank          liquidity                     spread
    #  23900         1/3      0.6    (14-14)/2 = 0    .5x1000/4000+.5x5000/10000     (4-1)/3.2 = .9375
    #                                                  = .375
    #  23950         2/3      0.8    (14-13)/2 = .5   .375+.4 = .775                 (4-.8)/3.2 = 1
    #  24000         1        1.0    (14-12)/2 = 1    .5+.5 = 1                      .9375
    #  24050         2/3      0.8    .75              .25+.3 = .55                   (4-2)/3.2 = .625
    #  24100         1/3      0.6    .5               .125+.2 = .325                 0
    # weights .30 .20 .15 .25 .10 (sum 1):
    #  24000 = .3 + .2 + .15 + .25 + .09375                      = .99375
    #  23950 = .2 + .16 + .075 + .19375 + .1                     = .72875
    #  24050 = .2 + .16 + .1125 + .1375 + .0625                  = .6725
    pick = select_scored(parse_chain(scored_chain()), "CE", Scoring(Weights(), 2), Filters())
    assert isinstance(pick, StrikePick)
    assert pick.leg.strike == 24000 and pick.steps == 0 and pick.rejected == ()
    assert pick.score == pytest.approx(0.99375)
    assert dict(pick.parts) == pytest.approx({"distance": 1.0, "delta": 1.0, "iv_rank": 1.0, "liquidity": 1.0,
                                              "spread": 0.9375})
    assert "best score 0.9938 of 5 CE strike(s) within 2 of ATM 24000" in pick.why


def test_weights_decide_and_only_their_ratio_matters():
    chain = parse_chain(scored_chain())
    # spread alone: 23950's 0.8% is the narrowest -> part 1, the rest below
    by_spread = select_scored(chain, "CE", Scoring(Weights(0, 0, 0, 0, 1), 2), Filters())
    assert isinstance(by_spread, StrikePick) and by_spread.leg.strike == 23950 and by_spread.score == 1.0
    # weights 3, 2, 1.5, 2.5, 1 are the defaults x 10: the same scores
    x10 = select_scored(chain, "CE", Scoring(Weights(3, 2, 1.5, 2.5, 1), 2), Filters())
    assert isinstance(x10, StrikePick) and x10.score == pytest.approx(0.99375)


def test_filters_reject_candidates_and_the_relative_parts_rank_the_rest():
    # max_spread_pct 1: 24050 (2%) and 24100 (4%) are turned away; 23900 and 24000 sit exactly at 1% and pass
    # among 23900, 23950, 24000: spread (1-s)/0.2 -> 0, 1, 0; iv_rank (14-iv)/2 -> 0, .5, 1; liquidity unchanged
    #  24000 = .3 + .2 + .15 + .25 + 0       = .9
    #  23950 = .2 + .16 + .075 + .19375 + .1 = .72875
    pick = select_scored(parse_chain(scored_chain()), "CE", Scoring(Weights(), 2), Filters(max_spread_pct=1.0))
    assert isinstance(pick, StrikePick) and pick.leg.strike == 24000
    assert pick.score == pytest.approx(0.9) and pick.parts["spread"] == 0.0
    assert [(r.strike, r.reason) for r in pick.rejected] == [
        (24050, "spread 2.00% above max_spread_pct 1"), (24100, "spread 4.00% above max_spread_pct 1")]


def test_only_strikes_within_max_strikes_from_atm_are_candidates():
    # N = 1: 23950, 24000, 24050; distance 1 - steps/2 -> .5, 1, .5. With liquidity alone 24000 (1.0) wins; with
    # ATM not listed, 23950 (.775) beats 24050 (.55) and 23900 (.375, two strikes away) is never looked at
    chain = parse_chain(scored_chain(drop=(24000,)))
    pick = select_scored(chain, "CE", Scoring(Weights(0, 0, 0, 1, 0), 1), Filters())
    assert isinstance(pick, StrikePick) and pick.leg.strike == 23950
    # liquidity among the two: top volume 3000, top oi 8000 -> 23950 = 1, 24050 = .5x2000/3000 + .5x6000/8000
    assert pick.score == 1.0
    assert [(r.strike, r.reason) for r in pick.rejected] == [(24000, "no CE contract listed")]


def test_equal_scores_go_to_the_strike_nearer_atm_then_to_the_lower_one():
    # distance alone with ATM not listed: 23950 and 24050 both score 1 - 1/3 = 2/3 at one step -> the lower
    chain = parse_chain(scored_chain(drop=(24000,)))
    pick = select_scored(chain, "CE", Scoring(Weights(1, 0, 0, 0, 0), 2), Filters())
    assert isinstance(pick, StrikePick) and pick.leg.strike == 23950 and pick.score == pytest.approx(2 / 3)
    # liquidity alone where ATM and OTM1 are equally liquid (both 1.0): ATM, zero steps away, wins
    rows = [{"strike": k, "ce": leg(k, "CE", 100.0, volume=v, oi=v), "pe": None}
            for k, v in ((23950.0, 50), (24000.0, 100), (24050.0, 100))]
    tie = select_scored(parse_chain(body(rows)), "CE", Scoring(Weights(0, 0, 0, 1, 0), 1), Filters())
    assert isinstance(tie, StrikePick) and tie.leg.strike == 24000 and tie.steps == 0


def test_scored_puts_use_the_size_of_delta():
    # PE deltas are negative: |-0.5| scores 1 at 24000; -0.35 at 24050 would score .7
    rows = [{"strike": k, "ce": None, "pe": leg(k, "PE", 90.0, iv=12.0, delta=d)}
            for k, d in ((23950.0, -0.35), (24000.0, -0.5), (24050.0, -0.65))]
    pick = select_strike(parse_chain(body(rows)), PositionSide.SHORT,
                         OptionsSpec(offset=None, scoring=Scoring(Weights(0, 1, 0, 0, 0), 1)))
    assert isinstance(pick, StrikePick) and pick.leg.strike == 24000 and pick.parts["delta"] == pytest.approx(1.0)


def test_no_strike_passing_is_a_value_with_every_strikes_reasons():
    chain = parse_chain(scored_chain())
    none = select_scored(chain, "CE", Scoring(Weights(), 2), Filters(min_volume=5000, min_oi=9000))
    assert isinstance(none, NoStrike)
    assert none.reason == "no CE strike within 2 of ATM 24000 passes the filters"
    assert [(r.strike, r.reason) for r in none.rejected] == [
        (23900, "volume 1000 below min_volume 5000; oi 5000 below min_oi 9000"),
        (23950, "volume 3000 below min_volume 5000; oi 8000 below min_oi 9000"),
        (24000, "volume 4000 below min_volume 5000"),
        (24050, "volume 2000 below min_volume 5000; oi 6000 below min_oi 9000"),
        (24100, "volume 1000 below min_volume 5000; oi 4000 below min_oi 9000")]
    assert "24000: volume 4000 below min_volume 5000" in str(none)


def test_a_chain_without_greeks_cannot_be_scored_on_delta_or_iv():
    none = select_scored(parse_chain(scored_chain(greeks=False)), "CE", Scoring(Weights(), 1), Filters())
    assert isinstance(none, NoStrike) and len(none.rejected) == 3
    assert none.rejected[0].reason == ("no delta in the chain (ask for it with with_greeks); "
                                       "no implied volatility in the chain (ask for it with with_greeks)")
    # the same chain scores on what it has
    pick = select_scored(parse_chain(scored_chain(greeks=False)), "CE", Scoring(Weights(1, 0, 0, 1, 1), 1),
                         Filters())
    assert isinstance(pick, StrikePick) and pick.leg.strike == 24000


def test_quotes_without_a_price_or_a_two_sided_book_are_turned_away():
    rows = [{"strike": 23950.0, "ce": leg(23950, "CE", 0.0, 0.0, 0.0), "pe": None},
            {"strike": 24000.0, "ce": leg(24000, "CE", 100.0, 0.0, 101.0), "pe": None},
            {"strike": 24050.0, "ce": leg(24050, "CE", 80.0), "pe": None}]
    pick = select_scored(parse_chain(body(rows)), "CE", Scoring(Weights(1, 0, 0, 0, 1), 1), Filters())
    assert isinstance(pick, StrikePick) and pick.leg.strike == 24050
    assert [(r.strike, r.reason) for r in pick.rejected] == [
        (23950, "no price (ltp 0); no two-sided quote (bid 0, ask 0)"),
        (24000, "no two-sided quote (bid 0, ask 101)")]


# ---------------------------------------------------------------- the response shape

def test_chain_parsing_sorts_rows_and_refuses_what_it_cannot_read():
    rows = [{"strike": 24050.0, "ce": leg(24050, "CE", 80.0), "pe": None},
            {"strike": 24000.0, "ce": leg(24000, "CE", 100.0), "pe": leg(24000, "PE", 90.0)}]
    chain = parse_chain(body(rows, atm=24000.0))
    assert chain.strikes == [24000.0, 24050.0] and chain.expiry_code == EXP and chain.atm_strike == 24000.0
    assert chain.rows[1].pe is None and chain.rows[0].ce is not None and chain.rows[0].ce.lot_size == 65
    with pytest.raises(ChainDataError, match="'error' answer: 'No strikes found'"):
        parse_chain({"status": "error", "message": "No strikes found"})
    with pytest.raises(ChainDataError, match=r"chain\[0\].ce.ltp: 'x' is not a number"):
        parse_chain(body([{"strike": 1.0, "ce": {**leg(1, "CE", 1.0), "ltp": "x"}, "pe": None}]))
    with pytest.raises(ChainDataError, match="a strike appears twice"):
        parse_chain(body([rows[0], rows[0]]))
    with pytest.raises(ChainDataError, match="not a non-empty list"):
        parse_chain(body([]))


def test_scoring_with_no_weight_is_a_programming_error():
    with pytest.raises(ValueError, match="at least one above 0"):
        select_scored(parse_chain(scored_chain()), "CE", Scoring(Weights(0, 0, 0, 0, 0), 2), Filters())

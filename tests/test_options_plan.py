"""One option order from the choices: premium at the ask, size, freeze children, exits, and the reason line."""
from __future__ import annotations

from datetime import date

from options.chain import Leg
from options.expiry import ExpiryPick
from options.plan import NoTrade, OptionOrderPlan, plan_order
from options.spec import OptionsSpec, PremiumLevel
from options.strikes import StrikePick

EXPIRY = ExpiryPick(date(2026, 11, 23), False, "nearest listed expiry")


def pick(bid: float = 99.5, ask: float = 100.0, ltp: float = 99.75, lot: int | None = 65) -> StrikePick:
    leg = Leg("NIFTY23NOV2626000CE", "CE", 26000.0, "ATM", ltp, bid, ask, 0, 0, lot, 0.05)
    return StrikePick(leg, 26000.0, 0, "ATM CE (ATM 26000)")


def test_a_premium_risk_plan_sizes_at_the_ask_and_splits_at_the_freeze_quantity():
    # ask 100 x 65 = 6,500 a lot; risk 200,000 -> 30 lots (195,000) = 1,950 contracts -> 1755 + 195 (freeze 1800)
    spec = OptionsSpec(lots=None, stop=PremiumLevel(30, True), target=PremiumLevel(40, False))
    plan = plan_order(pick(), EXPIRY, spec, risk=200_000, funds=None, freeze_qty=1800)
    assert isinstance(plan, OptionOrderPlan)
    assert (plan.symbol, plan.exchange, plan.premium, plan.lots, plan.quantity, plan.children) == \
        ("NIFTY23NOV2626000CE", "NFO", 100.0, 30, 1950, (1755, 195))
    assert (plan.stop, plan.target) == (70.0, 140.0)
    assert plan.why == ("expiry 2026-11-23 (nearest listed expiry); strike ATM CE (ATM 26000); premium risk: risk "
                        "200,000.00 allows 30: 30 lot(s) of 65 at 100 = 195,000.00; 2 order(s); stop 70, target 140")


def test_without_a_two_sided_quote_the_ltp_is_the_premium():
    plan = plan_order(pick(bid=0.0, ask=0.0), EXPIRY, OptionsSpec(lots=2), risk=0, funds=None, freeze_qty=1800)
    assert isinstance(plan, OptionOrderPlan) and plan.premium == 99.75 and plan.children == (130,)
    assert plan.stop is None and plan.target is None


def test_what_cannot_be_ordered_is_no_trade_with_the_reason():
    none = plan_order(pick(), EXPIRY, OptionsSpec(lots=None), risk=6_499, funds=None, freeze_qty=1800)
    assert isinstance(none, NoTrade) and none.reason == (
        "NIFTY23NOV2626000CE: one lot of 65 at premium 100 costs 6,500.00, more than the risk per trade 6,499.00")
    broke = plan_order(pick(), EXPIRY, OptionsSpec(lots=1), risk=0, funds=6_000, freeze_qty=1800)
    assert isinstance(broke, NoTrade) and "more than the 6,000.00 available" in broke.reason
    no_lot = plan_order(pick(lot=None), EXPIRY, OptionsSpec(), risk=0, funds=None, freeze_qty=1800)
    assert isinstance(no_lot, NoTrade) and "no lot size or tick size" in no_lot.reason
    frozen = plan_order(pick(), EXPIRY, OptionsSpec(), risk=0, funds=None, freeze_qty=60)
    assert isinstance(frozen, NoTrade) and frozen.reason.endswith("freeze quantity 60 is below one lot of 65: no "
                                                                  "order can be placed")

"""Option sizing: whole lots, premium-risk lots (premium paid in full), freeze-quantity splits, premium exits."""
from __future__ import annotations

import pytest

from options.exits import exit_levels
from options.sizing import NoSize, Size, fixed_lots, freeze_split, premium_risk_lots, size_order
from options.spec import OptionsSpec, PremiumLevel
from paper.options.contracts import load


def size(x: Size | NoSize) -> Size:
    assert isinstance(x, Size), x
    return x


def test_freeze_splits_are_whole_lots_at_most_the_freeze_quantity_full_ones_first():
    # NIFTY: lot 65, freeze 1800 -> the largest order is 27 lots = 1755
    assert freeze_split(65 * 60, 65, 1800) == [1755, 1755, 390]            # 27 + 27 + 6 lots
    assert freeze_split(1755, 65, 1800) == [1755]
    assert freeze_split(1820, 65, 1800) == [1755, 65]
    assert freeze_split(65, 65, 1800) == [65] and freeze_split(0, 65, 1800) == []
    # BANKNIFTY: lot 30, freeze 600 -> exactly 20 lots per order
    assert freeze_split(1200, 30, 600) == [600, 600]
    with pytest.raises(ValueError, match="quantity 100 is not a whole number of lots of 65"):
        freeze_split(100, 65, 1800)
    with pytest.raises(ValueError, match="freeze quantity 50 is below one lot of 65"):
        freeze_split(65, 65, 50)


def test_every_child_order_passes_the_paper_brokers_lot_and_freeze_rule():
    for u in load().underlyings.values():
        for lots in (1, 7, 40, 113):
            parts = freeze_split(lots * u.lot_size, u.lot_size, u.freeze_qty)
            assert sum(parts) == lots * u.lot_size
            assert all(p % u.lot_size == 0 and 0 < p <= u.freeze_qty for p in parts)


def test_premium_risk_buys_the_most_lots_whose_premium_fits_the_risk():
    # premium 100 x lot 65 = 6,500 a lot
    assert size(premium_risk_lots(100.0, 65, 20_000)).lots == 3           # 19,500 <= 20,000 < 26,000
    exact = size(premium_risk_lots(100.0, 65, 19_500))                     # exactly three lots' premium fits
    assert (exact.lots, exact.quantity, exact.premium) == (3, 195, 19_500.0)
    assert size(premium_risk_lots(100.0, 65, 19_499.99)).lots == 2
    # 153.85 x 65 = 10,000.25: a budget of 10,000 buys nothing, and float noise does not round it in
    none = premium_risk_lots(153.85, 65, 10_000)
    assert isinstance(none, NoSize)
    assert none.reason == "one lot of 65 at premium 153.85 costs 10,000.25, more than the risk per trade 10,000.00"
    assert size(premium_risk_lots(153.85, 65, 10_000.25)).lots == 1


def test_premium_risk_is_capped_by_max_lots_and_by_the_cash_that_pays_the_premium():
    capped = size(premium_risk_lots(100.0, 65, 100_000, max_lots=4))
    assert capped.lots == 4 and capped.why == "premium risk: risk 100,000.00 allows 15; max_lots 4"
    cash = size(premium_risk_lots(100.0, 65, 100_000, funds=13_000))     # the premium in full: 2 lots
    assert cash.lots == 2 and cash.why == "premium risk: risk 100,000.00 allows 15; funds 13,000.00 allow 2"
    broke = premium_risk_lots(100.0, 65, 100_000, funds=6_499.99)
    assert isinstance(broke, NoSize) and "more than the 6,499.99 available" in broke.reason


def test_fixed_lots_are_all_or_nothing():
    two = size(fixed_lots(2, 100.0, 65, funds=13_000))
    assert (two.lots, two.quantity, two.premium) == (2, 130, 13_000.0)
    short = fixed_lots(2, 100.0, 65, funds=12_999.95)
    assert isinstance(short, NoSize)
    assert short.reason == ("2 lot(s) of 65 at premium 100 cost 13,000.00, more than the 12,999.95 available (a "
                            "bought option's premium is paid in full)")
    with pytest.raises(ValueError, match="premium 0"):
        fixed_lots(1, 0.0, 65)


def test_size_order_follows_the_spec():
    assert size(size_order(OptionsSpec(lots=3), 100.0, 65, risk=1.0)).quantity == 195    # risk not used
    assert size(size_order(OptionsSpec(lots=None, max_lots=2), 100.0, 65, risk=50_000)).lots == 2
    assert size(size_order(OptionsSpec(lots=None), 100.0, 65, risk=50_000)).lots == 7


def test_stop_and_target_on_premium_round_up_to_the_tick():
    pct30, pct50, rs40 = PremiumLevel(30, True), PremiumLevel(50, True), PremiumLevel(40, False)
    lv = exit_levels(100.0, pct30, rs40, 0.05)
    assert (lv.stop, lv.target) == (70.0, 140.0)
    # 101.3 x 0.7 = 70.91 -> 70.95 (loss 30.35 <= 30.39); 101.3 x 1.5 = 151.95 stays
    lv = exit_levels(101.3, pct30, pct50, 0.05)
    assert (lv.stop, lv.target) == (70.95, 151.95)
    # a stop at or below zero cannot trigger: none (the whole premium is the risk)
    assert exit_levels(30.0, rs40, None, 0.05) == exit_levels(30.0, None, None, 0.05)
    assert exit_levels(30.0, rs40, None, 0.05).stop is None

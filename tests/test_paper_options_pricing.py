"""The paper broker's option model against textbook numbers (Hull, Options, Futures and Other Derivatives)."""
from __future__ import annotations

import math

import pytest

from paper.options.pricing import (
    Smile,
    black76_greeks,
    black76_iv,
    black76_price,
    bs_greeks,
    bs_price,
)


def test_hull_black_scholes_example():
    # Hull, example 15.6: S=42, K=40, r=10%, sigma=20%, T=0.5 -> call 4.76, put 0.81
    assert bs_price(42, 40, 0.5, 0.10, 0.20, True) == pytest.approx(4.7594, abs=1e-4)
    assert bs_price(42, 40, 0.5, 0.10, 0.20, False) == pytest.approx(0.8086, abs=1e-4)


@pytest.mark.parametrize(("s", "k", "t", "r", "v"), [(42, 40, 0.5, 0.10, 0.20), (26012.35, 25500, 3 / 365, 0.065, 0.14),
                                                     (100, 130, 2.0, 0.0, 0.45), (100, 70, 0.01, 0.03, 0.9)])
def test_put_call_parity(s, k, t, r, v):
    c, p = bs_price(s, k, t, r, v, True), bs_price(s, k, t, r, v, False)
    assert c - p == pytest.approx(s - k * math.exp(-r * t), abs=1e-9 * s)
    f = s * math.exp(r * t)   # Black-76 on the forward is the same model
    assert black76_price(f, k, t, r, v, True) == pytest.approx(c, rel=1e-12)
    assert black76_price(f, k, t, r, v, False) == pytest.approx(p, rel=1e-12, abs=1e-12)


def test_hull_greeks_example():
    # Hull, examples 19.1-19.6: S=49, K=50, r=5%, sigma=20%, T=20 weeks (0.3846): delta 0.522, gamma 0.066,
    # theta -4.31 a year, vega 12.1 per unit of vol, rho 8.91 per unit of rate
    g = bs_greeks(49, 50, 0.3846, 0.05, 0.20, True)
    assert g.delta == pytest.approx(0.522, abs=5e-4)
    assert g.gamma == pytest.approx(0.066, abs=5e-4)
    assert g.theta * 365 == pytest.approx(-4.31, abs=5e-3)     # reported per day
    assert g.vega * 100 == pytest.approx(12.1, abs=0.05)       # reported per 1 point of vol
    assert g.rho * 100 == pytest.approx(8.91, abs=5e-3)        # reported per 1 point of rate
    put = bs_greeks(49, 50, 0.3846, 0.05, 0.20, False)
    assert put.delta == pytest.approx(g.delta - 1)
    assert put.gamma == pytest.approx(g.gamma) and put.vega == pytest.approx(g.vega)


def test_black76_greeks_match_black_scholes_at_zero_rate():
    # at r = 0 the forward is the spot and both models agree on every greek but rho (Black-76's is at a fixed forward)
    for call in (True, False):
        a, b = bs_greeks(26000, 26100, 5 / 365, 0.0, 0.12, call), black76_greeks(26000, 26100, 5 / 365, 0.0, 0.12, call)
        assert (a.delta, a.gamma, a.theta, a.vega) == pytest.approx((b.delta, b.gamma, b.theta, b.vega), rel=1e-12)
    assert black76_greeks(26000, 26100, 5 / 365, 0.07, 0.12, True).rho == pytest.approx(
        -5 / 365 * black76_price(26000, 26100, 5 / 365, 0.07, 0.12, True) / 100)


@pytest.mark.parametrize("call", [True, False])
def test_implied_volatility_round_trip(call):
    for k in (24000, 25500, 26000, 27000):
        price = black76_price(26000, k, 10 / 365, 0.0, 0.17, call)
        if price > 0.01:
            assert black76_iv(price, 26000, k, 10 / 365, 0.0, call) == pytest.approx(0.17, abs=1e-6)
    assert black76_iv(0.5, 26000, 25000, 10 / 365, 0.0, True) is None    # below intrinsic: no volatility fits


def test_expired_option_is_worth_its_intrinsic_value():
    assert bs_price(26050, 26000, 0.0, 0.05, 0.2, True) == 50
    assert bs_price(26050, 26000, -1.0, 0.05, 0.2, False) == 0


def test_smile_skew_and_curvature():
    s = Smile(0.12, -0.8, 2.0)
    assert s.vol(26000, 26000) == 0.12
    m = math.log(25000 / 26000)
    assert s.vol(26000, 25000) == pytest.approx(0.12 - 0.8 * m + 2.0 * m * m)
    assert s.vol(26000, 25000) > 0.12 > s.vol(26000, 27000)            # a negative skew: puts dearer than calls
    assert s.vol(26000, 26000 * math.exp(0.5)) > 0.12                   # curvature lifts the far wing again
    assert Smile(0.05, 5.0).vol(100, 50) == 0.01                        # never below the floor

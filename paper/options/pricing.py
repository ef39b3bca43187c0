"""Black-Scholes and Black-76 prices, greeks and implied volatility: the paper broker's option model.

Prices: Black-Scholes on the index spot (European, no dividends), which is how the paper broker quotes an
option from the index quote it was pushed. Greeks as OpenAlgo's optiongreeks reports them: Black-76 on a
forward, theta per calendar day (365), vega and rho per 1 percentage point, IV in percent. Pure functions of
their inputs (no clock, no randomness), so a replayed day prices identically.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

DAYS_PER_YEAR = 365.0
_SQRT_2PI = math.sqrt(2.0 * math.pi)


def norm_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def norm_pdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / _SQRT_2PI


@dataclass(frozen=True)
class Greeks:
    """Trader units: theta per day, vega and rho per 1 percentage point."""

    delta: float
    gamma: float
    theta: float
    vega: float
    rho: float


def _d1_d2(f_or_s: float, strike: float, t: float, carry: float, vol: float) -> tuple[float, float]:
    sd = vol * math.sqrt(t)
    d1 = (math.log(f_or_s / strike) + (carry + 0.5 * vol * vol) * t) / sd
    return d1, d1 - sd


def intrinsic(spot: float, strike: float, is_call: bool) -> float:
    return max(spot - strike, 0.0) if is_call else max(strike - spot, 0.0)


def bs_price(spot: float, strike: float, t: float, rate: float, vol: float, is_call: bool) -> float:
    """Black-Scholes price; at or after expiry (t <= 0) or with no volatility, the discounted intrinsic."""
    if t <= 0 or vol <= 0:
        return intrinsic(spot, strike * math.exp(-rate * max(t, 0.0)), is_call)
    d1, d2 = _d1_d2(spot, strike, t, rate, vol)
    disc = math.exp(-rate * t)
    if is_call:
        return spot * norm_cdf(d1) - strike * disc * norm_cdf(d2)
    return strike * disc * norm_cdf(-d2) - spot * norm_cdf(-d1)


def bs_greeks(spot: float, strike: float, t: float, rate: float, vol: float, is_call: bool) -> Greeks:
    """Black-Scholes greeks (t > 0, vol > 0)."""
    d1, d2 = _d1_d2(spot, strike, t, rate, vol)
    disc = math.exp(-rate * t)
    pdf = norm_pdf(d1)
    gamma = pdf / (spot * vol * math.sqrt(t))
    vega = spot * pdf * math.sqrt(t)
    decay = -spot * pdf * vol / (2.0 * math.sqrt(t))
    if is_call:
        delta = norm_cdf(d1)
        theta = decay - rate * strike * disc * norm_cdf(d2)
        rho = strike * t * disc * norm_cdf(d2)
    else:
        delta = norm_cdf(d1) - 1.0
        theta = decay + rate * strike * disc * norm_cdf(-d2)
        rho = -strike * t * disc * norm_cdf(-d2)
    return Greeks(delta, gamma, theta / DAYS_PER_YEAR, vega / 100.0, rho / 100.0)


def black76_price(forward: float, strike: float, t: float, rate: float, vol: float, is_call: bool) -> float:
    if t <= 0 or vol <= 0:
        return intrinsic(forward, strike, is_call) * math.exp(-rate * max(t, 0.0))
    d1, d2 = _d1_d2(forward, strike, t, 0.0, vol)
    disc = math.exp(-rate * t)
    if is_call:
        return disc * (forward * norm_cdf(d1) - strike * norm_cdf(d2))
    return disc * (strike * norm_cdf(-d2) - forward * norm_cdf(-d1))


def black76_greeks(forward: float, strike: float, t: float, rate: float, vol: float, is_call: bool) -> Greeks:
    """Black-76 greeks (t > 0, vol > 0); rho is the sensitivity to the discount rate at a fixed forward."""
    d1, _ = _d1_d2(forward, strike, t, 0.0, vol)
    disc = math.exp(-rate * t)
    pdf = norm_pdf(d1)
    price = black76_price(forward, strike, t, rate, vol, is_call)
    delta = disc * (norm_cdf(d1) if is_call else norm_cdf(d1) - 1.0)
    gamma = disc * pdf / (forward * vol * math.sqrt(t))
    vega = forward * disc * pdf * math.sqrt(t)
    theta = -forward * disc * pdf * vol / (2.0 * math.sqrt(t)) + rate * price
    rho = -t * price
    return Greeks(delta, gamma, theta / DAYS_PER_YEAR, vega / 100.0, rho / 100.0)


def black76_iv(price: float, forward: float, strike: float, t: float, rate: float, is_call: bool) -> float | None:
    """The volatility whose Black-76 price is `price`, by bisection (monotone in vol, always converges when a
    solution exists); None when the price is at or below the discounted intrinsic or above the forward."""
    if t <= 0 or price <= 0:
        return None
    disc = math.exp(-rate * t)
    floor = intrinsic(forward, strike, is_call) * disc
    cap = (forward if is_call else strike) * disc
    if price <= floor or price >= cap:
        return None
    lo, hi = 1e-6, 5.0
    while black76_price(forward, strike, t, rate, hi, is_call) < price:
        hi *= 2.0
        if hi > 100.0:
            return None
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if black76_price(forward, strike, t, rate, mid, is_call) < price:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-10:
            break
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class Smile:
    """Implied volatility by log-moneyness m = ln(K/S): atm + skew*m + curvature*m^2, never below `floor`.

    A negative skew makes puts (low strikes) dearer than calls, as on NSE index options."""

    atm: float
    skew: float = 0.0
    curvature: float = 0.0
    floor: float = 0.01

    def vol(self, spot: float, strike: float) -> float:
        m = math.log(strike / spot)
        return max(self.floor, self.atm + self.skew * m + self.curvature * m * m)

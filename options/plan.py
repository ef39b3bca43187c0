"""One option order from the choices made: the contract, the premium it will cost, its size, child orders at the
freeze quantity, stop and target, and one line saying why; or NoTrade saying why not.

This is the record signals_only and paper modes keep of the contract that would have been traded. The premium is
the ask when the quote is two-sided (a market buy fills there), else the LTP. The lot and tick sizes come from the
chain's leg, the freeze quantity from /api/v1/optionsymbol (the chain does not carry it).
"""
from __future__ import annotations

from dataclasses import dataclass

from options.exits import exit_levels
from options.expiry import ExpiryPick
from options.sizing import NoSize, freeze_split, size_order
from options.spec import OptionsSpec
from options.strikes import StrikePick


@dataclass(frozen=True)
class OptionOrderPlan:
    symbol: str
    exchange: str
    option_type: str
    strike: float
    expiry: ExpiryPick
    premium: float                  # per contract, the price sizing assumed
    lots: int
    quantity: int
    children: tuple[int, ...]       # child order quantities, each within the freeze quantity
    stop: float | None
    target: float | None
    why: str


@dataclass(frozen=True)
class NoTrade:
    reason: str


def plan_order(pick: StrikePick, expiry: ExpiryPick, spec: OptionsSpec, risk: float, funds: float | None,
               freeze_qty: int, exchange: str = "NFO") -> OptionOrderPlan | NoTrade:
    """The buy order for `pick`: sized by `spec` against `risk` (rupees per trade) and `funds`, split at
    `freeze_qty`, with the spec's stop and target on the premium."""
    leg = pick.leg
    if leg.lot_size is None or leg.lot_size < 1 or leg.tick_size is None or not leg.tick_size > 0:
        return NoTrade(f"{leg.symbol}: the chain gives no lot size or tick size (lotsize {leg.lot_size}, "
                       f"tick_size {leg.tick_size})")
    premium = leg.ask if leg.two_sided else leg.ltp
    if not premium > 0:
        return NoTrade(f"{leg.symbol}: no premium to size by (ltp {leg.ltp:g}, ask {leg.ask:g})")
    size = size_order(spec, premium, leg.lot_size, risk, funds)
    if isinstance(size, NoSize):
        return NoTrade(f"{leg.symbol}: {size.reason}")
    try:
        children = freeze_split(size.quantity, leg.lot_size, freeze_qty)
    except ValueError as e:
        return NoTrade(f"{leg.symbol}: {e}")
    levels = exit_levels(premium, spec.stop, spec.target, leg.tick_size)
    exits = (f"stop {'none' if levels.stop is None else f'{levels.stop:g}'}, "
             f"target {'none' if levels.target is None else f'{levels.target:g}'}")
    why = (f"expiry {expiry.expiry.isoformat()} ({expiry.why}); strike {pick.why}; {size.why}: {size.lots} lot(s) "
           f"of {leg.lot_size} at {premium:g} = {size.premium:,.2f}; {len(children)} order(s); {exits}")
    return OptionOrderPlan(leg.symbol, exchange, leg.option_type, leg.strike, expiry, premium, size.lots,
                           size.quantity, tuple(children), levels.stop, levels.target, why)

"""How many option contracts: whole lots, premium-risk lots, and child orders split at the freeze quantity.

Options are bought, and a bought option's premium is paid in full (no leverage, as OpenAlgo's sandbox and the
paper broker charge it), so the premium is both the cash an entry needs and the most it can lose. Premium-risk
sizing therefore buys the most whole lots whose premium (premium x lots x lot size) stays within the risk per
trade, and never more than the cash available pays for. Money is compared in whole paise, so a lot that costs
exactly the risk budget fits and float noise never adds or drops one.
"""
from __future__ import annotations

from dataclasses import dataclass

from options.spec import OptionsSpec


@dataclass(frozen=True)
class Size:
    lots: int
    quantity: int            # lots x lot size: the contracts to buy
    premium: float           # rupees paid for them at the quoted premium
    why: str


@dataclass(frozen=True)
class NoSize:
    """Not even one lot can be bought: nothing is ordered, and `reason` says why."""

    reason: str


def _paise(rupees: float) -> int:
    return round(rupees * 100)


def _check(premium: float, lot_size: int) -> None:
    if lot_size < 1:
        raise ValueError(f"lot size {lot_size} must be 1 or more")
    if not premium > 0:
        raise ValueError(f"premium {premium} must be above 0")


def _affordable(lots: int, premium: float, lot_size: int, funds: float | None) -> int:
    if funds is None:
        return lots
    return min(lots, max(0, _paise(funds)) // (_paise(premium) * lot_size))


def fixed_lots(lots: int, premium: float, lot_size: int, funds: float | None = None) -> Size | NoSize:
    """`lots` lots, when `funds` (None: unchecked) pays their premium in full; otherwise NoSize, never fewer."""
    _check(premium, lot_size)
    cost = _paise(premium) * lot_size * lots / 100
    if _affordable(lots, premium, lot_size, funds) < lots:
        return NoSize(f"{lots} lot(s) of {lot_size} at premium {premium:g} cost {cost:,.2f}, more than the "
                      f"{funds:,.2f} available (a bought option's premium is paid in full)")
    return Size(lots, lots * lot_size, cost, f"{lots} lot(s) as configured")


def premium_risk_lots(premium: float, lot_size: int, risk: float, funds: float | None = None,
                      max_lots: int | None = None) -> Size | NoSize:
    """The most whole lots with premium x lots x lot size <= `risk`, capped by `max_lots` and by `funds`."""
    _check(premium, lot_size)
    per_lot = _paise(premium) * lot_size
    by_risk = max(0, _paise(risk)) // per_lot
    lots = by_risk if max_lots is None else min(by_risk, max_lots)
    lots = _affordable(lots, premium, lot_size, funds)
    if lots < 1:
        limit = (f"the risk per trade {risk:,.2f}" if by_risk < 1
                 else f"the {funds:,.2f} available (a bought option's premium is paid in full)")
        return NoSize(f"one lot of {lot_size} at premium {premium:g} costs {per_lot / 100:,.2f}, more than {limit}")
    caps = [f"risk {risk:,.2f} allows {by_risk}"]
    if max_lots is not None and by_risk > max_lots:
        caps.append(f"max_lots {max_lots}")
    if lots < min(by_risk, max_lots if max_lots is not None else by_risk):
        caps.append(f"funds {funds:,.2f} allow {lots}")
    return Size(lots, lots * lot_size, per_lot * lots / 100, f"premium risk: {'; '.join(caps)}")


def size_order(spec: OptionsSpec, premium: float, lot_size: int, risk: float,
               funds: float | None = None) -> Size | NoSize:
    """The size `spec` asks for: its fixed lots, or premium-risk lots against `risk` (rupees per trade)."""
    if spec.lots is not None:
        return fixed_lots(spec.lots, premium, lot_size, funds)
    return premium_risk_lots(premium, lot_size, risk, funds, spec.max_lots)


def freeze_split(quantity: int, lot_size: int, freeze_qty: int) -> list[int]:
    """Child order quantities for `quantity` contracts: each whole lots and at most the freeze quantity (the
    exchange rejects a larger order), as few as possible, full ones first. 0 gives no orders."""
    if lot_size < 1:
        raise ValueError(f"lot size {lot_size} must be 1 or more")
    if quantity < 0 or quantity % lot_size:
        raise ValueError(f"quantity {quantity} is not a whole number of lots of {lot_size}")
    largest = freeze_qty // lot_size * lot_size
    if largest < lot_size:
        raise ValueError(f"freeze quantity {freeze_qty} is below one lot of {lot_size}: no order can be placed")
    full, rest = divmod(quantity, largest)
    return [largest] * full + ([rest] if rest else [])

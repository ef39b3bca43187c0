"""Which strike to trade from an option chain: an offset from ATM, or the seed's score, behind liquidity filters.

The view picks the side: a long view buys calls (CE), a short view buys puts (PE); the daemon only buys options,
so the premium is the most it can lose. ATM is the listed strike nearest the underlying's LTP, the lower of two
equally near (OpenAlgo's and the paper broker's rule); the broker's own atm_strike wins when the chain carries
it. ITMn / OTMn walk n listed strikes from ATM: down for an in-the-money call or an out-of-the-money put, up
otherwise.

The score (seed 001) over the candidates, ATM and max_strikes_from_atm strikes either side, that pass the filters;
each part lies in [0, 1] and the score is their weighted mean (sum of weight x part / sum of weights):
- distance  = 1 - steps / (max_strikes_from_atm + 1), steps = listed strikes between it and ATM;
- delta     = 1 - 2 x | |delta| - 0.5 |  (1 at delta 0.5, 0 at 0 or 1);
- iv_rank   = (highest IV - its IV) / (highest - lowest) among the candidates (a buyer pays for volatility, so
              the cheapest scores 1); 1 for all when they are equal;
- liquidity = 0.5 x volume / highest volume + 0.5 x OI / highest OI (a term is 0 when its highest is 0);
- spread    = (widest spread% - its spread%) / (widest - narrowest); 1 for all when they are equal.
The highest score wins; on equal scores (to 9 decimals) the one nearer ATM, then the lower strike. When nothing
passes, the answer is a NoStrike value listing each strike's reasons, never an exception.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from core.enums import PositionSide
from options.chain import Chain, Leg
from options.spec import OFFSET_RE, Filters, OptionsSpec, Scoring

SCORE_DIGITS = 9    # scores equal to this many decimals are a tie (float noise must not pick the strike)


@dataclass(frozen=True)
class Rejection:
    strike: float
    reason: str

    def __str__(self) -> str:
        return f"{self.strike:g}: {self.reason}"


@dataclass(frozen=True)
class StrikePick:
    """The contract to trade and why: the offset, or the score and its parts."""

    leg: Leg
    atm: float
    steps: int                                  # listed strikes between it and ATM
    why: str
    score: float | None = None                  # None for an offset
    parts: Mapping[str, float] = field(default_factory=dict)
    rejected: tuple[Rejection, ...] = ()        # candidates the filters turned away


@dataclass(frozen=True)
class NoStrike:
    """No strike can be traded: nothing is ordered, and `reason` plus each strike's rejection say why."""

    option_type: str
    reason: str
    rejected: tuple[Rejection, ...] = ()

    def __str__(self) -> str:
        return "; ".join([self.reason, *map(str, self.rejected)])


def option_type_for(view: PositionSide) -> str:
    """CE for a long view, PE for a short one (both bought)."""
    return "CE" if view is PositionSide.LONG else "PE"


def atm_strike(ltp: float, strikes: list[float]) -> float:
    """The strike nearest `ltp`; of two equally near, the lower (`strikes` ascending, min keeps the first)."""
    return min(strikes, key=lambda k: abs(k - ltp))


def chain_atm(chain: Chain) -> float:
    strikes = chain.strikes
    if chain.atm_strike is not None and chain.atm_strike in strikes:
        return chain.atm_strike
    return atm_strike(chain.underlying_ltp, strikes)


def offset_index(atm_index: int, offset: str, option_type: str) -> int:
    """The list index `offset` names: ITM calls and OTM puts lie below ATM, OTM calls and ITM puts above."""
    m = OFFSET_RE.match(offset.upper())
    if m is None:
        raise ValueError(f"offset {offset!r} is not ATM, ITM1-ITM50 or OTM1-OTM50")
    if m.group(1) == "ATM":
        return atm_index
    n = int(m.group(3))
    below = (m.group(2) == "ITM") == (option_type == "CE")
    return atm_index - n if below else atm_index + n


def leg_problems(leg: Leg | None, option_type: str, filters: Filters) -> list[str]:
    """Why this leg cannot be traded under `filters` (empty when it can)."""
    if leg is None:
        return [f"no {option_type} contract listed"]
    out = []
    if leg.ltp <= 0:
        out.append(f"no price (ltp {leg.ltp:g})")
    if leg.volume < filters.min_volume:
        out.append(f"volume {leg.volume} below min_volume {filters.min_volume}")
    if leg.oi < filters.min_oi:
        out.append(f"oi {leg.oi} below min_oi {filters.min_oi}")
    if filters.max_spread_pct is not None:
        s = leg.spread_pct
        if s is None:
            out.append(f"no two-sided quote (bid {leg.bid:g}, ask {leg.ask:g})")
        elif s > filters.max_spread_pct:
            out.append(f"spread {s:.2f}% above max_spread_pct {filters.max_spread_pct:g}")
    return out


def select_strike(chain: Chain, view: PositionSide, spec: OptionsSpec) -> StrikePick | NoStrike:
    """The strike `spec` asks for on a long or short view: its offset, or its scoring."""
    option_type = option_type_for(view)
    if spec.offset is not None:
        return select_offset(chain, option_type, spec.offset, spec.filters)
    return select_scored(chain, option_type, spec.scoring or Scoring(), spec.filters)


def select_offset(chain: Chain, option_type: str, offset: str, filters: Filters) -> StrikePick | NoStrike:
    strikes = chain.strikes
    atm = chain_atm(chain)
    i = offset_index(strikes.index(atm), offset, option_type)
    if not 0 <= i < len(strikes):
        return NoStrike(option_type, f"{offset.upper()} {option_type} lies beyond the chain's strikes "
                                     f"{strikes[0]:g}-{strikes[-1]:g} around ATM {atm:g}: ask for a larger "
                                     "strike_count")
    row = chain.rows[i]
    leg = row.leg(option_type)
    problems = leg_problems(leg, option_type, filters)
    if leg is None or problems:
        rejected = (Rejection(row.strike, "; ".join(problems)),)
        return NoStrike(option_type, f"{offset.upper()} {option_type} at {row.strike:g} does not pass the filters",
                        rejected)
    return StrikePick(leg, atm, abs(i - strikes.index(atm)), f"{offset.upper()} {option_type} (ATM {atm:g})")


def _relative(value: float, low: float, high: float) -> float:
    """1 at `low`, 0 at `high`, linear between; 1 when all are equal."""
    return 1.0 if high == low else (high - value) / (high - low)


def select_scored(chain: Chain, option_type: str, scoring: Scoring, filters: Filters) -> StrikePick | NoStrike:
    w = scoring.weights
    if not w.total > 0:
        raise ValueError(f"scoring weights {w} must have at least one above 0")
    strikes = chain.strikes
    atm = chain_atm(chain)
    ai = strikes.index(atm)
    n = scoring.max_strikes_from_atm
    passed: list[tuple[int, Leg]] = []
    rejected: list[Rejection] = []
    for i in range(max(0, ai - n), min(len(strikes), ai + n + 1)):
        leg = chain.rows[i].leg(option_type)
        why = leg_problems(leg, option_type, filters)
        if leg is not None:
            if w.delta > 0 and leg.delta is None:
                why.append("no delta in the chain (ask for it with with_greeks)")
            if w.iv_rank > 0 and leg.iv is None:
                why.append("no implied volatility in the chain (ask for it with with_greeks)")
            if w.spread > 0 and leg.spread_pct is None and filters.max_spread_pct is None:
                why.append(f"no two-sided quote (bid {leg.bid:g}, ask {leg.ask:g})")
        if leg is None or why:
            rejected.append(Rejection(strikes[i], "; ".join(why)))
        else:
            passed.append((i, leg))
    if not passed:
        return NoStrike(option_type, f"no {option_type} strike within {n} of ATM {atm:g} passes the filters",
                        tuple(rejected))
    ivs = [leg.iv or 0.0 for _, leg in passed]
    spreads = [leg.spread_pct or 0.0 for _, leg in passed]
    top_volume = max(leg.volume for _, leg in passed)
    top_oi = max(leg.oi for _, leg in passed)
    scored: list[tuple[float, int, float, Leg, dict[str, float]]] = []
    for i, leg in passed:
        steps = abs(i - ai)
        parts: dict[str, float] = {}
        if w.distance > 0:
            parts["distance"] = 1.0 - steps / (n + 1)
        if w.delta > 0:
            parts["delta"] = max(0.0, 1.0 - 2.0 * abs(abs(leg.delta or 0.0) - 0.5))
        if w.iv_rank > 0:
            parts["iv_rank"] = _relative(leg.iv or 0.0, min(ivs), max(ivs))
        if w.liquidity > 0:
            parts["liquidity"] = (0.5 * (leg.volume / top_volume if top_volume > 0 else 0.0)
                                  + 0.5 * (leg.oi / top_oi if top_oi > 0 else 0.0))
        if w.spread > 0:
            parts["spread"] = _relative(leg.spread_pct or 0.0, min(spreads), max(spreads))
        score = sum(getattr(w, k) * v for k, v in parts.items()) / w.total
        scored.append((round(score, SCORE_DIGITS), steps, leg.strike, leg, parts))
    scored.sort(key=lambda s: (-s[0], s[1], s[2]))
    score, steps, _, leg, parts = scored[0]
    reason = (f"best score {score:.4f} of {len(passed)} {option_type} strike(s) within {n} of ATM {atm:g} "
              f"({', '.join(f'{k} {v:.3f}' for k, v in parts.items())})")
    return StrikePick(leg, atm, steps, reason, score, parts, tuple(rejected))

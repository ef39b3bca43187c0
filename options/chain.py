"""OpenAlgo's /api/v1/optionchain response as typed rows: one parse, so the selectors never touch raw JSON.

The shape (OpenAlgo's services/option_chain_service.py, and the paper broker's paper/options/api.py):
{"status": "success", "underlying": "NIFTY", "underlying_ltp": 24012.5, "expiry_date": "24NOV26",
 "atm_strike": 24000.0, "chain": [{"strike": 24000.0, "ce": {"symbol", "label", "ltp", "bid", "ask", "volume",
 "oi", "lotsize", "tick_size", ...}, "pe": {...}}, ...]}. A leg is null when that contract is not listed; with
`with_greeks` a leg also carries implied_volatility (percent) and delta. A body that is not this shape raises
ChainDataError: a broker answer the selector cannot read is a fault to report, not a strike to guess.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

OPTION_TYPES = ("CE", "PE")


class ChainDataError(ValueError):
    """The option chain response is an error or is not the shape OpenAlgo documents; the message says where."""


@dataclass(frozen=True)
class Leg:
    """One contract of the chain (a call or a put at one strike) as the broker quoted it."""

    symbol: str
    option_type: str        # CE or PE
    strike: float
    label: str              # ATM, ITMn, OTMn as the broker labelled it
    ltp: float
    bid: float
    ask: float
    volume: int
    oi: int
    lot_size: int | None
    tick_size: float | None
    iv: float | None = None       # implied volatility in percent, when the chain was asked with greeks
    delta: float | None = None

    @property
    def two_sided(self) -> bool:
        return self.bid > 0 and self.ask >= self.bid

    @property
    def spread_pct(self) -> float | None:
        """(ask - bid) as a percent of the mid price, to 6 decimals (a spread exactly at a limit must not fail it
        by float noise); None without a two-sided quote."""
        if not self.two_sided:
            return None
        return round((self.ask - self.bid) / ((self.ask + self.bid) / 2.0) * 100.0, 6)


@dataclass(frozen=True)
class ChainRow:
    strike: float
    ce: Leg | None
    pe: Leg | None

    def leg(self, option_type: str) -> Leg | None:
        return self.ce if option_type == "CE" else self.pe


@dataclass(frozen=True)
class Chain:
    underlying: str
    underlying_ltp: float
    expiry_code: str                 # DDMMMYY, as the request's expiry_date
    atm_strike: float | None         # the broker's, when it said
    rows: tuple[ChainRow, ...]       # ascending strike

    @property
    def strikes(self) -> list[float]:
        return [r.strike for r in self.rows]


def _num(where: str, d: Mapping[str, Any], key: str, *, default: float | None = None) -> float:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ChainDataError(f"{where}.{key}: {v!r} is not a number")
    return float(v)


def _opt_num(where: str, d: Mapping[str, Any], key: str) -> float | None:
    return None if d.get(key) is None else _num(where, d, key)


def _leg(where: str, raw: Any, strike: float, option_type: str) -> Leg | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ChainDataError(f"{where}: {raw!r} is not a mapping or null")
    symbol = raw.get("symbol")
    if not isinstance(symbol, str) or not symbol:
        raise ChainDataError(f"{where}.symbol: {symbol!r} is not a contract symbol")
    lot = _opt_num(where, raw, "lotsize")
    return Leg(symbol=symbol, option_type=option_type, strike=strike, label=str(raw.get("label") or ""),
               ltp=_num(where, raw, "ltp", default=0), bid=_num(where, raw, "bid", default=0),
               ask=_num(where, raw, "ask", default=0), volume=int(_num(where, raw, "volume", default=0)),
               oi=int(_num(where, raw, "oi", default=0)), lot_size=None if lot is None else int(lot),
               tick_size=_opt_num(where, raw, "tick_size"), iv=_opt_num(where, raw, "implied_volatility"),
               delta=_opt_num(where, raw, "delta"))


def parse_chain(body: Mapping[str, Any]) -> Chain:
    """The typed chain of a successful /optionchain answer; ChainDataError for an error answer or a bad shape."""
    if body.get("status") != "success":
        raise ChainDataError(f"option chain: {body.get('status')!r} answer: {body.get('message')!r}")
    rows_raw = body.get("chain")
    if not isinstance(rows_raw, list) or not rows_raw:
        raise ChainDataError(f"option chain: chain {rows_raw!r} is not a non-empty list")
    rows: list[ChainRow] = []
    for i, r in enumerate(rows_raw):
        where = f"chain[{i}]"
        if not isinstance(r, Mapping):
            raise ChainDataError(f"{where}: {r!r} is not a mapping")
        k = _num(where, r, "strike")
        rows.append(ChainRow(k, _leg(f"{where}.ce", r.get("ce"), k, "CE"), _leg(f"{where}.pe", r.get("pe"), k, "PE")))
    rows.sort(key=lambda row: row.strike)
    if len({r.strike for r in rows}) != len(rows):
        raise ChainDataError("option chain: a strike appears twice")
    underlying = body.get("underlying")
    expiry = body.get("expiry_date")
    return Chain(underlying=str(underlying or ""), underlying_ltp=_num("option chain", body, "underlying_ltp"),
                 expiry_code=str(expiry or "").upper(), atm_strike=_opt_num("option chain", body, "atm_strike"),
                 rows=tuple(rows))

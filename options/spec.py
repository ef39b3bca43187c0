"""The `options:` block of an index symbol in config.yaml, validated into a frozen OptionsSpec.

Follows core/config.py: every problem is collected as "key: value -- what is allowed", nothing the user wrote
falls back silently to a default, and an unknown key is an error. For example:

    options: {expiry: nearest_weekly, roll_after: "14:30", offset: ATM, lots: 1, stop: "30%", target: 40}
    options: {expiry: monthly, offset: score, scoring: {weights: {distance: 3, delta: 2}},
              filters: {min_oi: 1000, max_spread_pct: 2}, lots: premium_risk, max_lots: 4}
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import time as dtime
from typing import Any

from core.enums import StrEnum

OFFSET_RE = re.compile(r"^(ATM|(ITM|OTM)([1-9]|[1-4][0-9]|50))$")   # OpenAlgo's ATM, ITM1-ITM50, OTM1-OTM50
SCORE = "score"
PREMIUM_RISK = "premium_risk"
MARKET_OPEN = dtime(9, 15)
MARKET_CLOSE = dtime(15, 30)
MAX_STRIKES_FROM_ATM = 50
_PCT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


class ExpiryChoice(StrEnum):
    """Which listed expiry to trade; nothing is derived from a weekday (see options.expiry)."""

    NEAREST_WEEKLY = "nearest_weekly"
    NEXT_WEEKLY = "next_weekly"
    MONTHLY = "monthly"


@dataclass(frozen=True)
class Filters:
    """Liquidity a leg must show to be traded at all (both strike modes); 0 / None switch a filter off.

    The paper broker's chain reports volume and OI as 0, so min_volume and min_oi reject every strike there."""

    min_volume: int = 0
    min_oi: int = 0
    max_spread_pct: float | None = None    # (ask - bid) / mid, in percent


@dataclass(frozen=True)
class Weights:
    """The seed's score weights; only their ratios matter (the score divides by their sum)."""

    distance: float = 0.30
    delta: float = 0.20
    iv_rank: float = 0.15
    liquidity: float = 0.25
    spread: float = 0.10

    @property
    def total(self) -> float:
        return self.distance + self.delta + self.iv_rank + self.liquidity + self.spread


@dataclass(frozen=True)
class Scoring:
    weights: Weights = field(default_factory=Weights)
    max_strikes_from_atm: int = 3          # candidates: ATM and this many strikes either side


@dataclass(frozen=True)
class PremiumLevel:
    """A stop or target on the option's premium: rupees from the entry premium, or a percent of it."""

    amount: float
    percent: bool

    def distance(self, entry: float) -> float:
        """Rupees of premium between the entry and this level."""
        return entry * self.amount / 100.0 if self.percent else self.amount

    def __str__(self) -> str:
        return f"{self.amount:g}%" if self.percent else f"{self.amount:g}"


@dataclass(frozen=True)
class OptionsSpec:
    """How one index symbol's signals become option orders; offset is None when the strike is scored."""

    expiry: ExpiryChoice = ExpiryChoice.NEAREST_WEEKLY
    roll_after: dtime | None = None        # on the expiry's own day, trade the next one from this time on
    offset: str | None = "ATM"
    scoring: Scoring | None = None
    filters: Filters = field(default_factory=Filters)
    lots: int | None = 1                   # None: premium-risk sizing
    max_lots: int | None = None            # the cap of premium-risk sizing
    stop: PremiumLevel | None = None
    target: PremiumLevel | None = None
    check_every_s: int = 5                 # seconds between two reads of a held option's premium


_KEYS = ("expiry", "roll_after", "offset", "scoring", "filters", "lots", "max_lots", "stop", "target",
         "check_every_s")
MAX_CHECK_EVERY_S = 300
_WEIGHT_KEYS = ("distance", "delta", "iv_rank", "liquidity", "spread")


def _number(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)


def _whole(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, int)


def _unknown(key: str, raw: dict[Any, Any], allowed: tuple[str, ...], problems: list[str]) -> None:
    for k in raw:
        if k not in allowed:
            problems.append(f"{key}.{k}: unknown key -- allowed keys are {', '.join(allowed)}")


def _time(key: str, v: Any, problems: list[str]) -> dtime | None:
    text = v
    if _whole(v):                      # YAML 1.1 reads an unquoted 14:30 as the sexagesimal number 870
        text = f"{v // 60:02d}:{v % 60:02d}"
    m = re.match(r"^(\d{1,2}):(\d{2})$", text) if isinstance(text, str) else None
    t = dtime(int(m.group(1)), int(m.group(2))) if m and int(m.group(1)) < 24 and int(m.group(2)) < 60 else None
    if t is None or not MARKET_OPEN <= t <= MARKET_CLOSE:
        shown = f"{v!r} (read by YAML as {text})" if text != v else repr(v)
        problems.append(f"{key}: {shown} is not allowed -- expected a time HH:MM from 09:15 to 15:30 (IST), "
                        "quoted")
        return None
    return t


def _level(key: str, v: Any, problems: list[str], *, stop: bool) -> PremiumLevel | None:
    if _number(v) and v > 0:
        return PremiumLevel(float(v), percent=False)
    m = _PCT_RE.match(v) if isinstance(v, str) else None
    if m is not None:
        pct = float(m.group(1))
        if pct > 0 and (not stop or pct < 100):
            return PremiumLevel(pct, percent=True)
    rng = "a percent above 0 and below 100" if stop else "a percent above 0"
    problems.append(f"{key}: {v!r} is not allowed -- expected rupees of premium from the entry (a number above 0, "
                    f"e.g. 40) or {rng} of the entry premium as a string (e.g. \"30%\")")
    return None


def _filters(key: str, raw: Any, problems: list[str]) -> Filters:
    if raw is None:
        return Filters()
    if not isinstance(raw, dict):
        problems.append(f"{key}: {raw!r} is not allowed -- expected a mapping with min_volume, min_oi, "
                        "max_spread_pct")
        return Filters()
    _unknown(key, raw, ("min_volume", "min_oi", "max_spread_pct"), problems)
    out: dict[str, Any] = {}
    for name in ("min_volume", "min_oi"):
        if name in raw:
            v = raw[name]
            if not _whole(v) or v < 0:
                problems.append(f"{key}.{name}: {v!r} is not allowed -- expected a whole number, 0 or more")
            else:
                out[name] = v
    if "max_spread_pct" in raw:
        v = raw["max_spread_pct"]
        if v is not None and (not _number(v) or not 0 < v <= 100):
            problems.append(f"{key}.max_spread_pct: {v!r} is not allowed -- expected a percent of the mid price, "
                            "above 0 and at most 100, or null for no limit")
        else:
            out["max_spread_pct"] = None if v is None else float(v)
    return Filters(**out)


def _scoring(key: str, raw: Any, problems: list[str]) -> Scoring:
    if raw is None:
        return Scoring()
    if not isinstance(raw, dict):
        problems.append(f"{key}: {raw!r} is not allowed -- expected a mapping with weights, max_strikes_from_atm")
        return Scoring()
    _unknown(key, raw, ("weights", "max_strikes_from_atm"), problems)
    n = raw.get("max_strikes_from_atm", Scoring.max_strikes_from_atm)
    if not _whole(n) or not 0 <= n <= MAX_STRIKES_FROM_ATM:
        problems.append(f"{key}.max_strikes_from_atm: {n!r} is not allowed -- expected a whole number from 0 to "
                        f"{MAX_STRIKES_FROM_ATM}")
        n = Scoring.max_strikes_from_atm
    w = raw.get("weights")
    if w is None:
        return Scoring(Weights(), n)
    if not isinstance(w, dict):
        problems.append(f"{key}.weights: {w!r} is not allowed -- expected a mapping of {', '.join(_WEIGHT_KEYS)}")
        return Scoring(Weights(), n)
    before = len(problems)
    _unknown(f"{key}.weights", w, _WEIGHT_KEYS, problems)
    vals: dict[str, float] = {}
    for name in _WEIGHT_KEYS:
        if name in w:
            v = w[name]
            if not _number(v) or v < 0:
                problems.append(f"{key}.weights.{name}: {v!r} is not allowed -- expected a number, 0 or more")
            else:
                vals[name] = float(v)
    # weights not written are 0 once any is written: "weights: {delta: 1}" means delta alone
    if not w:
        return Scoring(Weights(), n)
    weights = Weights(**{name: vals.get(name, 0.0) for name in _WEIGHT_KEYS})
    if len(problems) == before and weights.total <= 0:
        problems.append(f"{key}.weights: {w!r} is not allowed -- at least one weight must be above 0")
    return Scoring(weights, n)


def parse_options(raw: Any, key: str, problems: list[str]) -> OptionsSpec:
    """The `options:` mapping at `key` (e.g. symbols[3].options); problems are appended, never raised."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        problems.append(f"{key}: {raw!r} is not allowed -- expected a mapping of {', '.join(_KEYS)}")
        return OptionsSpec()
    _unknown(key, raw, _KEYS, problems)
    out: dict[str, Any] = {}

    if "expiry" in raw:
        try:
            out["expiry"] = ExpiryChoice(raw["expiry"])
        except ValueError:
            problems.append(f"{key}.expiry: {raw['expiry']!r} is not allowed -- expected one of "
                            f"{', '.join(e.value for e in ExpiryChoice)}")
    if raw.get("roll_after") is not None:
        out["roll_after"] = _time(f"{key}.roll_after", raw["roll_after"], problems)

    offset = raw.get("offset", SCORE if "scoring" in raw else "ATM")
    text = offset.strip().upper() if isinstance(offset, str) else None
    if isinstance(offset, str) and offset.strip().lower() == SCORE:
        out["offset"] = None
        out["scoring"] = _scoring(f"{key}.scoring", raw.get("scoring"), problems)
    elif text is not None and OFFSET_RE.match(text):
        out["offset"] = text
        if "scoring" in raw:
            problems.append(f"{key}.scoring: allowed only with offset: score -- offset {offset!r} names the strike "
                            "itself")
    else:
        problems.append(f"{key}.offset: {offset!r} is not allowed -- expected ATM, ITM1-ITM50, OTM1-OTM50 or score")
    out["filters"] = _filters(f"{key}.filters", raw.get("filters"), problems)

    lots = raw.get("lots", 1)
    if lots == PREMIUM_RISK:
        out["lots"] = None
        m = raw.get("max_lots")
        if m is not None and (not _whole(m) or m < 1):
            problems.append(f"{key}.max_lots: {m!r} is not allowed -- expected a whole number of lots, 1 or more")
        else:
            out["max_lots"] = m
    elif _whole(lots) and lots >= 1:
        out["lots"] = lots
        if raw.get("max_lots") is not None:
            problems.append(f"{key}.max_lots: allowed only with lots: {PREMIUM_RISK} -- lots: {lots} fixes the "
                            "size")
    else:
        problems.append(f"{key}.lots: {lots!r} is not allowed -- expected a whole number of lots (1 or more) or "
                        f"{PREMIUM_RISK}")

    for name in ("stop", "target"):
        if raw.get(name) is not None:
            out[name] = _level(f"{key}.{name}", raw[name], problems, stop=name == "stop")
    if "check_every_s" in raw:
        v = raw["check_every_s"]
        if not _whole(v) or not 1 <= v <= MAX_CHECK_EVERY_S:
            problems.append(f"{key}.check_every_s: {v!r} is not allowed -- expected whole seconds from 1 to "
                            f"{MAX_CHECK_EVERY_S} between two reads of a held option's premium")
        else:
            out["check_every_s"] = v
    return OptionsSpec(**out)

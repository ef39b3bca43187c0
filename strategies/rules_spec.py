"""A `kind: rules` strategy's params, checked and compiled: named indicators, rules with a side, an entry
condition, an exit condition, a stop and a target.

    params:
      candle_seconds: 60          # as every candle strategy (default 60)
      atr_period: 14              # the ATR that "N atr" stops and targets and the operand `atr` use
      exit_at: "15:05"            # exit what is held at this time; no entries from then on
      stop: 2 atr                 # default stop of the rules that give none
      target: 3%                  # default target (optional: none)
      indicators:                 # name: {kind: arguments}
        fast: {sma: 9}            # one argument
        bb: {bollinger: [20, 2]}  # arguments in order (period, k)
        hi: {highest: {period: 20, source: close}}  # arguments by name
        vw: vwap                  # no arguments
      rules:                      # name: rule, tried in this order on each candle
        trend_long:
          side: long              # long or short
          when: fast crosses_above bb.middle and close > vw
          exit: close < vw        # optional
          stop: 1.5%              # price offset (5), percent of the close ("1.5%") or ATR multiples ("2 atr")
          target: 4 atr           # optional, same units

Every problem is reported as "key: value is not allowed -- what is allowed", the key naming the indicator or
the rule (rules.trend_long.when), and for a condition the token and its column (strategies.rules_expr).
"""
from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from strategies.candles import hhmm_problem
from strategies.indicators import INDICATORS, Bands, Indicator, MacdValue, Range
from strategies.rules_expr import CANDLE_FIELDS, KEYWORDS, ConditionError, Node, parse

PARAMS = ("candle_seconds", "atr_period", "exit_at", "stop", "target", "indicators", "rules")
SIDES = {"long": 1, "short": -1}
RULE_KEYS = ("side", "when", "exit", "stop", "target")
STRATEGY_ATR = "atr"  # the operand that reads the strategy's own ATR(atr_period)
RESERVED = frozenset((*CANDLE_FIELDS, STRATEGY_ATR, *KEYWORDS))
FIELDS: dict[str, tuple[str, ...]] = {"bollinger": Bands._fields, "macd": MacdValue._fields,
                                      "opening_range": Range._fields}
_NAME = re.compile(r"^[A-Za-z_]\w*$")
_LEVEL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%|atr)?\s*$", re.IGNORECASE)
_LEVEL_HELP = 'a price offset (5), a percent of the entry candle\'s close ("1.5%") or ATR multiples ("2 atr")'


@dataclass(frozen=True, slots=True)
class Level:
    """A stop or target: a distance from the entry candle's close."""

    amount: float
    unit: str  # "price", "percent" or "atr"

    @property
    def needs_atr(self) -> bool:
        return self.unit == "atr"

    def price(self, close: float, direction: int, atr: float | None) -> float:
        """close + direction x distance (direction -1 for a long's stop or a short's target). Written as the
        ATR strategies write theirs, so an ATR level is bit for bit the same number."""
        if self.unit == "atr":
            assert atr is not None
            return close + direction * self.amount * atr
        if self.unit == "percent":
            return close + direction * (close * self.amount / 100.0)
        return close + direction * self.amount

    def describe(self) -> str:
        return {"price": f"{self.amount:g}", "percent": f"{self.amount:g}%", "atr": f"{self.amount:g} atr"}[self.unit]


@dataclass(frozen=True, slots=True)
class IndicatorSpec:
    kind: str
    args: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...]

    def build(self, session_open: str | None = None) -> Indicator[Any]:
        """A fresh indicator. An opening range given no `open` starts at `session_open` (HH:MM) when given:
        the session's open, not the indicator's 09:15 default, is what a trader means."""
        kwargs = dict(self.kwargs)
        if self.kind == "opening_range" and session_open is not None and len(self.args) < 2 and "open" not in kwargs:
            kwargs["open"] = session_open
        return INDICATORS[self.kind](*self.args, **kwargs)


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    side: int          # +1 long, -1 short
    when: Node
    when_text: str
    exit: Node | None  # None: no exit condition (stop, target and exit_at only)
    exit_text: str
    stop: Level
    target: Level | None


@dataclass(frozen=True, slots=True)
class RulesSpec:
    indicators: tuple[tuple[str, IndicatorSpec], ...]
    rules: tuple[Rule, ...]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def level(key: str, value: Any, problems: list[str], *, stop: bool) -> Level | None:
    """A stop or target from a number (price offset) or "N%" / "N atr"; None and a problem when invalid."""
    if (_is_int(value) or isinstance(value, float)) and value > 0:
        return Level(float(value), "price")
    m = _LEVEL.match(value) if isinstance(value, str) else None
    if m is not None and float(m.group(1)) > 0:
        amount = float(m.group(1))
        unit = {None: "price", "%": "percent", "atr": "atr"}[m.group(2) and m.group(2).lower()]
        if stop and unit == "percent" and amount >= 100:
            problems.append(f"{key}: {value!r} is not allowed -- a percent stop must be below 100%")
            return None
        return Level(amount, unit)
    problems.append(f"{key}: {value!r} is not allowed -- expected {_LEVEL_HELP}, greater than 0")
    return None


def _signature(kind: str) -> str:
    names = [p for p in inspect.signature(INDICATORS[kind]).parameters if p != "self"]
    return f"{kind} takes {', '.join(names)}" if names else f"{kind} takes no arguments"


def indicator(key: str, spec: Any, problems: list[str]) -> IndicatorSpec | None:
    """One entry of params.indicators: "kind", {kind: arg}, {kind: [args]} or {kind: {name: arg}}."""
    kinds = ", ".join(INDICATORS)
    if isinstance(spec, str):
        spec = {spec: None}
    if not (isinstance(spec, Mapping) and len(spec) == 1):
        problems.append(f"{key}: {spec!r} is not allowed -- expected one kind with its arguments, e.g. "
                        f"{{sma: 20}}, {{bollinger: [20, 2]}} or vwap; kinds are {kinds}")
        return None
    ((kind, raw),) = spec.items()
    if kind not in INDICATORS:
        problems.append(f"{key}: {kind!r} is not allowed -- unknown indicator; expected one of {kinds}")
        return None
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    if isinstance(raw, Mapping):
        if not all(isinstance(k, str) for k in raw):
            problems.append(f"{key}: {raw!r} is not allowed -- argument names are words; {_signature(kind)}")
            return None
        kwargs = tuple(raw.items())
    elif isinstance(raw, list):
        args = tuple(raw)
    elif raw is not None:
        args = (raw,)
    if not all(isinstance(a, (int, float, str)) for a in (*args, *(v for _, v in kwargs))):
        problems.append(f"{key}: {raw!r} is not allowed -- arguments are numbers or words; {_signature(kind)}")
        return None
    out = IndicatorSpec(str(kind), args, kwargs)
    try:
        out.build()
    except TypeError:
        problems.append(f"{key}: {raw!r} is not allowed -- {_signature(kind)}")
        return None
    except ValueError as e:  # the indicator's own "name: value is not allowed -- why"
        problems.append(f"{key}.{e}")
        return None
    return out


def _condition(key: str, text: Any, names: Mapping[str, tuple[str, ...]], problems: list[str]) -> Node | None:
    if not isinstance(text, str):
        problems.append(f"{key}: {text!r} is not allowed -- expected a condition such as: close > sma20")
        return None
    try:
        return parse(text, names)
    except ConditionError as e:
        problems.append(f"{key}: {text!r} is not allowed -- {e}")
        return None


def _rule(name: Any, raw: Any, names: Mapping[str, tuple[str, ...]], default_stop: Level | None,
          default_target: Level | None, stop_given: bool, problems: list[str]) -> Rule | None:
    key = f"rules.{name}"
    if not (isinstance(name, str) and _NAME.match(name)):
        problems.append(f"{key}: the rule name {name!r} is not allowed -- use letters, digits and _")
        return None
    if not isinstance(raw, Mapping):
        problems.append(f"{key}: {raw!r} is not allowed -- expected a mapping with side, when and optionally "
                        f"exit, stop, target")
        return None
    before = len(problems)
    for k in raw:
        if k not in RULE_KEYS:
            problems.append(f"{key}.{k}: unknown key -- allowed keys are {', '.join(RULE_KEYS)}")
    side = raw.get("side")
    if side not in SIDES:
        problems.append(f"{key}.side: {side!r} is not allowed -- expected long or short")
    if "when" not in raw:
        problems.append(f"{key}.when: missing -- give the entry condition, e.g. when: close > sma20")
    when = _condition(f"{key}.when", raw["when"], names, problems) if "when" in raw else None
    exit_ = _condition(f"{key}.exit", raw["exit"], names, problems) if raw.get("exit") is not None else None
    given = raw.get("stop") is not None
    stop = level(f"{key}.stop", raw["stop"], problems, stop=True) if given else default_stop
    if not given and not stop_given:
        problems.append(f"{key}.stop: missing -- give the rule a stop, or params.stop for every rule: {_LEVEL_HELP}")
    target = default_target
    if raw.get("target") is not None:
        target = level(f"{key}.target", raw["target"], problems, stop=False)
    if len(problems) > before or when is None or stop is None:
        return None
    return Rule(name, SIDES[str(side)], when, raw["when"], exit_, raw.get("exit") or "", stop, target)


def compile_params(params: Mapping[str, Any]) -> tuple[RulesSpec | None, list[str]]:
    """The compiled spec, or None and every problem, each starting with its key under params."""
    problems: list[str] = []
    for k in params:
        if k not in PARAMS:
            problems.append(f"{k}: unknown parameter -- allowed are {', '.join(PARAMS)}")
    cs = params.get("candle_seconds", 60)
    if not _is_int(cs) or not 0 < cs <= 3600 or 3600 % cs:
        problems.append(f"candle_seconds: {cs!r} is not allowed -- must divide 3600 (e.g. 15, 60, 300, 900) "
                        "so candles line up with the clock")
    ap = params.get("atr_period", 14)
    if not _is_int(ap) or ap < 1:
        problems.append(f"atr_period: {ap!r} is not allowed -- expected a whole number of at least 1")
    problems.extend(hhmm_problem("exit_at", params.get("exit_at", "15:05")))
    default_stop = level("stop", params["stop"], problems, stop=True) if params.get("stop") is not None else None
    default_target = (level("target", params["target"], problems, stop=False)
                      if params.get("target") is not None else None)

    raw_inds = params.get("indicators", {})
    built: list[tuple[str, IndicatorSpec]] = []
    names: dict[str, tuple[str, ...]] = {}
    if not isinstance(raw_inds, Mapping):
        problems.append(f"indicators: {raw_inds!r} is not allowed -- expected a mapping of names to indicators, "
                        "e.g. {fast: {sma: 9}, slow: {sma: 21}}")
        return None, problems  # the rules' names cannot be checked without them
    for name, spec in raw_inds.items():
        key = f"indicators.{name}"
        if not (isinstance(name, str) and _NAME.match(name)) or name in RESERVED:
            problems.append(f"{key}: the name {name!r} is not allowed -- use letters, digits and _, and none of "
                            f"{', '.join(sorted(RESERVED))}")
            continue
        ind = indicator(key, spec, problems)
        names[name] = FIELDS.get(ind.kind, ()) if ind is not None else ()
        if ind is not None:
            built.append((name, ind))
    names.update({f: () for f in CANDLE_FIELDS})
    names[STRATEGY_ATR] = ()

    raw_rules = params.get("rules")
    rules: list[Rule] = []
    if not isinstance(raw_rules, Mapping) or not raw_rules:
        problems.append(f"rules: {raw_rules!r} is not allowed -- expected a mapping of named rules, each with "
                        "side, when and optionally exit, stop, target")
    else:
        for name, raw in raw_rules.items():
            r = _rule(name, raw, names, default_stop, default_target, params.get("stop") is not None, problems)
            if r is not None:
                rules.append(r)
    if problems:
        return None, problems
    return RulesSpec(tuple(built), tuple(rules)), []

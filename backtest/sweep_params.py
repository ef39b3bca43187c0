"""The parameters a sweep varies: `--param mac.fast=5:20:1` (strategy name in config.yaml, a dot, one of its
Params fields; start:stop:step inclusive, or a comma list a,b,c), checked against the strategy's own Params
before anything runs, so a typo stops the command with exit 2 instead of a night of wasted backtests.

A point is one value per swept parameter, keyed "strategy.param". A point the strategy's own checks refuse
(fast >= slow) is not an error: it is skipped as invalid, with the strategy's reason. A value that no point
can ever use (fast = 0, whatever slow is) is an error, since the user asked for something that cannot run.
"""
from __future__ import annotations

import dataclasses
import itertools
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from core.config import Config
from strategies import strategy_class, validate_params

log = logging.getLogger(__name__)

Value = int | float | str | bool
Point = Mapping[str, Value]

MAX_POINTS_CHECKED = 200_000    # past this many grid points, values are only checked one by one
_FLAG = re.compile(r"^(?P<strategy>[^.=\s]+)\.(?P<param>[A-Za-z_]\w*)=(?P<spec>.+)$")
_SHAPE = "STRATEGY.PARAM=START:STOP:STEP or STRATEGY.PARAM=A,B,C (e.g. mac.fast=5:20:1)"


class ParamError(ValueError):
    """A --param the command cannot use; the message names the flag, the value and what is allowed."""


@dataclass(frozen=True)
class ParamSpec:
    """One swept parameter: its key ("mac.fast"), the values in order, and whether they came as a range."""

    strategy: str
    param: str
    values: tuple[Value, ...]
    kind: str                   # "int", "float", "bool" or "str": the Params field's type
    is_range: bool
    flag: str                   # as written, for messages

    @property
    def key(self) -> str:
        return f"{self.strategy}.{self.param}"


def parse_params(flags: Sequence[str], cfg: Config) -> list[ParamSpec]:
    """Every --param checked on its own (shape, strategy, field, type, range) and then together: a value that
    no combination makes valid is refused with the strategy's reason."""
    specs: list[ParamSpec] = []
    for flag in flags:
        spec = parse_param(flag, cfg)
        if any(s.key == spec.key for s in specs):
            raise ParamError(f"--param {flag!r} is not allowed -- {spec.key} is already swept by another --param")
        specs.append(spec)
    if not specs:
        raise ParamError(f"--param: missing -- give at least one, as {_SHAPE}")
    check_values_usable(specs, cfg)
    return specs


def parse_param(flag: str, cfg: Config) -> ParamSpec:
    """One --param flag: STRATEGY.PARAM=START:STOP:STEP (inclusive) or STRATEGY.PARAM=A,B,C."""
    m = _FLAG.match(flag.strip())
    if not m:
        raise ParamError(f"--param {flag!r} is not allowed -- expected {_SHAPE}")
    name, param, text = m["strategy"], m["param"], m["spec"].strip()
    spec = cfg.strategies.get(name)
    if spec is None:
        raise ParamError(f"--param {flag!r} is not allowed -- no strategy {name!r} in {cfg.path.name}; "
                         f"expected one of {', '.join(cfg.strategies)}")
    fields = {f.name: f for f in dataclasses.fields(strategy_class(spec.kind).Params)}
    if param not in fields:
        raise ParamError(f"--param {flag!r} is not allowed -- {name} ({spec.kind}) has no parameter {param!r}; "
                         f"allowed are {', '.join(fields) or '(none)'}")
    kind = _kind(fields[param].type)
    if ":" in text and kind in ("int", "float"):     # a text value such as 15:05 is a one-item list
        values = _range(flag, text, kind)
        is_range = True
    else:
        values = tuple(_scalar(flag, part.strip(), kind) for part in text.split(","))
        is_range = False
        if len(set(values)) != len(values):
            raise ParamError(f"--param {flag!r} is not allowed -- a value is listed twice")
    return ParamSpec(name, param, values, kind, is_range, flag)


def _kind(t: Any) -> str:
    name = t if isinstance(t, str) else getattr(t, "__name__", str(t))
    return name if name in ("int", "float", "bool") else "str"


def _scalar(flag: str, text: str, kind: str) -> Value:
    if kind == "str":
        if not text:
            raise ParamError(f"--param {flag!r} is not allowed -- an empty value in the list")
        return text
    if kind == "bool":
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        raise ParamError(f"--param {flag!r} is not allowed -- {text!r} is not true or false")
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise ParamError(f"--param {flag!r} is not allowed -- {text!r} is not a number") from None
    if not d.is_finite():
        raise ParamError(f"--param {flag!r} is not allowed -- {text!r} is not a finite number")
    if kind == "int":
        if d != d.to_integral_value():
            raise ParamError(f"--param {flag!r} is not allowed -- {text!r} is not a whole number, and this "
                             "parameter takes whole numbers")
        return int(d)
    return float(d)


def _range(flag: str, text: str, kind: str) -> tuple[Value, ...]:
    parts = text.split(":")
    if len(parts) != 3:
        raise ParamError(f"--param {flag!r} is not allowed -- a range is START:STOP:STEP (inclusive), e.g. 5:20:1")
    try:
        start, stop, step = (Decimal(p.strip()) for p in parts)
    except InvalidOperation:
        raise ParamError(f"--param {flag!r} is not allowed -- START, STOP and STEP must be numbers") from None
    if not all(x.is_finite() for x in (start, stop, step)):
        raise ParamError(f"--param {flag!r} is not allowed -- START, STOP and STEP must be finite numbers")
    if kind == "int" and any(x != x.to_integral_value() for x in (start, stop, step)):
        raise ParamError(f"--param {flag!r} is not allowed -- this parameter takes whole numbers, so START, STOP "
                         "and STEP must be whole")
    if step <= 0:
        raise ParamError(f"--param {flag!r} is not allowed -- STEP must be positive")
    if stop < start:
        raise ParamError(f"--param {flag!r} is not allowed -- STOP must not be below START")
    count = int((stop - start) / step) + 1
    if count > 10_000:
        raise ParamError(f"--param {flag!r} is not allowed -- {count} values; at most 10000 per parameter")
    out = [start + i * step for i in range(count)]     # Decimal steps: 0.1 * 3 is exactly 0.3
    return tuple(int(v) if kind == "int" else float(v) for v in out)


# ----------------------------------------------------------------------------- points

def grid(specs: Sequence[ParamSpec]) -> Iterator[dict[str, Value]]:
    """Every combination, the last parameter varying fastest (a stable order the results keep)."""
    for combo in itertools.product(*(s.values for s in specs)):
        yield {s.key: v for s, v in zip(specs, combo, strict=True)}


def grid_size(specs: Sequence[ParamSpec]) -> int:
    n = 1
    for s in specs:
        n *= len(s.values)
    return n


def point_problems(point: Point, cfg: Config) -> list[str]:
    """The strategies' own reasons this point cannot run (empty: it can), as "strategy.param: ..."."""
    by_strategy: dict[str, dict[str, Value]] = {}
    for key, v in point.items():
        name, _, param = key.partition(".")
        by_strategy.setdefault(name, {})[param] = v
    problems: list[str] = []
    for name, overrides in by_strategy.items():
        spec = cfg.strategies[name]
        problems.extend(f"{name}.{p}" for p in validate_params(spec.kind, {**spec.params, **overrides}))
    return problems


def check_values_usable(specs: Sequence[ParamSpec], cfg: Config) -> None:
    """ParamError for a value that is valid in no point and is itself what the strategy names every time
    (fast = 0: "fast must be at least 1"), or when no point at all is valid. A value refused only because of
    another parameter (fast 25 when every slow is at most 25: "slow must be greater than fast") stays, and its
    points are skipped as invalid. Grids over MAX_POINTS_CHECKED points check each value with the others at
    their config values instead."""
    unseen = {(s.key, v) for s in specs for v in s.values}
    blamed: dict[tuple[str, Value], str] = {}       # the value's own fault in every point so far
    cleared: set[tuple[str, Value]] = set()         # a point refused it for another parameter's sake
    any_valid = False
    if grid_size(specs) <= MAX_POINTS_CHECKED:
        points: Iterator[dict[str, Value]] = grid(specs)
    else:
        points = ({s.key: v} for s in specs for v in s.values)
    for point in points:
        problems = point_problems(point, cfg)
        any_valid = any_valid or not problems
        for key, v in point.items():
            if (key, v) not in unseen:
                continue
            if not problems:
                unseen.discard((key, v))
            elif any(p.startswith(key + ":") for p in problems):
                blamed.setdefault((key, v), _reason_for(key, problems))
            else:
                cleared.add((key, v))
        if not unseen and any_valid:
            return
    for s in specs:
        for v in s.values:
            if (s.key, v) in unseen and (s.key, v) not in cleared:
                raise ParamError(f"--param {s.flag!r} is not allowed -- {s.key} = {v!r} is valid in no "
                                 f"combination: {blamed.get((s.key, v), 'refused by the strategy')}")
    if not any_valid:
        first = next(grid(specs))
        raise ParamError(f"--param: no combination of {', '.join(repr(s.flag) for s in specs)} is allowed -- "
                         f"e.g. {point_label(first)}: {'; '.join(point_problems(first, cfg))}")


def _reason_for(key: str, problems: Sequence[str]) -> str:
    """The problem naming this parameter if one does, else the first."""
    for p in problems:
        if p.startswith(key + ":"):
            return p
    return problems[0]


def apply_point(cfg: Config, point: Point) -> Config:
    """`cfg` with the point's values in its strategies' params: what one backtest of the sweep runs."""
    strategies = dict(cfg.strategies)
    for key, v in point.items():
        name, _, param = key.partition(".")
        spec = strategies[name]
        strategies[name] = dataclasses.replace(spec, params={**spec.params, param: v})
    return dataclasses.replace(cfg, strategies=strategies)


def point_label(point: Point) -> str:
    return " ".join(f"{k}={v}" for k, v in point.items())

"""A rules strategy's conditions evaluated over a stretch of candles at once (the backtest's bulk fold): the same
three-valued meaning as strategies/rules_expr.py's evaluate_known, one array per condition instead of one call
per candle, so a stretch where no rule can enter (or exit) is proven with array operations.

Each condition kind has its array test: the four comparisons on this candle's values, crosses_above /
crosses_below on this and the previous candle's (False where a previous value is unknown), `and` / `or` of
parts. A node of any other kind is not read (truths() says None): the strategy then folds nothing.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from strategies.candle_fold import column
from strategies.rules_expr import COMPARE, Both, Compare, Either, Node, Operand


class Truths:
    """The codes of a three-valued condition in an int8 array."""

    UNKNOWN, FALSE, TRUE = -1, 0, 1

    @staticmethod
    def code(v: bool | None) -> int:
        return Truths.UNKNOWN if v is None else Truths.TRUE if v else Truths.FALSE

    @staticmethod
    def value(c: int) -> bool | None:
        return None if c == Truths.UNKNOWN else c == Truths.TRUE


@dataclass(frozen=True, slots=True)
class OperandColumn:
    """One operand over the stretch: its value on each candle and on the candle before each (the first's from
    what the strategy remembered), NaN where unknown, and the masks of where they are known."""

    now: np.ndarray
    has: np.ndarray
    before: np.ndarray
    had: np.ndarray


def operand_columns(raw: Mapping[str, list[Any]], remembered: Mapping[str, Any]) -> dict[str, OperandColumn]:
    """The columns of every named operand: `raw` its value on each candle (None: unknown), `remembered` the
    previous candle's values as the strategy kept them (missing: unknown)."""
    out = {}
    for text, values in raw.items():
        x, has = column(values)
        first = remembered.get(text)
        px = np.empty_like(x)
        phas = np.empty_like(has)
        px[:1] = np.nan if first is None else first
        phas[:1] = first is not None
        px[1:], phas[1:] = x[:-1], has[:-1]
        out[text] = OperandColumn(x, has, px, phas)
    return out


def truths(node: Node, needs: Iterable[str], cols: Mapping[str, OperandColumn], m: int) -> np.ndarray | None:
    """The condition on each of m candles as Truths codes (UNKNOWN where an operand it names has no value on
    that candle, as evaluate_known); None where a node is of a kind this module cannot read."""
    known = np.ones(m, dtype=bool)
    for text in needs:
        col = cols.get(text)
        if col is None:
            return None
        known &= col.has
    t = _truth(node, cols, m)
    if t is None:
        return None
    return np.where(known, np.where(t, Truths.TRUE, Truths.FALSE), Truths.UNKNOWN).astype(np.int8)


def _side(o: Operand, cols: Mapping[str, OperandColumn], m: int) -> tuple[np.ndarray, np.ndarray] | None:
    """An operand's (now, before) arrays and where before is known; a number is the same everywhere."""
    if o.number is not None:
        return np.full(m, o.number), np.full(m, o.number)
    col = cols.get(o.text)
    if col is None:
        return None
    return col.now, np.where(col.had, col.before, np.nan)


def _truth(node: Node, cols: Mapping[str, OperandColumn], m: int) -> np.ndarray | None:
    if isinstance(node, Both | Either):
        parts = [_truth(p, cols, m) for p in node.parts]
        if any(p is None for p in parts):
            return None
        out = np.ones(m, dtype=bool) if isinstance(node, Both) else np.zeros(m, dtype=bool)
        for p in parts:
            assert p is not None
            out = (out & p) if isinstance(node, Both) else (out | p)
        return out
    if not isinstance(node, Compare):
        return None
    left, right = _side(node.left, cols, m), _side(node.right, cols, m)
    if left is None or right is None:
        return None
    (a, pa), (b, pb) = left, right
    op = node.op
    with np.errstate(invalid="ignore"):
        if op in COMPARE:
            return COMPARE[op](a, b)
        prev_known = ~(np.isnan(pa) | np.isnan(pb))
        if op == "crosses_above":
            return prev_known & (pa < pb) & (a >= b)
        if op == "crosses_below":
            return prev_known & (pa > pb) & (a <= b)
    return None

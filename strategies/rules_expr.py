"""The condition language of `kind: rules` strategies: a hand-written tokenizer and recursive-descent parser
(never eval) and a three-valued evaluator over one candle's operand values.

Grammar (words are lower case; columns in error messages count from 1):

    condition  := all ( "or" all )*
    all        := part ( "and" part )*
    part       := "(" condition ")" | operand OP operand
    OP         := "<" | "<=" | ">" | ">=" | "crosses_above" | "crosses_below"
    operand    := NUMBER | NAME | NAME "." FIELD
    NUMBER     := ["-"] digits ["." digits]

`and` binds tighter than `or`; a comparison is never chained (`a < b < c` is refused), and no operand is
compared with itself or a number with a number (always true or always false: a typo, not a rule).

Meaning, at a candle close (see evaluate()):
- a < b, a <= b, a > b, a >= b compare this candle's values;
- a crosses_above b: the previous candle had a < b and this one has a >= b; a crosses_below b: the previous
  had a > b and this one a <= b. False when either previous value is unknown (the first warm candle), so a
  cross is only ever seen between two candles where both sides had values;
- a condition whose operands do not all have a value on this candle is unknown (None), not false: an
  indicator still warming up never makes a rule true or false.

A library parser (lark, pyparsing) would be a dependency for ~150 lines of grammar; this one gives error
messages that name the offending token, its column and what is allowed there.
"""
from __future__ import annotations

import difflib
import operator
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

CANDLE_FIELDS = ("open", "high", "low", "close", "volume")
# the plain comparisons and what computes them, for one candle's values (here) or whole columns (rules_fold)
COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
COMPARISONS = tuple(COMPARE)
CROSSES = ("crosses_above", "crosses_below")
OPERATORS = COMPARISONS + CROSSES
KEYWORDS = frozenset(("and", "or", *CROSSES))

_TOKEN = re.compile(r"\s*(?:(?P<number>-?\d+(?:\.\d+)?(?![\w.]))|(?P<name>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?)"
                    r"|(?P<op><=|>=|<|>)|(?P<paren>[()]))")
_OPS_TEXT = "<, <=, >, >=, crosses_above or crosses_below"
_WORD = re.compile(r"[\w.]+")
_SYMBOLS = re.compile(r"[=!<>&|]+")


def _maybe(word: str, choices: Iterable[str]) -> str:
    """" (did you mean X?)" for a near miss, else ""."""
    by_lower = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1)
    return f" (did you mean {by_lower[close[0]]}?)" if close else ""


class ConditionError(ValueError):
    """A condition that does not parse; `str()` says what was found where and what is allowed there."""


@dataclass(frozen=True, slots=True)
class Token:
    kind: str    # number, name, op, paren, end
    text: str
    column: int  # 1-based

    def shown(self) -> str:
        return "the end" if self.kind == "end" else f"{self.text!r} at column {self.column}"


@dataclass(frozen=True, slots=True)
class Operand:
    """A number, a candle field (close...), or an indicator's value (`name`, `name.field`)."""

    text: str                # as written: the key of its value in evaluate()'s mappings
    number: float | None     # the literal's value; None for a name


@dataclass(frozen=True, slots=True)
class Compare:
    left: Operand
    op: str
    right: Operand


@dataclass(frozen=True, slots=True)
class Both:
    parts: tuple[Node, ...]  # and


@dataclass(frozen=True, slots=True)
class Either:
    parts: tuple[Node, ...]  # or


Node = Compare | Both | Either


def tokenize(text: str) -> list[Token]:
    """The tokens of `text`, ending with an `end` token; ConditionError at the first character that
    starts no token."""
    out: list[Token] = []
    pos = 0
    n = len(text)
    while True:
        while pos < n and text[pos].isspace():
            pos += 1
        if pos >= n:
            out.append(Token("end", "", n + 1))
            return out
        m = _TOKEN.match(text, pos)
        if m is None or m.lastgroup is None:
            ch = text[pos]
            w = _WORD.match(text, pos) or _SYMBOLS.match(text, pos)
            shown = w.group() if w is not None else ch
            hint = (f" (write {shown[1]}=)" if shown in ("=>", "=<") else
                    " (there is no equality test: prices are rarely exactly equal; use <= and >=)" if ch in "=!" else
                    " (write and / or, not && / ||)" if ch in "&|" else "")
            raise ConditionError(f"unexpected {shown!r} at column {pos + 1}"
                                 f"{hint}; a condition is made of operands, {_OPS_TEXT}, and, or, ( and )")
        out.append(Token(m.lastgroup, m.group(m.lastgroup), m.start(m.lastgroup) + 1))
        pos = m.end()


class _Parser:
    def __init__(self, text: str, names: Mapping[str, tuple[str, ...]]):
        self.tokens = tokenize(text)
        self.i = 0
        self.names = names

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        t = self.tokens[self.i]
        self.i += 1
        return t

    def condition(self) -> Node:
        parts = [self.all()]
        while self.peek().text == "or" and self.peek().kind == "name":
            self.take()
            parts.append(self.all())
        return parts[0] if len(parts) == 1 else Either(tuple(parts))

    def all(self) -> Node:
        parts = [self.part()]
        while self.peek().text == "and" and self.peek().kind == "name":
            self.take()
            parts.append(self.part())
        return parts[0] if len(parts) == 1 else Both(tuple(parts))

    def part(self) -> Node:
        t = self.peek()
        if t.kind == "paren" and t.text == "(":
            self.take()
            inner = self.condition()
            close = self.peek()
            if not (close.kind == "paren" and close.text == ")"):
                raise ConditionError(f"'(' at column {t.column} is not closed: expected and, or or ')', "
                                     f"found {close.shown()}")
            self.take()
            return inner
        left = self.operand()
        op = self.take()
        if op.text not in OPERATORS or op.kind not in ("op", "name"):
            raise ConditionError(f"expected {_OPS_TEXT} after {left.text!r}, found {op.shown()}"
                                 + _maybe(op.text, OPERATORS))
        right = self.operand()
        if left.number is not None and right.number is not None:
            raise ConditionError(f"{left.text} {op.text} {right.text} compares two numbers; one side must be an "
                                 f"indicator or a candle field")
        if left.text == right.text:
            raise ConditionError(f"{left.text} {op.text} {right.text} compares {left.text!r} with itself; "
                                 f"compare it with another operand")
        return Compare(left, op.text, right)

    def operand(self) -> Operand:
        t = self.take()
        if t.kind == "number":
            return Operand(t.text, float(t.text))
        if t.kind == "name" and t.text not in KEYWORDS:
            name, _, field = t.text.partition(".")
            if name not in self.names:
                near = _maybe(name, [*self.names, *KEYWORDS])
                raise ConditionError(f"unknown name {name!r} at column {t.column}{near}; "
                                     f"expected {self.operands_allowed()}")
            fields = self.names[name]
            if field and field not in fields:
                what = (f"{name} has no fields" if not fields else
                        f"{name} has the fields {', '.join(fields)}")
                raise ConditionError(f"unknown field {t.text!r} at column {t.column}{_maybe(field, fields)}; {what}")
            if not field and fields:
                raise ConditionError(f"{name!r} at column {t.column} needs a field; write "
                                     f"{' or '.join(f'{name}.{f}' for f in fields)}")
            return Operand(t.text, None)
        raise ConditionError(f"expected an operand, found {t.shown()}; an operand is "
                             f"{self.operands_allowed()}")

    def operands_allowed(self) -> str:
        return f"a number or one of {', '.join(self.names)}"


def parse(text: str, names: Mapping[str, tuple[str, ...]]) -> Node:
    """The condition in `text`. `names` maps each name an operand may use to its fields (() for a single
    value). ConditionError says what is wrong, where, and what is allowed."""
    if not isinstance(text, str) or not text.strip():
        raise ConditionError("empty condition; expected a comparison such as: close > sma20")
    p = _Parser(text, names)
    node = p.condition()
    t = p.peek()
    if t.kind != "end":
        after = "')' without a '(' to close" if t.text == ")" else t.shown()
        raise ConditionError(f"expected and, or or the end, found {after}"
                             + (f" at column {t.column}" if t.text == ")" else _maybe(t.text, ("and", "or"))))
    return node


def operands(node: Node) -> list[Operand]:
    """Every operand that is not a number, in order, each once."""
    seen: dict[str, Operand] = {}

    def walk(n: Node) -> None:
        if isinstance(n, Compare):
            for o in (n.left, n.right):
                if o.number is None:
                    seen.setdefault(o.text, o)
        else:
            for part in n.parts:
                walk(part)

    walk(node)
    return list(seen.values())


def evaluate(node: Node, now: Mapping[str, float | None], before: Mapping[str, float | None]) -> bool | None:
    """The condition at a candle: `now` holds this candle's value of every named operand, `before` the
    previous candle's (missing or None: unknown). None when any operand lacks a value now."""
    return evaluate_known(node, [o.text for o in operands(node)], now, before)


def evaluate_known(node: Node, needs: Iterable[str], now: Mapping[str, float | None],
                   before: Mapping[str, float | None]) -> bool | None:
    """evaluate() with the operands listed once beforehand (`needs`: the texts operands() gives), so a
    strategy does not walk the tree twice per candle."""
    for text in needs:
        if now.get(text) is None:
            return None
    return _truth(node, now, before)


def _value(o: Operand, values: Mapping[str, float | None]) -> float | None:
    return o.number if o.number is not None else values.get(o.text)


def _truth(node: Node, now: Mapping[str, float | None], before: Mapping[str, float | None]) -> bool:
    if isinstance(node, Both):
        return all(_truth(p, now, before) for p in node.parts)
    if isinstance(node, Either):
        return any(_truth(p, now, before) for p in node.parts)
    a, b = _value(node.left, now), _value(node.right, now)
    assert a is not None and b is not None  # evaluate() checked every operand
    op = node.op
    if op in COMPARE:
        return bool(COMPARE[op](a, b))
    pa, pb = _value(node.left, before), _value(node.right, before)
    if pa is None or pb is None:
        return False
    if op == "crosses_above":
        return pa < pb and a >= b
    return pa > pb and a <= b  # crosses_below

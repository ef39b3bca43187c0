"""The rules condition language: what parses into what, what is refused with which message, and the
three-valued meaning at a candle."""
from __future__ import annotations

import pytest

from strategies.rules_expr import Both, Compare, ConditionError, Either, Operand, evaluate, operands, parse, tokenize

NAMES = {"fast": (), "slow": (), "rsi14": (), "bb": ("middle", "upper", "lower"), "close": (), "volume": (),
         "atr": ()}


def op(text: str) -> Operand:
    try:
        return Operand(text, float(text))
    except ValueError:
        return Operand(text, None)


def cmp(a: str, o: str, b: str) -> Compare:
    return Compare(op(a), o, op(b))


# ---------------------------------------------------------------- parsing

def test_tokens_carry_their_column():
    toks = tokenize("(fast>=-2.5) or bb.upper crosses_above close")
    assert [(t.kind, t.text, t.column) for t in toks] == [
        ("paren", "(", 1), ("name", "fast", 2), ("op", ">=", 6), ("number", "-2.5", 8), ("paren", ")", 12),
        ("name", "or", 14), ("name", "bb.upper", 17), ("name", "crosses_above", 26), ("name", "close", 40),
        ("end", "", 45)]


@pytest.mark.parametrize("text, tree", [
    ("fast > slow", cmp("fast", ">", "slow")),
    ("fast crosses_above slow", cmp("fast", "crosses_above", "slow")),
    ("rsi14 crosses_below 70", cmp("rsi14", "crosses_below", "70")),
    ("close <= bb.lower", cmp("close", "<=", "bb.lower")),
    ("volume >= 1000 and close < -1.5", Both((cmp("volume", ">=", "1000"), cmp("close", "<", "-1.5")))),
    # and binds tighter than or
    ("fast > 1 or slow > 2 and close > 3",
     Either((cmp("fast", ">", "1"), Both((cmp("slow", ">", "2"), cmp("close", ">", "3")))))),
    ("(fast > 1 or slow > 2) and close > 3",
     Both((Either((cmp("fast", ">", "1"), cmp("slow", ">", "2"))), cmp("close", ">", "3")))),
    ("((fast > slow))", cmp("fast", ">", "slow")),
    ("fast > 1 and slow > 2 and close > 3",
     Both((cmp("fast", ">", "1"), cmp("slow", ">", "2"), cmp("close", ">", "3")))),
    ("  50 crosses_above  rsi14 ", cmp("50", "crosses_above", "rsi14")),
])
def test_good_conditions_parse_to_their_tree(text, tree):
    assert parse(text, NAMES) == tree


@pytest.mark.parametrize("text, message", [
    ("", "empty condition; expected a comparison such as: close > sma20"),
    ("fst > slow", "unknown name 'fst' at column 1 (did you mean fast?); expected a number or one of fast, slow, "
                   "rsi14, bb, close, volume, atr"),
    ("fast crosses_abov slow", "expected <, <=, >, >=, crosses_above or crosses_below after 'fast', found "
                               "'crosses_abov' at column 6 (did you mean crosses_above?)"),
    ("fast >", "expected an operand, found the end; an operand is a number or one of fast, slow, rsi14, bb, close, "
               "volume, atr"),
    ("fast > and", "expected an operand, found 'and' at column 8"),
    ("(fast > slow", "'(' at column 1 is not closed: expected and, or or ')', found the end"),
    ("fast > slow)", "expected and, or or the end, found ')' without a '(' to close at column 12"),
    ("fast > slow AND close > 1", "found 'AND' at column 13 (did you mean and?)"),
    ("fast > slow > 3", "expected and, or or the end, found '>' at column 13"),
    ("bb > close", "'bb' at column 1 needs a field; write bb.middle or bb.upper or bb.lower"),
    ("bb.uper > close", "unknown field 'bb.uper' at column 1 (did you mean upper?); bb has the fields middle, "
                        "upper, lower"),
    ("close.x > 3", "unknown field 'close.x' at column 1; close has no fields"),
    ("close == fast", "unexpected '==' at column 7 (there is no equality test"),
    ("close => fast", "unexpected '=>' at column 7 (write >=)"),
    ("fast > 1 && slow > 1", "unexpected '&&' at column 10 (write and / or, not && / ||)"),
    ("5abc > close", "unexpected '5abc' at column 1"),
    ("close > fast $", "unexpected '$' at column 14"),
    ("1 < 2", "1 < 2 compares two numbers; one side must be an indicator or a candle field"),
    ("close > close", "compares 'close' with itself"),
    ("fast and slow", "expected <, <=, >, >=, crosses_above or crosses_below after 'fast', found 'and' at column 6"),
])
def test_bad_conditions_name_the_token_its_column_and_what_is_allowed(text, message):
    with pytest.raises(ConditionError) as e:
        parse(text, NAMES)
    assert message in str(e.value)


def test_the_parser_never_evaluates_python():
    # what eval() would run is just an unknown name here
    with pytest.raises(ConditionError, match="unknown name '__import__'"):
        parse("__import__ > 1", NAMES)
    with pytest.raises(ConditionError, match="unexpected"):
        parse("fast > slow; import os", NAMES)


def test_operands_lists_each_named_operand_once_in_order():
    node = parse("fast crosses_above slow and (close > fast or bb.upper < 3)", NAMES)
    assert [o.text for o in operands(node)] == ["fast", "slow", "close", "bb.upper"]


# ---------------------------------------------------------------- meaning

def test_comparisons_at_a_candle():
    now = {"fast": 10.0, "slow": 10.0, "close": 9.0}
    assert evaluate(parse("fast >= slow", NAMES), now, {}) is True
    assert evaluate(parse("fast > slow", NAMES), now, {}) is False
    assert evaluate(parse("fast <= slow and close < 9.5", NAMES), now, {}) is True
    assert evaluate(parse("fast < slow or close > 9.5", NAMES), now, {}) is False
    assert evaluate(parse("fast < slow or close < 9.5", NAMES), now, {}) is True


def test_a_condition_with_an_operand_not_ready_is_unknown_not_false():
    node = parse("fast > 1 or slow > 1", NAMES)
    assert evaluate(node, {"fast": 5.0, "slow": None}, {}) is None   # even though one side is already true
    assert evaluate(node, {"fast": 5.0}, {}) is None


@pytest.mark.parametrize("before, now, above, below", [
    ((9.0, 10.0), (10.0, 10.0), True, False),   # from below to equal: crossed above
    ((9.0, 10.0), (11.0, 10.0), True, False),
    ((10.0, 10.0), (11.0, 10.0), False, False),  # from equal: no cross (it was counted when it got there)
    ((11.0, 10.0), (10.0, 10.0), False, True),
    ((11.0, 10.0), (9.0, 10.0), False, True),
    ((9.0, 10.0), (9.5, 10.0), False, False),
    ((None, 10.0), (11.0, 10.0), False, False),  # no previous value: no cross, but known (False)
])
def test_crosses_compare_the_previous_candle_with_this_one(before, now, above, below):
    b = {"fast": before[0], "slow": before[1]}
    n = {"fast": now[0], "slow": now[1]}
    assert evaluate(parse("fast crosses_above slow", NAMES), n, b) is above
    assert evaluate(parse("fast crosses_below slow", NAMES), n, b) is below


def test_a_number_crossed_by_an_indicator():
    node = parse("rsi14 crosses_above 30", NAMES)
    assert evaluate(node, {"rsi14": 30.0}, {"rsi14": 29.9}) is True
    assert evaluate(node, {"rsi14": 31.0}, {"rsi14": 30.0}) is False

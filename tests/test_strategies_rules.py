"""`kind: rules` driven the way the worker drives it: hand-built candles with the values worked out in the
comments, the config checks, a restore mid-day, and rules that say what the rsi and momentum classes say
trading identically to them on random candles."""
from __future__ import annotations

import copy
import json
import statistics
from datetime import time as dtime
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from core.config import ConfigError, SessionConfig, parse_config
from core.enums import PositionSide, SignalType
from strategies import strategy_class, validate_params
from strategies.rules import RulesStrategy
from tests.test_config import BASE, run_driver
from tests.test_strategies_ma import DAY2, SESSION, UP, Worker, at, candle_ticks, mirror, only, random_days, tick

LONG, SHORT = PositionSide.LONG, PositionSide.SHORT
ENTRY, EXIT = SignalType.ENTRY, SignalType.EXIT
ATR5 = 68 / 27   # ATR(3) of UP's five candles (tests/test_strategies_ma.py)
SMAS = {"fast": {"sma": 2}, "slow": {"sma": 3}}


def make(rules, indicators=None, **params) -> RulesStrategy:
    return RulesStrategy("LT", "mine", {"indicators": SMAS if indicators is None else indicators, "rules": rules,
                                        **params}, SESSION)


def warmed(s: RulesStrategy, cs=UP) -> Worker:
    w = Worker(s)
    assert only(w.feed(candle_ticks(cs, at(9, 15)))) == []
    return w


# UP closes 100, 100, 99, 98, 102. SMA(2): -, 100, 99.5, 98.5, 100; SMA(3): -, -, 99.667, 99, 99.667.
# Candle 3 is the first with both (no previous values: no cross); candle 4: 98.5 < 99, no cross; candle 5:
# from 98.5 < 99 to 100 >= 99.667 -> crosses_above, acted on by the tick that closes candle 5 (09:20).
CROSS_UP = {"side": "long", "when": "fast crosses_above slow"}


def test_long_on_a_cross_with_a_percent_stop_and_a_price_target():
    w = warmed(make({"up": {**CROSS_UP, "stop": "1%", "target": 3}}))
    sig = w.at(at(9, 20), 102.1)
    assert len(w.candles) == 5 and sig.type is ENTRY and sig.current_position is LONG
    assert (sig.time, sig.price, sig.strategy) == (at(9, 20), 102.1, "mine")
    assert sig.stop_loss == pytest.approx(102 - 1.02, abs=1e-12) and sig.take_profit_price == 105.0
    assert sig.note == ("rule up: fast crosses_above slow (fast 100.0000, slow 99.6667); stop 1%, target 3; "
                        f"stop {sig.stop_loss:.4f}")
    assert w.at(at(9, 20, 10), 100.99) is None
    ex = w.at(at(9, 20, 20), 100.98)
    assert ex.type is EXIT and ex.note.startswith("stop hit at 100.98") and w.s.position is None
    w = warmed(make({"up": {**CROSS_UP, "stop": "1%", "target": 3}}))
    w.at(at(9, 20), 102.1)
    assert w.at(at(9, 20, 10), 105.0).note.startswith("target reached at 105.0")


def test_the_exit_condition_of_the_rule_that_entered():
    w = warmed(make({"up": {**CROSS_UP, "exit": "fast < slow", "stop": "5%"}}))
    w.at(at(9, 20), 102.1)
    # candle 6 (opened by the entry tick) closes 101: SMA(2) 101.5 > SMA(3) 100.333; candle 7 closes 99:
    # SMA(2) 100 < SMA(3) 100.667 -> exit on the tick that closes it
    assert only(w.feed(candle_ticks([(102.1, 102.1, 101, 101), (101, 101, 99, 99)], at(9, 20))[1:])) == []
    ex = w.at(at(9, 22), 99.2)
    assert ex.type is EXIT and ex.current_position is LONG and ex.price == 99.2
    assert ex.note == "rule up exit: fast < slow (fast 100.0000, slow 100.6667)"


def test_short_with_an_atr_stop_waits_for_the_atr():
    # mirrored candles: closes 100, 100, 101, 102, 98 -> crosses_below at candle 5; ATR(3) 68/27 there
    down = {"side": "short", "when": "fast crosses_below slow", "stop": "1.5 atr", "target": "2 atr"}
    w = warmed(make({"down": down}, atr_period=3), mirror(UP))
    sig = w.at(at(9, 20), 97.9)
    assert sig.type is ENTRY and sig.current_position is SHORT
    assert sig.stop_loss == pytest.approx(98 + 1.5 * ATR5, abs=1e-12)
    assert sig.take_profit_price == pytest.approx(98 - 2 * ATR5, abs=1e-12)
    assert sig.extra == {"atr": pytest.approx(ATR5, abs=1e-12)} and f"ATR(3) {ATR5:.4f}" in sig.note
    w = warmed(make({"down": down}, atr_period=6), mirror(UP))      # ATR(6) not ready at candle 5
    assert w.at(at(9, 20), 97.9) is None
    w = warmed(make({"down": {**down, "stop": 0.5, "target": None}}, atr_period=6), mirror(UP))  # no ATR needed
    sig = w.at(at(9, 20), 97.9)
    assert (sig.stop_loss, sig.take_profit_price, sig.extra) == (98.5, None, {"atr": None})


def test_no_entry_when_a_price_offset_would_put_the_stop_or_target_below_zero():
    assert warmed(make({"up": {**CROSS_UP, "stop": 102}})).at(at(9, 20), 102.1) is None
    down = {"side": "short", "when": "fast crosses_below slow", "stop": 1, "target": 98}
    assert warmed(make({"down": down}), mirror(UP)).at(at(9, 20), 97.9) is None
    sig = warmed(make({"down": {**down, "target": 97.5}}), mirror(UP)).at(at(9, 20), 97.9)
    assert (sig.stop_loss, sig.take_profit_price) == (99.0, 0.5)


def test_the_first_rule_that_wants_an_entry_wins():
    # candle 5 also makes "close > fast" true (102 > 100) after candle 4's false (98 > 98.5)
    both = {"up": CROSS_UP, "fade": {"side": "short", "when": "close > fast"}}
    assert warmed(make(both, stop=1)).at(at(9, 20), 102.1).current_position is LONG
    both = {"fade": both["fade"], "up": CROSS_UP}
    sig = warmed(make(both, stop=1)).at(at(9, 20), 101.9)
    assert sig.current_position is SHORT and sig.stop_loss == 103.0 and sig.note.startswith("rule fade:")


def test_an_entry_fires_when_its_condition_becomes_true_not_while_it_stays_true():
    # close > 99.5: candle 1 true but the first candle is the reference; 2 true; 3, 4 false; 5 true -> entry
    w = Worker(make({"above": {"side": "long", "when": "close > 99.5", "stop": 0.2}}, indicators={}))
    sigs = w.feed(candle_ticks(UP, at(9, 15)) + [tick(at(9, 20), 102.0)])
    assert [(s.type, s.time) for s in only(sigs)] == [(ENTRY, at(9, 20))]
    assert w.at(at(9, 20, 5), 101.8).note.startswith("stop hit")
    # still above 99.5 at the next closes: no new entry; below then above again: entry
    sigs = w.feed(candle_ticks([(101.8, 102, 101.8, 102), (102, 102, 99, 99), (99, 100, 99, 100)], at(9, 20))[2:]
                  + [tick(at(9, 23), 100.1)])
    assert [(s.type, s.time) for s in only(sigs)] == [(ENTRY, at(9, 23))]


def test_indicator_fields_in_a_condition():
    # Bollinger(3, 1) at candle 5: window 99, 98, 102 -> upper = mean + 1 x population sd
    w = warmed(make({"breakout": {"side": "long", "when": "close > bb.upper and close > lo", "stop": "1%"}},
                    indicators={"bb": {"bollinger": [3, 1]}, "lo": {"lowest": {"period": 2, "source": "close"}}}))
    upper = statistics.fmean([99, 98, 102]) + statistics.pstdev([99, 98, 102])
    sig = w.at(at(9, 20), 102.1)
    assert sig.type is ENTRY and f"bb.upper {upper:.4f}" in sig.note
    # candle 4's close 98 was below the band: the condition became true at candle 5, not before
    assert w.s.state_dict()["extra"]["was"] == [True]


def test_an_opening_range_starts_at_the_session_open():
    # session from 09:30: a 5-minute range of candles 09:30-09:34 (high 101), known when 09:34 closes (close
    # 100: false); 09:35 closes 102 > 101 -> entry on the tick at 09:36
    s = RulesStrategy("LT", "orb", {"indicators": {"orb": {"opening_range": 5}}, "stop": 1,
                                    "rules": {"breakout": {"side": "long", "when": "close > orb.high"}}},
                      SessionConfig(open=dtime(9, 30)))
    w = Worker(s)
    assert only(w.feed(candle_ticks([(100, 101, 99, 100)] * 5 + [(100, 102, 100, 102)], at(9, 30)))) == []
    sig = w.at(at(9, 36), 102.1)
    assert sig.type is ENTRY and "(close 102, orb.high 101)" in sig.note and sig.stop_loss == 101.0


def test_end_of_day_cutoff_and_a_new_day_start_cold():
    w = warmed(make({"up": CROSS_UP}, stop="1%", exit_at="09:25"))
    w.at(at(9, 20), 102.1)
    assert w.at(at(9, 25), 102.0).note == "end of day"
    w = warmed(make({"up": CROSS_UP}, stop="1%"))
    w.at(at(9, 20), 102.1)
    ex = w.at(at(9, 15, d=DAY2), 100.0)
    assert ex.type is EXIT and "end of day" in ex.note
    got = only(w.feed(candle_ticks(UP, at(9, 15, d=DAY2))[1:] + [tick(at(9, 20, d=DAY2), 102.1)]))
    assert [(s.type, s.time) for s in got] == [(ENTRY, at(9, 20, d=DAY2))]


def test_registered_as_rules():
    assert strategy_class("rules") is RulesStrategy
    assert make({"up": CROSS_UP}, stop=1, candle_seconds=300).candle_seconds == 300


# ---------------------------------------------------------------- parameters and --check

GOOD = {"indicators": SMAS, "stop": "2 atr", "rules": {"up": CROSS_UP}}


@pytest.mark.parametrize("change, problem", [
    ({"stops": 1}, "stops: unknown parameter -- allowed are candle_seconds, atr_period, exit_at, stop, target, "
                   "indicators, rules"),
    ({"candle_seconds": 7}, "candle_seconds: 7 is not allowed -- must divide 3600"),
    ({"atr_period": 0}, "atr_period: 0 is not allowed -- expected a whole number of at least 1"),
    ({"exit_at": "3pm"}, "exit_at: '3pm' is not allowed"),
    ({"stop": "two atr"}, "stop: 'two atr' is not allowed -- expected a price offset (5), a percent of the entry "
                          "candle's close (\"1.5%\") or ATR multiples (\"2 atr\"), greater than 0"),
    ({"stop": "100%"}, "stop: '100%' is not allowed -- a percent stop must be below 100%"),
    ({"target": 0}, "target: 0 is not allowed"),
    ({"indicators": {"fast": {"sma": 0}, "slow": {"sma": 3}}},
     "indicators.fast.period: 0 is not allowed -- expected a whole number of at least 1"),
    ({"indicators": {**SMAS, "bb": {"bollinger": [20, 2, "close", 1]}}},
     "indicators.bb: [20, 2, 'close', 1] is not allowed -- bollinger takes period, k, source"),
    ({"indicators": {**SMAS, "x": {"kama": 9}}}, "indicators.x: 'kama' is not allowed -- unknown indicator; "
                                                 "expected one of sma, ema, rsi, atr, bollinger, macd"),
    ({"indicators": {**SMAS, "m": {"macd": {"fast": 26, "slow": 12}}}},
     "indicators.m.slow: 12 is not allowed -- must be greater than fast (26)"),
    ({"indicators": {**SMAS, "close": {"sma": 5}}}, "indicators.close: the name 'close' is not allowed"),
    ({"indicators": [1]}, "indicators: [1] is not allowed -- expected a mapping of names to indicators"),
    ({"rules": {}}, "rules: {} is not allowed -- expected a mapping of named rules"),
    ({"rules": {"up": {**CROSS_UP, "side": "buy"}}}, "rules.up.side: 'buy' is not allowed -- expected long or short"),
    ({"rules": {"up": {"side": "long"}}}, "rules.up.when: missing -- give the entry condition"),
    ({"rules": {"up": {**CROSS_UP, "colour": 1}}}, "rules.up.colour: unknown key -- allowed keys are side, when, "
                                                   "exit, stop, target"),
    ({"rules": {"up": {**CROSS_UP, "when": "fast crosses_abov slow"}}},
     "rules.up.when: 'fast crosses_abov slow' is not allowed -- expected <, <=, >, >=, crosses_above or "
     "crosses_below after 'fast', found 'crosses_abov' at column 6 (did you mean crosses_above?)"),
    ({"rules": {"up": {**CROSS_UP, "exit": "fst < slow"}}},
     "rules.up.exit: 'fst < slow' is not allowed -- unknown name 'fst' at column 1 (did you mean fast?); expected "
     "a number or one of fast, slow, open, high, low, close, volume, atr"),
    ({"rules": {"up": {**CROSS_UP, "stop": "1.5 %x"}}}, "rules.up.stop: '1.5 %x' is not allowed"),
    ({"stop": None}, "rules.up.stop: missing -- give the rule a stop, or params.stop for every rule"),
])
def test_bad_params_name_the_rule_and_the_token(change, problem):
    problems = RulesStrategy.validate_params({**GOOD, **change})
    assert len(problems) == 1 and problems[0].startswith(problem), problems
    with pytest.raises(ValueError):
        RulesStrategy("LT", "mine", {**GOOD, **change}, SESSION)


def test_every_problem_is_reported():
    problems = RulesStrategy.validate_params({"indicators": {"a": {"sma": -1}}, "stop": "x",
                                              "rules": {"r": {"side": "up", "when": "b > 1"}}})
    assert [p.split(":")[0] for p in problems] == ["stop", "indicators.a.period", "rules.r.side", "rules.r.when"]


def _with_rules(rules_params) -> dict:
    raw = copy.deepcopy(BASE)
    raw["strategies"]["mine"] = {"kind": "rules", "params": rules_params}
    raw["symbols"].append({"symbol": "NTPC", "strategy": "mine"})
    return raw


def test_config_checks_a_rules_strategy_and_names_it():
    cfg = parse_config(_with_rules(GOOD))
    assert cfg.strategies["mine"].kind == "rules" and cfg.symbol("NTPC").strategy == "mine"
    bad = {**GOOD, "rules": {"up": {**CROSS_UP, "when": "fast crosses_above slow and close >> 3"}}}
    with pytest.raises(ConfigError) as e:
        parse_config(_with_rules(bad))
    assert e.value.problems == [
        "strategies.mine.params.rules.up.when: 'fast crosses_above slow and close >> 3' is not allowed -- "
        "expected an operand, found '>' at column 36; an operand is a number or one of fast, slow, open, high, "
        "low, close, volume, atr"]


def test_check_exits_2_on_a_bad_rule(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(_with_rules({**GOOD, "rules": {"up": {**CROSS_UP, "when": "fast > sloow"}}})))
    r = run_driver("--check", "--config", str(p), env_extra={"APP_KEY": "k" * 32,
                                                             "DATABASE_URL": f"sqlite:///{tmp_path / 'c.sqlite'}"})
    assert r.returncode == 2, r.stdout + r.stderr
    assert ("strategies.mine.params.rules.up.when: 'fast > sloow' is not allowed -- unknown name 'sloow' at "
            "column 8 (did you mean slow?)") in r.stdout
    assert "Traceback" not in r.stdout + r.stderr


def test_commented_config_example_is_valid():
    text = (Path(__file__).resolve().parent.parent / "config.yaml").read_text()
    block = text[text.index("  # A strategy written as rules"):text.index("  # Two more kinds")].splitlines()[1:]
    examples = yaml.safe_load("\n".join(line.replace("  # ", "", 1) for line in block))
    assert [spec["kind"] for spec in examples.values()] == ["rules"]
    for spec in examples.values():
        assert validate_params("rules", spec["params"]) == []
        s = RulesStrategy("LT", "x", spec["params"], SESSION)
        assert only(Worker(s).feed(random_days(4)))   # it trades


# ---------------------------------------------------------------- determinism and state

MIXED = {
    "atr_period": 7, "stop": "3 atr",
    "indicators": {"fast": {"ema": 5}, "slow": {"sma": 13}, "bb": {"bollinger": [20, 2]}, "r": {"rsi": 7},
                   "hi": {"highest": 15}, "m": {"macd": [5, 13, 4]}},
    "rules": {
        "trend": {"side": "long", "when": "fast crosses_above slow and m.histogram > 0", "exit": "close < slow",
                  "target": "1%"},
        "fade": {"side": "short", "when": "r crosses_below 70 or close > bb.upper", "exit": "r <= 45",
                 "stop": 2.5},
        "breakdown": {"side": "short", "when": "(close < bb.lower and volume > 0) or high >= hi", "stop": "0.5%"},
    },
}


@pytest.mark.parametrize("seed", [4, 5])
def test_restored_strategy_emits_the_same_signals(seed):
    ticks = random_days(seed)
    expected = only(Worker(RulesStrategy("LT", "mine", MIXED, SESSION)).feed(ticks))
    assert {(s.type, s.note.split(" ")[1]) for s in expected if s.type is ENTRY} == {
        (ENTRY, "trend:"), (ENTRY, "fade:"), (ENTRY, "breakdown:")}
    for cut in range(0, len(ticks), max(1, len(ticks) // 11)):
        w = Worker(RulesStrategy("LT", "mine", MIXED, SESSION))
        got = only(w.feed(ticks[:cut]))
        saved = json.loads(json.dumps({"s": w.s.state_dict(), "agg": w.agg.state_dict()}, allow_nan=False))
        r = Worker(RulesStrategy("LT", "mine", MIXED, SESSION))
        r.s.load_state(saved["s"])
        r.agg.load_state(saved["agg"])
        assert r.s.state_dict() == w.s.state_dict() and r.s.pending == w.s.pending
        got += only(r.feed(ticks[cut:]))
        assert got == expected, f"diverged after restoring at tick {cut}"


def test_load_state_refuses_other_rules():
    state = RulesStrategy("LT", "mine", MIXED, SESSION).state_dict()
    other = copy.deepcopy(MIXED)
    other["rules"]["fade"]["stop"] = 3
    with pytest.raises(ValueError, match="different params"):
        RulesStrategy("LT", "mine", other, SESSION).load_state(state)


# ---------------------------------------------------------------- same logic, same trades

def _key(s) -> tuple:
    """What is traded: everything but the note."""
    return (s.type, s.current_position, s.time, s.price, s.stop_loss, s.take_profit_price, s.extra)


def _ticks(days) -> list:
    """Four ticks per one-minute candle from 09:15 of each day (a pre-open tick first): moves in paise x 5."""
    out = []
    for d, candles in zip((at(9, 15), at(9, 15, d=DAY2)), days, strict=False):
        price = 500.0
        out.append(tick(d - 600, 480.0))
        cs = []
        for move, up, down in candles:
            o, c = price, round(price + 0.05 * move, 2)
            cs.append((o, round(max(o, c) + 0.05 * up, 2), round(min(o, c) - 0.05 * down, 2), c))
            price = c
        out += candle_ticks(cs, d)
    return out


def _trade_identically(cls_kind: str, cls_params: dict, rules_params: dict, days, refuse) -> None:
    ticks = _ticks(days)
    a = Worker(strategy_class(cls_kind)("LT", "x", cls_params, SESSION))
    b = Worker(RulesStrategy("LT", "x", rules_params, SESSION))
    n = 0
    for tk in ticks:
        sa, sb = a.feed([tk])[0], b.feed([tk])[0]
        assert (sa and _key(sa)) == (sb and _key(sb)), f"tick {tk.exch_feed_time}: {sa} vs {sb}"
        if sa is not None and sa.type is ENTRY:   # the TradeManager refused some entries: both forget them
            n += 1
            if n in refuse:
                a.s.discard_signal()
                b.s.discard_signal()


CANDLES = st.lists(st.tuples(st.integers(-8, 8), st.integers(0, 4), st.integers(0, 4)), min_size=40, max_size=200)
DAYS = st.lists(CANDLES, min_size=1, max_size=2)
REFUSE = st.sets(st.integers(1, 10), max_size=3)
ATR = {"atr_period": st.integers(1, 6), "atr_multiple": st.sampled_from([0.5, 1.0, 2.0, 3.5]),
       "take_profit_atr": st.sampled_from([0.0, 1.0, 2.5]), "exit_at": st.sampled_from(["15:05", "10:30", "09:40"])}


def _levels(p: dict) -> dict:
    out = {"atr_period": p["atr_period"], "exit_at": p["exit_at"], "stop": f"{p['atr_multiple']} atr"}
    if p["take_profit_atr"] > 0:
        out["target"] = f"{p['take_profit_atr']} atr"
    return out


@settings(max_examples=150, deadline=None)
@given(st.fixed_dictionaries({"period": st.integers(2, 6), "oversold": st.sampled_from([20, 30, 42.5]),
                              "overbought": st.sampled_from([57.5, 70, 80]), "exit_level": st.sampled_from([45, 50]),
                              **ATR}), DAYS, REFUSE)
def test_rules_trade_like_the_rsi_class(p, days, refuse):
    rules = {**_levels(p), "indicators": {"r": {"rsi": p["period"]}}, "rules": {
        "long": {"side": "long", "when": f"r crosses_above {p['oversold']}", "exit": f"r >= {p['exit_level']}"},
        "short": {"side": "short", "when": f"r crosses_below {p['overbought']}", "exit": f"r <= {p['exit_level']}"},
    }}
    _trade_identically("rsi", p, rules, days, refuse)


@settings(max_examples=150, deadline=None)
@given(st.fixed_dictionaries({"roc_period": st.integers(1, 6), "threshold_pct": st.sampled_from([0.05, 0.1, 0.25]),
                              "ema_period": st.integers(1, 9), **ATR}), DAYS, REFUSE)
def test_rules_trade_like_the_momentum_class(p, days, refuse):
    t = p["threshold_pct"]
    rules = {**_levels(p), "indicators": {"roc": {"roc": p["roc_period"]}, "trend": {"ema": p["ema_period"]}},
             "rules": {
                 "long": {"side": "long", "when": f"roc > {t} and close > trend", "exit": "close < trend"},
                 "short": {"side": "short", "when": f"roc < -{t} and close < trend", "exit": "close > trend"},
             }}
    _trade_identically("momentum", p, rules, days, refuse)


def test_rules_trade_like_the_classes_on_the_random_days():
    """The same on the long random days the class tests use, where every kind of exit happens."""
    mom = {"roc_period": 5, "threshold_pct": 0.1, "ema_period": 20, "atr_period": 7, "atr_multiple": 3.0,
           "take_profit_atr": 4.0}
    rules = {"atr_period": 7, "stop": "3.0 atr", "target": "4.0 atr",
             "indicators": {"roc": {"roc": 5}, "trend": {"ema": 20}},
             "rules": {"long": {"side": "long", "when": "roc > 0.1 and close > trend", "exit": "close < trend"},
                       "short": {"side": "short", "when": "roc < -0.1 and close < trend", "exit": "close > trend"}}}
    a, b = [], []
    for seed in (4, 5):
        a += only(Worker(strategy_class("momentum")("LT", "x", mom, SESSION)).feed(random_days(seed)))
        b += only(Worker(RulesStrategy("LT", "x", rules, SESSION)).feed(random_days(seed)))
    assert [_key(s) for s in a] == [_key(s) for s in b] and len(a) > 40
    assert {s.note.split(" ")[0] for s in b if s.type is EXIT} == {"rule", "stop", "target", "end"}

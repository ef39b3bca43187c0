"""What the rsi and momentum kinds share: valid config examples, determinism, and a restore mid-day that
continues with the same signals."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from core.enums import PositionSide, SignalType
from strategies import strategy_class, validate_params
from tests.test_strategies_ma import SESSION, Worker, only, random_days

KINDS = {
    "rsi": {"period": 7, "oversold": 35, "overbought": 65, "atr_period": 7, "atr_multiple": 3.0},
    "momentum": {"roc_period": 5, "threshold_pct": 0.1, "ema_period": 20, "atr_period": 7, "atr_multiple": 3.0,
                 "take_profit_atr": 4.0},
}
# the first word of each kind of exit note, all of which the random days must produce
EXITS = {"rsi": {"RSI(7)", "stop", "end"}, "momentum": {"trend", "stop", "target", "end"}}


def make(kind: str):
    return strategy_class(kind)("LT", kind, KINDS[kind], SESSION)


def test_commented_config_examples_are_valid():
    text = (Path(__file__).resolve().parent.parent / "config.yaml").read_text()
    block = text[text.index("  # Two more kinds"):text.index("default_strategy")].splitlines()[1:]
    examples = yaml.safe_load("\n".join(line.replace("  # ", "", 1) for line in block))
    assert set(examples) == {"rsi", "momentum"}
    for spec in examples.values():
        assert validate_params(spec["kind"], spec["params"]) == []


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", [4, 5])
def test_same_ticks_same_signals(kind, seed):
    ticks = random_days(seed)
    a = only(Worker(make(kind)).feed(ticks))
    assert a == only(Worker(make(kind)).feed(ticks)) and len(a) > 4


@pytest.mark.parametrize("kind", KINDS)
def test_random_days_reach_every_rule(kind):
    sigs = [x for seed in (4, 5) for x in only(Worker(make(kind)).feed(random_days(seed)))]
    assert {x.current_position for x in sigs if x.type is SignalType.ENTRY} == {PositionSide.LONG, PositionSide.SHORT}
    assert {x.note.split(" ")[0] for x in sigs if x.type is SignalType.EXIT} == EXITS[kind]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", [4, 5])
def test_restored_strategy_emits_the_same_signals(kind, seed):
    ticks = random_days(seed)
    expected = only(Worker(make(kind)).feed(ticks))
    for cut in range(0, len(ticks), max(1, len(ticks) // 11)):
        w = Worker(make(kind))
        got = only(w.feed(ticks[:cut]))
        saved = json.loads(json.dumps({"s": w.s.state_dict(), "agg": w.agg.state_dict()}, allow_nan=False))
        r = Worker(make(kind))
        r.s.load_state(saved["s"])
        r.agg.load_state(saved["agg"])
        assert r.s.state_dict() == w.s.state_dict() and r.s.pending == w.s.pending
        got += only(r.feed(ticks[cut:]))
        assert got == expected, f"diverged after restoring at tick {cut}"


@pytest.mark.parametrize("kind", KINDS)
def test_load_state_refuses_other_params_or_kind(kind):
    state = make(kind).state_dict()
    other = strategy_class(kind)("LT", kind, {**KINDS[kind], "atr_period": 9}, SESSION)
    with pytest.raises(ValueError, match="different params"):
        other.load_state(state)
    with pytest.raises(ValueError, match="kind"):
        make("rsi" if kind == "momentum" else "momentum").load_state(state)

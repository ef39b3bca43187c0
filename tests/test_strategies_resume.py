"""Strategy.resume_position: a strategy restarted mid-day with the position the books hold manages it with its own
exits. For each candle kind (mac, rsi, momentum, rules): warmed with the day's candles up to the restart and told
the position, it emits the very exit an uninterrupted run emits. For the opening-range breakout: its stop, its
take-profit and the break-even stop after one. And which ledger trades are told (pipeline.resume)."""
from __future__ import annotations

from datetime import time as dtime
from decimal import Decimal
from typing import Any

import pytest

from core.clock import ist_date, ist_epoch
from core.config import load_config
from core.enums import PositionSide, SignalType
from execution.ledger import OpenTrade
from pipeline.resume import held_positions
from strategies import strategy_class
from strategies.base import HeldPosition, Strategy
from tests.test_strategies_candle import KINDS as CANDLE_KINDS
from tests.test_strategies_ma import PARAMS as MAC_PARAMS
from tests.test_strategies_ma import SESSION, Worker, at, random_days
from tests.test_strategies_orb import opened
from tests.test_strategies_orb import run as orb_run

LONG, SHORT = PositionSide.LONG, PositionSide.SHORT
ENTRY, EXIT = SignalType.ENTRY, SignalType.EXIT
RULES = {"candle_seconds": 60, "atr_period": 7, "stop": "3 atr", "target": "4 atr",
         "indicators": {"fast": {"ema": 5}, "slow": {"ema": 13}},
         "rules": {"up": {"side": "long", "when": "fast crosses_above slow", "exit": "fast crosses_below slow"},
                   "down": {"side": "short", "when": "fast crosses_below slow", "exit": "close > slow"}}}
KINDS: dict[str, dict[str, Any]] = {"ma_crossover": MAC_PARAMS, **CANDLE_KINDS, "rules": RULES}


def make(kind: str) -> Strategy:
    return strategy_class(kind)("LT", kind, KINDS[kind], SESSION)


def held(sig, quantity: int = 10) -> HeldPosition:
    return HeldPosition(sig.current_position, sig.price, sig.time, quantity, quantity, sig.stop_loss,
                        sig.take_profit_price, sig.note)


def restarts(kind: str, seed: int):
    """(the entry, the uninterrupted run's next signal, the tick index of a restart between them), for every
    position of the random days that lasts past a candle boundary: the restart comes at the first tick of a
    candle, as a restarted worker's first candle is whole."""
    ticks = random_days(seed)
    ts = [int(t.exch_feed_time or 0) for t in ticks]
    sigs = Worker(make(kind)).feed(ticks)
    out = []
    for i, s in enumerate(sigs):
        if s is None or s.type is not ENTRY:
            continue
        j = next(k for k in range(i + 1, len(sigs)) if sigs[k] is not None)
        cut = next((k for k in range(i + 1, j + 1) if ts[k] // 60 != ts[k - 1] // 60), None)
        if cut is not None and ist_date(ts[cut]) == ist_date(ts[i]):
            out.append((s, sigs[j], cut))
    return ticks, out


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", [4, 5])
def test_a_resumed_strategy_emits_the_exit_an_uninterrupted_one_does(kind, seed):
    ticks, cases = restarts(kind, seed)
    assert len(cases) >= 5
    kinds_of_exit = set()
    for entry, expected, cut in cases[::max(1, len(cases) // 10)]:  # ten restarts: each replays its day so far
        now = ticks[cut].exch_feed_time
        day = ist_date(now)
        before = Worker(make(kind))
        before.feed([t for t in ticks[:cut + 1] if t.exch_feed_time >= ist_epoch(day, dtime(0, 0))])
        s = make(kind)  # history: the day's session candles up to the restart
        s.warm_up([c for c in before.candles if ist_epoch(day, SESSION.open) <= c.start <= now - c.seconds], now)
        s.resume_position(held(entry), now)
        assert s.position is entry.current_position
        after = [x for x in Worker(s).feed(ticks[cut:]) if x is not None]
        assert after and after[0] == expected, f"restart at tick {cut} after the entry at {entry.time}"
        kinds_of_exit.add(expected.note.split(" ")[0])
    assert len(kinds_of_exit) >= 2, kinds_of_exit  # more than one of its exit rules was exercised


@pytest.mark.parametrize("kind", KINDS)
def test_without_history_a_resumed_position_still_has_its_stop_and_end_of_day(kind):
    s = make(kind)
    now = at(11, 0)
    s.resume_position(HeldPosition(LONG, 100.0, at(10, 30), 10, 10, stop_loss=98.0), now)
    w = Worker(s)
    assert w.at(now + 5, 99.0) is None
    sig = w.at(now + 10, 97.9)
    assert (sig.type, sig.current_position, sig.stop_loss) == (EXIT, LONG, 98.0) and "stop" in sig.note
    s = make(kind)
    s.resume_position(HeldPosition(SHORT, 100.0, at(10, 30), 10, 10, stop_loss=None), now)  # adopted: no stop
    w = Worker(s)
    assert w.at(now + 5, 150.0) is None  # no ATR yet: no stop is made up
    sig = w.at(at(15, 5), 101.0)
    assert (sig.type, sig.current_position, sig.note) == (EXIT, SHORT, "end of day")


def test_a_rules_strategy_resumes_the_exit_of_the_rule_named_in_the_entry_note():
    s = make("rules")
    s.resume_position(HeldPosition(SHORT, 100.0, at(10, 30), 10, 10, 103.0, None, "rule down: fast ..."), at(11, 0))
    assert s._position_rule == "down"
    s.resume_position(HeldPosition(LONG, 100.0, at(10, 30), 10, 10, 97.0, None, "adopted"), at(11, 0))
    assert s._position_rule == "up"  # no rule named: the first of that side


def test_an_opening_range_breakout_resumes_its_stop_and_take_profit():
    s = opened()  # range 99-101: a long breakout at 102 would have stop 99, target 105
    s2 = strategy_class("opening_range_breakout")("SBIN", "orb", {}, SESSION)
    now = at(10, 0)
    s2.resume_position(HeldPosition(LONG, 102.0, at(9, 40), 10, 10, 99.0, 105.0), now)
    assert orb_run(s2, [(now + 1, 104.0)]) == [None]
    tp = orb_run(s2, [(now + 2, 105.0)])[0]
    assert (tp.type, tp.close_fraction, tp.stop_loss) == (SignalType.TAKE_PROFIT, 0.5, 102.0)  # break-even now
    stop = orb_run(s2, [(now + 3, 101.9)])[0]
    assert stop.type is EXIT and "break-even" in stop.note
    # the day's entry is used: no new breakout is taken (nor could a restart trust the range it did not see)
    assert orb_run(s2, [(now + 4, 110.0)]) == [None]
    assert s.position is None


def test_an_opening_range_breakout_whose_take_profit_was_done_resumes_at_break_even():
    s = strategy_class("opening_range_breakout")("SBIN", "orb", {}, SESSION)
    now = at(10, 0)
    s.resume_position(HeldPosition(SHORT, 98.0, at(9, 40), 10, 5, 101.0, 95.0), now)
    assert orb_run(s, [(now + 1, 94.0)]) == [None]  # the take-profit is done: not again
    stop = orb_run(s, [(now + 2, 98.0)])[0]
    assert (stop.type, stop.current_position, stop.stop_loss) == (EXIT, SHORT, 98.0)


def test_the_base_class_believes_the_side():
    s = strategy_class("opening_range_breakout")("SBIN", "orb", {}, SESSION)
    Strategy.resume_position(s, HeldPosition(LONG, 1.0, 0, 1, 1), 0)
    assert s.position is LONG


def trade(symbol: str, strategy: str, entry_time: int, **kw) -> OpenTrade:
    return OpenTrade(trade_id=kw.pop("trade_id", 1), symbol=symbol, strategy=strategy, side=LONG, entry_time=entry_time,
                     entry_price=Decimal("100.5"), quantity=10, remaining=kw.pop("remaining", 10),
                     allocated=Decimal(200), margin_multiplier=Decimal(5), stop_loss=Decimal("99.25"), **kw)


def test_only_trades_of_the_symbol_s_own_strategy_opened_before_the_start_are_resumed():
    cfg = load_config()
    lt = next(s for s in cfg.symbols if s.symbol == "LT")
    now = at(11, 0)
    got = held_positions([trade("LT", lt.strategy, now - 60),
                          trade("SBIN", "adopted", now - 60, trade_id=2),       # not its strategy's
                          trade("ITC", "mac", now, trade_id=3),                # the run's own ticks open it
                          trade("NIFTY25DEC24000CE", "mac", now - 60, trade_id=4)],  # no strategy runs on it
                         cfg, now, lambda t: f"note {t.trade_id}")
    assert got == {"LT": HeldPosition(LONG, 100.5, now - 60, 10, 10, 99.25, None, "note 1")}

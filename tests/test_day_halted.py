"""A halt holds for the day: the worker's handler stops (parks) the strategy of each symbol that is flat with
nothing pending, and only once it is so (a position's caps still act without it); a parked symbol stays parked
across a worker restart. Pure logic of MarketDataHandler; the whole run's equivalence is in
tests/test_backtest_runner.py."""
from __future__ import annotations

from collections import deque

from core.enums import PositionSide
from core.types import Tick
from market_data_handler import MarketDataHandler
from pipeline.messages import CapTriggers, DayHalted, ForceExit, Outcome
from tests.test_bad_ticks import CFG, T0

WHY = "risk: global loss cap breached (-2.10% <= -2.0%)"


def tick(sym: str, ltp: float, t: int) -> Tick:
    return Tick(symbol=f"NSE:{sym}-EQ", ltp=ltp, exch_feed_time=t, type="sf", vol_traded_today=1)


def handler(emitted: list) -> MarketDataHandler:
    return MarketDataHandler(CFG, ["SBIN", "LT"], lambda sig, lat, held, pos: emitted.append(sig))


def test_a_flat_symbol_parks_at_the_halt_and_one_whose_strategy_holds_only_once_its_exit_is_answered():
    emitted: list = []
    h = handler(emitted)
    h.strategies["LT"].position = PositionSide.LONG  # LT's strategy holds a position
    h.apply_control(CapTriggers("LT", PositionSide.LONG.value, 99.0, None))
    h.apply_control(DayHalted("SBIN", WHY))
    h.apply_control(DayHalted("LT", WHY))
    assert h.halted == WHY and h.parked == {"SBIN"}
    assert "SBIN" not in h.strategies and "LT" in h.strategies
    # its strategy signals the exit (and forgets the position): held until the outcome, then parked
    h.strategies["LT"].position = None
    h.awaiting["LT"] = ("sig-x", T0 + 600, 3)
    h.backlog["LT"] = deque()
    h.apply_control(CapTriggers("LT", None))
    assert h.parked == {"SBIN"}
    h.apply_control(Outcome("sig-x", "LT", "exit", "executed"))
    assert h.parked == {"SBIN", "LT"} and not h.strategies
    # a parked symbol's ticks are counted and run no strategy
    before = h.stats.ticks
    for i in range(5):
        h.process(tick("SBIN", 100.0 + i, T0 + 600 + i), pos=i)
    assert h.stats.ticks == before + 5 and emitted == []


def test_a_forced_exit_parks_the_symbol_and_its_caps_still_act_without_the_strategy():
    """The halt's flatten (or a cap) closes the position on the TradeManager's own: the worker resets the
    strategy, which then holds nothing; parked, the position's cap triggers still act on the crossing tick."""
    emitted: list = []
    h = handler(emitted)
    h.strategies["SBIN"].position = PositionSide.LONG
    h.apply_control(CapTriggers("SBIN", PositionSide.LONG.value, 99.0, None))
    h.apply_control(DayHalted("SBIN", WHY))
    assert h.parked == set()
    h.apply_control(ForceExit("SBIN", "risk_halt"))
    assert h.parked == {"SBIN"} and "SBIN" in h.triggers
    h.process(tick("SBIN", 98.5, T0 + 700), pos=1)
    assert [(s.forced, s.note) for s in emitted] == [(True, "symbol_loss_cap")]
    # its answer releases the symbol as any other's (a symbol left waiting would hold the replay's feed back)
    h.process(tick("SBIN", 98.4, T0 + 701), pos=2)
    assert h.awaiting and len(h.backlog["SBIN"]) == 1
    h.apply_control(CapTriggers("SBIN", None))
    h.apply_control(Outcome(emitted[0].signal_id, "SBIN", "exit", "executed", force_exit=True))
    assert not h.awaiting and not h.backlog["SBIN"] and h.held_cap() == (float("inf"), float("inf"))


def test_a_symbol_waiting_for_its_signals_outcome_parks_when_the_outcome_comes():
    emitted: list = []
    h = handler(emitted)
    h.awaiting["SBIN"] = ("sig-1", T0 + 600, 7)
    h.backlog["SBIN"] = deque()
    h.apply_control(DayHalted("SBIN", WHY))
    assert h.parked == set()
    h.apply_control(Outcome("sig-1", "SBIN", "entry", "failed", note="RISK_TRADING_HALTED"))
    assert h.parked == {"SBIN"} and not h.awaiting


def test_nothing_parks_before_a_halt_nor_a_symbol_with_an_incomplete_trade():
    h = handler([])
    h.apply_control(CapTriggers("SBIN", None))
    assert h.parked == set() and h.halted is None
    h.incomplete_exit_trades["LT"] = {"attempt_count": 1}
    h.apply_control(DayHalted("LT", WHY))
    assert h.parked == set()


def test_parked_symbols_stay_parked_across_a_worker_restart():
    h = handler([])
    h.apply_control(DayHalted("SBIN", WHY))
    emitted: list = []
    h2 = handler(emitted)
    h2.restore(h.state())
    assert h2.halted == WHY and h2.parked == {"SBIN"} and "SBIN" not in h2.strategies and "LT" in h2.strategies
    # the halt is known: LT parks as soon as a message about it finds it flat
    h2.apply_control(CapTriggers("LT", None))
    assert h2.parked == {"SBIN", "LT"}

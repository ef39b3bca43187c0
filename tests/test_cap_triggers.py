"""Per-symbol caps on the crossing tick: the trigger prices the TradeManager derives from a trade agree with
the RiskManager's return on margin, and a worker's handler forces the exit on exactly the crossing tick."""
from __future__ import annotations

from decimal import Decimal

import pytest

from core.enums import PositionSide, SignalType
from core.types import Tick
from execution.ledger import ExitFilled
from market_data_handler import MarketDataHandler
from pipeline.messages import CapTriggers, Outcome
from tests.test_bad_ticks import CFG, T0
from tests.test_risk_manager import make_rm, open_trade

STEP = Decimal("0.05")  # one NSE tick


def check_trigger(rm, symbol: str, side: PositionSide, price: Decimal | None, cap: float, loss: bool) -> None:
    """At the trigger the return is the cap; one tick on the safe side it is not crossed, one beyond it is."""
    assert price is not None
    assert rm.get_current_returns_for_symbol(symbol, price) == pytest.approx(cap, abs=1e-9)
    # which way the price must move to make the return worse (loss) or better (profit)
    worse = -1 if side is PositionSide.LONG else 1
    beyond = price + (worse if loss else -worse) * STEP
    inside = price - (worse if loss else -worse) * STEP
    r_beyond = rm.get_current_returns_for_symbol(symbol, beyond)
    r_inside = rm.get_current_returns_for_symbol(symbol, inside)
    if loss:
        assert r_beyond < cap < r_inside
    else:
        assert r_beyond > cap > r_inside


@pytest.mark.parametrize("side", [PositionSide.LONG, PositionSide.SHORT])
def test_trigger_prices_are_where_the_return_on_margin_reaches_the_caps(tmp_path, side):
    rm = make_rm(tmp_path, symbol_max_loss_pct=-2.0, symbol_max_profit_pct=4.0, margin_multiplier=5)
    tid = open_trade(rm, "SBIN", side, 300, "812.35")
    loss, profit = rm.cap_prices(rm.active_trades[tid])
    # long: 5x leverage, -2% on margin is a 0.4% fall; short the other way
    assert float(loss) == pytest.approx(812.35 * (1 - 0.004 if side is PositionSide.LONG else 1 + 0.004))
    check_trigger(rm, "SBIN", side, loss, -2.0, loss=True)
    check_trigger(rm, "SBIN", side, profit, 4.0, loss=False)
    # a partial exit leaves the remaining quantity with its share of the margin: the triggers do not move
    rm.ledger.exit(ExitFilled(tid, 120, Decimal("813"), 2, "take_profit"))
    loss2, profit2 = rm.cap_prices(rm.active_trades[tid])
    assert rm.active_trades[tid].remaining == 180
    check_trigger(rm, "SBIN", side, loss2, -2.0, loss=True)
    check_trigger(rm, "SBIN", side, profit2, 4.0, loss=False)


def test_a_cap_that_is_off_has_no_trigger(tmp_path):
    rm = make_rm(tmp_path, symbol_max_loss_pct=None, symbol_max_profit_pct=4.0)
    tid = open_trade(rm, "SBIN", PositionSide.LONG, 10, 100)
    loss, profit = rm.cap_prices(rm.active_trades[tid])
    assert loss is None and profit is not None


def tick(ltp: float, t: int) -> Tick:
    return Tick(symbol="NSE:SBIN-EQ", ltp=ltp, exch_feed_time=t, type="sf", vol_traded_today=1)


@pytest.mark.parametrize("side, prices, reason", [
    (PositionSide.LONG, [100.0, 99.7, 99.65, 99.55, 99.0], "symbol_loss_cap"),    # loss at 99.6
    (PositionSide.SHORT, [100.0, 100.3, 100.35, 100.45, 101.0], "symbol_loss_cap"),
    (PositionSide.LONG, [100.0, 100.5, 100.75, 100.85, 101.0], "symbol_profit_cap"),  # profit at 100.8
])
def test_the_handler_forces_the_exit_on_exactly_the_crossing_tick(side, prices, reason):
    emitted: list[tuple] = []
    marks: list[tuple] = []
    h = MarketDataHandler(CFG, ["SBIN"], lambda sig, lat, held, pos: emitted.append((sig, pos)),
                          emit_marks=lambda m, pos: marks.append((m, pos)))
    long = side is PositionSide.LONG
    h.apply_control(CapTriggers("SBIN", side.value, 99.6 if long else 100.4, 100.8 if long else 99.2))
    t = T0 + 600  # after the opening range: the strategy itself does nothing on these ticks
    for i, p in enumerate(prices):
        h.process(tick(p, t + i // 2), pos=10 + i)
    assert len(emitted) == 1, emitted
    sig, pos = emitted[0]
    assert pos == 13  # the fourth tick is the first beyond the trigger
    assert (sig.type, sig.forced, sig.note, sig.current_position, sig.price, sig.time) == (
        SignalType.EXIT, True, reason, side, prices[3], t + 1)
    # the symbol is held until the TradeManager answers; the tick after the crossing waits
    assert h.awaiting["SBIN"][0] == sig.signal_id and len(h.backlog["SBIN"]) == 1
    # marks: the position's price on its first run tick of each data-second, at that tick's feed position
    assert [(m.time, m.prices, p) for m, p in marks] == [(t, {"SBIN": prices[0]}, 10), (t + 1, {"SBIN": prices[2]}, 12)]
    # the position closes: its triggers are cleared (sent before the Outcome), the strategy is reset
    h.apply_control(CapTriggers("SBIN", None))
    h.apply_control(Outcome(sig.signal_id, "SBIN", "exit", "executed", force_exit=True))
    assert "SBIN" not in h.triggers and not h.awaiting
    h.process(tick(prices[0], t + 5), pos=20)
    assert len(emitted) == 1 and len(marks) == 2


def test_triggers_survive_a_worker_restart():
    h = MarketDataHandler(CFG, ["SBIN"], lambda *a: None)
    h.apply_control(CapTriggers("SBIN", "long", 99.6, None))
    emitted: list = []
    h2 = MarketDataHandler(CFG, ["SBIN"], lambda sig, lat, held, pos: emitted.append(sig))
    h2.restore(h.state())
    h2.process(tick(99.5, T0 + 600), pos=1)
    assert [s.note for s in emitted] == ["symbol_loss_cap"]


def test_ticks_before_the_position_existed_are_not_checked():
    """A resumed replay runs the day from the open again with today's open positions already known: a tick
    from before the trade's entry neither forces an exit nor marks the position."""
    emitted, marks = [], []
    h = MarketDataHandler(CFG, ["SBIN"], lambda sig, lat, held, pos: emitted.append(sig),
                          emit_marks=lambda m, pos: marks.append(m))
    t = T0 + 600
    h.apply_control(CapTriggers("SBIN", "long", 99.6, None, since=t + 10))
    h.process(tick(99.0, t), pos=1)
    assert emitted == [] and marks == []
    h.process(tick(99.0, t + 10), pos=2)
    assert [s.note for s in emitted] == ["symbol_loss_cap"] and [m.time for m in marks] == [t + 10]

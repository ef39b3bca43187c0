"""The operator's controls as the trading thread applies them (execution.operator), on a real TradeManager and
database: each is recorded with who and when before it acts, then its outcome; pause stops entries and resume
restores them, before the entry cut-off only; a halt holds for the day, through a restart; what cannot be
done is refused with the reason; a control recorded by another process (the dashboard's) rings the trading
side's desk through shared memory, and one recorded before the daemon started is not acted on. Flattening at a
real broker is tested in the browser (test_dashboard_browser)."""
from __future__ import annotations

import multiprocessing as mp
from datetime import date

import pytest

import db as dbm
from core.config import Secrets, load_config
from core.enums import PositionSide, SignalType, TradingState
from core.types import Signal
from execution.operator import HALTED, OperatorDesk, new_bell
from risk_manager import RiskManager
from tests.daemon_harness import DAY, rows, short_day_config
from tests.test_daemon_replay import SESSION_EPOCH


@pytest.fixture
def tm(tmp_path):
    from trade_manager import TradeManager

    cfg = load_config(short_day_config(tmp_path, mode="signals_only"))
    url = f"sqlite:///{tmp_path / 'u.sqlite'}"
    h = dbm.DBHandler(dbm.initialize_database(url))
    sec = Secrets(app_key=None, host_server="http://127.0.0.1:9", live_data=False, database_url=url,
                  fyers_app_id=None, fyers_access_token=None)
    t = TradeManager(cfg, sec, h, None, clock=None, replay=True, day=date.fromisoformat(DAY))
    t.rm.load()
    t.rm.set_state(TradingState.ACTIVE, "ready")
    t.url = url
    return t


def desk_for(tm) -> OperatorDesk:
    return OperatorDesk(tm.db, tm.day, {s.symbol for s in tm.cfg.symbols})


NOON = SESSION_EPOCH["09:15"] + 1800  # 09:45, before the short day's 10:30 entry cut-off


def entry(t: int) -> Signal:
    return Signal(symbol="SBIN", time=t, price=600.0, type=SignalType.ENTRY, current_position=PositionSide.LONG,
                  strategy="orb", stop_loss=594.0)


def test_pause_stops_entries_until_resume(tm):
    desk = desk_for(tm)
    rec = desk.request("pause", None, "dashboard 127.0.0.1 test")
    assert rec["status"] == "REQUESTED" and rec["who"] == "dashboard 127.0.0.1 test"
    assert rows(tm.url, "SELECT action, status FROM controls") == [("pause", "REQUESTED")]  # before it acts
    assert tm.rm.state is TradingState.ACTIVE
    desk.drain(tm, NOON)
    assert tm.rm.state is TradingState.REDUCING
    assert rows(tm.url, "SELECT status, note, decision_time FROM controls") == [
        ("DONE", "entries paused: exits only", NOON)]
    tm.process_signal(entry(NOON + 1))
    assert rows(tm.url, "SELECT outcome, outcome_note FROM stock_signals") == [("failed", "RISK_TRADING_REDUCING")]
    desk.request("resume", None, "dashboard")
    desk.drain(tm, NOON + 2)
    assert tm.rm.state is TradingState.ACTIVE
    assert [r["status"] for r in desk.recent()] == ["DONE", "DONE"]  # newest first, with their outcome


def test_resume_is_refused_after_the_cut_off_and_after_a_halt(tm):
    desk = desk_for(tm)
    desk.request("pause", None, "d")
    desk.drain(tm, NOON)
    desk.request("resume", None, "d")
    desk.drain(tm, SESSION_EPOCH["10:30"])
    assert tm.rm.state is TradingState.REDUCING
    assert desk.recent()[0]["status"] == "REFUSED" and "cut-off" in desk.recent()[0]["note"]
    desk.request("halt", None, "d")
    desk.request("resume", None, "d")
    desk.request("pause", None, "d")
    desk.drain(tm, NOON)
    assert tm.rm.state is TradingState.HALTED and tm.rm.state_reason == HALTED
    got = rows(tm.url, "SELECT action, status FROM controls ORDER BY id")
    assert got == [("pause", "DONE"), ("resume", "REFUSED"), ("halt", "DONE"), ("resume", "REFUSED"),
                   ("pause", "REFUSED")]


def test_a_halt_from_the_dashboard_holds_through_a_restart(tm):
    desk = desk_for(tm)
    desk.request("halt", None, "d")
    desk.drain(tm, NOON)
    again = RiskManager(tm.cfg, tm.db, tm.day)
    again.load()
    assert again.halted_earlier == HALTED  # start() sets HALTED again with this reason


def test_flatten_needs_a_configured_symbol_and_an_open_position(tm):
    desk = desk_for(tm)
    with pytest.raises(ValueError, match="symbol: 'NOPE' is not allowed"):
        desk.request("flatten", "NOPE", "d")
    with pytest.raises(ValueError, match="action: 'sell' is not allowed"):
        desk.request("sell", None, "d")
    assert rows(tm.url, "SELECT COUNT(*) FROM controls") == [(0,)]  # nothing recorded for a refused request
    desk.request("flatten", "SBIN", "d")
    desk.request("flatten_all", None, "d")
    desk.drain(tm, NOON)
    assert rows(tm.url, "SELECT action, symbol, status, note FROM controls ORDER BY id") == [
        ("flatten", "SBIN", "REFUSED", "no open position"), ("flatten_all", None, "DONE", "no open position")]
    assert tm.rm.state is TradingState.ACTIVE


def _press(url: str, day: str, symbols: set[str], bell, action: str) -> None:
    """The dashboard's process: its own database connection, the driver's bell."""
    handler = dbm.DBHandler(dbm.setup(url)[0])
    OperatorDesk(handler, date.fromisoformat(day), symbols, bell).request(action, None, "dashboard 127.0.0.1 other")


def test_a_control_recorded_by_another_process_reaches_the_trading_thread(tm):
    ctx = mp.get_context("spawn")
    bell = new_bell(ctx)
    trading = OperatorDesk(tm.db, tm.day, {s.symbol for s in tm.cfg.symbols}, bell)
    trading.start_after_existing()
    trading.drain(tm, NOON)  # nobody rang: nothing read, nothing done
    assert tm.rm.state is TradingState.ACTIVE
    p = ctx.Process(target=_press, args=(tm.url, tm.day.isoformat(), set(trading.symbols), bell, "pause"))
    p.start()
    p.join(60)
    assert p.exitcode == 0
    assert rows(tm.url, "SELECT action, status FROM controls") == [("pause", "REQUESTED")]
    trading.drain(tm, NOON)
    assert tm.rm.state is TradingState.REDUCING
    assert rows(tm.url, "SELECT status, who FROM controls") == [("DONE", "dashboard 127.0.0.1 other")]


def test_a_control_recorded_before_the_daemon_started_is_not_acted_on(tm):
    """A crash between a control's row and its outcome: the restarted daemon does not act on it hours later."""
    desk_for(tm).request("halt", None, "before the crash")
    ctx = mp.get_context("spawn")
    bell = new_bell(ctx)
    trading = OperatorDesk(tm.db, tm.day, {s.symbol for s in tm.cfg.symbols}, bell)
    trading.start_after_existing()
    OperatorDesk(tm.db, tm.day, trading.symbols, bell).request("pause", None, "after the start")
    trading.drain(tm, NOON)
    assert tm.rm.state is TradingState.REDUCING  # the pause, not the halt
    assert rows(tm.url, "SELECT action, status FROM controls ORDER BY id") == [("halt", "REQUESTED"),
                                                                               ("pause", "DONE")]

"""A replay that starts mid-day (`driver.py --start HH:MM`): the real daemon on the short day (open 09:15,
entry cut-off 10:30, square-off 10:40, close 10:45) against a real paper broker, checked by the same session
rules as the full day in test_daemon_replay.py, plus: nothing at all happens before the start time."""
from __future__ import annotations

import pytest

from gateway.openalgo import OpenAlgoGateway
from gateway.results import Ok
from tests.daemon_harness import rows, run_daemon, short_day_config
from tests.test_daemon_replay import SESSION_EPOCH, check_books, check_session_rules, env_for, paper, session_epoch  # noqa: F401

CLOSE = SESSION_EPOCH["10:45"]


def replay_from(tmp_path, b, start: str, **overrides):
    """Replay the short day from `start`, every tick persisted (so the first tick the daemon saw is on record)."""
    cfg = short_day_config(tmp_path, market_data={"persist": "every_tick"}, **overrides)
    run = run_daemon(cfg, f"sqlite:///{tmp_path / 'd.sqlite'}", env_for(b), args=["--start", start])
    assert run.returncode == 0, run.output[-3000:]
    assert "Traceback" not in run.output, run.output[-3000:]
    assert f"from {start} IST" in run.output and "replay finished: closing the session" in run.output
    return run


def check_nothing_before(db_url: str, b, start: str) -> None:
    """The day began at `start`: first tick at it, and no signal, order (failed ones too) or trade before it,
    in the database or in the broker's orderbook."""
    t0 = session_epoch(start)
    n, first = rows(db_url, "SELECT COUNT(*), MIN(exch_feed_time) FROM market_data")[0]
    assert n > 0 and t0 <= first < t0 + 60, (n, first, t0)
    assert rows(db_url, "SELECT COUNT(*) FROM stock_signals WHERE time < :t", t=t0)[0][0] == 0
    assert rows(db_url, "SELECT COUNT(*) FROM orders WHERE decision_time IS NULL OR decision_time < :t "
                        "OR decision_time > :c", t=t0, c=CLOSE)[0][0] == 0
    assert rows(db_url, "SELECT COUNT(*) FROM trade_log WHERE entry_time < :t", t=t0)[0][0] == 0
    book = OpenAlgoGateway(b.url, b.key).orderbook()
    assert isinstance(book, Ok)
    for o in book.value:
        assert o.timestamp_epoch is not None and t0 <= o.timestamp_epoch <= CLOSE, (o.orderid, o.timestamp)


def test_replay_started_mid_session_trades_by_the_session_rules(tmp_path, paper):
    # per-symbol caps off: this checks the session's rules, so positions must still be open at the square-off
    run = replay_from(tmp_path, paper, "09:45", risk={"symbol_max_loss_pct": None, "symbol_max_profit_pct": None})
    u = run.db_url
    # it traded: entries filled after the start, and trades closed
    entries = rows(u, "SELECT COUNT(*) FROM orders WHERE purpose = 'entry' AND status = 'EXECUTED'")[0][0]
    assert entries >= 1, "a replay from 09:45 should enter positions"
    assert rows(u, "SELECT COUNT(*) FROM trade_log")[0][0] >= 1
    check_nothing_before(u, paper, "09:45")
    # the full day's rules: no entry after the cut-off, nothing outside the session, flat by the square-off
    check_session_rules(u, start="09:45")
    # positions were still open at the square-off, and it closed them at 10:40
    squared = rows(u, "SELECT COUNT(*), MIN(exit_time), MAX(exit_time) FROM trade_log WHERE exit_reason = 'square_off'")
    assert squared[0][0] >= 1 and squared[0][1] == squared[0][2] == SESSION_EPOCH["10:40"], squared
    # the broker agrees: its positionbook is flat, its orderbook holds exactly our orders, capital adds up
    check_books(u, paper)


def test_replay_started_after_the_entry_cutoff_enters_nothing(tmp_path, paper):
    run = replay_from(tmp_path, paper, "10:35")
    u = run.db_url
    check_nothing_before(u, paper, "10:35")  # the ticks from 10:35 were replayed
    # the cut-off was in force from the first tick: exits only, and no entry order of any status
    state = rows(u, "SELECT value FROM daemon_state WHERE key = 'trading_state'")
    assert state and '"REDUCING"' in state[0][0] and "entry cut-off" in state[0][0], state
    assert rows(u, "SELECT COUNT(*) FROM orders WHERE purpose = 'entry'")[0][0] == 0
    assert rows(u, "SELECT COUNT(*) FROM stock_signals WHERE type = 'entry'")[0][0] == 0
    check_session_rules(u, start="10:35")
    check_books(u, paper)  # nothing open at the broker either


@pytest.mark.parametrize("value", ["25:99", "24:00", "9.45", "noon"])
def test_invalid_start_is_refused_with_one_line(tmp_path, value):
    cfg = short_day_config(tmp_path, mode="signals_only")
    run = run_daemon(cfg, f"sqlite:///{tmp_path / 'd.sqlite'}", {"HOST_SERVER": "http://127.0.0.1:9"},
                     args=["--start", value], timeout=60)
    assert run.returncode == 2, run.output[-3000:]
    lines = run.output.strip().splitlines()
    assert len(lines) == 1 and "--start" in lines[0] and repr(value) in lines[0], run.output[-3000:]
    assert "Traceback" not in run.output


@pytest.mark.parametrize("value", ["10:30+05:30", "10:30Z", "", "10", "1030", "T10:30", "10:30:15.5"])
def test_start_other_than_hh_mm_is_refused(tmp_path, value):
    """Only HH:MM: an offset would make an aware time the IST conversion refuses after the workers started."""
    from core.config import Secrets, load_config
    from driver import RunOptions, build_parser

    cfg = load_config(short_day_config(tmp_path, mode="signals_only"))
    sec = Secrets(app_key=None, host_server="http://127.0.0.1:9", live_data=False, database_url=None,
                  fyers_app_id=None, fyers_access_token=None)
    with pytest.raises(ValueError, match="--start"):
        RunOptions.from_args(cfg, sec, build_parser().parse_args(["--date", "2026-11-20", "--start", value]))

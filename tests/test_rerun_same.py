"""Running a finished day again records exactly what the first run recorded (issue 13, item 11).

The real driver.py runs a short replayed day twice on one database against one real paper broker. The day has
positions closed by per-symbol caps; before the fix, the rerun's strategies never heard of those forced exits
and their later stop-loss exits were recorded as new "ignored: no open position" signals.
"""
from __future__ import annotations

import secrets
from datetime import date

from db import DBHandler, setup
from execution.control_log import ControlLog
from pipeline.messages import CapTriggers, ForceExit
from tests.daemon_harness import rows, run_daemon, short_day_config
from tests.paper_fixtures import Broker

TABLES = {
    "stock_signals": "SELECT signal_id, symbol, time, type, note, outcome FROM stock_signals ORDER BY id",
    "orders": "SELECT client_order_id, symbol, side, purpose, quantity, status, filled_quantity, average_price "
              "FROM orders ORDER BY id",
    "trade_log": "SELECT trade_id, symbol, side, quantity, entry_time, entry_price, exit_time, exit_price, net_pnl, "
                 "exit_reason FROM trade_log ORDER BY id",
}


def test_a_rerun_of_a_finished_day_adds_no_rows(tmp_path):
    cfg = short_day_config(tmp_path)
    url = f"sqlite:///{tmp_path / 'd.sqlite'}"
    b = Broker(tmp_path / "broker.sqlite", secrets.token_hex(16), args=["--order-rate", "10"],
               log_file=tmp_path / "broker.log").start()
    seen = []
    try:
        for _ in range(2):
            run = run_daemon(cfg, url, {"HOST_SERVER": b.url, "APP_KEY": b.key})
            assert run.returncode == 0, run.output[-3000:]
            assert "Traceback" not in run.output
            seen.append({t: rows(url, sql) for t, sql in TABLES.items()})
    finally:
        b.stop()
    first, second = seen
    caps = [r for r in first["trade_log"] if r[-1] in ("symbol_loss_cap", "symbol_profit_cap")]
    assert caps, "the day should have positions closed by a per-symbol cap"
    for table in TABLES:
        extra = second[table][len(first[table]):]
        assert second[table] == first[table], f"the rerun changed {table}; rows added: {extra}"
    assert not any("no open position" in (r[-1] or "") for r in second["stock_signals"])


def test_control_log_gives_back_what_a_run_sent(tmp_path):
    """The record a rerun reads: the last triggers per signal, forced exits once each when their time comes."""
    handler = DBHandler(setup(f"sqlite:///{tmp_path / 'c.sqlite'}")[0])
    import db
    db.initialize_database(f"sqlite:///{tmp_path / 'c.sqlite'}")
    day = date(2026, 11, 20)
    first = ControlLog(handler, day)
    first.load()
    first.caps_sent("mac:LT:100:entry:long", CapTriggers("LT", "long", 1400.5, 1430.25, 100))
    first.caps_sent("mac:LT:200:exit:long", CapTriggers("LT", None))
    first.sent_at(300, ForceExit("SBIN", "square_off"))
    first.sent_at(301, CapTriggers("SBIN", None))
    first.outcome_forced("orb:TCS:250:entry:short")
    assert first.due(1000) == []  # this run sent it itself
    again = ControlLog(handler, day)
    again.load()
    assert again.caps_for("mac:LT:100:entry:long") == CapTriggers("LT", "long", 1400.5, 1430.25, 100)
    assert again.caps_for("mac:LT:200:exit:long") == CapTriggers("LT", None, None, None, 0)
    assert again.caps_for("unknown") is None
    assert again.was_forced("orb:TCS:250:entry:short") and not again.was_forced("mac:LT:100:entry:long")
    assert again.due(299) == []
    assert again.due(300) == [ForceExit("SBIN", "square_off")]
    assert again.due(1000) == [CapTriggers("SBIN", None)]
    assert again.due(1001) == []
    assert ControlLog(handler, date(2026, 11, 21)).caps_for("mac:LT:100:entry:long") is None

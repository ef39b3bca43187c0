"""The whole daemon on a replayed (short) day with notifications to a local JSON webhook: the trader's phone
hears that the daemon started and is ready, each position opened and closed with its P&L, and the day's
summary -- and the day trades exactly as it does without notifications."""
from __future__ import annotations

import re
import secrets
from decimal import Decimal

import pytest

from tests.daemon_harness import rows, run_daemon, short_day_config
from tests.notify_receiver import Receiver
from tests.paper_fixtures import Broker


@pytest.fixture
def paper(tmp_path):
    b = Broker(tmp_path / "broker.sqlite", secrets.token_hex(16), args=["--order-rate", "10"],
               log_file=tmp_path / "broker.log").start()
    yield b
    b.stop()


TRADES = ("SELECT trade_id, symbol, side, quantity, entry_time, entry_price, exit_time, exit_price, net_pnl, "
          "exit_reason FROM trade_log ORDER BY trade_id, exit_time, exit_reason, quantity")
ORDERS = ("SELECT symbol, side, purpose, quantity, status, filled_quantity, average_price, decision_time FROM orders "
          "ORDER BY decision_time, symbol, purpose, quantity")


def test_a_replayed_day_notifies_start_positions_and_summary(tmp_path, paper):
    """Beside the webhook that answers, a second URL that never does: the day's orders and trades are those of
    the same day run without notifications (a hanging endpoint delays no order)."""
    with Receiver() as receiver:
        cfg = short_day_config(tmp_path, notifications={"urls": ["${NOTIFY_URL}", receiver.url("hang")],
                                                        "storm_limit": 1000})
        db_url = f"sqlite:///{tmp_path / 'day.sqlite'}"
        run = run_daemon(cfg, db_url, {"HOST_SERVER": paper.url, "APP_KEY": paper.key,
                                       "NOTIFY_URL": receiver.url()})
        assert run.returncode == 0, run.output[-3000:]
        got = receiver.messages()  # the daemon waits for its queue at exit: everything has arrived
    assert str(receiver.port) not in run.output  # the URL is never logged
    assert "notifications: sending to urls[0] (json)" in run.output
    titles = [m["title"] for m in got]
    assert titles[:2] == ["Daemon started", "Daemon ready"]
    assert "8 symbols on 8 workers; trading state ACTIVE." == got[1]["message"]
    trades = rows(db_url, "SELECT trade_id FROM trade_log WHERE trade_type = 'full'")
    entries = rows(db_url, "SELECT COUNT(*) FROM orders WHERE purpose = 'entry' AND filled_quantity > 0")[0][0]
    opened = [m for m in got if m["title"].startswith("Opened ")]
    closed = [m for m in got if m["title"].startswith("Closed ")]
    assert trades and len(opened) == entries and len(closed) == len(trades)
    # each closed position's P&L is the trade's net, as the trade log has it
    nets = {(sym, str(Decimal(n).quantize(Decimal("0.01")))) for sym, n in
            rows(db_url, "SELECT symbol, SUM(net_pnl) FROM trade_log GROUP BY trade_id, symbol")}
    told = {(m["title"].split()[1].rstrip(":"), re.search(r"net ([+-][\d,.]+)", m["message"]).group(1)
             .replace(",", "").lstrip("+")) for m in closed}
    assert told == nets
    last = got[-1]
    net = rows(db_url, "SELECT SUM(net_pnl) FROM trade_log")[0][0]
    assert last["title"] == f"Day 2026-11-20: net {Decimal(net):+,.2f}"
    assert f"{len(rows(db_url, 'SELECT id FROM trade_log'))} exits" in last["message"]

    (tmp_path / "quiet").mkdir()
    quiet = short_day_config(tmp_path / "quiet", notifications={"urls": []})
    base_url = f"sqlite:///{tmp_path / 'quiet.sqlite'}"
    base = run_daemon(quiet, base_url, {"HOST_SERVER": paper.url, "APP_KEY": paper.key})
    assert base.returncode == 0, base.output[-3000:]
    assert rows(db_url, TRADES) == rows(base_url, TRADES) and rows(db_url, ORDERS) == rows(base_url, ORDERS)


def test_a_feed_that_goes_silent_and_comes_back_is_notified_both_ways(tmp_path, paper):
    """The replay's socket drops at 09:45 for 15 minutes of feed time (3 s of wall time at 300x), as in
    test_feed_recovery; with a 1 s silence limit the trader hears "Feed silent", then "Feed back"."""
    with Receiver() as receiver:
        cfg = short_day_config(tmp_path, monitoring={"feed_silence_seconds": 1},
                               notifications={"urls": [receiver.url()],
                                              "events": {"position_opened": "off", "position_closed": "off"}})
        db_url = f"sqlite:///{tmp_path / 'day.sqlite'}"
        run = run_daemon(cfg, db_url, {"HOST_SERVER": paper.url, "APP_KEY": paper.key,
                                       "DAEMON_FEED_DROP_AT": "09:45:00/900"}, args=["--speed", "300"])
        assert run.returncode == 0, run.output[-3000:]
        got = receiver.messages()
    titles = [m["title"] for m in got]
    assert not any(t.startswith(("Opened ", "Closed ")) for t in titles)  # turned off in config
    assert "Feed silent" in titles and "Feed back" in titles, titles
    assert titles.index("Feed silent") < titles.index("Feed back")
    assert got[titles.index("Feed silent")]["type"] == "failure"  # critical by default
    assert titles[-1].startswith("Day 2026-11-20: net ")

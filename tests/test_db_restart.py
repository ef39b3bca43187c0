"""The database server restarted mid-session loses no trade record: writes wait for it (DBHandler holds and
retries them), the daemon says so once when it goes and once when it is back, and then carries on.

A PostgreSQL server of the test's own (conftest.private_pg, never the shared TEST_DATABASE_URL one: it is
stopped here) under the real daemon trading the short replayed day against a real paper broker."""
from __future__ import annotations

import secrets
import threading
import time

import pytest

import db
from tests.conftest import wait_for
from tests.crash_harness import assert_whole_and_flat
from tests.daemon_harness import rows, short_day_config, start_daemon
from tests.paper_fixtures import Broker

DOWN = "database unavailable ("
BACK = "database available again after"
STILL = "database still unavailable after"


def test_handler_holds_writes_while_the_server_is_down(private_pg, caplog):
    """Both write paths (a transaction, and COPY for ticks) block while the server is down, then land."""
    h = db.DBHandler(db.initialize_database(private_pg.url))
    h.set_state("before", 1)
    private_pg.halt("immediate")
    done: list[object] = []

    def write() -> None:
        try:
            h.set_state("during", 2)
            h.bulk_insert_tuples(db.MarketData, ["symbol", "ltp"], [("NSE:SBIN-EQ", 600.5), ("NSE:TCS-EQ", None)])
            done.append("ok")
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            done.append(e)

    t = threading.Thread(target=write)
    with caplog.at_level("INFO", logger="db"):
        t.start()
        wait_for(lambda: any(STILL in r.getMessage() for r in caplog.records), timeout=30,
                 what="the outage warning and its reminder")
        assert not done, "a write returned while the server was down"
        private_pg.start()
        t.join(60)
    assert done == ["ok"]
    assert h.get_state("during") == 2
    assert h.execute_sql("SELECT symbol, ltp FROM market_data ORDER BY symbol") == [("NSE:SBIN-EQ", 600.5),
                                                                                   ("NSE:TCS-EQ", None)]
    msgs = [r.getMessage() for r in caplog.records]
    assert sum(DOWN in m for m in msgs) == 1 and sum(BACK in m for m in msgs) == 1, msgs
    assert msgs.index(next(m for m in msgs if DOWN in m)) < msgs.index(next(m for m in msgs if STILL in m))
    db.dispose_engines()


def test_gives_up_with_a_clear_error_after_outage_s(private_pg):
    h = db.DBHandler(db.initialize_database(private_pg.url), outage_s=0.5)
    private_pg.halt("fast")
    with pytest.raises(db.DatabaseError,
                       match=r"write state x failed: the database has been unreachable for 0.5s \(connection to"):
        h.set_state("x", 1)
    private_pg.start()
    h.set_state("x", 1)  # and it works again once the server is back
    assert h.get_state("x") == 1
    db.dispose_engines()


def test_postgres_restarted_mid_session_loses_no_trade_record(tmp_path, private_pg):
    b = Broker(tmp_path / "broker.sqlite", secrets.token_hex(16), args=["--order-rate", "10"],
               log_file=tmp_path / "broker.log").start()
    try:
        _restart_under_the_daemon(tmp_path, private_pg, b)
    finally:
        b.stop()
        db.dispose_engines()


def _restart_under_the_daemon(tmp_path, private_pg, b: Broker) -> None:
    # ticks are not persisted: the TradeManager (in the driver process) is the one writer, so the replay goes on
    # until its next write meets the outage (the COPY path for ticks is covered above)
    cfg = short_day_config(tmp_path)
    url = private_pg.url
    db.initialize_database(url)  # the tables exist before the test polls them (the daemon creates them too)
    out = tmp_path / "daemon.out"
    p = start_daemon(cfg, url, {"HOST_SERVER": b.url, "APP_KEY": b.key}, args=["--speed", "300"], output=out)
    try:
        # the 90-minute day at 300x: ~18 s of replay; stop the server once the daemon has traded
        def sent() -> int:
            return rows(url, "SELECT COUNT(*) FROM orders WHERE broker_order_id IS NOT NULL")[0][0]

        wait_for(lambda: p.poll() is not None or sent() >= 2, timeout=60, interval=0.1,
                 what="the first orders at the broker")
        assert p.poll() is None, out.read_text()[-3000:]
        sent_before = sent()
        before = rows(url, "SELECT COUNT(*) FROM orders")[0][0]
        db.dispose_engines()  # the test's own connections go with the server
        t_down = time.monotonic()
        private_pg.halt("fast")
        # the server stays down until the TradeManager has met the outage, said so, and said it again a few
        # seconds later (its reminder, every 5 s while the database is away)
        wait_for(lambda: p.poll() is not None or any(STILL in ln and " MainProcess " in ln
                                                     for ln in out.read_text().splitlines()),
                 timeout=60, interval=0.05, what="the daemon to report the database outage")
        assert p.poll() is None, out.read_text()[-3000:]
        private_pg.start()
        print(f"PostgreSQL was down for {time.monotonic() - t_down:.1f}s")
        wait_for(lambda: BACK in out.read_text() or p.poll() is not None, timeout=60, interval=0.05,
                 what="the daemon to report the database back")
        rc = p.wait(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
    log = out.read_text()
    assert rc == 0, log[-3000:]
    assert "Traceback" not in log and " ERROR " not in log, log[-3000:]
    down = [ln for ln in log.splitlines() if DOWN in ln]
    back = [ln for ln in log.splitlines() if BACK in ln]
    assert len(down) == 1 and "WARNING MainProcess db:" in down[0], down  # one line, not one per retry
    assert len(back) == 1 and "INFO    MainProcess db:" in back[0], back
    assert any(STILL in ln and "WARNING MainProcess db:" in ln for ln in log.splitlines())
    assert "port" in down[0]  # names the server it cannot reach
    assert "replay finished: closing the session" in log
    # the day went on after the outage: more orders, and every one of them the broker got is recorded
    assert rows(url, "SELECT COUNT(*) FROM orders")[0][0] > before
    assert_whole_and_flat(url, b, more_orders_than=sent_before)

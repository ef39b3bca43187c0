"""`status` tells the truth (issue 13, item 10): whether the daemon runs (pid, heartbeat), the day's closed trades,
where the report is, and no traceback when its reader stops reading early (`status | head -1`).

The daemon is the real driver.py on a short replayed day against a real paper broker; status is the real
`python driver.py status` in a subprocess.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from datetime import date
from decimal import Decimal

import pytest

from db import DBHandler, TradeLog, setup
from ops.liveness import DAEMON_KEY, assess, process_start
from tests.daemon_harness import DAY, ROOT, daemon_env, rows, run_daemon, short_day_config, start_daemon
from tests.db_rows import insert
from tests.paper_fixtures import Broker

DAY_DATE = date.fromisoformat(DAY)
IST_STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\+05:30 ")


def status(cfg, url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "driver.py"), "--config", str(cfg), "status", *args],
                          capture_output=True, text=True, env=daemon_env(url, {}), cwd=ROOT, timeout=60)


@pytest.fixture(scope="module")
def finished_day(tmp_path_factory):
    """A short day replayed to its end: the daemon has exited."""
    tmp = tmp_path_factory.mktemp("day")
    cfg = short_day_config(tmp)
    url = f"sqlite:///{tmp / 'd.sqlite'}"
    b = Broker(tmp / "broker.sqlite", secrets.token_hex(16), args=["--order-rate", "10"],
               log_file=tmp / "broker.log").start()
    try:
        run = run_daemon(cfg, url, {"HOST_SERVER": b.url, "APP_KEY": b.key})
    finally:
        b.stop()
    assert run.returncode == 0, run.output[-3000:]
    return tmp, cfg, url


def test_after_exit_status_says_not_running_lists_trades_and_the_report(finished_day):
    tmp, cfg, url = finished_day
    p = status(cfg, url)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    first = out.splitlines()[0]
    assert first.startswith(f"Day {DAY}   not trading: the daemon is not running"), out
    assert re.search(r"^Daemon    not running \(last run ended \d{4}-\d\d-\d\d \d\d:\d\d:\d\d IST, exit 0\)$", out,
                     re.M), out
    assert f"Report    {tmp / 'reports' / DAY}\n" in out
    trades = rows(url, "SELECT symbol, side, quantity, exit_reason FROM trade_log ORDER BY exit_time, id")
    assert trades, "the day should trade"
    assert f"Closed trades: {len(trades)}\n" in out
    table = out.split(f"Closed trades: {len(trades)}\n", 1)[1].splitlines()[1:len(trades) + 1]
    for line, (sym, side, qty, reason) in zip(table, trades, strict=False):
        assert line.split()[1:4] == [sym, side, str(qty)] and line.split()[-1] == reason, (line, sym, reason)
    st = json.loads(status(cfg, url, "--json").stdout)
    assert st["daemon"]["running"] is False and st["daemon"]["exit_code"] == 0
    assert st["report_path"] == str(tmp / "reports" / DAY)
    assert [(t["symbol"], t["side"], t["quantity"], t["exit_reason"]) for t in st["trades"]] == \
        [tuple(t) for t in trades]
    # every process's log (driver, workers, feed, paper broker) is stamped in IST with the offset, as status
    # and the reports are, though this host runs in UTC
    logs = sorted((tmp / "logs").glob("*.log")) + [tmp / "broker.log"]
    assert {"daemon.log", "feed.log", "worker-0.log", "broker.log"} <= {f.name for f in logs}
    for f in logs:
        lines = [x for x in f.read_text().splitlines() if x[:2] == "20"]  # a record's first line
        assert lines and all(IST_STAMP.match(x) for x in lines), (f.name, lines[:3])


def test_status_piped_into_head_ends_quietly(finished_day):
    """More output than a pipe holds, and a reader that takes one line and leaves."""
    tmp, cfg, url = finished_day
    h = DBHandler(setup(url)[0])
    (tid,) = rows(url, "SELECT MAX(trade_id) FROM trade_log")[0]
    t0 = rows(url, "SELECT MIN(exit_time) FROM trade_log")[0][0]
    insert(h, [TradeLog(trade_id=tid + i, trade_date=DAY_DATE, symbol="SBIN", strategy="orb", side="long",
                        trade_type="full", quantity=1, entry_time=t0, entry_price=Decimal(1), exit_time=t0,
                        exit_price=Decimal(1), gross_pnl=Decimal(0), costs=Decimal(0), net_pnl=Decimal(0),
                        capital_employed=Decimal(1), capital_at_exit=Decimal(1), percent_change=0.0,
                        exit_reason="padding for a full pipe") for i in range(1, 3001)])
    try:
        p = subprocess.Popen([sys.executable, str(ROOT / "driver.py"), "--config", str(cfg), "status"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=daemon_env(url, {}), cwd=ROOT)
        line = p.stdout.readline()
        p.stdout.close()
        err = p.stderr.read().decode()
        code = p.wait(timeout=60)
    finally:
        h.execute_sql("DELETE FROM trade_log WHERE exit_reason = 'padding for a full pipe'", fetch=False)
    assert line.startswith(f"Day {DAY}".encode())
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert code == 0, err


def test_while_running_status_gives_pid_and_heartbeat_then_not_running_after_ctrl_c(tmp_path):
    cfg = short_day_config(tmp_path)
    url = f"sqlite:///{tmp_path / 'd.sqlite'}"
    b = Broker(tmp_path / "broker.sqlite", secrets.token_hex(16), log_file=tmp_path / "broker.log").start()
    proc = None
    try:
        proc = start_daemon(cfg, url, {"HOST_SERVER": b.url, "APP_KEY": b.key},
                            args=["--speed", "20", "--start", "10:30"], output=tmp_path / "out.txt")
        deadline = time.monotonic() + 90
        beats = []
        while time.monotonic() < deadline and len(beats) < 2:  # two heartbeats: the row is being rewritten
            if (tmp_path / "d.sqlite").exists():
                try:
                    doc = rows(url, "SELECT value FROM daemon_state WHERE key = :k", k=DAEMON_KEY)
                except Exception:  # noqa: BLE001 - the tables may not exist yet
                    doc = []
                if doc:
                    hb = json.loads(doc[0][0])["heartbeat"]
                    if hb not in beats:
                        beats.append(hb)
            assert proc.poll() is None, (tmp_path / "out.txt").read_text()[-3000:]
            time.sleep(0.2)
        assert len(beats) >= 2, "no heartbeat rewritten within 90 s"
        p = status(cfg, url)
        assert p.returncode == 0, p.stderr
        m = re.search(rf"^Daemon    running \(pid {proc.pid}, last heartbeat (\d+)s ago\)$", p.stdout, re.M)
        assert m, p.stdout
        assert int(m.group(1)) <= 15
        assert p.stdout.startswith(f"Day {DAY}   trading "), p.stdout
        st = json.loads(status(cfg, url, "--json").stdout)
        assert st["daemon"]["running"] is True and st["daemon"]["pid"] == proc.pid
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=90) == 0
        p = status(cfg, url)
        assert re.search(r"^Daemon    not running \(last run ended .* IST, exit 0\)$", p.stdout, re.M), p.stdout
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        b.stop()


def test_a_reused_pid_is_not_the_daemon():
    """The recorded pid is alive but is another process now (pids are reused): not running."""
    me = os.getpid()
    now = time.time()
    doc = {"pid": me, "proc_start": process_start(me), "heartbeat": now - 3, "ended": None}
    assert assess(doc, now)["running"] is True
    assert assess({**doc, "proc_start": process_start(me) + 1}, now)["running"] is False
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gone = assess({**doc, "pid": dead.pid}, now)
    assert gone["running"] is False and "without recording an exit" in gone["summary"]
    ended = assess({**doc, "ended": now - 1, "exit_code": 1}, now)
    assert ended["running"] is False and ended["summary"].endswith(", exit 1)")
    assert "STALE" in assess({**doc, "heartbeat": now - 600}, now)["summary"]
    assert assess(None, now)["running"] is False

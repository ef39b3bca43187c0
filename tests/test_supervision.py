"""Dead workers are noticed and restarted on the supervisor's thread: a trading thread waiting on the database
(here another process holds SQLite's write lock) does not hold up the restart."""
from __future__ import annotations

import os
import re
import signal
import sqlite3
import time

from tests.conftest import wait_for
from tests.daemon_harness import short_day_config, start_daemon

LOCK_S = 12.0  # below the daemon's SQLite busy timeout (15 s): the run goes on once the lock is gone


def _heartbeats_stopped(log, quiet_s: float):
    """A condition: no new heartbeat line in the log for quiet_s (the trading thread that writes them is stuck)."""
    seen = {"count": -1, "since": time.monotonic()}

    def stopped() -> bool:
        count = log.read_text().count("heartbeat")
        if count != seen["count"]:
            seen["count"], seen["since"] = count, time.monotonic()
        return time.monotonic() - seen["since"] >= quiet_s

    return stopped


def test_a_worker_killed_during_a_database_stall_is_restarted_before_the_stall_ends(tmp_path):
    log = tmp_path / "out.log"
    db_path = tmp_path / "d.sqlite"
    cfg = short_day_config(tmp_path, mode="signals_only", monitoring={"heartbeat_seconds": 1})
    p = start_daemon(cfg, f"sqlite:///{db_path}", {"HOST_SERVER": "http://127.0.0.1:9"}, ["--speed", "100"],
                     output=log)
    blocker = None
    try:
        m = wait_for(lambda: re.search(r"workers ready \(pids ([\d ]+)\)", log.read_text()), timeout=60,
                     what="workers ready")
        victim = int(m.group(1).split()[2])
        wait_for(lambda: "daemon running" in log.read_text(), timeout=60, what="the replay to start")
        wait_for(lambda: "heartbeat" in log.read_text(), timeout=30, what="a first heartbeat line")
        blocker = sqlite3.connect(db_path, timeout=30, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # every write of the daemon now waits on SQLite's busy timeout
        locked_at = time.monotonic()
        # the trading thread writes its liveness row every 5 s: wait until it is stuck on the lock, as the
        # heartbeat lines (one a second, from the same thread) show by stopping for 1.5 s
        wait_for(_heartbeats_stopped(log, quiet_s=1.5), timeout=15, interval=0.1,
                 what="the trading thread to wait on the database")
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: "worker 2 restarted" in log.read_text(), timeout=LOCK_S - 8.0,
                 what="the restart while the database is locked")
        assert time.monotonic() - locked_at < LOCK_S
        assert f"worker 2 (pid {victim}) died" in log.read_text()
        blocker.rollback()
        blocker.close()
        blocker = None
        assert p.wait(timeout=180) == 0, log.read_text()[-3000:]
        text = log.read_text()
        assert "1 worker restarts" in text and "Traceback" not in text
    finally:
        if blocker is not None:
            blocker.close()
        if p.poll() is None:
            p.kill()
            p.wait()

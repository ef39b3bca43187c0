"""Dead workers are noticed and restarted on the supervisor's thread: a trading thread waiting on the database
(here another process holds SQLite's write lock) does not hold up the restart. The dashboard's process is
watched the same way: started again if it dies, stopped with the daemon."""
from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import sqlite3
import time

import requests

from tests.conftest import free_port, wait_for
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


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"  # ended, not yet reaped by whoever adopted it
    except FileNotFoundError:
        return True


def test_a_dashboard_process_that_dies_is_started_again_and_stopped_at_shutdown(tmp_path):
    """The dashboard runs in a process of its own, watched by the supervisor: killed, it is started again and
    serves the page again; the daemon's shutdown stops it."""
    log = tmp_path / "out.log"
    port, token = free_port(), secrets.token_urlsafe(32)
    cfg = short_day_config(tmp_path, mode="signals_only", dashboard={"port": port})
    p = start_daemon(cfg, f"sqlite:///{tmp_path / 'd.sqlite'}",
                     {"HOST_SERVER": "http://127.0.0.1:9", "DASHBOARD_TOKEN": token}, ["--speed", "10"], output=log)

    def listening() -> list[int]:
        return [int(pid) for pid in re.findall(r"dashboard on http://127\.0\.0\.1:\d+/ \(pid (\d+)", log.read_text())]

    def up() -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{port}/api/state", timeout=2,
                                headers={"Authorization": f"Bearer {token}"}).status_code == 200
        except requests.ConnectionError:
            assert p.poll() is None, log.read_text()[-3000:]
            return False
    try:
        (first,) = wait_for(listening, timeout=180, what="the dashboard's process")  # start-up at a load of 40
        assert first != p.pid
        wait_for(up, timeout=30, interval=0.1, what="the page")
        wait_for(lambda: "daemon running" in log.read_text(), timeout=180, what="the replay to start")
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: len(listening()) == 2, timeout=30, interval=0.1, what="the dashboard started again")
        second = listening()[1]
        assert second != first and _gone(first)
        assert f"dashboard: its process (pid {first}) ended with code -9; starting it again (restart 1)" \
            in log.read_text()
        wait_for(up, timeout=30, interval=0.1, what="the page again")
        assert p.poll() is None  # the daemon traded on meanwhile
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=120) == 0, log.read_text()[-3000:]
        wait_for(lambda: _gone(second), timeout=10, what="the dashboard's process to stop with the daemon")
        text = log.read_text()
        assert "Traceback" not in text and token not in text
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_a_dashboard_that_cannot_listen_is_not_restarted_and_the_daemon_trades_on(tmp_path):
    log = tmp_path / "out.log"
    port = free_port()
    cfg = short_day_config(tmp_path, mode="signals_only", dashboard={"port": port}, monitoring={"heartbeat_seconds": 1})
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        p = start_daemon(cfg, f"sqlite:///{tmp_path / 'd.sqlite'}",
                         {"HOST_SERVER": "http://127.0.0.1:9", "DASHBOARD_TOKEN": secrets.token_urlsafe(32)},
                         ["--speed", "10"], output=log)
        try:
            wait_for(lambda: "daemon running" in log.read_text(), timeout=180, what="the replay to start")
            wait_for(lambda: f"dashboard: could not listen on 127.0.0.1:{port}" in log.read_text(), timeout=60,
                     what="the dashboard's error")
            start = log.read_text().count("heartbeat")
            # past RESTART_AFTER_S of the trading loop's heartbeats (one a second): no second attempt came
            wait_for(lambda: log.read_text().count("heartbeat") >= start + 7, timeout=60, what="7 more heartbeats")
            text = log.read_text()
            assert text.count("could not listen") == 1 and "starting it again" not in text
            assert p.poll() is None
            p.send_signal(signal.SIGINT)
            assert p.wait(timeout=120) == 0, log.read_text()[-3000:]
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_the_dashboard_process_ends_when_the_driver_is_killed(tmp_path):
    """SIGKILL leaves no shutdown to stop it: it notices on its own, and frees the port for the next start."""
    log = tmp_path / "out.log"
    port = free_port()
    cfg = short_day_config(tmp_path, mode="signals_only", dashboard={"port": port})
    p = start_daemon(cfg, f"sqlite:///{tmp_path / 'd.sqlite'}",
                     {"HOST_SERVER": "http://127.0.0.1:9", "DASHBOARD_TOKEN": secrets.token_urlsafe(32)},
                     ["--speed", "10"], output=log)
    dash = None
    try:
        m = wait_for(lambda: re.search(r"dashboard on http://127\.0\.0\.1:\d+/ \(pid (\d+)", log.read_text()),
                     timeout=180, what="the dashboard's process")
        dash = int(m.group(1))
        wait_for(lambda: "daemon running" in log.read_text(), timeout=180, what="the replay to start")
        p.kill()
        p.wait()
        wait_for(lambda: _gone(dash), timeout=15, what="the dashboard's process to end with the driver")

        def port_free() -> bool:  # a leader shown as ended may still have threads closing its files
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    return False
                return True
        wait_for(port_free, timeout=15, interval=0.1, what="the port free for the next daemon's dashboard")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if dash is not None and not _gone(dash):
            os.kill(dash, signal.SIGKILL)

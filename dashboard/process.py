"""The live dashboard in a process of its own, so that its server and hub never take the trading thread's
interpreter: the driver starts it, restarts it if it dies and stops it at shutdown (`DashboardProcess`).

The process (`run`) reads what the trading process publishes anyway: the Manager's live view (one round trip
per hub pass, the connection kept), the day's rows from the database, the end of `daemon.log`. A control is
recorded in the `controls` table and rings the desk's bell (execution.operator) for the trading thread; its
outcome comes back in the same row. Its log lines go through the driver's log sink to `dashboard.log`.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

from core.config import Config
from core.logs import add_secrets
from core.net import is_loopback
from dashboard.token import TOKEN_KEY, load_token

log = logging.getLogger(__name__)

RESTART_AFTER_S = 5.0  # a dashboard that dies is started again at most this often
MAX_RESTARTS = 10
EXIT_NO_LISTEN = 3


class LiveReader:
    """The Manager's live view from another process: one connection, made again after a failure."""

    def __init__(self, where: dict[str, Any]):
        self.where = where
        self.view: Any = None

    def read(self) -> dict[str, Any]:
        from pipeline.live_view import connect_live_view

        if self.view is None:
            self.view = connect_live_view(self.where)
        try:
            return dict(self.view.copy())
        except Exception:
            self.view = None  # the next pass connects again
            raise


class LogFileTail:
    """The end of the driver's log file, re-read only when the file has grown or been rotated."""

    def __init__(self, path: Path):
        self.path = path

    def count(self) -> int:
        try:
            st = os.stat(self.path)
        except OSError:
            return -1
        return hash((st.st_ino, st.st_size, st.st_mtime_ns))

    def tail(self) -> list[str]:
        from dashboard.hub import file_tail

        return file_tail(self.path)


def run(cfg: Config, day: date, db_url: str | None, where: dict[str, Any], port: int, token: str, bell: Any,
        log_conn: Any, secrets: list[str], driver_pid: int) -> None:
    """The dashboard process: serve until the driver sends SIGTERM. Ctrl-C reaches the whole process group;
    the driver decides, so it is ignored here."""
    import db as dbm
    from core.logs import setup_logging
    from dashboard.app import build_app
    from dashboard.hub import Hub
    from dashboard.server import DashboardServer, backtest_folder
    from execution.operator import OperatorDesk

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    log_dir = cfg.resolve_path(cfg.monitoring.log_dir)
    setup_logging(cfg.monitoring.log_level, log_dir, [*secrets, token], filename="dashboard.log", sink=log_conn)
    add_secrets([token])
    handler = dbm.DBHandler(dbm.setup(db_url)[0])
    desk = OperatorDesk(handler, day, {s.symbol for s in cfg.symbols}, bell)
    desk.load()
    reader, tail = LiveReader(where), LogFileTail(log_dir / "daemon.log")
    hub = Hub(cfg, day, handler, desk, reader.read, tail.tail, tail.count)
    hub.start()
    try:
        server = DashboardServer(build_app(hub, desk, token, backtest_folder(cfg)), cfg.dashboard.host, port)
    except ValueError as e:
        log.error("dashboard: %s; the daemon trades on without it", e)
        hub.stop()
        os._exit(EXIT_NO_LISTEN)
    if os.getppid() != driver_pid:  # the driver died while this process started
        os._exit(0)
    if not server.start():
        log.error("dashboard: could not listen on %s:%d (%s); the daemon trades on without it", server.host,
                  server.port, server.failure or "no answer")
        hub.stop()
        os._exit(EXIT_NO_LISTEN)
    log.info("dashboard on http://%s:%d/ (pid %d; open it with ?token= and DASHBOARD_TOKEN from .env)",
             server.host, server.port, os.getpid())
    while not stop.wait(0.5):
        if os.getppid() != driver_pid:  # the driver was killed (its log sink with it): the port must be free for
            os._exit(0)  # the restarted daemon's dashboard, and nobody is left to hear a log line
        if server.thread is not None and not server.thread.is_alive():
            log.error("dashboard: the server stopped (%s)", server.failure or "no reason given")
            break
    hub.stop()  # first: the event streams end with it, so the server's shutdown has nothing to cut short
    server.stop()
    logging.shutdown()
    os._exit(0)  # no finalizers: the Manager they would talk to may be gone already


class DashboardProcess:
    """The driver's handle on the dashboard's process: `start`, `check` (the supervisor's thread: a dead one is
    started again, at most every RESTART_AFTER_S and MAX_RESTARTS times), `stop`."""

    def __init__(self, ctx: Any, cfg: Config, day: date, db_url: str | None, where: dict[str, Any], port: int,
                 token: str, bell: Any, log_channel: Any = None, secrets: list[str] | None = None):
        self.ctx, self.cfg, self.day, self.db_url, self.where = ctx, cfg, day, db_url, where
        self.port, self.token, self.bell, self.log_channel = port, token, bell, log_channel
        self.secrets = secrets or []
        self.proc: Any = None
        self.started_at = float("-inf")
        self.restarts = 0
        self.stopping = False
        self.gave_up = False
        self.lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else int(self.proc.pid)

    def start(self) -> None:
        log_conn = self.log_channel("dashboard.log") if self.log_channel is not None else None
        p = self.ctx.Process(target=run, name="dashboard", daemon=True,
                             args=(self.cfg, self.day, self.db_url, self.where, self.port, self.token, self.bell,
                                   log_conn, self.secrets, os.getpid()))
        try:
            p.start()
        finally:
            if log_conn is not None:
                log_conn.close()  # the child has its own: its exit ends the pipe for the sink
        self.proc, self.started_at = p, time.monotonic()

    def check(self) -> None:
        """Start the process again if it died (not while stopping)."""
        with self.lock:
            if self.stopping or self.gave_up or self.proc is None or self.proc.is_alive():
                return
            if self.proc.exitcode == EXIT_NO_LISTEN:  # a busy port or a refused host: logged by it, not retried
                self.gave_up = True
                return
            if self.restarts >= MAX_RESTARTS:
                self.gave_up = True
                log.error("dashboard: its process died %d times; the daemon trades on without it", self.restarts + 1)
                return
            if time.monotonic() - self.started_at < RESTART_AFTER_S:
                return
            self.restarts += 1
            log.warning("dashboard: its process (pid %s) ended with code %s; starting it again (restart %d)",
                        self.proc.pid, self.proc.exitcode, self.restarts)
            self.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        with self.lock:
            self.stopping = True
            p = self.proc
        if p is None:
            return
        if p.is_alive():
            p.terminate()
            p.join(timeout_s)
            if p.is_alive():
                log.warning("dashboard: its process did not stop in %.0f s; killing it", timeout_s)
                p.kill()
                p.join(timeout_s)


def start_live(ctx: Any, cfg: Config, day: date, db_url: str | None, where: dict[str, Any], port: int, bell: Any,
               log_channel: Any = None, secrets: list[str] | None = None) -> DashboardProcess | None:
    """The daemon's dashboard in its own process (dashboard.process) if one is asked for (port not 0), a token
    is set and the host is loopback; None otherwise (logged). Not waited for: it logs when it listens."""
    if port == 0:
        return None
    token = load_token()
    if token is None:
        log.error("dashboard: %s is unset in .env -- ./dev.sh setup writes one (or set dashboard.port: 0); "
                  "the daemon trades on without a dashboard", TOKEN_KEY)
        return None
    if not is_loopback(cfg.dashboard.host):
        log.error("dashboard: dashboard.host: %r is not allowed -- the dashboard listens on loopback only; the "
                  "daemon trades on without it", cfg.dashboard.host)
        return None
    add_secrets([token])
    dash = DashboardProcess(ctx, cfg, day, db_url, where, port, token, bell, log_channel, secrets)
    dash.start()
    return dash

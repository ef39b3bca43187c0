"""Serve the dashboard with uvicorn on loopback, on a thread of the driver's process (never the trading thread),
or on its own for a finished day (`python driver.py dashboard --date D`, read-only).

The token comes from DASHBOARD_TOKEN (the environment, else .env; `./dev.sh setup` writes one). uvicorn's access
log is off -- a first page load carries the token in its query string -- and its own logging goes through the
daemon's handlers, which mask the token like every secret.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import uvicorn
from dotenv import dotenv_values

from core.config import DEFAULT_ENV_PATH, Config
from core.logs import add_secrets
from core.net import is_loopback
from dashboard.app import build_app
from dashboard.hub import Hub, LogTail, file_tail
from db import DBHandler
from execution.operator import OperatorDesk

log = logging.getLogger(__name__)

TOKEN_KEY = "DASHBOARD_TOKEN"
START_TIMEOUT_S = 10.0


def load_token(env_path: Path | None = None) -> str | None:
    """DASHBOARD_TOKEN from the environment, else from .env; None if unset or blank. A variable set in the
    environment wins even when blank, as for every other secret (core.config.load_secrets)."""
    value = os.environ.get(TOKEN_KEY)
    if value is None:
        path = DEFAULT_ENV_PATH if env_path is None else env_path
        value = dotenv_values(path).get(TOKEN_KEY) if path.exists() else None
    value = (value or "").strip()
    return value or None




def backtest_folder(cfg: Config) -> Path:
    """Where backtest runs write their reports (<reports_dir>/backtest/<run-id>/summary.json)."""
    return cfg.resolve_path(cfg.monitoring.reports_dir) / "backtest"


class DashboardServer:
    """uvicorn on a thread of its own; `start` returns once it listens (or says why it does not)."""

    def __init__(self, app: Any, host: str, port: int):
        if not is_loopback(host):
            raise ValueError(f"dashboard.host: {host!r} is not allowed -- the dashboard listens on loopback only")
        self.host, self.port = host, port
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False,
                                                    lifespan="off", server_header=False, log_level="warning"))
        self.thread: threading.Thread | None = None
        self.failure: str | None = None

    def _serve(self) -> None:
        try:
            self.server.run()
        except BaseException as e:  # noqa: BLE001 - uvicorn exits (SystemExit) when it cannot bind
            self.failure = f"{type(e).__name__}: {e}"

    def start(self) -> bool:
        self.thread = threading.Thread(target=self._serve, name="dashboard", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and self.thread.is_alive() and not self.server.started:
            time.sleep(0.02)
        return bool(self.server.started)

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=5)


class LiveDashboard:
    """The running daemon's dashboard: the hub, the operator's desk and the server, started and stopped as one."""

    def __init__(self, cfg: Config, day: date, db: DBHandler, read_view: Callable[[], dict[str, Any]], port: int,
                 token: str):
        self.desk = OperatorDesk(db, day, {s.symbol for s in cfg.symbols})
        self.tail = LogTail()
        self.hub = Hub(cfg, day, db, self.desk, read_view, self.tail.tail, lambda: self.tail.count)
        self.server = DashboardServer(build_app(self.hub, self.desk, token, backtest_folder(cfg)),
                                      cfg.dashboard.host, port)

    def start(self) -> bool:
        logging.getLogger().addHandler(self.tail)
        self.desk.load()
        self.hub.start()
        if self.server.start():
            log.info("dashboard on http://%s:%d/ (open it with ?token= and DASHBOARD_TOKEN from .env)",
                     self.server.host, self.server.port)
            return True
        log.error("dashboard: could not listen on %s:%d (%s); the daemon trades on without it", self.server.host,
                  self.server.port, self.server.failure or "no answer")
        self.stop()
        return False

    def stop(self) -> None:
        self.server.stop()
        self.hub.stop()
        logging.getLogger().removeHandler(self.tail)


def start_live(cfg: Config, day: date, db: DBHandler, read_view: Callable[[], dict[str, Any]],
               port: int) -> LiveDashboard | None:
    """The daemon's dashboard if one is asked for (port not 0) and a token is set; None otherwise (logged)."""
    if port == 0:
        return None
    token = load_token()
    if token is None:
        log.error("dashboard: %s is unset in .env -- ./dev.sh setup writes one (or set dashboard.port: 0); "
                  "the daemon trades on without a dashboard", TOKEN_KEY)
        return None
    add_secrets([token])
    try:
        dash = LiveDashboard(cfg, day, db, read_view, port, token)
    except ValueError as e:
        log.error("dashboard: %s; the daemon trades on without it", e)
        return None
    return dash if dash.start() else None


def serve_finished_day(cfg: Config, db: DBHandler, day: date, port: int, stop: threading.Event) -> int:
    """`driver.py dashboard --date D`: the day's pages from its database, read-only, until `stop` is set."""
    token = load_token()
    if token is None:
        log.error("dashboard: %s is unset in .env -- ./dev.sh setup writes one", TOKEN_KEY)
        return 2
    add_secrets([token])
    desk = OperatorDesk(db, day, set())
    desk.load()
    log_file = cfg.resolve_path(cfg.monitoring.log_dir) / "daemon.log"
    hub = Hub(cfg, day, db, desk, None, lambda: file_tail(log_file))
    hub.start()
    server = DashboardServer(build_app(hub, None, token, backtest_folder(cfg)), cfg.dashboard.host, port)
    if not server.start():
        log.error("dashboard: could not listen on %s:%d (%s)", cfg.dashboard.host, port, server.failure)
        return 1
    log.info("dashboard (read-only, %s) on http://%s:%d/ -- Ctrl-C to stop", day, cfg.dashboard.host, port)
    stop.wait()
    server.stop()
    return 0

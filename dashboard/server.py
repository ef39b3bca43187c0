"""Serve the dashboard with uvicorn on loopback: in a process of its own beside the running daemon
(dashboard.process), or for a finished day (`python driver.py dashboard --date D`, read-only).

The token comes from DASHBOARD_TOKEN (the environment, else .env; `./dev.sh setup` writes one). uvicorn's access
log is off -- a first page load carries the token in its query string -- and its own logging goes through the
daemon's handlers, which mask the token like every secret.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

import uvicorn

from core.config import Config
from core.logs import add_secrets
from core.net import is_loopback
from dashboard.app import build_app
from dashboard.hub import Hub, file_tail
from dashboard.token import TOKEN_KEY, load_token
from db import DBHandler
from execution.operator import OperatorDesk

log = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0


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
                                                    lifespan="off", server_header=False, log_level="warning",
                                                    timeout_graceful_shutdown=2))  # event streams never end
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
    hub.stop()  # first: the event streams end with it
    server.stop()
    return 0

"""The dashboard's token rules, against the real server (uvicorn on loopback) over HTTP: 401 without the token;
a Bearer header works; `?token=` on a page load redirects to the bare address with an HttpOnly SameSite=Strict
cookie that then works alone; a wrong token is 401 everywhere; the token never reaches a log line."""
from __future__ import annotations

import logging
import secrets
import threading
from datetime import date

import pytest
import requests

import db as dbm
from core.config import load_config
from core.logs import setup_logging
from dashboard.app import build_app
from dashboard.auth import TokenGate
from dashboard.hub import Hub
from dashboard.server import DashboardServer, serve_finished_day
from execution.operator import OperatorDesk
from tests.conftest import free_port
from tests.daemon_harness import ROOT

DAY = date(2026, 11, 20)


@pytest.fixture
def served(tmp_path):
    url = f"sqlite:///{tmp_path / 'd.sqlite'}"
    dbm.initialize_database(url)
    handler = dbm.DBHandler(dbm.setup(url)[0])
    cfg = load_config(ROOT / "config.yaml")
    token = secrets.token_urlsafe(32)
    desk = OperatorDesk(handler, DAY, set())
    hub = Hub(cfg, DAY, handler, desk, None, lambda: [])
    hub.start()
    runs = tmp_path / "backtest"
    (runs / "run-1").mkdir(parents=True)
    (runs / "run-1" / "summary.json").write_text('{"net_pnl": 1234.5, "trades": 7}')
    (runs / "no-summary").mkdir()
    server = DashboardServer(build_app(hub, None, token, runs), "127.0.0.1", free_port())
    assert server.start(), server.failure
    yield f"http://127.0.0.1:{server.port}", token
    server.stop()


def test_every_path_needs_the_token(served):
    base, token = served
    for path in ("/", "/api/state", "/api/events", "/static/app.js", "/nothing"):
        r = requests.get(base + path, timeout=5, allow_redirects=False)
        assert r.status_code == 401, path
        assert token not in r.text
    assert requests.post(base + "/api/control", json={"action": "halt"}, timeout=5).status_code == 401
    wrong = {"Authorization": "Bearer " + "x" * len(token)}
    assert requests.get(base + "/api/state", headers=wrong, timeout=5).status_code == 401
    assert requests.get(base + "/?token=" + "y" * len(token), timeout=5, allow_redirects=False).status_code == 401
    assert requests.get(base + "/api/state", cookies={"dashboard_token": "z" * 40}, timeout=5).status_code == 401


def test_a_bearer_header_opens_every_path(served):
    base, token = served
    h = {"Authorization": f"Bearer {token}"}
    r = requests.get(base + "/api/state", headers=h, timeout=5)
    assert r.status_code == 200 and r.json()["day"] == DAY.isoformat() and r.json()["read_only"] is True
    assert requests.get(base + "/", headers=h, timeout=5).status_code == 200
    # a finished day's dashboard takes no control, even with the token
    r = requests.post(base + "/api/control", json={"action": "halt"}, headers=h, timeout=5)
    assert r.status_code == 403 and "read-only" in r.json()["error"]


def test_token_in_the_query_becomes_a_strict_cookie_and_leaves_the_address(served):
    base, token = served
    r = requests.get(f"{base}/?token={token}&x=1", timeout=5, allow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/?x=1"  # the token is gone from the address bar and history
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"dashboard_token={token};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    s = requests.Session()
    r = s.get(f"{base}/?token={token}", timeout=5)  # follows the redirect with the cookie set
    assert r.status_code == 200 and "<title>Trading dashboard</title>" in r.text
    assert s.get(base + "/api/state", timeout=5).status_code == 200  # the cookie alone from now on
    # a token in the query of anything but a page load (GET) is not taken
    assert requests.post(f"{base}/api/control?token={token}", json={"action": "halt"}, timeout=5).status_code == 401


def test_a_short_token_is_refused():
    with pytest.raises(ValueError, match="DASHBOARD_TOKEN"):
        TokenGate(lambda *a: None, "short")


def test_the_token_never_reaches_a_log_line(tmp_path, monkeypatch, capfd):
    """The read-only server as `driver.py dashboard` runs it, logging at DEBUG to a file and stderr: requests
    with the token in the query, a header and a cookie leave no trace of it."""
    token = secrets.token_urlsafe(32)
    monkeypatch.setenv("DASHBOARD_TOKEN", token)
    url = f"sqlite:///{tmp_path / 'd.sqlite'}"
    dbm.initialize_database(url)
    handler = dbm.DBHandler(dbm.setup(url)[0])
    cfg = load_config(ROOT / "config.yaml")
    setup_logging("DEBUG", tmp_path / "logs")
    port = free_port()
    stop = threading.Event()
    done: list[int] = []
    t = threading.Thread(target=lambda: done.append(serve_finished_day(cfg, handler, DAY, port, stop)))
    t.start()
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                requests.get(base + "/", timeout=1)
                break
            except requests.ConnectionError:
                threading.Event().wait(0.05)
        s = requests.Session()
        assert s.get(f"{base}/?token={token}", timeout=5).status_code == 200
        assert s.get(f"{base}/api/state", timeout=5).status_code == 200
        assert requests.get(f"{base}/api/state", headers={"Authorization": f"Bearer {token}"},
                            timeout=5).status_code == 200
        logging.getLogger("uvicorn.error").warning("a line naming the token %s", token)  # masked, if it ever came
    finally:
        stop.set()
        t.join(timeout=10)
        logging.shutdown()
    assert done == [0]
    out = capfd.readouterr()
    logged = out.out + out.err + "".join(p.read_text() for p in (tmp_path / "logs").glob("*"))
    assert "dashboard (read-only, 2026-11-20) on http://127.0.0.1:" in logged
    assert "a line naming the token ***" in logged
    assert token not in logged


def test_backtest_runs_are_listed_and_read_only(served):
    """The hook for the backtest runner: runs with a summary.json, each readable by its listed id only."""
    base, token = served
    h = {"Authorization": f"Bearer {token}"}
    assert requests.get(base + "/api/backtest", timeout=5).status_code == 401
    assert requests.get(base + "/api/backtest", headers=h, timeout=5).json() == {"runs": ["run-1"]}
    assert requests.get(base + "/api/backtest/run-1", headers=h, timeout=5).json() == {"net_pnl": 1234.5, "trades": 7}
    for bad in ("no-summary", "..%2F..%2Fetc", "run-2"):
        assert requests.get(base + "/api/backtest/" + bad, headers=h, timeout=5).status_code == 404

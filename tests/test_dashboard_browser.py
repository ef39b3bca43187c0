"""The dashboard in a real browser (Debian's chromium, driven by Playwright) on the real daemon replaying a
short day against the real paper broker: the page loads with the token, a position appears, pressing its
Flatten button closes it at the broker (the positionbook), and the control is recorded with its outcome; then
the finished day read-only, with a real backtest run's equity curve and trades.
Screenshots go to reports/dashboard-browser/<time>/ (printed; reports/ is not committed): a tmp folder would be
rotated away by later pytest runs before anyone looks."""
from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import time
from datetime import date
from datetime import time as dtime
from pathlib import Path

import pytest
import requests

from core.clock import ist_epoch
from gateway.openalgo import OpenAlgoGateway
from gateway.results import Ok
from tests.conftest import free_port, wait_for
from tests.daemon_harness import DAY, ROOT, daemon_env, rows, short_day_config, start_daemon
from tests.paper_fixtures import Broker
from tests.test_dashboard_backtest import RUN, csv_rows, make_run

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                                                               "(apt-get install chromium)")


@pytest.fixture
def paper(tmp_path):
    b = Broker(tmp_path / "broker.sqlite", secrets.token_hex(16), args=["--order-rate", "10"],
               log_file=tmp_path / "broker.log").start()
    yield b
    b.stop()


@pytest.fixture
def browser():
    """Debian's chromium, headless, for the test's whole length; each use opens a page with `browser.new_page`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def new_page(browser):
    return browser.new_page(viewport={"width": 1400, "height": 1800})


def broker_quantity(b: Broker, symbol: str) -> int:
    book = OpenAlgoGateway(b.url, b.key).positionbook()
    assert isinstance(book, Ok), book
    return sum(p.quantity for p in book.value if p.symbol == symbol)


def test_flatten_from_the_browser_closes_the_position_at_the_broker(tmp_path, paper, browser):
    port, token = free_port(), secrets.token_urlsafe(32)
    cfg = short_day_config(tmp_path, dashboard={"port": port})
    db_url = f"sqlite:///{tmp_path / 'day.sqlite'}"
    out = tmp_path / "daemon.out"
    # from the open at 30x real time: the day's first position opens at 09:16 (warm-up from history; a few s) and
    # the short day's positions stay open for 10 s to a minute of wall time
    proc = start_daemon(cfg, db_url, {"HOST_SERVER": paper.url, "APP_KEY": paper.key, "DASHBOARD_TOKEN": token},
                        args=["--speed", "30"], output=out)
    shots = ROOT / "reports" / "dashboard-browser" / time.strftime("%Y%m%d-%H%M%S")
    shots.mkdir(parents=True)
    print(f"\nscreenshots: {shots}")
    base = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            try:
                return requests.get(base + "/api/state", headers={"Authorization": f"Bearer {token}"},
                                    timeout=2).status_code == 200
            except requests.ConnectionError:
                assert proc.poll() is None, out.read_text()[-3000:]
                return False
        wait_for(up, timeout=90, interval=0.2, what="the dashboard")
        page = new_page(browser)
        page.goto(f"{base}/?token={token}")
        assert page.url == f"{base}/"  # the token left the address bar
        # the dashboard listens before the workers have started (and warmed up): ACTIVE comes with the trading loop
        page.wait_for_function("document.getElementById('state').textContent === 'ACTIVE'", timeout=120_000)
        page.screenshot(path=str(shots / "1-loaded.png"), full_page=True)
        button = page.wait_for_selector("#positions tbody tr button[data-symbol]", timeout=120_000)
        symbol = button.get_attribute("data-symbol")
        wait_for(lambda: broker_quantity(paper, symbol) != 0, timeout=30, what=f"{symbol} held at the broker")
        page.screenshot(path=str(shots / "2-position.png"), full_page=True)
        page.click(f"#flatten-{symbol}")
        page.wait_for_function(
            "[...document.querySelectorAll('#controls tbody tr')].some(r => r.cells[2].textContent === "
            "'flatten' && r.cells[4].textContent === 'DONE')", timeout=30_000)
        wait_for(lambda: broker_quantity(paper, symbol) == 0, timeout=30, what=f"{symbol} flat at the broker")
        page.wait_for_function(
            f"![...document.querySelectorAll('#positions tbody tr')].some(r => r.cells[0].textContent === "
            f"'{symbol}')", timeout=30_000)
        page.screenshot(path=str(shots / "3-flattened.png"), full_page=True)
        # the rows the page built from deltas (each push carries what changed) are the server's own: the
        # operator's trade is there, and the orders table matches GET /api/state at some moment
        page.wait_for_function(
            f"[...document.querySelectorAll('#trades tbody tr')].some(r => r.cells[1].textContent === '{symbol}' "
            "&& r.cells[7].textContent === 'operator')", timeout=30_000)

        def same_orders() -> bool:
            state = requests.get(base + "/api/state", headers={"Authorization": f"Bearer {token}"}, timeout=5).json()
            shown = page.eval_on_selector_all(
                "#orders tbody tr", "rs => rs.map(r => [Number(r.cells[0].textContent), r.cells[7].textContent])")
            return bool(shown) and shown == [[o["id"], o["status"]] for o in state["orders"]]
        wait_for(same_orders, timeout=30, interval=0.2, what="the page's orders as the server has them")
        page.close()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except Exception:  # noqa: BLE001 - the test's verdict stands; the process must not outlive it
                proc.kill()
                proc.wait()
    (control,) = rows(db_url, "SELECT action, symbol, status, note, who, decision_time FROM controls")
    assert control[:3] == ("flatten", symbol, "DONE") and control[3].startswith("exit order for")
    assert control[4].startswith("dashboard 127.0.0.1")
    # acted on at the replay's data time (the short day's session), not the wall clock's
    assert ist_epoch(date.fromisoformat(DAY), dtime(9, 15)) <= control[5] <= ist_epoch(date.fromisoformat(DAY),
                                                                                        dtime(10, 45))
    # the operator's exit order carries the same data time
    assert rows(db_url, "SELECT COUNT(*) FROM orders WHERE symbol = :s AND purpose = 'exit' AND decision_time = :t",
                s=symbol, t=control[5]) == [(1,)]
    reasons = rows(db_url, "SELECT exit_reason FROM trade_log WHERE symbol = :s ORDER BY id", s=symbol)
    assert ("operator",) in reasons
    assert token not in out.read_text()  # never logged
    assert all((shots / f).stat().st_size > 10_000 for f in ("1-loaded.png", "2-position.png", "3-flattened.png"))

    # the finished day, read-only, from its database: the same page, the control and the trade it closed, and
    # no control that works; and a real backtest run written where the config's reports go
    run = make_run(tmp_path / "reports" / "backtest")
    trades = csv_rows(run)
    best = max(trades, key=lambda r: float(r["net_pnl"]))
    ro_port = free_port()
    ro = subprocess.Popen([sys.executable, str(ROOT / "driver.py"), "dashboard", "--config", str(cfg), "--date", DAY,
                           "--dashboard-port", str(ro_port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, env=daemon_env(db_url, {"DASHBOARD_TOKEN": token}), cwd=ROOT)
    ro_base = f"http://127.0.0.1:{ro_port}"
    try:
        def ro_up() -> bool:
            try:
                return requests.get(ro_base + "/api/state", headers={"Authorization": f"Bearer {token}"},
                                    timeout=2).status_code == 200
            except requests.ConnectionError:
                assert ro.poll() is None, ro.stdout.read() if ro.stdout else ""
                return False
        wait_for(ro_up, timeout=30, interval=0.1, what="the read-only dashboard")
        page = new_page(browser)
        page.goto(f"{ro_base}/?token={token}")
        page.wait_for_function("document.getElementById('day').textContent.includes('read-only')")
        page.wait_for_function("[...document.querySelectorAll('#trades tbody tr')].some(r => "
                               "r.cells[7].textContent === 'operator')")
        assert page.is_disabled("#btn-halt") and page.is_disabled("#btn-flatten-all")
        assert "flatten" in page.inner_text("#controls tbody")
        page.screenshot(path=str(shots / "4-read-only.png"), full_page=True)
        # the backtest run: chosen by default (the only one), its curve drawn and its trades listed
        assert page.input_value("#backtest-runs") == RUN
        page.wait_for_function(f"document.querySelectorAll('#backtest-trades tbody tr').length === {len(trades)}")
        assert page.inner_text("#backtest-page") == f"page 1 of 1 ({len(trades)} trades)"
        assert page.locator("#backtest-curve polyline").count() == 2
        assert "drawdown" in page.inner_text("#backtest-curve-label")
        assert "run.run_id" in page.inner_text("#backtest tbody")
        page.select_option("#backtest-sort", "net_pnl")
        page.select_option("#backtest-order", "desc")
        page.wait_for_function(f"document.querySelector('#backtest-trades tbody tr').cells[0].textContent === "
                               f"'{best['trade_id']}'")
        page.locator("#backtest-section").scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "5-backtest.png"), full_page=True)
        page.close()
        r = requests.post(ro_base + "/api/control", json={"action": "halt"},
                          headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert r.status_code == 403
    finally:
        ro.send_signal(signal.SIGINT)
        out_ro, _ = ro.communicate(timeout=30)
    assert ro.returncode == 0, out_ro
    assert token not in out_ro
    assert (shots / "5-backtest.png").stat().st_size > 10_000

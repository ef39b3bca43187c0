"""A backtest run in the dashboard, over HTTP against the real server (uvicorn on loopback), on a real run: the
runner over two synthetic days, its outputs written as `driver.py backtest` writes them. Equity after each exit
ends at the summary's ending capital; the trades page through every row once, sorted by P&L or exit time; the
token is required on every new path; bad parameters and a damaged trades.csv are clear errors."""
from __future__ import annotations

import csv
import secrets
import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import requests

import db as dbm
from backtest.outputs import write_outputs
from backtest.runner import BacktestSpec, run_backtest
from core.config import load_config
from dashboard.app import build_app
from dashboard.hub import Hub
from dashboard.server import DashboardServer
from execution.operator import OperatorDesk
from history.intervals import parse_interval
from history.synthetic import SyntheticSource
from tests.conftest import free_port
from tests.daemon_harness import ROOT

RUN = "bt-two-days"


def make_run(out_root: Path, run_id: str = RUN) -> Path:
    """A real backtest run (SBIN and LT over 2025-03-03..04, synthetic history), its files written."""
    cfg = load_config(ROOT / "config.yaml")
    spec = BacktestSpec(cfg=cfg, source=SyntheticSource(cfg.replay.seed, cfg.session), interval=parse_interval("1m"),
                        first=date(2025, 3, 3), last=date(2025, 3, 4), symbols=("SBIN", "LT"),
                        cache_dir=out_root.parent / "cache", out_root=out_root, run_id=run_id)
    write_outputs(spec, run_backtest(spec), record_run=False)
    return out_root / run_id


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dash-bt")
    runs = tmp / "backtest"
    make_run(runs)
    damaged = runs / "damaged"
    shutil.copytree(runs / RUN, damaged)
    lines = (damaged / "trades.csv").read_text().splitlines()
    lines[2] = lines[2].replace(lines[2].split(",")[9], "soon", 1)  # exit_time of the second trade
    (damaged / "trades.csv").write_text("\n".join(lines) + "\n")
    url = f"sqlite:///{tmp / 'd.sqlite'}"
    dbm.initialize_database(url)
    handler = dbm.DBHandler(dbm.setup(url)[0])
    cfg = load_config(ROOT / "config.yaml")
    token = secrets.token_urlsafe(32)
    hub = Hub(cfg, date(2025, 3, 4), handler, OperatorDesk(handler, date(2025, 3, 4), set()), None, lambda: [])
    hub.start()
    server = DashboardServer(build_app(hub, None, token, runs), "127.0.0.1", free_port())
    assert server.start(), server.failure
    yield f"http://127.0.0.1:{server.port}", {"Authorization": f"Bearer {token}"}, runs / RUN
    server.stop()
    hub.stop()


def csv_rows(run: Path) -> list[dict[str, str]]:
    with (run / "trades.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_every_backtest_path_needs_the_token(served):
    base, _, _ = served
    for path in ("/api/backtest", f"/api/backtest/{RUN}", f"/api/backtest/{RUN}/equity",
                 f"/api/backtest/{RUN}/trades", f"/api/backtest/{RUN}/trades?sort=net_pnl"):
        r = requests.get(base + path, timeout=5)
        assert r.status_code == 401, path


def test_equity_after_each_exit_ends_at_the_runs_ending_capital(served):
    base, auth, run = served
    summary = requests.get(f"{base}/api/backtest/{RUN}", headers=auth, timeout=5).json()
    eq = requests.get(f"{base}/api/backtest/{RUN}/equity", headers=auth, timeout=5).json()
    rows = csv_rows(run)
    assert len(rows) >= 5  # the run trades: otherwise this test would prove nothing
    points = eq["points"]
    assert len(points) == len(rows) + 1
    assert points[0][1] == summary["starting_capital"] == eq["starting_capital"] and points[0][2] == 0
    assert points[-1][1] == pytest.approx(summary["ending_capital"], abs=0.005)
    assert [p[0] for p in points] == sorted(p[0] for p in points)
    # drawdown by hand from the same rows: the running peak from the start
    equity = peak = Decimal(str(summary["starting_capital"]))
    worst = 0.0
    for r in sorted(rows, key=lambda r: int(r["exit_time"])):
        equity += Decimal(r["net_pnl"])
        peak = max(peak, equity)
        worst = max(worst, float((peak - equity) / peak * 100))
    assert max(p[2] for p in points) == pytest.approx(worst, abs=1e-4)
    assert worst > 0  # the run has a losing stretch to draw


def test_trades_page_through_every_row_once_in_order(served):
    base, auth, run = served
    rows = csv_rows(run)
    seen: list[dict[str, str]] = []
    page = 1
    while True:
        p = requests.get(f"{base}/api/backtest/{RUN}/trades", params={"sort": "net_pnl", "order": "desc",
                         "page": page, "size": 4}, headers=auth, timeout=5).json()
        assert p["total"] == len(rows) and p["pages"] == -(-len(rows) // 4) and p["page"] == page
        seen += p["trades"]
        if page == p["pages"]:
            break
        assert len(p["trades"]) == 4
        page += 1
    assert sorted(t["trade_id"] for t in seen) == sorted(r["trade_id"] for r in rows)
    pnls = [Decimal(t["net_pnl"]) for t in seen]
    assert pnls == sorted(pnls, reverse=True) and pnls[0] > 0 > pnls[-1]
    assert seen[0] == max(rows, key=lambda r: Decimal(r["net_pnl"]))  # the row as the run wrote it

    by_time = requests.get(f"{base}/api/backtest/{RUN}/trades", params={"size": 200}, headers=auth,
                           timeout=5).json()
    times = [int(t["exit_time"]) for t in by_time["trades"]]
    assert times == sorted(times) and len(times) == len(rows) and by_time["sort"] == "exit_time"
    last = requests.get(f"{base}/api/backtest/{RUN}/trades", params={"order": "desc", "size": 1}, headers=auth,
                        timeout=5).json()
    assert int(last["trades"][0]["exit_time"]) == times[-1]
    beyond = requests.get(f"{base}/api/backtest/{RUN}/trades", params={"page": 99}, headers=auth, timeout=5)
    assert beyond.status_code == 200 and beyond.json()["trades"] == []


@pytest.mark.parametrize(("params", "message"), [
    ({"sort": "symbol"}, "sort: 'symbol' is not one of exit_time, net_pnl"),
    ({"order": "up"}, "order: 'up' is not asc or desc"),
    ({"page": "two"}, "page: 'two' is not a whole number"),
    ({"page": "0"}, "page: 0 is not 1 or more"),
    ({"size": "1000"}, "size: 1000 is not between 1 and 200"),
])
def test_bad_trade_parameters_are_a_clear_400(served, params, message):
    base, auth, _ = served
    r = requests.get(f"{base}/api/backtest/{RUN}/trades", params=params, headers=auth, timeout=5)
    assert r.status_code == 400 and r.json() == {"error": message}


def test_unknown_runs_and_damaged_files(served):
    base, auth, _ = served
    for bad in ("run-2", "..%2F..%2Fetc", "no-such"):
        for tail in ("", "/equity", "/trades"):
            assert requests.get(f"{base}/api/backtest/{bad}{tail}", headers=auth, timeout=5).status_code == 404
    r = requests.get(f"{base}/api/backtest/damaged/trades", headers=auth, timeout=5)
    assert r.status_code == 422
    assert r.json()["error"].startswith("backtest run 'damaged': trades.csv line 3: exit_time 'soon'")
    assert requests.get(f"{base}/api/backtest/damaged/equity", headers=auth, timeout=5).status_code == 422
    assert set(requests.get(f"{base}/api/backtest", headers=auth, timeout=5).json()["runs"]) == {RUN, "damaged"}

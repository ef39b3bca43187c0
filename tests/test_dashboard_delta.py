"""The dashboard's pushes carry what changed, not the day's rows again: the delta rebuilds the next version
exactly, in Python and in the page's own script (run in chromium), and over the real server a stream that receives
deltas ends with the same snapshot as GET /api/state."""
from __future__ import annotations

import copy
import json
import secrets
import threading
import time
from datetime import date
from datetime import time as dtime
from typing import Any

import pytest
import requests

import dashboard.app as appmod
import dashboard.hub as hubmod
import db as dbm
from core.clock import ist_epoch
from core.config import load_config
from dashboard.app import build_app
from dashboard.delta import apply_delta, doc_delta
from dashboard.hub import Hub
from dashboard.server import DashboardServer
from execution.operator import OperatorDesk
from tests.conftest import free_port
from tests.daemon_harness import ROOT
from tests.db_rows import insert
from tests.test_dashboard_browser import CHROMIUM

DAY = date(2026, 11, 20)


def signal(i: int, outcome: str | None = None) -> dict[str, Any]:
    return {"signal_id": f"s{i}", "symbol": "SBIN", "strategy": "ma", "time": 1000 + i, "type": "entry",
            "position": "long", "price": 800.5 + i, "note": None, "outcome": outcome, "outcome_note": None}


def versions() -> list[dict[str, Any]]:
    """A day's rows part as it moves: new signals on top (newest first, a hundred kept), an outcome filled in,
    the curve's last point moved and a point added, the curve thinned, a value replaced; and a log tail."""
    v0: dict[str, Any] = {"signals": [signal(i) for i in range(99, -1, -1)], "orders": [], "curve": [[1.0, 100.0, 0.0]],
          "log": [f"line {i}" for i in range(100)], "n": 1}
    v1 = copy.deepcopy(v0)
    v1["signals"] = [signal(101), signal(100)] + v1["signals"][:98]
    v1["signals"][5] = signal(96, "filled")
    v1["curve"] = [[1.0, 100.0, 0.0], [2.0, 99.0, 1.0]]
    v1["log"] = v1["log"][3:] + ["line 100", "line 101", "line 102"]
    v2 = copy.deepcopy(v1)
    v2["curve"][-1] = [2.5, 98.0, 2.0]
    v2["curve"].append([3.0, 101.0, 0.0])
    v2["orders"] = [{"id": 7, "symbol": "SBIN", "history": [{"to": "OPEN"}]}]
    v3 = copy.deepcopy(v2)
    v3["curve"] = v3["curve"][::2]
    v3["orders"][0]["history"].append({"to": "COMPLETE"})
    v3["n"] = 2
    return [v0, v1, v2, v3]


def test_a_delta_rebuilds_the_next_version_and_is_small():
    vs = versions()
    for old, new in zip(vs, vs[1:], strict=False):
        delta = json.loads(json.dumps(doc_delta(old, new)))  # as it travels
        assert apply_delta(old, delta) == new
        assert len(json.dumps(delta)) < len(json.dumps(new)) / 3
    assert doc_delta(vs[0], copy.deepcopy(vs[0])) == {}
    assert doc_delta({"x": [1, 2]}, {"x": [2, 1]}) == {"x": {"set": [2, 1]}}  # bare numbers are never references


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install "
                    "chromium, as .ci/run and ./dev.sh test do): the page's script runs in the browser it ships to")
def test_the_page_applies_a_delta_as_python_does():
    from playwright.sync_api import sync_playwright

    script = (ROOT / "dashboard" / "static" / "app.js").read_text()
    start = script.index("function applyDelta(")
    func = script[start:script.index("\n}\n", start) + 3]
    vs = versions()
    cases = [[old, json.loads(json.dumps(doc_delta(old, new)))] for old, new in zip(vs, vs[1:], strict=False)]
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            got = b.new_page().evaluate(
                "(cases) => { " + func + "\n return cases.map(([old, d]) => { const o = {...old}; applyDelta(o, d); "
                "return o; }); }", cases)
        finally:
            b.close()
    assert got == vs[1:]


def read_events(url: str, token: str, stop: threading.Event, got: list[tuple[str, Any]]) -> None:
    with requests.get(url, stream=True, timeout=10, headers={"Authorization": f"Bearer {token}"}) as r:
        event = None
        for line in r.iter_lines(decode_unicode=True):
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event is not None:
                got.append((event, json.loads(line[6:])))
            if stop.is_set():
                return


def test_a_stream_of_deltas_ends_with_the_snapshot(tmp_path, monkeypatch):
    monkeypatch.setattr(hubmod, "PUSH_EVERY_S", 0.05)
    monkeypatch.setattr(appmod, "STREAM_EVERY_S", 0.01)  # the stream looks more often than the hub publishes
    monkeypatch.setattr(hubmod, "ROWS_MIN_S", 0.0)
    url = f"sqlite:///{tmp_path / 'd.sqlite'}"
    dbm.initialize_database(url)
    handler = dbm.DBHandler(dbm.setup(url)[0])
    cfg = load_config(ROOT / "config.yaml")
    count = {"signals": 0}
    equity = [1_000_000.0]
    lines: list[str] = []

    def view() -> dict[str, Any]:  # the Manager's live view as the trading thread would leave it
        return {"signals": count["signals"], "pnl": {"equity": equity[0], "starting_capital": 1_000_000.0},
                "feed_time": ist_epoch(DAY, dtime(10, 0)) + count["signals"],
                "trading_state": "ACTIVE"}
    hub = Hub(cfg, DAY, handler, OperatorDesk(handler, DAY, set()), view, lambda: list(lines), lambda: len(lines))
    hub.start()
    token = secrets.token_urlsafe(32)
    server = DashboardServer(build_app(hub, None, token), "127.0.0.1", free_port())
    assert server.start(), server.failure
    stop, got = threading.Event(), list[tuple[str, Any]]()
    reader = threading.Thread(target=read_events, args=(f"http://127.0.0.1:{server.port}/api/events", token,
                                                        stop, got), daemon=True)
    reader.start()
    try:
        t0 = ist_epoch(DAY, dtime(10, 0))
        for i in range(40):
            insert(handler, dbm.StockSignal(signal_id=f"s{i}", symbol="SBIN", strategy="ma", time=t0 + i,
                                            price=800.0 + i, type="entry", current_position="long"))
            count["signals"] += 1
            equity[0] += 10.0
            lines.append(f"signal {i}")
            deadline = time.monotonic() + 5
            while hub.latest("rows")[0] < i + 2 and time.monotonic() < deadline:
                time.sleep(0.01)
        deadline = time.monotonic() + 5
        state = json.loads(hub.snapshot_json())
        while time.monotonic() < deadline:
            held: dict[str, Any] = {}
            for event, doc in list(got):
                if event.endswith("_delta"):
                    held = apply_delta(held, doc)
                else:
                    held.update(doc)
            state = json.loads(hub.snapshot_json())
            if all(held.get(k) == state[k] for k in ("signals", "curve", "log")):
                break
            time.sleep(0.05)
    finally:
        stop.set()
        server.stop()
        hub.stop()
    assert [s["signal_id"] for s in held["signals"]] == [f"s{i}" for i in range(39, -1, -1)]
    assert held["curve"] == state["curve"] and held["log"] == state["log"] and len(held["log"]) == 40
    deltas = [e for e, _ in got if e == "rows_delta"]
    assert len(deltas) >= 10  # the rows went as deltas, not whole each time

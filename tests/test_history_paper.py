"""History against a real paper broker process: OpenAlgo's history and intervals routes, the official client
(openalgo 1.0.12) in OpenAlgoSource, the cache proven by the requests the server counted, and the CLI."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from history.intervals import parse_interval
from history.openalgo_source import OpenAlgoSource
from history.sources import HistoryError
from history.store import HistoryStore
from history.synthetic import synthetic_day
from tests.paper_fixtures import DAY, T, broker, broker_proc  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parent.parent
M1 = parse_interval("1m")


def test_routes_answer_in_openalgo_shapes(broker):
    r = broker.post("intervals")
    assert r.status_code == 200 and r.json()["data"]["minutes"][0] == "1m" and r.json()["data"]["weeks"] == []
    r = broker.post("history", {"symbol": "SBIN", "exchange": "NSE", "interval": "5m", "start_date": "2026-11-19",
                                "end_date": "2026-11-19"})
    rows = r.json()["data"]
    assert r.status_code == 200 and len(rows) == 75
    assert set(rows[0]) == {"timestamp", "open", "high", "low", "close", "volume", "oi"}
    assert rows[0]["timestamp"] == T(9, 15, day=date(2026, 11, 19)) and isinstance(rows[0]["timestamp"], int)
    # the broker's replay clock is 10:00 on DAY: only candles finished by then are history
    r = broker.post("history", {"symbol": "SBIN", "exchange": "NSE", "interval": "1m", "start_date": "2026-11-20",
                                "end_date": "2026-11-20"})
    assert [x["timestamp"] for x in r.json()["data"]][-1] == T(9, 59)
    bad = broker.post("history", {"symbol": "SBIN", "exchange": "NSE", "interval": "W", "start_date": "2026-11-20",
                                  "end_date": "2026-11-20"})
    assert bad.status_code == 400 and "not supported" in bad.json()["message"]
    bad = broker.post("history", {"symbol": "SBIN", "exchange": "NSE", "interval": "1m", "start_date": "20-11-2026",
                                  "end_date": "2026-11-20", "target": 1})
    assert bad.status_code == 400 and bad.json()["message"] == {"target": ["Unknown field."]}
    assert broker.post("history", {"symbol": "SBIN", "exchange": "NSE", "interval": "1m", "start_date": "2026-11-20",
                                   "end_date": "2026-11-20"}, key=False).status_code == 400
    decade = broker.post("history", {"symbol": "SBIN", "exchange": "NSE", "interval": "D", "start_date": "2020-01-01",
                                     "end_date": "2029-12-31"})
    assert decade.status_code == 400 and "At most 366 days" in decade.json()["message"]


def test_official_client_through_the_cache_asks_the_server_once(broker, tmp_path):
    adm = broker.admin()
    adm.reset("wall")
    src = OpenAlgoSource(broker.url, broker.key, per_s=50, per_min=1000)
    src.check_interval(M1)
    with pytest.raises(ValueError, match="not offered"):
        src.check_interval(parse_interval("45s"))
    store = HistoryStore(src, tmp_path, today=date(2026, 12, 1))
    first, last = DAY - timedelta(days=6), DAY
    adm.requests_seen(clear=True)
    days = list(store.days("INFY", "NSE", M1, first, last))
    assert [d.day for d in days] == [date(2026, 11, 16) + timedelta(days=i) for i in range(5)]
    assert days[-1].candles == list(synthetic_day("INFY", "NSE", DAY, 60, 7))
    assert adm.requests_seen()["total"] == 1                     # one request: a week is one chunk
    adm.requests_seen(clear=True)
    again = list(store.days("INFY", "NSE", M1, first, last))
    assert [d.candles for d in again] == [d.candles for d in days]
    assert adm.requests_seen()["total"] == 0                     # the second read asks nothing
    with pytest.raises(HistoryError, match="Invalid openalgo apikey"):
        OpenAlgoSource(broker.url, "wrong-key").fetch("INFY", "NSE", M1, DAY, DAY)


def test_cli_fetch_against_the_paper_broker(broker, tmp_path, monkeypatch, capsys):
    broker.admin().reset("wall")
    env = {**os.environ, "HOST_SERVER": broker.url, "APP_KEY": broker.key}
    args = ["history", "fetch", "--symbols", "SBIN,TCS", "--from", "2026-11-18", "--to", "2026-11-20", "--interval",
            "15m", "--cache", str(tmp_path)]
    first = subprocess.run([sys.executable, "driver.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=120)
    assert first.returncode == 0, first.stderr
    assert "6 day(s), 150 candles" in first.stdout and "2 request(s) made" in first.stdout
    assert "100.0%" in first.stderr                              # progress, one line per percent off a terminal
    from driver import main

    monkeypatch.setenv("HOST_SERVER", broker.url)
    monkeypatch.setenv("APP_KEY", broker.key)
    capsys.readouterr()
    assert main(args) == 0 and "0 request(s) made" in capsys.readouterr().out
    assert main(args[:-4] + ["--interval", "45s", "--cache", str(tmp_path)]) == 2
    assert "not offered" in capsys.readouterr().err

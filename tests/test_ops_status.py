"""`status` against a real database with real rows, in-process and through `python driver.py status --json`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path

import pytest

import db
from core.clock import ist_epoch
from core.config import Secrets, parse_config
from db import ActiveTrade, CapitalLog, DBHandler, KeyValue, MarketData, Order, TradeLog
from ops.status import TickRates, collect_status, heartbeat_line, print_status, read_engine, render_status, to_json
from tests.db_rows import insert

ROOT = Path(__file__).resolve().parent.parent
DAY = date(2026, 3, 2)       # a Monday
PREV = date(2026, 2, 27)     # the Friday before
START = Decimal("1000000")

CONFIG_YAML = """
mode: paper
strategies:
  orb: {kind: opening_range_breakout, params: {}}
  mac: {kind: ma_crossover, params: {}}
default_strategy: orb
symbols: [SBIN, INFY, TCS, HDFCBANK, ITC]
risk:
  capital: 1000000
  max_active_trades: 10
  daily_loss_limit: 25000
  max_drawdown_pct: 3.0
monitoring:
  reports_dir: REPORTS
"""


def make_cfg(reports_dir: Path | str = "reports"):
    import yaml
    return parse_config(yaml.safe_load(CONFIG_YAML.replace("REPORTS", str(reports_dir))))


def at(h: int, m: int = 0, day: date = DAY) -> int:
    return ist_epoch(day, dtime(h, m))


# (trade_id, symbol, strategy, side, type, qty, entry, entry_t, exit, exit_t, gross, costs, net, pct, reason)
TRADES = [
    (1, "SBIN", "orb", "long", "full", 100, "800", at(10), "810", at(10, 30), "1000", "40", "960", 6.0, "take_profit"),
    (2, "INFY", "orb", "short", "partial", 10, "1500", at(10, 5), "1525.05", at(11), "-250.5", "20", "-270.5",
     -9.0167, "stop_loss"),
    (3, "TCS", "mac", "long", "full", 20, "3500", at(10, 15), "3527", at(10, 45), "540", "40", "500", 3.5714,
     "signal"),
    (2, "INFY", "orb", "short", "full", 10, "1500", at(10, 5), "1586", at(12), "-860", "40", "-900", -30.0,
     "square_off"),
    (4, "SBIN", "mac", "long", "full", 5, "820", at(12, 30), "830", at(13), "50", "40", "10", 1.2195, "signal"),
]
NETS = [Decimal(t[12]) for t in TRADES]
ORDERS = ["EXECUTED"] * 5 + ["CANCELLED", "REJECTED", "REJECTED", "FAILED", "OPEN"]
TAGS = {6: "BROKER_REJECTED", 7: "RISK_NOTIONAL_CAP"}


def build_db(url: str) -> DBHandler:
    """A day of trading as the daemon writes it, plus a previous day that must not leak into today."""
    h = DBHandler(db.initialize_database(url))
    rows: list = []
    capital = START
    rows.append(CapitalLog(trading_date=DAY, starting_capital=START, capital=START, change=Decimal(0),
                           percent_gain=0.0, reason="start of day"))
    for (tid, sym, strat, side, typ, qty, ep, et, xp, xt, gross, costs, net, pct, reason) in TRADES:
        capital += Decimal(net)
        rows.append(TradeLog(trade_id=tid, trade_date=DAY, symbol=sym, strategy=strat, side=side, trade_type=typ,
                             quantity=qty, entry_time=et, entry_price=Decimal(ep), exit_time=xt,
                             exit_price=Decimal(xp), gross_pnl=Decimal(gross), costs=Decimal(costs),
                             brokerage=Decimal(costs) - 1, gst=Decimal(1), net_pnl=Decimal(net),
                             capital_employed=Decimal(qty) * Decimal(ep) / 5,
                             capital_at_exit=capital, percent_change=pct, exit_reason=reason))
        rows.append(CapitalLog(trading_date=DAY, trade_id=tid, starting_capital=START, capital=capital,
                               change=Decimal(net), percent_gain=float((capital - START) / START * 100),
                               reason=f"exit {sym} ({reason})"))
    for i, st in enumerate(ORDERS):
        rows.append(Order(client_order_id=f"d-{i}", trading_date=DAY, symbol="SBIN", side="BUY", purpose="entry",
                          quantity=1, strategy_tag="t", status=st, failure_tag=TAGS.get(i)))
    # the previous day
    rows.append(TradeLog(trade_id=99, trade_date=PREV, symbol="SBIN", strategy="orb", side="long", trade_type="full",
                         quantity=1, entry_time=at(10, day=PREV), entry_price=Decimal(1), exit_time=at(11, day=PREV),
                         exit_price=Decimal(2), gross_pnl=Decimal(5000), costs=Decimal(0), net_pnl=Decimal(5000),
                         capital_employed=Decimal(1), capital_at_exit=Decimal(1005000), percent_change=50.0,
                         exit_reason="signal"))
    rows.append(CapitalLog(trading_date=PREV, starting_capital=START, capital=Decimal(1005000), change=Decimal(5000),
                           percent_gain=0.5, reason="exit SBIN (signal)"))
    rows += [Order(client_order_id=f"p-{i}", trading_date=PREV, symbol="SBIN", side="BUY", purpose="entry",
                   quantity=1, strategy_tag="t", status="REJECTED", failure_tag="OLD") for i in range(3)]
    # open positions: one with a persisted price, one without
    rows.append(ActiveTrade(trade_id=5, symbol="HDFCBANK", strategy="orb", side="long", trading_date=DAY,
                            entry_time=at(14), entry_price=Decimal(1500), position_size=50, remaining_quantity=50,
                            allocated=Decimal(15000), margin_multiplier=Decimal(5)))
    rows.append(ActiveTrade(trade_id=6, symbol="ITC", strategy="mac", side="short", trading_date=DAY,
                            entry_time=at(14, 2), entry_price=Decimal(400), position_size=200, remaining_quantity=100,
                            allocated=Decimal(8000), margin_multiplier=Decimal(5)))
    rows.append(KeyValue(key="trading_state", value=json.dumps({"state": "HALTED", "reason": "risk: test halt"})))
    insert(h, rows)
    insert(h, [MarketData(symbol="NSE:HDFCBANK-EQ", ltp=1510.0, exch_feed_time=at(14, 10)),
               MarketData(symbol="NSE:HDFCBANK-EQ", ltp=1495.0, exch_feed_time=at(14, 5)),
               MarketData(symbol="NSE:SBIN-EQ", ltp=999.0, exch_feed_time=at(14, 20))])
    return h


FINAL_CAPITAL = START + sum(NETS)


def test_status_figures_equal_the_database(sqlite_url):
    build_db(sqlite_url)
    st = collect_status(read_engine(sqlite_url), make_cfg())
    assert st["day"] == DAY.isoformat()  # the latest day with rows
    assert st["capital"] == FINAL_CAPITAL and st["capital_source"] == "capital_log"
    assert st["realized_pnl"] == sum(NETS) == Decimal("299.5")
    assert st["costs"] == Decimal(180) and st["charges"]["brokerage"] == Decimal(175) and st["charges"]["gst"] == 5
    assert "Costs     180.00 " in render_status(st) and "brokerage 175.00" in render_status(st)
    assert st["closed_trades"] == 5 and (st["wins"], st["losses"]) == (3, 2)
    assert st["orders_by_status"] == {"CANCELLED": 1, "EXECUTED": 5, "FAILED": 1, "OPEN": 1, "REJECTED": 2}
    assert st["order_failures"] == {"REJECTED": {"BROKER_REJECTED": 1, "RISK_NOTIONAL_CAP": 1},
                                    "FAILED": {"untagged": 1}}
    assert st["trading_state"] == "HALTED" and st["trading_state_reason"] == "risk: test halt"
    pos = {p["symbol"]: p for p in st["open_positions"]}
    assert pos["HDFCBANK"]["last_price"] == 1510.0 and pos["HDFCBANK"]["unrealized_pnl"] == Decimal(500)
    assert pos["ITC"]["last_price"] is None and pos["ITC"]["unrealized_pnl"] is None
    assert (pos["ITC"]["quantity"], pos["ITC"]["side"], pos["ITC"]["allocated"]) == (100, "short", Decimal(8000))
    assert st["unrealized_pnl"] == Decimal(500) and st["unpriced_positions"] == 1
    caps = st["caps"]
    equity = FINAL_CAPITAL + 500
    assert st["equity"] == equity
    ret = float((equity - START) / START * 100)
    assert caps["global_max_loss_pct"] == {"limit": -2.0, "current": ret, "headroom": ret + 2.0, "breached": False}
    assert caps["daily_loss_limit"]["current"] == 0 and caps["daily_loss_limit"]["headroom"] == Decimal(25000)
    high = START + Decimal("960") - Decimal("270.5") + Decimal("500")  # highest capital_log row of the day
    assert caps["max_drawdown_pct"]["high_water"] == high
    assert caps["max_drawdown_pct"]["current"] == pytest.approx(float((high - equity) / high * 100))
    assert caps["max_active_trades"] == {"limit": 10, "current": 2, "headroom": 8, "breached": False}


def test_explicit_day_and_human_output(sqlite_url):
    build_db(sqlite_url)
    st = collect_status(read_engine(sqlite_url), make_cfg(), day=PREV)
    assert st["realized_pnl"] == Decimal(5000) and st["orders_by_status"] == {"REJECTED": 3}
    assert st["capital"] == Decimal(1005000)
    text = render_status(collect_status(read_engine(sqlite_url), make_cfg()))
    assert "HALTED (risk: test halt)" in text and "HDFCBANK" in text and "unknown" in text
    assert "REJECTED: BROKER_REJECTED x1, RISK_NOTIONAL_CAP x1" in text
    assert "1,000,299.50" in text
    lines = text.splitlines()
    header = next(line for line in lines if line.strip().startswith("SYMBOL"))
    row = next(line for line in lines if line.strip().startswith("HDFCBANK"))
    assert header.index("QTY") + len("QTY") == row.index("50") + 2  # right-aligned under its header


def test_status_shows_the_days_rejected_ticks_by_reason(sqlite_url):
    h = build_db(sqlite_url)
    counts = {"day": DAY.isoformat(), "dispatched": 42030, "rejected": 3,
              "rejected_by_reason": {"duplicate": 2, "ahead of the feed clock": 1}}
    h.set_state("tick_counts", counts)
    st = collect_status(read_engine(sqlite_url), make_cfg())
    assert st["ticks"] == counts
    assert "Ticks     42,030 dispatched, 3 rejected (duplicate 2, ahead of the feed clock 1)" in render_status(st)
    assert collect_status(read_engine(sqlite_url), make_cfg(), day=PREV)["ticks"] is None  # another day's
    h.set_state("tick_counts", {**counts, "rows_persisted": 42030})  # with market_data.persist on: the feed's writer's
    assert "Ticks     42,030 dispatched, 42,030 persisted, 3 rejected (duplicate 2" in render_status(
        collect_status(read_engine(sqlite_url), make_cfg()))


def test_no_capital_rows_falls_back_to_config(sqlite_url):
    h = DBHandler(db.initialize_database(sqlite_url))
    insert(h, Order(client_order_id="x", trading_date=DAY, symbol="SBIN", side="BUY", purpose="entry",
                    quantity=1, strategy_tag="t", status="EXECUTED"))
    st = collect_status(read_engine(sqlite_url), make_cfg())
    assert st["capital"] == START and st["capital_source"] == "config" and st["trading_state"] == "unknown"
    assert st["open_positions"] == [] and st["unrealized_pnl"] == 0 and st["realized_pnl"] == 0


def test_json_on_stdout(sqlite_url, capsys):
    build_db(sqlite_url)
    secrets = Secrets(app_key=None, host_server="http://127.0.0.1:5000", live_data=False, database_url=sqlite_url,
                      fyers_app_id=None, fyers_access_token=None)
    assert print_status(make_cfg(), secrets, as_json=True) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["capital"] == float(FINAL_CAPITAL) and out["realized_pnl"] == 299.5


def _run_cli(tmp_path: Path, url: str) -> subprocess.CompletedProcess:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(CONFIG_YAML.replace("REPORTS", str(tmp_path / "reports")))
    env = {**os.environ, "DATABASE_URL": url, "APP_KEY": "test-key-123", "LIVE_DATA": "false"}
    return subprocess.run([sys.executable, "driver.py", "status", "--json", "--config", str(cfg)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)


def test_cli_status_json(tmp_path, sqlite_url):
    build_db(sqlite_url)
    p = _run_cli(tmp_path, sqlite_url)
    assert p.returncode == 0, p.stderr
    (line,) = p.stdout.strip().splitlines()  # exactly one JSON object
    out = json.loads(line)
    assert out["day"] == "2026-03-02" and out["trading_state"] == "HALTED"
    assert out["capital"] == float(FINAL_CAPITAL) and out["realized_pnl"] == float(sum(NETS))
    assert out["orders_by_status"] == {"CANCELLED": 1, "EXECUTED": 5, "FAILED": 1, "OPEN": 1, "REJECTED": 2}
    assert sorted((p["symbol"], p["quantity"], p["entry_price"]) for p in out["open_positions"]) == \
        [("HDFCBANK", 50, 1500.0), ("ITC", 100, 400.0)]
    assert out["caps"]["max_active_trades"]["headroom"] == 8


def test_cli_status_errors_are_one_line(tmp_path):
    missing = _run_cli(tmp_path, f"sqlite:///{tmp_path / 'nope.sqlite'}")
    assert missing.returncode == 1 and "no database at" in missing.stderr
    assert "Traceback" not in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "nope.sqlite").exists()  # status never creates a database
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    no_tables = _run_cli(tmp_path, f"sqlite:///{empty}")
    assert no_tables.returncode == 1 and "no daemon tables" in no_tables.stderr
    assert "Traceback" not in no_tables.stderr and len(no_tables.stderr.strip().splitlines()) == 1


def test_unreachable_postgres_is_one_line(capsys):
    from tests.conftest import free_port
    secrets = Secrets(app_key=None, host_server="http://127.0.0.1:5000", live_data=False,
                      database_url=f"postgresql://u:secretpw@127.0.0.1:{free_port()}/x", fyers_app_id=None,
                      fyers_access_token=None)
    assert print_status(make_cfg(), secrets) == 1
    err = capsys.readouterr().err
    assert err.startswith("status: ") and len(err.strip().splitlines()) == 1 and "secretpw" not in err


def test_status_on_postgres(pg_url):
    build_db(pg_url)
    st = collect_status(read_engine(pg_url), make_cfg())
    assert st["capital"] == FINAL_CAPITAL and st["realized_pnl"] == Decimal("299.5")
    assert st["orders_by_status"]["REJECTED"] == 2 and len(st["open_positions"]) == 2


# ----------------------------------------------------------------------------- heartbeat

def test_heartbeat_line():
    line = heartbeat_line({"ticks_per_s": [1200.0, 980.4, 0.0], "signals": 12, "open_positions": 3,
                           "realized_pnl": Decimal("1234.5"), "unrealized_pnl": -56.0, "trading_state": "HALTED",
                           "state_reason": "risk: cap", "broker": False, "feed_time": at(10, 32)})
    assert "\n" not in line
    for part in ("feed 10:32:00", "ticks/s 1.2k/980/0 (sum 2.2k)", "signals 12", "open 3",
                 "realized +1,234.50", "unrealized -56.00", "state HALTED (risk: cap)", "broker DOWN"):
        assert part in line, (part, line)
    sparse = heartbeat_line({"trading_state": "ACTIVE", "broker": True, "unrealized_pnl": None})
    assert "unrealized ?" in sparse and "broker ok" in sparse and "signals ?" in sparse


def test_tick_rates_from_cumulative_counts():
    now = [100.0]
    r = TickRates(clock=lambda: now[0])
    assert r.update([0, 0]) == [0.0, 0.0]
    now[0] = 102.0
    assert r.update([2000, 500]) == [1000.0, 250.0]
    now[0] = 104.0
    assert r.update({0: 4000, 1: 100}) == [1000.0, 50.0]  # worker 1 restarted: counts from zero again


def test_render_survives_empty_database(sqlite_url):
    db.initialize_database(sqlite_url)
    st = collect_status(read_engine(sqlite_url), make_cfg())
    assert st["day"] is None and st["orders_total"] == 0
    assert "no trading day recorded yet" in render_status(st)
    assert json.loads(to_json(st))["capital"] == 1000000.0


def test_status_on_a_database_from_before_the_charge_breakdown_says_how_to_upgrade(sqlite_url):
    from ops.status import StatusError

    h = build_db(sqlite_url)
    for name in ("brokerage", "stt", "exchange_txn", "sebi", "stamp_duty", "gst"):
        h.execute_sql(f"ALTER TABLE trade_log DROP COLUMN {name}", fetch=False)
    with pytest.raises(StatusError, match="earlier version .* `python driver.py --check` upgrades it"):
        collect_status(read_engine(sqlite_url), make_cfg())
    db.initialize_database(sqlite_url)
    assert collect_status(read_engine(sqlite_url), make_cfg())["costs"] == Decimal(180)

"""`status` and the end-of-session report on a day the real daemon traded: one replay of the short day (paper
mode, a real paper broker, SQLite) shared by the module, then every figure `driver.py status` prints and
every file the report holds is checked against the database, read directly with SQL."""
from __future__ import annotations

import csv
import json
import os
import re
import secrets
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from core.clock import IST, to_ist
from tests.daemon_harness import DAY, ROOT, rows, run_daemon, short_day_config
from tests.paper_fixtures import Broker
from tests.test_daemon_replay import env_for

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
Q = Decimal("0.0001")  # the scale of every money and price column


def dec(x) -> Decimal:
    """A NUMERIC(.., 4) value as the application reads it (SQLite hands raw SQL a float)."""
    return Decimal(str(x)).quantize(Q)


@dataclass(frozen=True)
class Day:
    dir: Path
    config: Path
    db_url: str
    daemon_output: str


@pytest.fixture(scope="module")
def day(tmp_path_factory) -> Day:
    d = tmp_path_factory.mktemp("replayed-day")
    b = Broker(d / "broker.sqlite", secrets.token_hex(16), args=["--order-rate", "10"],
               log_file=d / "broker.log").start()
    try:
        cfg = short_day_config(d)
        run = run_daemon(cfg, f"sqlite:///{d / 'd.sqlite'}", env_for(b))
    finally:
        b.stop()
    assert run.returncode == 0, run.output[-3000:]
    assert "Traceback" not in run.output, run.output[-3000:]
    return Day(d, cfg, run.db_url, run.output)


def status(day: Day, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "HOST_SERVER", "APP_KEY", "LIVE_DATA")}
    env.update(DATABASE_URL=day.db_url, LIVE_DATA="false")
    p = subprocess.run([sys.executable, str(ROOT / "driver.py"), "status", "--config", str(day.config), "--date", DAY,
                        *extra], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert p.returncode == 0 and p.stderr == "", p.stdout + p.stderr
    return p


@pytest.fixture(scope="module")
def status_json(day) -> dict:
    return json.loads(status(day, "--json").stdout, parse_float=Decimal)


@pytest.fixture(scope="module")
def status_text(day) -> str:
    return status(day).stdout


def trade_log(db_url: str) -> list[dict]:
    """The day's trade_log in the report's order (exit time, then id), money as Decimal."""
    cols = ("id", "trade_id", "symbol", "strategy", "side", "trade_type", "quantity", "entry_time", "entry_price",
            "exit_time", "exit_price", "gross_pnl", "costs", "net_pnl", "percent_change", "exit_reason")
    out = []
    for r in rows(db_url, f"SELECT {', '.join(cols)} FROM trade_log WHERE trade_date = :d ORDER BY exit_time, id",
                  d=DAY):
        t = dict(zip(cols, r, strict=False))
        for k in ("entry_price", "exit_price", "gross_pnl", "costs", "net_pnl"):
            t[k] = dec(t[k])
        out.append(t)
    return out


def capital_log(db_url: str) -> list[tuple[Decimal, Decimal]]:
    return [(dec(s), dec(c)) for s, c in rows(db_url, "SELECT starting_capital, capital FROM capital_log "
                                                     "WHERE trading_date = :d ORDER BY id", d=DAY)]


def orders_by_status(db_url: str) -> dict[str, int]:
    return dict(rows(db_url, "SELECT status, COUNT(*) FROM orders WHERE trading_date = :d GROUP BY status", d=DAY))


# ----------------------------------------------------------------------------- the replay itself

def test_the_replayed_day_closed_several_trades(day):
    t = trade_log(day.db_url)
    assert len(t) >= 4, "the short day should close several trades"
    nets = [x["net_pnl"] for x in t]
    assert any(n > 0 for n in nets) and any(n < 0 for n in nets), "wins and losses, so the win rate means something"
    assert rows(day.db_url, "SELECT COUNT(*) FROM active_trades")[0][0] == 0
    assert "report written to" in day.daemon_output


# ----------------------------------------------------------------------------- status

def test_status_json_matches_the_database(day, status_json):
    st, u = status_json, day.db_url
    assert st["day"] == DAY
    # trading state: the stored document
    (doc, updated), = rows(u, "SELECT value, updated_at FROM daemon_state WHERE key = 'trading_state'")
    stored = json.loads(doc)
    assert st["trading_state"] == stored["state"] and st["trading_state_reason"] == stored.get("reason")
    # since: when the state last changed (the row also holds cooldowns, so it is rewritten without a change)
    stamp = datetime.fromisoformat(stored["since"]) if stored.get("since") else \
        updated if isinstance(updated, datetime) else datetime.fromisoformat(str(updated))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    assert st["trading_state_since"] == stamp.astimezone(IST).isoformat(timespec="seconds")
    # capital: the latest capital record of the day
    caps = capital_log(u)
    assert caps and st["capital_source"] == "capital_log"
    assert st["capital"] == caps[-1][1] and st["starting_capital"] == caps[-1][0]
    # realized P&L and its parts: sums over the day's trade_log
    t = trade_log(u)
    assert st["realized_pnl"] == sum((x["net_pnl"] for x in t), Decimal(0))
    assert st["gross_pnl"] == sum((x["gross_pnl"] for x in t), Decimal(0))
    assert st["costs"] == sum((x["costs"] for x in t), Decimal(0))
    assert st["closed_trades"] == len(t)
    assert st["wins"] == sum(x["net_pnl"] > 0 for x in t) and st["losses"] == sum(x["net_pnl"] < 0 for x in t)
    # a flat day: capital = day start + realized, equity = capital, no unrealized P&L
    assert st["capital"] == st["starting_capital"] + st["realized_pnl"]
    assert st["unrealized_pnl"] == 0 and st["unpriced_positions"] == 0 and st["equity"] == st["capital"]
    ret = (st["equity"] - st["starting_capital"]) / st["starting_capital"] * 100
    assert abs(st["return_pct"] - ret) < Decimal("1e-9")
    # open positions: the active_trades rows
    active = rows(u, "SELECT trade_id, symbol, side, remaining_quantity FROM active_trades "
                     "ORDER BY entry_time, trade_id")
    assert [(p["trade_id"], p["symbol"], p["side"], p["quantity"]) for p in st["open_positions"]] == active == []
    assert st["caps"]["max_active_trades"]["current"] == len(active)
    # orders: a GROUP BY over the orders table, and the failures by tag
    by_status = orders_by_status(u)
    assert by_status.get("EXECUTED", 0) > 0
    assert st["orders_by_status"] == by_status
    assert st["orders_by_status"] == dict(rows(u, "SELECT status, COUNT(*) FROM orders GROUP BY status"))
    assert st["orders_total"] == rows(u, "SELECT COUNT(*) FROM orders")[0][0] == sum(by_status.values())
    failures: dict = {}
    for s_, tag, n in rows(u, "SELECT status, failure_tag, COUNT(*) FROM orders WHERE status IN ('FAILED', 'REJECTED') "
                              "GROUP BY status, failure_tag"):
        failures.setdefault(s_, {})[tag or "untagged"] = n
    assert st["order_failures"] == failures
    # drawdown now: from the day's high-water mark (day start, every capital record, the trading-state row)
    high = max([caps[0][0]] + [c for _, c in caps])
    saved = json.loads(rows(u, "SELECT value FROM daemon_state WHERE key = 'trading_state'")[0][0])
    if saved.get("day") == DAY:
        high = max(high, Decimal(str(saved["high_water"])))
    dd = st["caps"]["max_drawdown_pct"]
    assert dd["high_water"] == max(high, st["equity"])
    assert abs(dd["current"] - (dd["high_water"] - st["equity"]) / dd["high_water"] * 100) < Decimal("1e-9")


def test_status_text_shows_the_same_numbers(status_json, status_text):
    st, out = status_json, status_text

    def money(pattern: str) -> Decimal:
        m = re.search(pattern, out)
        assert m, f"{pattern!r} not in:\n{out}"
        return Decimal(m.group(1).replace(",", ""))

    cent = Decimal("0.01")
    # the daemon has exited: its last trading state is history, never shown as the present one
    assert (f"Day {DAY}   not trading: the daemon is not running (its last state: {st['trading_state']} "
            f"({st['trading_state_reason']})") in out
    assert "Daemon    not running (last run ended " in out
    assert money(r"Capital\s+([\d,]+\.\d\d)") == st["capital"].quantize(cent)
    assert money(r"day start ([\d,]+\.\d\d)") == st["starting_capital"].quantize(cent)
    assert money(r"realized ([+-][\d,]+\.\d\d)") == st["realized_pnl"].quantize(cent)
    assert (f"over {st['closed_trades']} exit(s) ({st['wins']} won, {st['losses']} lost), unrealized +0.00"
            in out)
    assert f"Open positions: {len(st['open_positions'])}\n" in out
    counts = ", ".join(f"{k} {v}" for k, v in sorted(st["orders_by_status"].items()))
    assert f"Orders on {st['day']}: {st['orders_total']} ({counts})" in out
    for status_, tags in st["order_failures"].items():
        assert f"  {status_}: " + ", ".join(f"{tag} x{n}" for tag, n in sorted(tags.items())) in out


# ----------------------------------------------------------------------------- the report

def report_dir(day: Day) -> Path:
    return day.dir / "reports" / DAY


def test_report_trades_csv_is_the_trade_log_row_for_row(day):
    with open(report_dir(day) / "trades.csv", newline="") as f:
        csv_rows = list(csv.DictReader(f))
    t = trade_log(day.db_url)
    assert len(csv_rows) == len(t) >= 4
    for row, x in zip(csv_rows, t, strict=False):
        assert (int(row["trade_id"]), row["symbol"], row["strategy"], row["side"], row["trade_type"],
                int(row["quantity"]), row["exit_reason"]) == \
               (x["trade_id"], x["symbol"], x["strategy"], x["side"], x["trade_type"], x["quantity"], x["exit_reason"])
        assert row["entry_time"] == to_ist(x["entry_time"]).isoformat()
        assert row["exit_time"] == to_ist(x["exit_time"]).isoformat()
        assert row["exit_time"].endswith("+05:30") and row["entry_time"] <= row["exit_time"]
        for col, key in (("entry_price", "entry_price"), ("exit_price", "exit_price"), ("gross_pnl", "gross_pnl"),
                         ("costs", "costs"), ("pnl", "net_pnl")):
            assert Decimal(row[col]) == x[key], (col, row, x)
        assert float(row["percent_change"]) == pytest.approx(x["percent_change"], rel=1e-9)


def test_report_summary_totals_match_the_trade_log(day):
    s = json.loads((report_dir(day) / "summary.json").read_text(), parse_float=Decimal)
    t = trade_log(day.db_url)
    nets = [x["net_pnl"] for x in t]
    wins, losses = sum(n > 0 for n in nets), sum(n < 0 for n in nets)
    assert s["day"] == DAY and s["mode"] == "paper"
    assert s["trades"] == len(t) and s["positions"] == len({x["trade_id"] for x in t})
    assert (s["wins"], s["losses"], s["breakeven"]) == (wins, losses, len(t) - wins - losses)
    assert abs(s["win_rate"] - Decimal(wins) / len(t)) < Decimal("1e-12")
    gross, costs, net = (sum((x[k] for x in t), Decimal(0)) for k in ("gross_pnl", "costs", "net_pnl"))
    assert (s["gross_pnl"], s["costs"], s["net_pnl"]) == (gross, costs, net)
    assert net == gross - costs and costs > 0
    caps = capital_log(day.db_url)
    assert s["starting_capital"] == caps[0][0] and s["ending_capital"] == caps[-1][1] == caps[0][0] + net
    assert abs(s["return_pct"] - net / caps[0][0] * 100) < Decimal("1e-9")
    # max drawdown: the largest fall of equity (day start + net P&L after each exit) from its running peak
    equity, peak, worst, worst_pct = caps[0][0], caps[0][0], Decimal(0), Decimal(0)
    for n in nets:
        equity += n
        peak = max(peak, equity)
        worst, worst_pct = max(worst, peak - equity), max(worst_pct, (peak - equity) / peak * 100)
    assert s["max_drawdown"] == worst and abs(s["max_drawdown_pct"] - worst_pct) < Decimal("1e-9")
    assert 0 < s["max_drawdown"] <= -sum(n for n in nets if n < 0)  # sanity: a real fall, no more than all losses
    assert s["best_trade"] == {"symbol": t[nets.index(max(nets))]["symbol"], "net_pnl": max(nets)}
    assert s["worst_trade"] == {"symbol": t[nets.index(min(nets))]["symbol"], "net_pnl": min(nets)}
    per_symbol = Counter()
    for x in t:
        per_symbol[x["symbol"]] += x["net_pnl"]
    assert {k: v["net_pnl"] for k, v in s["by_symbol"].items()} == dict(per_symbol)
    assert s["by_exit_reason"] == dict(Counter(x["exit_reason"] for x in t))
    assert s["orders_by_status"] == orders_by_status(day.db_url) and s["open_positions_left"] == 0


def test_report_equity_chart_is_a_png(day):
    png = report_dir(day) / "equity.png"
    assert png.read_bytes()[:8] == PNG_MAGIC
    from matplotlib.image import imread
    h, w = imread(png).shape[:2]
    assert (w, h) == (1000, 650)


def test_report_rebuilt_from_the_database_is_the_one_the_daemon_wrote(day, tmp_path):
    """The daemon wrote its report after the day's last trade: rebuilding it from the database changes nothing."""
    from core.config import load_config
    from ops.report import write_report

    res = write_report(day.db_url, load_config(day.config), date.fromisoformat(DAY), out_dir=tmp_path)
    assert res.trades_csv.read_bytes() == (report_dir(day) / "trades.csv").read_bytes()
    written = json.loads((report_dir(day) / "summary.json").read_text())
    assert written.pop("generated_at") and res.summary.pop("generated_at")
    assert json.loads(json.dumps(res.summary)) == written
    assert res.equity_png.read_bytes()[:8] == PNG_MAGIC


def test_report_trades_csv_charges_each_order_at_the_days_nse_rates(day):
    """Every trade's charges, column by column, add up to its costs; net = gross - costs; capital moved by the
    nets; and each trade's costs are exactly its orders' charges, priced by core.costs at the day's rates."""
    from core.config import load_config
    from core.costs import CHARGE_NAMES

    with open(report_dir(day) / "trades.csv", newline="") as f:
        csv_rows = list(csv.DictReader(f))
    assert len(csv_rows) >= 4
    for row in csv_rows:
        charges = [Decimal(row[c]) for c in CHARGE_NAMES]
        assert all(c >= 0 for c in charges) and charges[0] > 0, row  # brokerage on every exit order
        assert sum(charges) == Decimal(row["costs"]), row
        assert Decimal(row["pnl"]) == Decimal(row["gross_pnl"]) - Decimal(row["costs"]), row
        # STT on the sell, stamp duty on the buy: a long's exit sells, a short's buys, and the row that closes
        # a trade also carries its entry's charges
        full = row["trade_type"] == "full"
        assert (Decimal(row["stt"]) > 0) == (row["side"] == "long" or full), row
        assert (Decimal(row["stamp_duty"]) > 0) == (row["side"] == "short" or full), row
    caps = capital_log(day.db_url)
    assert caps[-1][1] == caps[0][0] + sum((Decimal(r["pnl"]) for r in csv_rows), Decimal(0))
    # from the orders the broker filled: each trade's costs = the charges of its entry and exit orders
    table = load_config(day.config).costs.table
    expected: Counter = Counter()
    for trade_id, side, qty, avg in rows(day.db_url, "SELECT trade_id, side, filled_quantity, average_price FROM "
                                                     "orders WHERE trading_date = :d AND filled_quantity > 0", d=DAY):
        expected[trade_id] += table.order(side == "BUY", dec(avg), qty, date.fromisoformat(DAY)).total
    charged: Counter = Counter()
    for row in csv_rows:
        charged[int(row["trade_id"])] += Decimal(row["costs"])
    assert charged == expected

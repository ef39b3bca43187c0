"""The end-of-session report from a real database: trades.csv, summary.json and equity.png."""
from __future__ import annotations

import csv
import json
import statistics
from decimal import Decimal

import db
from core.clock import to_ist
from db import DBHandler
from ops.report import build_summary, equity_curve, format_summary, max_drawdown, write_report
from tests.test_ops_status import DAY, NETS, PREV, START, TRADES, build_db, make_cfg

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _valid_png(path) -> tuple[int, int]:
    from matplotlib.image import imread
    assert path.read_bytes()[:8] == PNG_MAGIC
    img = imread(path)
    return img.shape[1], img.shape[0]


def test_report_matches_trade_log(sqlite_url, tmp_path):
    build_db(sqlite_url)
    res = write_report(sqlite_url, make_cfg(), DAY, out_dir=tmp_path / "r")
    with open(res.trades_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    # one row per trade_log row of the day, in exit-time order; the previous day is not there
    by_exit = sorted(TRADES, key=lambda t: t[9])
    assert len(rows) == len(TRADES)
    for row, t in zip(rows, by_exit, strict=False):
        assert (row["trade_id"], row["symbol"], row["side"], row["quantity"]) == (str(t[0]), t[1], t[3], str(t[5]))
        assert Decimal(row["pnl"]) == Decimal(t[12]) and Decimal(row["exit_price"]) == Decimal(t[8])
        assert row["exit_time"] == to_ist(t[9]).isoformat() and row["exit_time"].endswith("+05:30")
        assert row["exit_reason"] == t[14] and row["strategy"] == t[2] and row["trade_type"] == t[4]
    for col in ("entry_time", "entry_price", "gross_pnl", "costs"):
        assert col in rows[0]
    charges = ("brokerage", "stt", "exchange_txn", "sebi", "stamp_duty", "gst")
    assert list(rows[0])[10:18] == ["gross_pnl", *charges, "costs"]
    for row, t in zip(rows, by_exit, strict=False):
        assert (Decimal(row["brokerage"]), Decimal(row["gst"])) == (Decimal(t[11]) - 1, 1)
        assert sum(Decimal(row[c]) for c in charges) == Decimal(row["costs"]) == Decimal(t[11])

    s = json.loads(res.summary_json.read_text())
    assert s == res.summary
    assert s["net_pnl"] == float(sum(NETS)) == 299.5
    assert (s["trades"], s["wins"], s["losses"], s["win_rate"]) == (5, 3, 2, 0.6)
    assert s["gross_pnl"] == float(sum(Decimal(t[10]) for t in TRADES))
    assert s["costs"] == float(sum(Decimal(t[11]) for t in TRADES))
    assert s["charges"] == {"brokerage": s["costs"] - 5, "stt": 0, "exchange_txn": 0, "sebi": 0, "stamp_duty": 0,
                            "gst": 5}
    # exit order: +960, +500, -270.5, -900, +10 -> peak 1,001,460, trough 1,000,289.5 (id order would give 900)
    assert s["max_drawdown"] == 1170.5
    assert s["max_drawdown_pct"] == float(Decimal("1170.5") / Decimal("1001460") * 100)
    assert s["starting_capital"] == 1_000_000 and s["ending_capital"] == float(START + sum(NETS))
    pcts = [t[13] for t in TRADES]
    assert s["sharpe_like"]["n"] == 5
    assert abs(s["sharpe_like"]["value"] - statistics.fmean(pcts) / statistics.stdev(pcts)) < 1e-12
    assert s["by_symbol"]["SBIN"] == {"trades": 2, "wins": 2, "losses": 0, "net_pnl": 970.0, "win_rate": 1.0}
    assert s["by_strategy"]["orb"]["net_pnl"] == 960 - 270.5 - 900
    assert s["orders_by_status"]["REJECTED"] == 2 and s["open_positions_left"] == 2
    w, h = _valid_png(res.equity_png)
    assert w >= 600 and h >= 400
    text = format_summary(res)
    assert "+299.50" in text and "win rate 60.0%" in text and "1,170.50" in text and "2 position(s) left open" in text


def test_default_folder_is_reports_day(sqlite_url, tmp_path):
    build_db(sqlite_url)
    res = write_report(DBHandler(db.setup(sqlite_url)[0]), make_cfg(tmp_path / "reports"), PREV)
    assert res.out_dir == tmp_path / "reports" / "2026-02-27"
    assert {p.name for p in res.out_dir.iterdir()} == {"trades.csv", "summary.json", "equity.png"}
    assert res.summary["net_pnl"] == 5000 and res.summary["sharpe_like"]["value"] is None


def test_zero_trades(sqlite_url, tmp_path):
    db.initialize_database(sqlite_url)
    res = write_report(sqlite_url, make_cfg(), DAY, out_dir=tmp_path)
    assert res.trades_csv.read_text().strip().split(",")[:3] == ["trade_id", "symbol", "strategy"]
    assert len(res.trades_csv.read_text().strip().splitlines()) == 1
    s = json.loads(res.summary_json.read_text())
    assert (s["trades"], s["wins"], s["win_rate"], s["net_pnl"], s["max_drawdown"]) == (0, 0, 0.0, 0.0, 0.0)
    assert s["starting_capital"] == s["ending_capital"] == 1_000_000
    assert s["sharpe_like"]["value"] is None and s["by_symbol"] == {}
    _valid_png(res.equity_png)
    assert "0 exits" in format_summary(res)


def test_pure_figures():
    trades = [{"exit_time": 3, "net_pnl": Decimal(-50), "id": 2}, {"exit_time": 1, "net_pnl": Decimal(100), "id": 1}]
    assert equity_curve(Decimal(1000), trades, 0) == [(0, Decimal(1000)), (1, Decimal(1100)), (3, Decimal(1050))]
    curve = [(0, Decimal(100)), (1, Decimal(80)), (2, Decimal(200)), (3, Decimal(150))]
    assert max_drawdown(curve) == (Decimal(50), 25.0)
    s = build_summary(DAY, [], Decimal(1000), None)
    assert s["ending_capital"] == Decimal(1000) and s["win_rate"] == 0.0


def test_simultaneous_exits_give_one_drawdown_whatever_their_order():
    """Three positions closed in the same second (a risk halt) are recorded in thread order: the figures must not
    depend on it."""
    same = [{"exit_time": 5, "net_pnl": Decimal(-300), "id": 1}, {"exit_time": 5, "net_pnl": Decimal(200), "id": 2},
            {"exit_time": 5, "net_pnl": Decimal(-100), "id": 3}]
    before = [{"exit_time": 2, "net_pnl": Decimal(50), "id": 0}]
    figures = set()
    for order in ([0, 1, 2], [1, 0, 2], [2, 1, 0], [1, 2, 0]):
        rows = before + [{**same[i], "id": n + 1} for n, i in enumerate(order)]
        curve = equity_curve(Decimal(1000), rows, 0)
        assert curve == [(0, Decimal(1000)), (2, Decimal(1050)), (5, Decimal(850))]
        figures.add(max_drawdown(curve))
    assert figures == {(Decimal(200), 200 / 1050 * 100)}

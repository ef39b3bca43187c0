"""The end-of-session report: trades.csv, summary.json and equity.png under reports/<YYYY-MM-DD>/.

Everything is computed from trade_log and capital_log, so a report can be rebuilt for any past day from
the database alone. Money is summed as Decimal and written as numbers only at the end. Files are written
to a temporary name and renamed, so a crash never leaves half a report.
"""
from __future__ import annotations

import csv
import json
import logging
import math
import os
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core.clock import IST, ist_epoch, to_ist
from core.config import Config
from core.costs import CHARGE_NAMES
from db import ActiveTrade, CapitalLog, DBHandler, KeyValue, Order, TradeLog, setup

log = logging.getLogger(__name__)

ZERO = Decimal(0)
CSV_COLUMNS = ("trade_id", "symbol", "strategy", "side", "trade_type", "quantity", "entry_time", "entry_price",
               "exit_time", "exit_price", "gross_pnl", *CHARGE_NAMES, "costs", "pnl", "percent_change",
               "exit_reason")  # costs = the sum of the charges; pnl = gross_pnl - costs


@dataclass(frozen=True)
class ReportResult:
    day: date
    out_dir: Path
    trades_csv: Path
    summary_json: Path
    equity_png: Path
    summary: dict[str, Any]


# ----------------------------------------------------------------------------- pure figures

def equity_curve(start_capital: Decimal, trades: Iterable[Mapping[str, Any]],
                 start_time: int | None = None) -> list[tuple[int | None, Decimal]]:
    """(epoch, equity) after each exit time, beginning with the day's starting capital. Exits in the same second
    make one point: the order in which simultaneous exits were recorded depends on thread timing, and an
    intermediate equity between them was never observable, so the drawdown must not depend on it."""
    rows = sorted(trades, key=lambda t: (t["exit_time"], t.get("id", 0)))
    points: list[tuple[int | None, Decimal]] = [(start_time, start_capital)]
    eq = start_capital
    for t in rows:
        eq += Decimal(t["net_pnl"])
        when = int(t["exit_time"])
        if len(points) > 1 and points[-1][0] == when:
            points[-1] = (when, eq)
        else:
            points.append((when, eq))
    return points


def max_drawdown(points: Iterable[tuple[Any, Decimal]]) -> tuple[Decimal, float]:
    """Largest fall from a running peak: in rupees, and in percent of that peak (each maximized separately)."""
    peak: Decimal | None = None
    worst, worst_pct = ZERO, 0.0
    for _, eq in points:
        peak = eq if peak is None or eq > peak else peak
        dd = peak - eq
        worst = max(worst, dd)
        if peak > 0:
            worst_pct = max(worst_pct, float(dd / peak * 100))
    return worst, worst_pct


def sharpe_like(percent_changes: list[float]) -> dict[str, Any]:
    """Mean over sample standard deviation of per-exit returns; not annualized; null below two exits."""
    n = len(percent_changes)
    out: dict[str, Any] = {"value": None, "n": n, "mean_pct": None, "stdev_pct": None,
                           "basis": "trade_log percent_change per exit (net P&L on margin employed), not annualized"}
    if n >= 1:
        out["mean_pct"] = statistics.fmean(percent_changes)
    if n >= 2:
        sd = statistics.stdev(percent_changes)
        out["stdev_pct"] = sd
        if sd > 0 and math.isfinite(sd):
            out["value"] = out["mean_pct"] / sd
    return out


def _group(trades: list[Mapping[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for t in trades:
        g = out.setdefault(t[key], {"trades": 0, "wins": 0, "losses": 0, "net_pnl": ZERO})
        g["trades"] += 1
        g["wins"] += Decimal(t["net_pnl"]) > 0
        g["losses"] += Decimal(t["net_pnl"]) < 0
        g["net_pnl"] += Decimal(t["net_pnl"])
    for g in out.values():
        g["win_rate"] = g["wins"] / g["trades"]
    return dict(sorted(out.items()))


def build_summary(day: date, trades: list[Mapping[str, Any]], start_capital: Decimal,
                  end_capital: Decimal | None, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """summary.json's content (money still Decimal) from trade_log rows as dicts."""
    nets = [Decimal(t["net_pnl"]) for t in trades]
    net = sum(nets, ZERO)
    wins = sum(1 for x in nets if x > 0)
    losses = sum(1 for x in nets if x < 0)
    curve = equity_curve(start_capital, trades)
    dd, dd_pct = max_drawdown(curve)
    computed_end = start_capital + net
    if end_capital is not None and abs(end_capital - computed_end) > Decimal("0.01"):
        log.warning("report %s: capital_log ends at %s but starting capital + net P&L is %s", day, end_capital,
                    computed_end)
    ending = computed_end if end_capital is None else end_capital
    best = max(trades, key=lambda t: Decimal(t["net_pnl"]), default=None)
    worst = min(trades, key=lambda t: Decimal(t["net_pnl"]), default=None)
    return {
        "day": day.isoformat(),
        "trades": len(trades),
        "positions": len({t["trade_id"] for t in trades}),
        "wins": wins,
        "losses": losses,
        "breakeven": len(trades) - wins - losses,
        "win_rate": wins / len(trades) if trades else 0.0,
        "gross_pnl": sum((Decimal(t["gross_pnl"]) for t in trades), ZERO),
        "costs": sum((Decimal(t["costs"]) for t in trades), ZERO),
        "charges": {n: sum((Decimal(t[n]) for t in trades), ZERO) for n in CHARGE_NAMES},
        "net_pnl": net,
        "starting_capital": start_capital,
        "ending_capital": ending,
        "return_pct": float((ending - start_capital) / start_capital * 100) if start_capital else 0.0,
        "max_drawdown": dd,
        "max_drawdown_pct": dd_pct,
        "sharpe_like": sharpe_like([float(t["percent_change"]) for t in trades]),
        "best_trade": None if best is None else {"symbol": best["symbol"], "net_pnl": Decimal(best["net_pnl"])},
        "worst_trade": None if worst is None else {"symbol": worst["symbol"], "net_pnl": Decimal(worst["net_pnl"])},
        "by_symbol": _group(list(trades), "symbol"),
        "by_strategy": _group(list(trades), "strategy"),
        "by_exit_reason": {k: v["trades"] for k, v in _group(list(trades), "exit_reason").items()},
        **(extra or {}),
    }


def _plain(o: Any) -> Any:
    """Decimals to floats, recursively, for summary.json and the result."""
    if isinstance(o, Decimal):
        return float(o)
    if isinstance(o, Mapping):
        return {k: _plain(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_plain(v) for v in o]
    return o


# ----------------------------------------------------------------------------- reading

def _handler(src: str | DBHandler | Engine | None) -> DBHandler:
    if isinstance(src, DBHandler):
        return src
    if isinstance(src, Engine):
        return DBHandler(src)
    return DBHandler(setup(src)[0])


def _load(db: DBHandler, day: date) -> dict[str, Any]:
    def go(s: Session) -> dict[str, Any]:
        trades = [{c.name: getattr(t, c.name) for c in TradeLog.__table__.columns}
                  for t in s.scalars(select(TradeLog).where(TradeLog.trade_date == day)
                                     .order_by(TradeLog.exit_time, TradeLog.id))]
        caps = [(c.starting_capital, c.capital) for c in
                s.scalars(select(CapitalLog).where(CapitalLog.trading_date == day).order_by(CapitalLog.id))]
        orders = {st: n for st, n in s.execute(select(Order.status, func.count()).where(Order.trading_date == day)
                                               .group_by(Order.status).order_by(Order.status))}
        left = s.execute(select(func.count()).select_from(ActiveTrade)
                         .where(ActiveTrade.trading_date == day)).scalar() or 0
        saved = s.get(KeyValue, "tick_counts")
        ticks = None
        if saved is not None:
            try:
                doc = json.loads(saved.value)
                ticks = doc if isinstance(doc, dict) and doc.get("day") == day.isoformat() else None
            except ValueError:
                ticks = None
        return {"trades": trades, "caps": caps, "orders": orders, "left_open": left, "ticks": ticks}
    return db.transaction(f"read report data for {day}", go)


# ----------------------------------------------------------------------------- writing

def _atomic_write(path: Path, write: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def _write_csv(path: Path, trades: list[Mapping[str, Any]]) -> None:
    def go(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(CSV_COLUMNS)
            for t in trades:
                w.writerow([t["trade_id"], t["symbol"], t["strategy"], t["side"], t["trade_type"], t["quantity"],
                            to_ist(t["entry_time"]).isoformat(), t["entry_price"],
                            to_ist(t["exit_time"]).isoformat(), t["exit_price"], t["gross_pnl"],
                            *(t[n] for n in CHARGE_NAMES), t["costs"], t["net_pnl"], t["percent_change"],
                            t["exit_reason"]])
    _atomic_write(path, go)


def _write_chart(path: Path, day: date, curve: list[tuple[int | None, Decimal]], summary: Mapping[str, Any]) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import DateFormatter
    from matplotlib.figure import Figure
    from matplotlib.ticker import StrMethodFormatter

    fig = Figure(figsize=(10, 6.5), dpi=100)
    FigureCanvasAgg(fig)
    if len(curve) < 2:
        fig.text(0.5, 0.5, f"{day.isoformat()}: no trades", ha="center", va="center", fontsize=16)
    else:
        # the chart's curve starts at the session's open (write_report), so every point has a time
        times: Any = [to_ist(t or 0) for t, _ in curve]
        eq = [float(v) for _, v in curve]
        peak, dd = float("-inf"), []
        for v in eq:
            peak = max(peak, v)
            dd.append(v - peak)
        ax1 = fig.add_subplot(2, 1, 1)
        ax2 = fig.add_subplot(2, 1, 2, sharex=ax1)
        ax1.step(times, eq, where="post", color="tab:blue", linewidth=1.5)
        ax1.axhline(eq[0], color="grey", linewidth=0.8, linestyle="--")
        ax1.set_ylabel("capital (Rs)")
        ax1.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
        ax2.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
        ax1.set_title(f"{day.isoformat()}: {summary['trades']} exits, net {float(summary['net_pnl']):+,.2f}, "
                      f"max drawdown {float(summary['max_drawdown']):,.2f} ({summary['max_drawdown_pct']:.2f}%)")
        ax1.grid(alpha=0.3)
        ax2.fill_between(times, dd, 0, step="post", color="tab:red", alpha=0.4)
        ax2.set_ylabel("drawdown (Rs)")
        ax2.set_xlabel("exit time (IST)")
        ax2.grid(alpha=0.3)
        ax2.xaxis.set_major_formatter(DateFormatter("%H:%M", tz=IST))
        fig.tight_layout()

    def go(tmp: Path) -> None:
        fig.savefig(tmp, format="png")
    _atomic_write(path, go)


def write_report(db_url_or_handler: str | DBHandler | Engine | None, cfg: Config, day: date,
                 out_dir: Path | None = None, ticks: Mapping[str, Any] | None = None) -> ReportResult:
    """Write the day's three report files into `out_dir` (default: <reports_dir>/<YYYY-MM-DD>/). `ticks`: the
    run's tick counts (the driver's; rejected ticks by reason), or the ones it saved for the day."""
    db = _handler(db_url_or_handler)
    data = _load(db, day)
    trades = data["trades"]
    if data["caps"]:
        start, end = Decimal(data["caps"][0][0]), Decimal(data["caps"][-1][1])
    else:
        start, end = Decimal(str(cfg.risk.capital)), None
    extra = {"mode": cfg.mode.value, "generated_at": datetime.now(IST).isoformat(timespec="seconds"),
             "orders_by_status": data["orders"], "open_positions_left": data["left_open"],
             "ticks": dict(ticks) if ticks is not None else data["ticks"]}
    summary = build_summary(day, trades, start, end, extra)
    out = Path(out_dir) if out_dir is not None else cfg.resolve_path(cfg.monitoring.reports_dir) / day.isoformat()
    out.mkdir(parents=True, exist_ok=True)
    paths = (out / "trades.csv", out / "summary.json", out / "equity.png")
    _write_csv(paths[0], trades)
    plain = _plain(summary)
    _atomic_write(paths[1], lambda tmp: tmp.write_text(json.dumps(plain, indent=2) + "\n"))
    first_time = min((int(t["entry_time"]) for t in trades), default=None)
    session_open = ist_epoch(day, cfg.session.open)
    curve = equity_curve(start, trades, min(session_open, first_time) if first_time else session_open)
    _write_chart(paths[2], day, curve, summary)
    log.info("report for %s written to %s", day, out)
    return ReportResult(day, out, *paths, plain)


def format_summary(result: ReportResult) -> str:
    """A few lines for the log and the console."""
    s = result.summary
    sh = s["sharpe_like"]
    lines = [
        f"Session report {s['day']} -> {result.out_dir}",
        f"  {s['trades']} exits ({s['wins']} won, {s['losses']} lost, win rate {s['win_rate'] * 100:.1f}%): "
        f"net {s['net_pnl']:+,.2f} (gross {s['gross_pnl']:+,.2f}, costs {s['costs']:,.2f})",
        "  costs: " + ", ".join(f"{n} {s['charges'][n]:,.2f}" for n in CHARGE_NAMES),
        f"  capital {s['starting_capital']:,.2f} -> {s['ending_capital']:,.2f} ({s['return_pct']:+.2f}%), "
        f"max drawdown {s['max_drawdown']:,.2f} ({s['max_drawdown_pct']:.2f}%)",
    ]
    extra = []
    if sh["value"] is not None:
        extra.append(f"sharpe-like {sh['value']:.2f} over {sh['n']} exits")
    if s.get("best_trade"):
        extra.append(f"best {s['best_trade']['symbol']} {s['best_trade']['net_pnl']:+,.2f}, "
                     f"worst {s['worst_trade']['symbol']} {s['worst_trade']['net_pnl']:+,.2f}")
    if extra:
        lines.append("  " + "; ".join(extra))
    orders = ", ".join(f"{k} {v}" for k, v in (s.get("orders_by_status") or {}).items()) or "none"
    left = s.get("open_positions_left", 0)
    lines.append(f"  orders: {orders}; {left} position(s) left open" + (" -- CHECK THE BROKER" if left else ""))
    t = s.get("ticks")
    if t:
        lines.append(f"  ticks: {tick_summary(t)}")
    return "\n".join(lines)


def tick_summary(t: Mapping[str, Any]) -> str:
    """'N dispatched, M persisted, K rejected (reason n, ...)' from a tick-counts document (persisted only when
    ticks were: market_data.persist)."""
    kept = t.get("rows_persisted") or 0
    return f"{t.get('dispatched', 0):,} dispatched, " + (f"{kept:,} persisted, " if kept else "") + tick_rejections(t)


def tick_rejections(t: Mapping[str, Any]) -> str:
    """'N rejected (reason n, ...)' from a tick-counts document."""
    by = t.get("rejected_by_reason") or {}
    return f"{t.get('rejected', 0):,} rejected" + (" (" + ", ".join(f"{r} {n}" for r, n in by.items()) + ")"
                                                    if by else "")

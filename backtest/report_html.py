"""report.html: one self-contained file a user can open offline or mail on: every chart is inline SVG drawn by
matplotlib, the heatmap and tables are HTML with inline styles; no script, font, stylesheet or image is
fetched from anywhere (no http(s) reference at all, not even an XML namespace)."""
from __future__ import annotations

import html
import io
import logging
import os
import re
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from backtest import fmt
from backtest.metrics import Position, Summary, TradeStats
from core.costs import CHARGE_NAMES

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1100px;color:#222}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.9em;margin:.4em 0} td,th{padding:3px 8px;border:1px solid #ddd}
th{background:#f3f3f3;text-align:left} td.n{text-align:right;font-variant-numeric:tabular-nums}
.heat td{text-align:right;min-width:3.6em} .chart svg{max-width:100%;height:auto} .empty{color:#777}
"""


def render(summary: Summary, equity: Sequence[tuple[date, Decimal]], positions: Sequence[Position],
           title: str = "Backtest") -> str:
    """The whole page: headline figures, equity and drawdown, monthly returns heatmap, the distribution of
    positions' net P&L, per-symbol and per-strategy tables and the charges by component."""
    s = summary
    period = f"{s.first_day} to {s.last_day}, {s.trading_days} trading days" if s.first_day else "no trading days"
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1><p>{_e(period)}</p>",
        "<h2>Summary</h2>", _headline(s),
        "<h2>Equity and drawdown</h2>", _chart(_equity_svg(s, equity), "equity", "no equity series"),
        "<h2>Monthly returns</h2>", _heatmap(s.monthly_returns),
        "<h2>Trade P&amp;L distribution</h2>",
        _chart(_distribution_svg(positions), "distribution", "no closed trades"),
        "<h2>Per symbol</h2>", _stats_table("symbol", s.by_symbol),
        "<h2>Per strategy</h2>", _stats_table("strategy", s.by_strategy),
        "<h2>Charges by component</h2>", _charges(s),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def page(title: str, sections: Sequence[tuple[str, str]]) -> str:
    """A self-contained page of (heading, HTML) sections in this report's style: what other reports (the
    optimisation's) are built from."""
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>", f"<h1>{_e(title)}</h1>"]
    for heading, body in sections:
        parts += [f"<h2>{_e(heading)}</h2>" if heading else "", body]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write(path: Path, summary: Summary, equity: Sequence[tuple[date, Decimal]], positions: Sequence[Position],
          title: str = "Backtest") -> Path:
    """Write report.html through a temporary name, so a crash never leaves half a page."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render(summary, equity, positions, title), encoding="utf-8")
    os.replace(tmp, path)
    log.info("backtest report written to %s", path)
    return path


# ----------------------------------------------------------------------------- tables

def _e(text: object) -> str:
    return html.escape(str(text))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td class="n">{_e(c)}</td>' if i >= numeric_from else f"<td>{_e(c)}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _headline(s: Summary) -> str:
    t, dd = s.trades, s.drawdown
    rows = [
        ("Starting capital", fmt.money(s.starting_capital)), ("Ending capital", fmt.money(s.ending_capital)),
        ("Net P&L", fmt.money(s.net_pnl, signed=True)), ("Total return", fmt.pct(s.total_return, signed=True)),
        ("CAGR", fmt.pct(s.cagr, signed=True)), ("Volatility (annualised)", fmt.pct(s.volatility)),
        (f"Sharpe (risk-free {fmt.pct(s.risk_free_rate)})", fmt.ratio(s.sharpe)), ("Sortino", fmt.ratio(s.sortino)),
        ("Calmar", fmt.ratio(s.calmar)),
        ("Max drawdown", f"{fmt.pct(dd.pct)} ({fmt.money(dd.amount)})"),
        ("Max drawdown duration", _days(dd.days) + ("" if dd.recovery_date or not dd.days else ", not recovered")),
        ("Longest drawdown", _days(dd.longest_days)),
        ("Positions (exits)", f"{fmt.count(t.positions)} ({fmt.count(t.exits)})"),
        ("Win rate", fmt.pct(t.win_rate)), ("Profit factor", fmt.ratio(t.profit_factor)),
        ("Expectancy per position", fmt.money(t.expectancy, signed=True)),
        ("Average win / loss", f"{fmt.money(t.average_win)} / {fmt.money(t.average_loss)}"),
        ("Exposure", fmt.pct(s.exposure)), ("Positions per day", fmt.count(s.trades_per_day)),
        ("Gross P&L / charges", f"{fmt.money(t.gross_pnl, signed=True)} / {fmt.money(t.costs)}"),
    ]
    return _table(("Figure", "Value"), rows)


def _days(n: int) -> str:
    return f"{n} trading day" + ("" if n == 1 else "s")


def _stats_table(what: str, groups: Mapping[str, TradeStats]) -> str:
    rows = [(name, fmt.count(g.positions), fmt.pct(g.win_rate), fmt.money(g.net_pnl, signed=True),
             fmt.money(g.gross_pnl, signed=True), fmt.money(g.costs), fmt.ratio(g.profit_factor),
             fmt.money(g.expectancy, signed=True), fmt.money(g.average_win), fmt.money(g.average_loss))
            for name, g in groups.items()]
    if not rows:
        return '<p class="empty">no closed trades</p>'
    return _table((what, "positions", "win rate", "net P&L", "gross P&L", "charges", "profit factor",
                   "expectancy", "avg win", "avg loss"), rows)


def _charges(s: Summary) -> str:
    rows = [(n, fmt.money(s.charges.get(n, Decimal(0)))) for n in CHARGE_NAMES]
    rows.append(("total", fmt.money(s.trades.costs)))
    return _table(("charge", "Rs"), rows)


def _heatmap(monthly: Mapping[str, float]) -> str:
    """Years down, months across, the year's compounded return last; green gains, red losses, deeper the
    larger against the largest month."""
    if not monthly:
        return '<p class="empty">no monthly returns</p>'
    by_year: dict[int, dict[int, float]] = {}
    for key, r in monthly.items():
        y, m = (int(x) for x in str(key).split("-"))
        by_year.setdefault(y, {})[m] = float(r)
    scale = max((abs(r) for months in by_year.values() for r in months.values()), default=0.0) or 1.0
    head = "<tr><th>year</th>" + "".join(f"<th>{m}</th>" for m in MONTHS) + "<th>year</th></tr>"
    body = []
    for y in sorted(by_year):
        cells, growth = [], 1.0
        for m in range(1, 13):
            month = by_year[y].get(m)
            if month is None:
                cells.append("<td></td>")
                continue
            growth *= 1 + month
            cells.append(f'<td style="background:{_colour(month / scale)}">{_e(fmt.pct(month))}</td>')
        body.append(f"<tr><th>{y}</th>{''.join(cells)}<td><b>{_e(fmt.pct(growth - 1))}</b></td></tr>")
    return f'<table class="heat">{head}{"".join(body)}</table>'


def _colour(x: float) -> str:
    """-1..1 to a red-white-green background."""
    x = max(-1.0, min(1.0, x))
    fade = int(255 - 150 * abs(x))
    return f"rgb({fade},255,{fade})" if x >= 0 else f"rgb(255,{fade},{fade})"


# ----------------------------------------------------------------------------- charts

def _chart(svg: str | None, name: str, empty: str) -> str:
    if svg is None:
        return f'<p class="empty">{_e(empty)}</p>'
    return f'<div class="chart" id="chart-{name}">{_inline(svg, name)}</div>'


_NAMESPACE = re.compile(r'\s+xmlns(:\w+)?="[^"]*"')
_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r'(url\(#|href="#)([^)"]+)')


def _inline(svg: str, prefix: str) -> str:
    """matplotlib's SVG document as an element of the page: no XML prolog or DTD, no namespace URLs (HTML
    knows svg and xlink without them), ids prefixed so two charts never share one, and its global style
    scoped to SVG."""
    svg = svg[svg.index("<svg"):]
    svg = _NAMESPACE.sub("", svg)
    svg = _ID.sub(lambda m: f'id="{prefix}-{m.group(1)}"', svg)
    svg = _REF.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", svg)
    return svg.replace("*{", "svg *{")


def _svg(fig: Figure) -> str:
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "backtest-report"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    return buf.getvalue()


def _equity_svg(s: Summary, equity: Sequence[tuple[date, Decimal]]) -> str | None:
    if not equity:
        return None
    import numpy as np
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure
    from matplotlib.ticker import StrMethodFormatter

    days = np.array([d for d, _ in equity], dtype="datetime64[D]")
    eq = [float(v) for _, v in equity]
    peak, dd = float(s.starting_capital), []
    for v in eq:
        peak = max(peak, v)
        dd.append((v - peak) / peak * 100)
    fig = Figure(figsize=(10, 5.5), dpi=100)
    FigureCanvasSVG(fig)
    ax1 = fig.add_subplot(2, 1, 1)
    ax2 = fig.add_subplot(2, 1, 2, sharex=ax1)
    ax1.plot(days, eq, color="tab:blue", linewidth=1.3)
    ax1.axhline(float(s.starting_capital), color="grey", linewidth=0.8, linestyle="--")
    ax1.set_ylabel("equity (Rs)")
    ax1.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax1.set_title(f"net {fmt.money(s.net_pnl, signed=True)} ({fmt.pct(s.total_return, signed=True)}), "
                  f"max drawdown {fmt.pct(s.drawdown.pct)}")
    ax1.grid(alpha=0.3)
    ax2.fill_between(days, dd, 0, color="tab:red", alpha=0.4)
    ax2.set_ylabel("drawdown (%)")
    ax2.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    return _svg(fig)


def _distribution_svg(positions: Sequence[Position]) -> str | None:
    if not positions:
        return None
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator, StrMethodFormatter

    nets = [float(p.net_pnl) for p in positions]
    fig = Figure(figsize=(10, 3.5), dpi=100)
    FigureCanvasSVG(fig)
    ax = fig.add_subplot(1, 1, 1)
    bins = max(5, min(60, len(nets) // 3))
    ax.hist([x for x in nets if x > 0], bins=bins, range=(min(nets), max(nets)) if len(nets) > 1 else None,
            color="tab:green", alpha=0.75, label="wins")
    ax.hist([x for x in nets if x <= 0], bins=bins, range=(min(nets), max(nets)) if len(nets) > 1 else None,
            color="tab:red", alpha=0.75, label="losses and flat")
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.set_xlabel("net P&L per position (Rs)")
    ax.set_ylabel("positions")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _svg(fig)

"""The optimisation's report.html, self-contained like the backtest's (backtest.report_html.page): the best
points, a heatmap of the objective over two parameters, and the walk-forward folds with the stitched
out-of-sample equity as inline SVG. Nothing is fetched from anywhere."""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path

from backtest import fmt
from backtest.optimize import PointResult, ranked
from backtest.report_html import _chart, _colour, _e, _svg, _table, page
from backtest.sweep_params import ParamSpec, Value, point_label
from backtest.walk_forward import FoldResult, Stitched

log = logging.getLogger(__name__)


def results_section(results: Sequence[PointResult], specs: Sequence[ParamSpec], objective: str, top: int) -> str:
    best = [r for r in ranked(results) if r.status == "ok"][:top]
    if not best:
        return '<p class="empty">no point passed</p>'
    rows = [(str(i), *(str(r.point[s.key]) for s in specs), fmt.ratio(r.value), fmt.count(r.trades),
             fmt.ratio(r.figures.get("sharpe")), fmt.money(_money(r.figures.get("net")), signed=True),
             fmt.pct(r.figures.get("max_drawdown"))) for i, r in enumerate(best, 1)]
    rejected = sum(1 for r in results if r.status != "ok")
    note = f"<p>{len(results)} points, {rejected} rejected (invalid, too few trades or undefined objective); " \
           "every point is in optimize.csv.</p>"
    return note + _table(("#", *(s.key for s in specs), objective, "positions", "Sharpe", "net P&L", "max dd"),
                         rows, numeric_from=len(specs) + 1)


def heatmap_section(results: Sequence[PointResult], x: ParamSpec, y: ParamSpec, objective: str) -> str:
    """`y` down, `x` across; each cell the best objective over the other parameters' values; blank where no
    point passed (invalid, too few trades). Green above the median of the cells, red below."""
    cells: dict[tuple[Value, Value], float] = {}
    for r in results:
        if r.status == "ok" and r.value is not None:
            key = (r.point[x.key], r.point[y.key])
            cells[key] = max(cells.get(key, r.value), r.value)
    if not cells:
        return '<p class="empty">no point passed, nothing to map</p>'
    values = sorted(cells.values())
    mid = values[len(values) // 2]
    scale = max(abs(v - mid) for v in values) or 1.0
    head = f"<tr><th>{_e(y.key)} \\ {_e(x.key)}</th>" + "".join(f"<th>{_e(v)}</th>" for v in x.values) + "</tr>"
    body = []
    for yv in y.values:
        row = []
        for xv in x.values:
            v = cells.get((xv, yv))
            row.append("<td></td>" if v is None else
                       f'<td style="background:{_colour((v - mid) / scale)}">{_e(fmt.ratio(v))}</td>')
        body.append(f"<tr><th>{_e(yv)}</th>{''.join(row)}</tr>")
    return (f"<p>{_e(objective)} by {_e(x.key)} and {_e(y.key)}"
            + (" (the best over the other parameters)" if len(cells) < len(results) else "") + "</p>"
            + f'<table class="heat">{head}{"".join(body)}</table>')


def folds_section(folds: Sequence[FoldResult], objective: str) -> str:
    rows = []
    for f in folds:
        best, oos = f.best, f.oos
        rows.append((str(f.index + 1), f"{f.in_sample.start} to {f.in_sample.end}",
                     f"{f.out_sample.start} to {f.out_sample.end}",
                     point_label(best.point) if best else "(none passed)",
                     fmt.ratio(best.value) if best else "-", fmt.ratio(oos.figures.get(objective)) if oos else "-",
                     fmt.money(_money(oos.figures.get("net")), signed=True) if oos else "-",
                     fmt.count(oos.trades) if oos else "-"))
    return _table(("fold", "in-sample", "out-of-sample", "best in-sample point", f"{objective} in",
                   f"{objective} out", "net out", "positions out"), rows, numeric_from=4)


def stitched_section(st: Stitched) -> str:
    figures = _table(("Figure", "Value"), [
        ("Out-of-sample return (compounded)", fmt.pct(st.total_return, signed=True)),
        ("CAGR", fmt.pct(st.cagr, signed=True)), ("Sharpe", fmt.ratio(st.sharpe)),
        ("Max drawdown", fmt.pct(st.max_drawdown))])
    return figures + _chart(_equity_svg(st.equity, st.start_capital), "oos-equity", "no out-of-sample days")


def _equity_svg(equity: Sequence[tuple[date, Decimal]], start: Decimal) -> str | None:
    if not equity:
        return None
    import numpy as np
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure
    from matplotlib.ticker import StrMethodFormatter

    fig = Figure(figsize=(10, 3.5), dpi=100)
    FigureCanvasSVG(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(np.array([d for d, _ in equity], dtype="datetime64[D]"), [float(v) for _, v in equity],
            color="tab:blue", linewidth=1.3)
    ax.axhline(float(start), color="grey", linewidth=0.8, linestyle="--")
    ax.set_ylabel("equity (Rs)")
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    return _svg(fig)


def _money(v: float | None) -> Decimal | None:
    return None if v is None else Decimal(str(v))


def render(title: str, intro: str, results: Sequence[PointResult], specs: Sequence[ParamSpec], objective: str,
           top: int, heat: tuple[ParamSpec, ParamSpec] | None, folds: Sequence[FoldResult] = (),
           stitched: Stitched | None = None) -> str:
    sections = [("", f"<p>{_e(intro)}</p>"), (f"Best {top} points by {objective}",
                                               results_section(results, specs, objective, top))]
    if heat is not None:
        sections.append(("Parameter heatmap", heatmap_section(results, heat[0], heat[1], objective)))
    if folds:
        sections.append(("Walk-forward folds", folds_section(folds, objective)))
    if stitched is not None:
        sections.append(("Out-of-sample equity, stitched", stitched_section(stitched)))
    return page(title, sections)


def write(path: Path, html_text: str) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(html_text, encoding="utf-8")
    os.replace(tmp, path)
    log.info("optimisation report written to %s", path)
    return path

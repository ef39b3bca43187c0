"""report.html opens offline and holds its charts and tables; `backtest compare` puts two runs side by side."""
from __future__ import annotations

import re
from decimal import Decimal
from html.parser import HTMLParser

from backtest import compare, metrics, report_html
from tests.test_backtest_metrics import DAYS, ROWS, SESSION, START, summary

D = Decimal


class _Tags(HTMLParser):
    """Every start tag's name and attributes, and whether each svg element closes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.open_svg = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self.open_svg += tag == "svg"

    def handle_endtag(self, tag):
        self.open_svg -= tag == "svg"


def _page(rows=ROWS, days=DAYS) -> str:
    eq = metrics.daily_equity(START, rows, days)
    s = metrics.summarize(rows, eq, START, risk_free_rate=0.065, session_seconds=SESSION)
    return report_html.render(s, eq, metrics.positions(rows), title="run <1>")


def _offline(page: str) -> None:
    assert not re.search(r"https?://", page, re.IGNORECASE)
    assert not re.search(r"<(script|link|img|iframe|object|embed)\b", page, re.IGNORECASE)
    assert not re.search(r"\b(src|srcset)\s*=|@import|url\((?!#)", page, re.IGNORECASE)


def test_the_page_is_self_contained_and_holds_every_chart_and_table():
    page = _page()
    _offline(page)
    tags = _Tags()
    tags.feed(page)
    assert tags.open_svg == 0
    ids = [a["id"] for _, a in tags.tags if "id" in a]
    assert len(ids) == len(set(ids)), "two elements share an id"
    assert "<title>run &lt;1&gt;</title>" in page                  # text is escaped
    # equity and drawdown, and the P&L distribution: one inline SVG each
    charts = re.findall(r'<div class="chart" id="chart-(\w+)"><svg', page)
    assert charts == ["equity", "distribution"] and page.count("<svg") == 2
    assert "equity (Rs)" in page and "drawdown (%)" in page and "net P&amp;L per position (Rs)" in page
    # the monthly heatmap: January +2.5%, February -2.93%, the year -0.50% (0.995 compounded)
    heat = re.search(r'<table class="heat">.*?</table>', page, re.S)
    assert heat is not None
    cells = re.findall(r'<td style="background:[^"]+">([^<]+)</td>', heat.group(0))
    assert cells == ["2.50%", "-2.93%"] and "<b>-0.50%</b>" in heat.group(0)
    # per symbol: INFY 2 positions, net -4,000; SBIN 3 positions, net +3,500
    assert re.search(r"<td>INFY</td><td class=\"n\">2</td><td class=\"n\">0.00%</td><td class=\"n\">-4,000.00</td>",
                     page)
    assert re.search(r"<td>SBIN</td><td class=\"n\">3</td><td class=\"n\">66.67%</td><td class=\"n\">\+3,500.00</td>",
                     page)
    assert "<td>exchange_txn</td><td class=\"n\">63.00</td>" in page


def test_an_empty_run_still_renders_a_page_without_charts():
    page = _page(rows=[], days=[])
    _offline(page)
    assert "<svg" not in page
    assert "no equity series" in page and "no closed trades" in page and "no monthly returns" in page


def test_write_replaces_the_file_whole(tmp_path):
    s = metrics.summarize([], [], START, risk_free_rate=0.065, session_seconds=SESSION)   # no charts: quick
    (tmp_path / "report.html").write_text("an older run")
    out = report_html.write(tmp_path / "report.html", s, [], [])
    assert out.read_text(encoding="utf-8") == report_html.render(s, [], [])
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_compare_gives_b_minus_a_per_figure():
    a = summary()                                 # all five positions: net -500
    b = summary(rows=ROWS[1:4])                   # T2 -1,000 and T3 +1,500 only (both mac): net +500
    rows = {r.metric: r for r in compare.compare(a, b)}
    net = rows["net P&L"]
    assert (net.a, net.b, net.diff) == (D(-500), D(500), D(1000))
    wr = rows["win rate"]                         # 2/5 -> 1/2
    assert (wr.a, wr.b) == (0.4, 0.5) and wr.diff == 0.5 - 0.4
    assert (rows["positions"].a, rows["positions"].b, rows["positions"].diff) == (5, 2, -3)
    assert rows["charge: stt"].diff == D(-75)     # B's rows pay 15 + 10 + 10 = 35 of A's 110
    # a strategy only run A traded reads as a dash in B, with no difference
    orb = rows["strategy orb: net P&L"]
    assert (orb.a, orb.b, orb.diff) == (D(-1000), None, None)
    assert rows["first day"].kind is compare.Kind.TEXT and rows["first day"].diff is None
    assert "symbol SBIN: net P&L" not in rows
    assert "symbol SBIN: net P&L" in {r.metric for r in compare.compare(a, b, per_symbol=True)}


def test_compare_text_table_lines_up():
    a, b = summary(), summary(rows=ROWS[1:4])
    text = compare.format_table(compare.compare(a, b), "base", "tuned")
    lines = text.splitlines()
    assert lines[0].split() == ["metric", "base", "tuned", "tuned", "-", "base"]
    assert len({len(line) for line in lines[:2]}) == 1
    net = next(line for line in lines if line.startswith("net P&L "))
    assert net.split()[-3:] == ["-500.00", "500.00", "+1,000.00"]
    wr = next(line for line in lines if line.startswith("win rate "))
    assert wr.split()[-4:] == ["40.00%", "50.00%", "+10.00", "pp"]
    orb = next(line for line in lines if line.startswith("strategy orb"))
    assert orb.split()[-3:] == ["-1,000.00", "-", "-"]

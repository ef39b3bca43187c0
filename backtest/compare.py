"""Two runs' summaries side by side, for `backtest compare RUN_A RUN_B`: rows of raw values (for a caller
that ranks or tests them) and the same rows as a text table. The difference is always B minus A."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

from backtest import fmt
from backtest.metrics import Summary, TradeStats
from core.costs import CHARGE_NAMES

Value = Decimal | float | int | str | None


class Kind(Enum):
    """How a row's values read and subtract."""

    MONEY = "money"
    PCT = "pct"        # a fraction; the difference reads in percentage points
    RATIO = "ratio"
    COUNT = "count"
    TEXT = "text"      # no difference


@dataclass(frozen=True)
class CompareRow:
    metric: str
    kind: Kind
    a: Value
    b: Value
    diff: Value        # b - a; None where either is None or the kind is TEXT


_Get = Callable[[Summary], Value]


def _trade(getter: Callable[[TradeStats], Value]) -> _Get:
    return lambda s: getter(s.trades)


_METRICS: tuple[tuple[str, Kind, _Get], ...] = (
    ("first day", Kind.TEXT, lambda s: None if s.first_day is None else s.first_day.isoformat()),
    ("last day", Kind.TEXT, lambda s: None if s.last_day is None else s.last_day.isoformat()),
    ("trading days", Kind.COUNT, lambda s: s.trading_days),
    ("starting capital", Kind.MONEY, lambda s: s.starting_capital),
    ("ending capital", Kind.MONEY, lambda s: s.ending_capital),
    ("net P&L", Kind.MONEY, lambda s: s.net_pnl),
    ("total return", Kind.PCT, lambda s: s.total_return),
    ("CAGR", Kind.PCT, lambda s: s.cagr),
    ("volatility", Kind.PCT, lambda s: s.volatility),
    ("risk-free rate", Kind.PCT, lambda s: s.risk_free_rate),
    ("Sharpe", Kind.RATIO, lambda s: s.sharpe),
    ("Sortino", Kind.RATIO, lambda s: s.sortino),
    ("Calmar", Kind.RATIO, lambda s: s.calmar),
    ("max drawdown", Kind.PCT, lambda s: s.drawdown.pct),
    ("max drawdown (Rs)", Kind.MONEY, lambda s: s.drawdown.amount),
    ("max drawdown days", Kind.COUNT, lambda s: s.drawdown.days),
    ("longest drawdown days", Kind.COUNT, lambda s: s.drawdown.longest_days),
    ("positions", Kind.COUNT, _trade(lambda t: t.positions)),
    ("exits", Kind.COUNT, _trade(lambda t: t.exits)),
    ("positions per day", Kind.COUNT, lambda s: s.trades_per_day),
    ("exposure", Kind.PCT, lambda s: s.exposure),
    ("win rate", Kind.PCT, _trade(lambda t: t.win_rate)),
    ("profit factor", Kind.RATIO, _trade(lambda t: t.profit_factor)),
    ("expectancy", Kind.MONEY, _trade(lambda t: t.expectancy)),
    ("average win", Kind.MONEY, _trade(lambda t: t.average_win)),
    ("average loss", Kind.MONEY, _trade(lambda t: t.average_loss)),
    ("gross P&L", Kind.MONEY, _trade(lambda t: t.gross_pnl)),
    ("charges", Kind.MONEY, _trade(lambda t: t.costs)),
)


def compare(a: Summary, b: Summary, per_symbol: bool = False) -> list[CompareRow]:
    """The headline figures, each charge, and the net P&L of every strategy (and symbol, when asked) either
    run traded; a strategy one run did not trade reads as a dash there."""
    rows = [_row(name, kind, get(a), get(b)) for name, kind, get in _METRICS]
    rows += [_row(f"charge: {n}", Kind.MONEY, a.charges.get(n), b.charges.get(n)) for n in CHARGE_NAMES]
    groups = [("strategy", a.by_strategy, b.by_strategy)]
    if per_symbol:
        groups.append(("symbol", a.by_symbol, b.by_symbol))
    for what, ga, gb in groups:
        for name in sorted(set(ga) | set(gb)):
            rows.append(_row(f"{what} {name}: net P&L", Kind.MONEY,
                             ga[name].net_pnl if name in ga else None, gb[name].net_pnl if name in gb else None))
    return rows


def _row(metric: str, kind: Kind, a: Value, b: Value) -> CompareRow:
    diff: Value = None
    if kind is Kind.TEXT or a is None or b is None or isinstance(a, str) or isinstance(b, str):
        pass
    elif isinstance(a, Decimal) and isinstance(b, Decimal):
        diff = b - a
    elif isinstance(a, int) and isinstance(b, int):
        diff = b - a
    elif not isinstance(a, Decimal) and not isinstance(b, Decimal):
        diff = float(b) - float(a)
    return CompareRow(metric, kind, a, b, diff)


def _text(kind: Kind, v: Value, diff: bool = False) -> str:
    if v is None:
        return fmt.DASH
    if isinstance(v, str):
        return v
    if kind is Kind.MONEY:
        return fmt.money(Decimal(v), signed=diff)
    if kind is Kind.PCT:
        return f"{float(v) * 100:+.2f} pp" if diff else fmt.pct(float(v))
    if kind is Kind.RATIO:
        return f"{float(v):+.2f}" if diff else fmt.ratio(float(v))
    if isinstance(v, int):
        return f"{v:+,}" if diff else fmt.count(v)
    return f"{float(v):+,.2f}" if diff else fmt.count(float(v))


def format_table(rows: Sequence[CompareRow], name_a: str = "A", name_b: str = "B") -> str:
    """Fixed-width columns: metric, A, B, B - A."""
    cells = [(r.metric, _text(r.kind, r.a), _text(r.kind, r.b), "" if r.kind is Kind.TEXT else
              _text(r.kind, r.diff, diff=True)) for r in rows]
    header = ("metric", name_a, name_b, f"{name_b} - {name_a}")
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(4)]
    lines = [f"{header[0]:<{widths[0]}}  " + "  ".join(f"{h:>{w}}" for h, w in zip(header[1:], widths[1:],
                                                                                      strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for c in cells:
        lines.append(f"{c[0]:<{widths[0]}}  " + "  ".join(f"{x:>{w}}" for x, w in zip(c[1:], widths[1:],
                                                                                       strict=True)))
    return "\n".join(lines)

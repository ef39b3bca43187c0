"""How a backtest figure reads, the same in report.html and in `backtest compare`; None reads as a dash."""
from __future__ import annotations

from decimal import Decimal

DASH = "-"


def money(v: Decimal | None, signed: bool = False) -> str:
    """Rupees to the paisa with thousands separators: 1,234.50 (or +1,234.50)."""
    if v is None:
        return DASH
    return f"{v:+,.2f}" if signed else f"{v:,.2f}"


def pct(v: float | None, signed: bool = False) -> str:
    """A fraction as a percentage: 0.1234 -> 12.34%."""
    if v is None:
        return DASH
    return f"{v * 100:+.2f}%" if signed else f"{v * 100:.2f}%"


def ratio(v: float | None) -> str:
    """A ratio such as Sharpe or profit factor, two decimals."""
    return DASH if v is None else f"{v:.2f}"


def count(v: int | float | None) -> str:
    """A count, or a rate such as trades per day (two decimals when not whole)."""
    if v is None:
        return DASH
    return f"{v:,}" if isinstance(v, int) else f"{v:,.2f}"

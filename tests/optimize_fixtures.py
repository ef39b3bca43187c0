"""A pure, deterministic Evaluate for the optimisation machinery's tests, until the backtest runner lands: a
moving-average crossover on a seeded random walk per weekday (375 one-minute closes), traded long-only
intraday, with a flat Rs 20 charge per position, summarised by backtest.metrics like a real run. The same
point and fold always give the same Outcome, in any process."""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from backtest.metrics import summarize
from backtest.optimize import Fold, Outcome

CAPITAL = Decimal(1_000_000)
QTY = 100
CHARGE = Decimal(20)


@dataclass(frozen=True)
class Row:
    trade_id: int
    symbol: str
    strategy: str
    entry_time: int
    exit_time: int
    gross_pnl: Decimal
    costs: Decimal
    net_pnl: Decimal
    brokerage: Decimal
    stt: Decimal = Decimal(0)
    exchange_txn: Decimal = Decimal(0)
    sebi: Decimal = Decimal(0)
    stamp_duty: Decimal = Decimal(0)
    gst: Decimal = Decimal(0)


def weekdays(first: date, last: date) -> list[date]:
    out, d = [], first
    while d <= last:
        if d.weekday() < 5:
            out.append(d)
        d += timedelta(days=1)
    return out


def closes(day: date) -> list[float]:
    """375 closes from a linear congruential generator seeded by the day: no global state, no library."""
    x = day.toordinal() * 2654435761 % 2**32
    price, out = 100.0 + (day.toordinal() % 50), []
    for _ in range(375):
        x = (1103515245 * x + 12345) % 2**31
        price *= 1 + ((x / 2**31) - 0.5) * 0.004 + 0.00001 * math.sin(day.toordinal())
        out.append(round(price, 2))
    return out


def evaluate(point: Mapping[str, object], fold: Fold) -> Outcome:
    """mac.fast / mac.slow from the point (9 / 21 otherwise); mac.atr_multiple scales nothing but is accepted."""
    fast = int(point.get("mac.fast", 9))  # type: ignore[call-overload]
    slow = int(point.get("mac.slow", 21))  # type: ignore[call-overload]
    days = weekdays(fold.start, fold.end)
    rows: list[Row] = []
    for day in days:
        c = closes(day)
        base = int(datetime(day.year, day.month, day.day, 3, 45, tzinfo=UTC).timestamp())
        entry: tuple[int, float] | None = None
        prev = 0
        for i in range(slow, len(c)):
            f = sum(c[i - fast:i]) / fast
            s = sum(c[i - slow:i]) / slow
            sign = 1 if f > s else -1 if f < s else 0
            if sign > 0 and prev < 0 and entry is None:
                entry = (i, c[i])
            elif sign < 0 and prev > 0 and entry is not None:
                rows.append(_row(len(rows) + 1, base, entry, i, c[i]))
                entry = None
            prev = sign or prev
        if entry is not None:
            rows.append(_row(len(rows) + 1, base, entry, len(c) - 1, c[-1]))
    from backtest.metrics import daily_equity

    equity = daily_equity(CAPITAL, rows, days)
    summary = summarize(rows, equity, CAPITAL, risk_free_rate=0.0, session_seconds=375 * 60)
    return Outcome(summary, tuple(equity), 375 * len(days))


def _row(n: int, base: int, entry: tuple[int, float], i: int, price: float) -> Row:
    gross = (Decimal(str(price)) - Decimal(str(entry[1]))) * QTY
    return Row(n, "SYN", "mac", base + entry[0] * 60, base + i * 60, gross, CHARGE, gross - CHARGE, CHARGE)


def evaluate_slow(point: Mapping[str, object], fold: Fold) -> Outcome:
    """The same, three times over (its result unchanged): enough work per point that two hosts sharing a study
    both get some of it."""
    for _ in range(2):
        evaluate(point, fold)
    return evaluate(point, fold)

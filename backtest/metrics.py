"""A backtest's figures from what the ledger records: its closed trades (trade_log rows) and its daily equity.

Pure functions, no I/O, so the runner, `backtest compare` and the tests get the same numbers from the same
inputs. Money stays Decimal (averages rounded to the paisa, half up); ratios are floats. The definitions,
chosen once here and in README "Backtest results":

- A *position* is one trade_id: its trade_log rows (a partial exit writes a row, the last exit another) summed.
  Win rate, profit factor, expectancy and the averages count positions, judged on net P&L (after charges);
  a position that nets exactly zero is neither a win nor a loss but counts in the win rate's denominator.
- Daily returns are close-to-close on the equity series, the first against the starting capital. Sharpe is
  the mean excess return (daily return minus risk_free_rate / 252) over its sample standard deviation, times
  sqrt(252); Sortino divides by the downside deviation sqrt(sum(min(0, excess)^2) / n) instead.
- CAGR compounds over trading days: years = days in the series / 252 (under a year it extrapolates).
- Max drawdown is the largest fall from a running peak in percent of that peak (the starting capital is the
  first peak); its rupee amount is that same fall. Its duration is the number of trading-day closes below
  that peak until equity closes at or above it again (or the series ends).
- Exposure is the share of the session time of the series' days in which at least one position was open.
- Undefined is None, never inf or NaN (summary.json stays strict JSON): no trades (win rate, expectancy,
  profit factor), no losing position (profit factor), no winning or losing one (its average), zero volatility
  or fewer than two days (Sharpe), no day below the risk-free rate (Sortino), no drawdown (Calmar), a
  growth too large to annualise in a float (CAGR over a few days); no return is taken on equity at or below 0.
"""
from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal, Protocol

from core.clock import ist_date
from core.costs import CHARGE_NAMES

log = logging.getLogger(__name__)

TRADING_DAYS_PER_YEAR = 252
ZERO = Decimal(0)
PAISA = Decimal("0.01")


class TradeRow(Protocol):
    """What the metrics read from a trade_log row (db.TradeLog has these and more)."""

    @property
    def trade_id(self) -> int: ...
    @property
    def symbol(self) -> str: ...
    @property
    def strategy(self) -> str: ...
    @property
    def entry_time(self) -> int: ...
    @property
    def exit_time(self) -> int: ...
    @property
    def gross_pnl(self) -> Decimal: ...
    @property
    def costs(self) -> Decimal: ...
    @property
    def net_pnl(self) -> Decimal: ...
    # the charge columns (core.costs.CHARGE_NAMES), whose sum is costs
    @property
    def brokerage(self) -> Decimal: ...
    @property
    def stt(self) -> Decimal: ...
    @property
    def exchange_txn(self) -> Decimal: ...
    @property
    def sebi(self) -> Decimal: ...
    @property
    def stamp_duty(self) -> Decimal: ...
    @property
    def gst(self) -> Decimal: ...


@dataclass(frozen=True)
class Position:
    """One trade_id's exits summed: in the market from its entry to its last exit."""

    trade_id: int
    symbol: str
    strategy: str
    entry_time: int
    exit_time: int
    exits: int
    gross_pnl: Decimal
    costs: Decimal
    net_pnl: Decimal


@dataclass(frozen=True)
class TradeStats:
    """The trade figures of a whole run, or of one symbol's or one strategy's positions."""

    positions: int
    exits: int
    wins: int
    losses: int
    win_rate: float | None
    gross_pnl: Decimal
    costs: Decimal
    net_pnl: Decimal
    profit_factor: float | None
    expectancy: Decimal | None
    average_win: Decimal | None
    average_loss: Decimal | None


@dataclass(frozen=True)
class Drawdown:
    """The largest fall from a running peak; dates are None where the peak is the starting capital, or when
    equity has not yet closed back at the peak."""

    amount: Decimal
    pct: float                  # a fraction of the peak: 0.05 is 5%
    days: int                   # closes below the peak until it is regained (or the series ends)
    peak_date: date | None
    trough_date: date | None
    recovery_date: date | None
    longest_days: int           # the longest run of closes below a peak, in any drawdown


@dataclass(frozen=True)
class Summary:
    """summary.json's content: one typed object per run, the input of the report and of `backtest compare`."""

    first_day: date | None
    last_day: date | None
    trading_days: int
    starting_capital: Decimal
    ending_capital: Decimal
    net_pnl: Decimal
    risk_free_rate: float
    total_return: float         # fractions throughout: 0.12 is 12%
    cagr: float | None
    volatility: float | None    # annualised standard deviation of daily returns
    sharpe: float | None
    sortino: float | None
    calmar: float | None
    drawdown: Drawdown
    exposure: float | None
    trades_per_day: float | None
    trades: TradeStats
    charges: Mapping[str, Decimal]
    by_symbol: Mapping[str, TradeStats]
    by_strategy: Mapping[str, TradeStats]
    monthly_returns: Mapping[str, float] = field(default_factory=dict)  # "YYYY-MM" -> that month's return

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types: money as numbers (exact to the paisa), dates as YYYY-MM-DD."""
        out: dict[str, Any] = _plain(asdict(self))
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Summary:
        """The inverse of to_dict, for a stored summary.json."""
        return cls(
            first_day=_day(d["first_day"]), last_day=_day(d["last_day"]), trading_days=int(d["trading_days"]),
            starting_capital=_money(d["starting_capital"]), ending_capital=_money(d["ending_capital"]),
            net_pnl=_money(d["net_pnl"]), risk_free_rate=float(d["risk_free_rate"]),
            total_return=float(d["total_return"]), cagr=d["cagr"], volatility=d["volatility"], sharpe=d["sharpe"],
            sortino=d["sortino"], calmar=d["calmar"],
            drawdown=Drawdown(amount=_money(d["drawdown"]["amount"]), pct=float(d["drawdown"]["pct"]),
                              days=int(d["drawdown"]["days"]), peak_date=_day(d["drawdown"]["peak_date"]),
                              trough_date=_day(d["drawdown"]["trough_date"]),
                              recovery_date=_day(d["drawdown"]["recovery_date"]),
                              longest_days=int(d["drawdown"]["longest_days"])),
            exposure=d["exposure"], trades_per_day=d["trades_per_day"], trades=_stats_from(d["trades"]),
            charges={k: _money(v) for k, v in d["charges"].items()},
            by_symbol={k: _stats_from(v) for k, v in d["by_symbol"].items()},
            by_strategy={k: _stats_from(v) for k, v in d["by_strategy"].items()},
            monthly_returns={k: float(v) for k, v in d.get("monthly_returns", {}).items()},
        )


# ----------------------------------------------------------------------------- trades

def positions(rows: Iterable[TradeRow]) -> list[Position]:
    """trade_log rows grouped by trade_id, in the order of their last exit."""
    groups: dict[int, list[TradeRow]] = {}
    for r in rows:
        groups.setdefault(r.trade_id, []).append(r)
    out = [Position(trade_id=tid, symbol=rs[0].symbol, strategy=rs[0].strategy,
                    entry_time=min(int(r.entry_time) for r in rs), exit_time=max(int(r.exit_time) for r in rs),
                    exits=len(rs), gross_pnl=sum((Decimal(r.gross_pnl) for r in rs), ZERO),
                    costs=sum((Decimal(r.costs) for r in rs), ZERO),
                    net_pnl=sum((Decimal(r.net_pnl) for r in rs), ZERO))
           for tid, rs in groups.items()]
    return sorted(out, key=lambda p: (p.exit_time, p.trade_id))


def trade_stats(pos: Sequence[Position]) -> TradeStats:
    """Win rate, profit factor (the winning positions' net P&L over the losing ones'), expectancy (mean net P&L
    per position) and the average win and loss (a loss is negative)."""
    wins = [p.net_pnl for p in pos if p.net_pnl > 0]
    losses = [p.net_pnl for p in pos if p.net_pnl < 0]
    won, lost = sum(wins, ZERO), sum(losses, ZERO)
    net = sum((p.net_pnl for p in pos), ZERO)
    return TradeStats(
        positions=len(pos), exits=sum(p.exits for p in pos), wins=len(wins), losses=len(losses),
        win_rate=len(wins) / len(pos) if pos else None,
        gross_pnl=sum((p.gross_pnl for p in pos), ZERO), costs=sum((p.costs for p in pos), ZERO), net_pnl=net,
        profit_factor=float(won / -lost) if lost else None,
        expectancy=_paisa(net / len(pos)) if pos else None,
        average_win=_paisa(won / len(wins)) if wins else None,
        average_loss=_paisa(lost / len(losses)) if losses else None,
    )


def grouped_stats(pos: Sequence[Position], key: Literal["symbol", "strategy"]) -> dict[str, TradeStats]:
    """trade_stats per value of `key` ("symbol" or "strategy"), sorted by that value."""
    groups: dict[str, list[Position]] = {}
    for p in pos:
        groups.setdefault(str(getattr(p, key)), []).append(p)
    return {k: trade_stats(v) for k, v in sorted(groups.items())}


def charges_by_component(rows: Iterable[TradeRow]) -> dict[str, Decimal]:
    """Each charge column (core.costs.CHARGE_NAMES, in that order) summed over the rows; their total is the rows'
    costs."""
    total = dict.fromkeys(CHARGE_NAMES, ZERO)
    for r in rows:
        for n in CHARGE_NAMES:
            total[n] += getattr(r, n) or ZERO
    return total


def exposure(pos: Sequence[Position], trading_days: int, session_seconds: int) -> float | None:
    """The share of the days' session time with at least one position open (overlaps counted once)."""
    if trading_days <= 0 or session_seconds <= 0:
        return None
    busy, end = 0, None
    for start, stop in sorted((p.entry_time, p.exit_time) for p in pos):
        if end is None or start >= end:
            busy += stop - start
            end = stop
        elif stop > end:
            busy += stop - end
            end = stop
    return busy / (trading_days * session_seconds)


def session_length_s(open_: time, close: time) -> int:
    """The session's length, for exposure: SessionConfig's open and close."""
    return (close.hour * 3600 + close.minute * 60 + close.second) - (open_.hour * 3600 + open_.minute * 60
                                                                      + open_.second)


# ----------------------------------------------------------------------------- equity

def daily_equity(start_capital: Decimal, rows: Iterable[TradeRow], days: Iterable[date]) -> list[tuple[date, Decimal]]:
    """The close of each trading day (IST) from realised P&L: an intraday book is flat every evening, so a
    day's closing equity is the start plus every net P&L booked by then. A day without trades repeats the
    previous close; a trade on a day not in `days` is an error (it would vanish from the returns)."""
    by_day: dict[date, Decimal] = {}
    for r in rows:
        d = ist_date(int(r.exit_time))
        by_day[d] = by_day.get(d, ZERO) + Decimal(r.net_pnl)
    ordered = sorted(set(days))
    missing = sorted(set(by_day) - set(ordered))
    if missing:
        raise ValueError(f"trades exit on {', '.join(d.isoformat() for d in missing)}, not among the trading days")
    eq, out = start_capital, []
    for d in ordered:
        eq += by_day.get(d, ZERO)
        out.append((d, eq))
    return out


def daily_returns(start_capital: Decimal, equity: Sequence[tuple[date, Decimal]]) -> list[float]:
    """Close-to-close returns, the first against the starting capital; none after equity reaches zero."""
    out, prev = [], start_capital
    for _, eq in equity:
        if prev <= 0:
            break
        out.append(float(eq / prev - 1))
        prev = eq
    return out


def drawdown(start_capital: Decimal, equity: Sequence[tuple[date, Decimal]]) -> Drawdown:
    """The deepest fall in percent of its running peak (the first of equals), how long equity stayed below that
    peak, and the longest stretch below any peak."""
    peak, peak_day = start_capital, None
    episode = under = longest = 0    # episode: which peak equity is measured against; under: closes below it
    best: tuple[float, Decimal, date | None, date, int] | None = None   # pct, amount, peak day, trough, episode
    best_days, best_recovery = 0, None
    for d, eq in equity:
        if eq >= peak:
            if best is not None and best[4] == episode:
                best_recovery = d
            peak, peak_day, under, episode = eq, d, 0, episode + 1
            continue
        under += 1
        longest = max(longest, under)
        pct = float((peak - eq) / peak)
        if best is None or pct > best[0]:
            best, best_recovery = (pct, peak - eq, peak_day, d, episode), None
        if best[4] == episode:
            best_days = under
    if best is None:
        return Drawdown(ZERO, 0.0, 0, None, None, None, 0)
    return Drawdown(best[1], best[0], best_days, best[2], best[3], best_recovery, longest)


def monthly_returns(start_capital: Decimal, equity: Sequence[tuple[date, Decimal]]) -> dict[str, float]:
    """Each calendar month's return ("YYYY-MM"): its last close over the previous month's (or the start)."""
    closes: dict[str, Decimal] = {}
    for d, eq in equity:
        closes[f"{d.year:04d}-{d.month:02d}"] = eq
    out, prev = {}, start_capital
    for month, eq in closes.items():
        if prev <= 0:
            break                   # as daily_returns: no return on nothing
        out[month] = float(eq / prev - 1)
        prev = eq
    return out


def ratios(returns: Sequence[float], risk_free_rate: float) -> tuple[float | None, float | None, float | None]:
    """(annualised volatility, Sharpe, Sortino) of daily returns; None where undefined (see the module doc)."""
    if len(returns) < 2:
        return None, None, None
    rf = risk_free_rate / TRADING_DAYS_PER_YEAR
    excess = [r - rf for r in returns]
    ann = math.sqrt(TRADING_DAYS_PER_YEAR)
    vol = statistics.stdev(returns) * ann
    sd = statistics.stdev(excess)
    mean = statistics.fmean(excess)
    sharpe = mean / sd * ann if sd > 0 else None
    downside = math.sqrt(sum(min(0.0, x) ** 2 for x in excess) / len(excess))
    sortino = mean / downside * ann if downside > 0 else None
    return vol, sharpe, sortino


def cagr(start_capital: Decimal, end_capital: Decimal, trading_days: int) -> float | None:
    """The yearly growth rate that compounds to the end over trading_days / 252 years; -1 when all is lost;
    None when a few days' growth raised to a year overflows a float."""
    if trading_days <= 0:
        return None
    if end_capital <= 0:
        return -1.0
    try:
        return math.pow(float(end_capital / start_capital), TRADING_DAYS_PER_YEAR / trading_days) - 1.0
    except OverflowError:
        return None


# ----------------------------------------------------------------------------- the summary

def summarize(rows: Sequence[TradeRow], equity: Sequence[tuple[date, Decimal]], start_capital: Decimal, *,
              risk_free_rate: float, session_seconds: int) -> Summary:
    """Every figure of a run. `equity`: (day, closing equity) for each trading day of the run, ascending;
    `session_seconds`: one day's session length (session_length_s(cfg.session.open, cfg.session.close))."""
    if start_capital <= 0:
        raise ValueError(f"starting capital must be positive, got {start_capital}")
    days = [d for d, _ in equity]
    if any(b <= a for a, b in zip(days, days[1:], strict=False)):
        raise ValueError("the equity series must have one close per day in ascending date order")
    pos = positions(rows)
    end = equity[-1][1] if equity else start_capital
    stats = trade_stats(pos)
    booked = start_capital + stats.net_pnl
    if equity and abs(booked - end) > PAISA:
        log.warning("equity ends at %s but the starting capital plus the trades' net P&L is %s", end, booked)
    n = len(equity)
    growth = cagr(start_capital, end, n)
    dd = drawdown(start_capital, equity)
    vol, sharpe, sortino = ratios(daily_returns(start_capital, equity), risk_free_rate)
    return Summary(
        first_day=days[0] if days else None, last_day=days[-1] if days else None, trading_days=n,
        starting_capital=start_capital, ending_capital=end, net_pnl=end - start_capital,
        risk_free_rate=risk_free_rate, total_return=float(end / start_capital - 1), cagr=growth,
        volatility=vol, sharpe=sharpe, sortino=sortino,
        calmar=growth / dd.pct if growth is not None and dd.pct > 0 else None,
        drawdown=dd, exposure=exposure(pos, n, session_seconds), trades_per_day=len(pos) / n if n else None,
        trades=stats, charges=charges_by_component(rows), by_symbol=grouped_stats(pos, "symbol"),
        by_strategy=grouped_stats(pos, "strategy"), monthly_returns=monthly_returns(start_capital, equity),
    )


# ----------------------------------------------------------------------------- helpers

def _paisa(x: Decimal) -> Decimal:
    return x.quantize(PAISA, rounding=ROUND_HALF_UP)


def _plain(o: Any) -> Any:
    if isinstance(o, Decimal):
        return float(o)
    if isinstance(o, date):
        return o.isoformat()
    if isinstance(o, Mapping):
        return {str(k): _plain(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_plain(v) for v in o]
    return o


def _money(v: Any) -> Decimal:
    return Decimal(str(v))


def _opt_money(v: Any) -> Decimal | None:
    return None if v is None else _money(v)


def _day(v: Any) -> date | None:
    return None if v is None else date.fromisoformat(str(v))


def _stats_from(d: Mapping[str, Any]) -> TradeStats:
    return TradeStats(
        positions=int(d["positions"]), exits=int(d["exits"]), wins=int(d["wins"]), losses=int(d["losses"]),
        win_rate=d["win_rate"], gross_pnl=_money(d["gross_pnl"]), costs=_money(d["costs"]),
        net_pnl=_money(d["net_pnl"]), profit_factor=d["profit_factor"], expectancy=_opt_money(d["expectancy"]),
        average_win=_opt_money(d["average_win"]), average_loss=_opt_money(d["average_loss"]))


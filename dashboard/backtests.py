"""A finished backtest run as the dashboard shows it, read from what the run wrote (never rerun): its figures
(summary.json), its trades (trades.csv, paged and sorted here so a year of trades never goes to the browser
whole) and its equity and drawdown after each exit (trades.csv's net P&L from summary.json's starting capital).

Only folders this module listed itself are read: a run id from a request is looked up among them, never joined
to a path. Parsed trades are kept per file (path, size, mtime), so paging through a run reads its CSV once.
"""
from __future__ import annotations

import csv
import json
import logging
import threading
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SORT_KEYS = ("exit_time", "net_pnl")
MAX_PAGE_SIZE = 200
_CACHED_FILES = 4


class RunNotFound(LookupError):
    """No listed run by that id."""


class BadRunFile(ValueError):
    """A run's file that cannot be read as the backtest writes it (named in the message)."""


def list_runs(folder: Path) -> list[str]:
    """Run ids (folder names) that hold a summary.json, newest first by the file's time."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.glob("*/summary.json") if p.is_file()]
    return [p.parent.name for p in sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)]


def run_dir(folder: Path, run_id: str) -> Path:
    """The listed run's folder; RunNotFound for an id that is not one of them (no path built from input)."""
    for listed in list_runs(folder):
        if listed == run_id:
            return folder / listed
    raise RunNotFound(run_id)


@dataclass(frozen=True)
class Trade:
    """One row of trades.csv, with the two sort keys parsed."""

    exit_time: int
    net_pnl: Decimal
    row: dict[str, str]


_cache: dict[tuple[str, int, int], list[Trade]] = {}
_cache_lock = threading.Lock()


def _trades(path: Path) -> list[Trade]:
    """trades.csv's rows in file order (the ledger's order of closing), parsed once per file version."""
    if not path.is_file():
        return []  # a run that wrote its summary but no trade file (none written by older runs)
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    out: list[Trade] = []
    with path.open(newline="", encoding="utf-8") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            try:
                out.append(Trade(int(row["exit_time"]), Decimal(row["net_pnl"]), row))
            except (KeyError, TypeError, ValueError, InvalidOperation) as e:
                raise BadRunFile(f"{path.name} line {line}: exit_time {row.get('exit_time')!r}, net_pnl "
                                 f"{row.get('net_pnl')!r}: expected an epoch second and a number ({e})") from e
    with _cache_lock:
        while len(_cache) >= _CACHED_FILES:
            _cache.pop(next(iter(_cache)))
        _cache[key] = out
    return out


def summary(run: Path) -> dict[str, Any]:
    """summary.json as the run wrote it."""
    try:
        data = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise BadRunFile(f"summary.json: not readable as JSON ({e})") from e
    if not isinstance(data, dict):
        raise BadRunFile("summary.json: expected a JSON object")
    return data


def trades_page(run: Path, sort: str = "exit_time", descending: bool = False, page: int = 1,
                size: int = 50) -> dict[str, Any]:
    """One page of the run's trades sorted by exit time or net P&L (ties keep the file's order)."""
    if sort not in SORT_KEYS:
        raise ValueError(f"sort: {sort!r} is not one of {', '.join(SORT_KEYS)}")
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ValueError(f"size: {size} is not between 1 and {MAX_PAGE_SIZE}")
    if page < 1:
        raise ValueError(f"page: {page} is not 1 or more")
    rows = _trades(run / "trades.csv")
    ordered = sorted(rows, key=(lambda t: t.net_pnl) if sort == "net_pnl" else (lambda t: t.exit_time),
                     reverse=descending)
    start = (page - 1) * size
    return {"total": len(rows), "page": page, "size": size, "pages": max(1, -(-len(rows) // size)),
            "sort": sort, "order": "desc" if descending else "asc",
            "trades": [t.row for t in ordered[start:start + size]]}


def equity_curve(run: Path) -> dict[str, Any]:
    """[epoch, equity, drawdown %] after each exit, from the starting capital (the first point, at the first
    exit's time): the same shape as the live page's intraday curve."""
    s = summary(run)
    try:
        start = Decimal(str(s["starting_capital"]))
    except (KeyError, InvalidOperation) as e:
        raise BadRunFile(f"summary.json: starting_capital {s.get('starting_capital')!r} is not a number") from e
    rows = _trades(run / "trades.csv")
    ordered = sorted(rows, key=lambda t: t.exit_time)  # stable: the ledger's order within a second
    points: list[list[float]] = []
    equity = peak = start
    if ordered:
        points.append([ordered[0].exit_time, float(start), 0.0])
    for t in ordered:
        equity += t.net_pnl
        peak = max(peak, equity)
        dd = float((peak - equity) / peak * 100) if peak > 0 else 0.0
        points.append([t.exit_time, float(equity), round(dd, 4)])
    return {"starting_capital": float(start), "points": points}

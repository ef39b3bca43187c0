"""What the daemon is doing, for `python driver.py status [--json]`, plus the heartbeat line.

While the daemon runs, positions, P&L, trading state and process health come from its live view (the
Manager's shared state, pipeline.live_view); the rest, and everything after an exit, from the database.

It says first whether the daemon runs (ops.liveness: its recorded pid, still that process, and the heartbeat's
age): a trading state read from the database is only what the daemon last wrote, so after an exit it is shown
as the state at the end, never as the present one. Then the day's closed trades and where its report is.

Status only reads: its own engine opens SQLite with query_only and PostgreSQL with read-only transactions,
never creates a database file, and does not take the write lock the daemon uses, so it is safe to run
while the daemon trades. "Today" is the latest trading day the database has rows for, unless a day is given.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, exc, func, inspect, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from core.clock import IST, to_ist
from core.config import Config, Secrets
from core.costs import CHARGE_NAMES
from db import (
    DEFAULT_SQLITE_PATH,
    ActiveTrade,
    CapitalLog,
    KeyValue,
    MarketData,
    Order,
    TradeLog,
    database_url,
    disabled_strategies_key,
    safe_url,
)

log = logging.getLogger(__name__)

ZERO = Decimal(0)
REQUIRED_TABLES = ("orders", "active_trades", "trade_log", "capital_log", "daemon_state")
FAILURE_STATUSES = ("FAILED", "REJECTED")


class StatusError(Exception):
    """The status cannot be read; the message is one line for the operator."""


# ----------------------------------------------------------------------------- reading

def read_engine(url: str | None) -> Engine:
    """A read-only engine for `url` (None: the default SQLite file); never creates the database."""
    if not url:
        if not DEFAULT_SQLITE_PATH.exists():
            raise StatusError(f"no database at {DEFAULT_SQLITE_PATH}: the daemon has not run yet "
                              "(or set DATABASE_URL to the database it uses)")
        url = f"sqlite:///{DEFAULT_SQLITE_PATH}"
    url = database_url(url)
    try:
        parsed = make_url(url)
    except exc.ArgumentError:
        raise StatusError(f"DATABASE_URL {safe_url(url)} is not a database URL") from None
    if parsed.drivername.startswith("sqlite"):
        path = parsed.database or ""
        if path in ("", ":memory:"):
            raise StatusError("DATABASE_URL names an in-memory SQLite database, which no daemon shares")
        if not Path(path).exists():
            raise StatusError(f"no database at {path}: the daemon has not run yet (or DATABASE_URL points elsewhere)")
        engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": 10})

        @event.listens_for(engine, "connect")
        def _read_only(dbapi_conn: Any, _rec: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA query_only=ON")
            cur.close()
        return engine
    connect_args: dict[str, Any] = {}
    if parsed.drivername.startswith("postgresql"):
        connect_args = {"connect_timeout": 5, "options": "-c default_transaction_read_only=on"}
    try:
        return create_engine(url, poolclass=NullPool, connect_args=connect_args)
    except Exception as e:  # noqa: BLE001 - a missing driver or bad URL becomes one line
        raise StatusError(f"cannot use database {safe_url(url)}: {_first_line(e)}") from None


def _first_line(e: BaseException) -> str:
    orig = getattr(e, "orig", None)
    text = str(orig or e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _d(x: Any) -> Decimal:
    return x if isinstance(x, Decimal) else Decimal(str(x))


def latest_day(s: Session) -> date | None:
    """The latest trading day with capital or order rows (then trades or positions)."""
    days = [d for d in (s.execute(select(func.max(CapitalLog.trading_date))).scalar(),
                        s.execute(select(func.max(Order.trading_date))).scalar()) if d is not None]
    if not days:
        days = [d for d in (s.execute(select(func.max(TradeLog.trade_date))).scalar(),
                            s.execute(select(func.max(ActiveTrade.trading_date))).scalar()) if d is not None]
    return max(days) if days else None


def last_price(s: Session, names: Sequence[str], has_market_data: bool) -> tuple[float, int | None] | None:
    """Latest persisted ltp (and its feed time) under any of `names` (OpenAlgo and Fyers spellings)."""
    if not has_market_data:
        return None
    row = s.execute(select(MarketData.ltp, MarketData.exch_feed_time)
                    .where(MarketData.symbol.in_(list(names)), MarketData.ltp.is_not(None))
                    .order_by(MarketData.exch_feed_time.desc(), MarketData.id.desc()).limit(1)).first()
    return None if row is None else (float(row[0]), row[1])


def collect_status(engine: Engine, cfg: Config, day: date | None = None) -> dict[str, Any]:
    """Every figure `status` shows, as plain data (money as Decimal)."""
    try:
        tables = set(inspect(engine).get_table_names())
    except exc.SQLAlchemyError as e:
        raise StatusError(f"cannot read {safe_url(str(engine.url))}: {_first_line(e)}") from None
    missing = [t for t in REQUIRED_TABLES if t not in tables]
    if missing:
        raise StatusError(f"{safe_url(str(engine.url))} has no daemon tables yet (missing {', '.join(missing)}): "
                          "the daemon has not run against this database")
    try:
        cols = {c["name"] for c in inspect(engine).get_columns("trade_log")}
    except exc.SQLAlchemyError as e:
        raise StatusError(f"cannot read {safe_url(str(engine.url))}: {_first_line(e)}") from None
    if not set(CHARGE_NAMES) <= cols:
        raise StatusError(f"{safe_url(str(engine.url))} was written by an earlier version (trade_log has no charge "
                          "columns): `python driver.py --check` upgrades it in place")
    try:
        with Session(engine) as s:
            return _collect(s, cfg, day, "market_data" in tables, safe_url(str(engine.url)))
    except exc.SQLAlchemyError as e:
        raise StatusError(f"cannot read {safe_url(str(engine.url))}: {_first_line(e)}") from None


def _collect(s: Session, cfg: Config, day: date | None, has_md: bool, where: str) -> dict[str, Any]:
    from ops.liveness import DAEMON_KEY, assess

    day = day or latest_day(s)
    daemon_row = s.get(KeyValue, DAEMON_KEY)
    try:
        daemon = assess(json.loads(daemon_row.value) if daemon_row is not None else None)
    except (ValueError, AttributeError, TypeError):
        daemon = {"running": False, "summary": "unknown (unreadable daemon row)"}
    report = cfg.resolve_path(cfg.monitoring.reports_dir) / day.isoformat() if day else None
    fyers = {sp.symbol: sp.fyers for sp in cfg.symbols}
    r = cfg.risk

    state_row = s.get(KeyValue, "trading_state")
    state, reason, since = "unknown", None, None
    state_doc: dict[str, Any] = {}
    if state_row is not None:
        since = _iso(state_row.updated_at)
        try:
            state_doc = dict(json.loads(state_row.value))
            state, reason = str(state_doc.get("state") or "unknown"), state_doc.get("reason")
            if state_doc.get("since"):  # the row is rewritten for cooldowns too: the change's own time
                since = _iso(datetime.fromisoformat(state_doc["since"]))
        except (ValueError, AttributeError, TypeError):
            reason = "unreadable trading_state row"

    cap_rows = list(s.scalars(select(CapitalLog).where(CapitalLog.trading_date == day).order_by(CapitalLog.id))) \
        if day else []
    if cap_rows:
        start, capital, cap_src = _d(cap_rows[-1].starting_capital), _d(cap_rows[-1].capital), "capital_log"
    else:
        start = capital = _d(r.capital)
        cap_src = "config"

    trades = list(s.scalars(select(TradeLog).where(TradeLog.trade_date == day)
                            .order_by(TradeLog.exit_time, TradeLog.id))) if day else []
    realized = sum((_d(t.net_pnl) for t in trades), ZERO)

    positions: list[dict[str, Any]] = []
    unrealized, unpriced = ZERO, 0
    for p in s.scalars(select(ActiveTrade).order_by(ActiveTrade.entry_time, ActiveTrade.trade_id)):
        names = [p.symbol] + ([fyers[p.symbol]] if p.symbol in fyers else [])
        lp = last_price(s, names, has_md)
        entry = _d(p.entry_price)
        upnl = None
        if lp is not None:
            px = _d(lp[0])
            upnl = ((px - entry) if p.side == "long" else (entry - px)) * p.remaining_quantity
            unrealized += upnl
        else:
            unpriced += 1
        positions.append({
            "trade_id": p.trade_id, "symbol": p.symbol, "strategy": p.strategy, "side": p.side,
            "trading_date": p.trading_date.isoformat(), "quantity": p.remaining_quantity,
            "entry_quantity": p.position_size, "entry_price": entry, "allocated": _d(p.allocated),
            "stop_loss": None if p.stop_loss is None else _d(p.stop_loss),
            "take_profit_price": None if p.take_profit_price is None else _d(p.take_profit_price),
            "entry_time": to_ist(p.entry_time).isoformat(),
            "last_price": None if lp is None else lp[0],
            "last_price_time": None if lp is None or lp[1] is None else to_ist(lp[1]).isoformat(),
            "unrealized_pnl": upnl,
        })

    by_status: dict[str, int] = {}
    failures: dict[str, dict[str, int]] = {}
    if day:
        for st, n in s.execute(select(Order.status, func.count()).where(Order.trading_date == day)
                               .group_by(Order.status).order_by(Order.status)):
            by_status[st] = n
        for st, tag, n in s.execute(select(Order.status, Order.failure_tag, func.count())
                                    .where(Order.trading_date == day, Order.status.in_(FAILURE_STATUSES))
                                    .group_by(Order.status, Order.failure_tag)):
            failures.setdefault(st, {})[tag or "untagged"] = n

    disabled: list[dict[str, Any]] = []
    row = s.get(KeyValue, disabled_strategies_key(day)) if day else None
    if row is not None:
        try:
            for sym, d in sorted(json.loads(row.value).items()):
                t = int(d.get("time") or 0)
                disabled.append({"symbol": sym, "strategy": d.get("strategy"), "reason": d.get("reason"),
                                 "since": to_ist(t).isoformat() if t else None})
        except (ValueError, AttributeError, TypeError):
            disabled.append({"symbol": "?", "strategy": None, "reason": "unreadable disabled_strategies row",
                             "since": None})

    equity = capital + unrealized
    ret = float((equity - start) / start * 100) if start else 0.0
    high_water = max([start] + [_d(c.capital) for c in cap_rows])
    risk_doc = s.get(KeyValue, "risk")  # a database written before the trading state was one row
    if day is not None and (risk_doc is not None or "day" in state_doc):
        try:
            saved = state_doc if "day" in state_doc or risk_doc is None else json.loads(risk_doc.value)
            if saved.get("day") == day.isoformat() and saved.get("high_water") is not None:
                high_water = max(high_water, _d(saved["high_water"]))
        except (ValueError, AttributeError, ArithmeticError):
            pass
    high_water = max(high_water, equity)
    drawdown = float((high_water - equity) / high_water * 100) if high_water > 0 else 0.0
    loss = max(start - equity, ZERO)

    def cap(limit: Any, current: Any, headroom: Any, breached: bool, **extra: Any) -> dict[str, Any]:
        """headroom: distance left before the cap trips, in the cap's unit (None when the cap is off)."""
        return {"limit": limit, "current": current, "headroom": headroom, "breached": breached, **extra}

    gl, gp, dl, md = r.global_max_loss_pct, r.global_max_profit_pct, r.daily_loss_limit, r.max_drawdown_pct
    caps = {
        "global_max_loss_pct": cap(gl, ret, None if gl is None else ret - gl, gl is not None and ret <= gl),
        "global_max_profit_pct": cap(gp, ret, None if gp is None else gp - ret, gp is not None and ret >= gp),
        "daily_loss_limit": cap(dl, loss, None if dl is None else _d(dl) - loss, dl is not None and loss >= _d(dl)),
        "max_drawdown_pct": cap(md, drawdown, None if md is None else md - drawdown,
                                md is not None and drawdown >= md, high_water=high_water),
        "max_active_trades": cap(r.max_active_trades, len(positions), r.max_active_trades - len(positions),
                                 len(positions) >= r.max_active_trades),
    }
    return {
        "day": day.isoformat() if day else None,
        "database": where,
        "daemon": daemon,
        "report_path": str(report) if report is not None and report.is_dir() else None,
        "trades": [{"trade_id": t.trade_id, "symbol": t.symbol, "side": t.side, "quantity": t.quantity,
                    "entry_price": _d(t.entry_price), "exit_price": _d(t.exit_price), "net_pnl": _d(t.net_pnl),
                    "exit_reason": t.exit_reason, "entry_time": to_ist(t.entry_time).isoformat(),
                    "exit_time": to_ist(t.exit_time).isoformat()} for t in trades],
        "trading_state": state,
        "trading_state_reason": reason,
        "trading_state_since": since,
        "capital": capital,
        "starting_capital": start,
        "capital_source": cap_src,
        "realized_pnl": realized,
        "gross_pnl": sum((_d(t.gross_pnl) for t in trades), ZERO),
        "costs": sum((_d(t.costs) for t in trades), ZERO),
        "charges": {n: sum((_d(getattr(t, n)) for t in trades), ZERO) for n in CHARGE_NAMES},
        "closed_trades": len(trades),
        "wins": sum(1 for t in trades if _d(t.net_pnl) > 0),
        "losses": sum(1 for t in trades if _d(t.net_pnl) < 0),
        "unrealized_pnl": None if positions and unpriced == len(positions) else unrealized,
        "unpriced_positions": unpriced,
        "equity": equity,
        "return_pct": ret,
        "open_positions": positions,
        "orders_total": sum(by_status.values()),
        "orders_by_status": by_status,
        "order_failures": failures,
        "caps": caps,
        "disabled_strategies": disabled,
        "ticks": _tick_counts(s, day),
    }


def _tick_counts(s: Session, day: date | None) -> dict[str, Any] | None:
    """The day's tick counts as the daemon last saved them (each heartbeat and at the end), or None."""
    row = s.get(KeyValue, "tick_counts")
    if row is None or day is None:
        return None
    try:
        doc = json.loads(row.value)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and doc.get("day") == day.isoformat() else None


def _iso(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    if ts.tzinfo is None:  # SQLite hands back the stored UTC time without its zone
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(IST).isoformat(timespec="seconds")


def to_json(data: Any) -> str:
    """JSON with Decimals as numbers and dates as ISO strings."""
    def default(o: Any) -> Any:
        if isinstance(o, Decimal):
            return float(o)
        if isinstance(o, (date, datetime)):
            return o.isoformat()
        raise TypeError(f"cannot serialize {type(o).__name__}")
    return json.dumps(data, default=default)


# ----------------------------------------------------------------------------- printing

def _money(x: Any, signed: bool = False) -> str:
    if x is None:
        return "unknown"
    return f"{float(x):+,.2f}" if signed else f"{float(x):,.2f}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int], indent: str = "  ") -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    out = []
    for row in [headers, *rows]:
        cells = [str(c).rjust(w) if i in right else str(c).ljust(w)
                 for i, (c, w) in enumerate(zip(row, widths, strict=False))]
        out.append((indent + "  ".join(cells)).rstrip())
    return out


def render_status(st: Mapping[str, Any]) -> str:
    """The human status: a few aligned lines."""
    lines = []
    state = st["trading_state"] + (f" ({st['trading_state_reason']})" if st.get("trading_state_reason") else "")
    since = st.get("trading_state_since")
    since = f" since {since[:19].replace('T', ' ')} IST" if since else ""
    daemon = st.get("daemon") or {"running": False, "summary": "unknown"}
    day = st['day'] or '(no trading day recorded yet)'
    if daemon.get("running"):
        lines.append(f"Day {day}   trading {state}{since}")
    else:  # what the database last says is history, not the present
        lines.append(f"Day {day}   not trading: the daemon is not running (its last state: {state}{since})")
    lines.append(f"Daemon    {daemon['summary']}")
    lines += _source_lines(st)
    lines.append(f"Report    {st.get('report_path') or 'none yet (written when a run ends)'}")
    lines.append(f"Database  {st['database']}")
    src = "" if st["capital_source"] in ("capital_log", "live view") \
        else "  (from config: no capital rows for the day)"
    lines.append(f"Capital   {_money(st['capital'])}  (day start {_money(st['starting_capital'])}, "
                 f"equity {_money(st['equity'])}, {st['return_pct']:+.2f}%){src}")
    unpriced = f", {st['unpriced_positions']} position(s) without a price" if st["unpriced_positions"] else ""
    lines.append(f"P&L       realized {_money(st['realized_pnl'], True)} over {st['closed_trades']} exit(s) "
                 f"({st['wins']} won, {st['losses']} lost), unrealized {_money(st['unrealized_pnl'], True)}{unpriced}")
    lines.append(f"Costs     {_money(st['costs'])} (gross {_money(st['gross_pnl'], True)} less costs is the realized "
                 "P&L): " + ", ".join(f"{n} {_money(v)}" for n, v in st["charges"].items()))
    pos = st["open_positions"]
    lines.append("")
    lines.append(f"Open positions: {len(pos)}")
    if pos:
        rows = [[p["symbol"], p["side"], str(p["quantity"]), _money(p["entry_price"]), _money(p["allocated"]),
                 "unknown" if p["last_price"] is None else _money(p["last_price"]),
                 _money(p["unrealized_pnl"], True), p["entry_time"][11:19]] for p in pos]
        lines += _table(["SYMBOL", "SIDE", "QTY", "ENTRY", "ALLOCATED", "LAST", "UNREALIZED", "SINCE"], rows,
                        right={2, 3, 4, 5, 6})
    done = st.get("trades") or []
    lines.append("")
    lines.append(f"Closed trades: {len(done)}")
    if done:
        rows = [[t["exit_time"][11:19], t["symbol"], t["side"], str(t["quantity"]), _money(t["entry_price"]),
                 _money(t["exit_price"]), _money(t["net_pnl"], True), t["exit_reason"]] for t in done]
        lines += _table(["EXIT AT", "SYMBOL", "SIDE", "QTY", "ENTRY", "EXIT", "NET P&L", "REASON"], rows,
                        right={3, 4, 5, 6})
    off = st.get("disabled_strategies") or []
    if off:
        lines.append("")
        lines.append(f"Strategies disabled for the day: {len(off)} (positions still managed and squared off)")
        lines += _table(["SYMBOL", "STRATEGY", "SINCE", "REASON"],
                        [[d["symbol"], d["strategy"] or "?", (d["since"] or "?")[11:19], d["reason"] or ""]
                         for d in off], right=set())
    lines.append("")
    counts = ", ".join(f"{k} {v}" for k, v in st["orders_by_status"].items()) or "none"
    lines.append(f"Orders on {st['day'] or 'the day'}: {st['orders_total']} ({counts})")
    for status, tags in st["order_failures"].items():
        lines.append(f"  {status}: " + ", ".join(f"{tag} x{n}" for tag, n in sorted(tags.items())))
    lines.append("")
    c = st["caps"]

    def pct(v: Any) -> str:
        return "off" if v is None else f"{float(v):+.2f}%"

    def pts(v: Any) -> str:
        return "-" if v is None else f"{float(v):.2f} pts"

    def flag(k: str) -> str:
        return "BREACHED" if c[k]["breached"] else ""

    rows = [
        ["global loss", pct(c["global_max_loss_pct"]["limit"]), pct(c["global_max_loss_pct"]["current"]),
         pts(c["global_max_loss_pct"]["headroom"]), flag("global_max_loss_pct")],
        ["global profit", pct(c["global_max_profit_pct"]["limit"]), pct(c["global_max_profit_pct"]["current"]),
         pts(c["global_max_profit_pct"]["headroom"]), flag("global_max_profit_pct")],
        ["daily loss", "off" if c["daily_loss_limit"]["limit"] is None else _money(c["daily_loss_limit"]["limit"]),
         _money(c["daily_loss_limit"]["current"]),
         "-" if c["daily_loss_limit"]["headroom"] is None else _money(c["daily_loss_limit"]["headroom"]),
         flag("daily_loss_limit")],
        ["drawdown", "off" if c["max_drawdown_pct"]["limit"] is None else f"{c['max_drawdown_pct']['limit']:.2f}%",
         f"{c['max_drawdown_pct']['current']:.2f}%", pts(c["max_drawdown_pct"]["headroom"]),
         flag("max_drawdown_pct")],
        ["active trades", str(c["max_active_trades"]["limit"]), str(c["max_active_trades"]["current"]),
         str(c["max_active_trades"]["headroom"]), flag("max_active_trades")],
    ]
    lines += _table(["CAP", "LIMIT", "NOW", "HEADROOM", ""], rows, right={1, 2, 3})
    t = st.get("ticks")
    if t:
        from ops.report import tick_summary
        lines.append("")
        lines.append(f"Ticks     {tick_summary(t)}")
    return "\n".join(lines)


def with_live_view(st: dict[str, Any]) -> dict[str, Any]:
    """While the daemon runs, its positions, P&L, trading state and process health come from its shared state
    (the live view, one round trip to its Manager); the database's copy of those lags by up to a heartbeat, and
    after an exit the database is all there is. `source` says which one the figures are from."""
    from pipeline.live_view import LiveViewError, read_live_view

    daemon = st.get("daemon") or {}
    st["source"], st["live"] = "database", None
    if not daemon.get("running"):
        return st
    if daemon.get("day") and st.get("day") and daemon["day"] != st["day"]:
        st["live_error"] = f"the daemon trades {daemon['day']}, not {st['day']}"
        return st
    if not daemon.get("live"):
        st["live_error"] = "the daemon has not published a live view (yet)"
        return st
    try:
        view = read_live_view(daemon["live"])
    except LiveViewError as e:
        st["live_error"] = str(e)
        return st
    if not view.get("live_at"):
        st["live_error"] = "the daemon has not published a live view (yet)"
        return st
    apply_live_view(st, view)
    return st


def apply_live_view(st: dict[str, Any], view: Mapping[str, Any]) -> None:
    """Replace the database's positions, P&L and trading state in `st` with the live view's."""
    pnl = view["pnl"]
    positions = [dict(p, trading_date=st.get("day"), entry_time=to_ist(p["entry_time"]).isoformat(),
                      last_price=None if p["last_price"] is None else float(p["last_price"]), last_price_time=None)
                 for p in view.get("positions", [])]
    start, equity = _d(pnl["starting_capital"]), _d(pnl["equity"])
    st.update(source="live", open_positions=positions, capital=_d(pnl["capital"]), starting_capital=start,
              capital_source="live view", realized_pnl=_d(pnl["realized"]),
              unrealized_pnl=None if pnl["unrealized"] is None else _d(pnl["unrealized"]),
              unpriced_positions=pnl["unpriced_positions"], equity=equity,
              return_pct=float((equity - start) / start * 100) if start else 0.0,
              trading_state=view.get("trading_state") or st["trading_state"],
              trading_state_reason=view.get("state_reason"), trading_state_since=None)
    st["live"] = {"at": to_ist(view["live_at"]).isoformat(timespec="milliseconds"),
                  "feed_time": to_ist(view["feed_time"]).isoformat() if view.get("feed_time") else None,
                  "signals": view.get("signals"), "health": view.get("health"),
                  "active_trades": view.get("active_trades"), "failed_trades": view.get("failed_trades")}


def _source_lines(st: Mapping[str, Any]) -> list[str]:
    """Where the figures come from, and the processes' health when the live view has it."""
    live = st.get("live")
    if not live:
        why = f" ({st['live_error']})" if st.get("live_error") else ""
        return [f"Source    database{why}"] if "source" in st else []
    feed = f", feed at {live['feed_time'][11:19]}" if live.get("feed_time") else ""
    lines = [f"Source    live: positions, P&L and state from the running daemon's shared state at "
             f"{live['at'][11:23]} IST{feed}; trades and orders from the database"]
    h = live.get("health")
    if h:
        ws = h.get("workers", {}).values()
        up = sum(1 for w in ws if w.get("alive"))
        f = h.get("feed", {})
        feed_state = "alive" if f.get("alive") else "finished" if f.get("finished") else "DOWN"
        lines.append(f"Processes workers {up}/{len(ws)} alive ({sum(w.get('restarts', 0) for w in ws)} restarts), "
                     f"feed {feed_state} ({f.get('restarts', 0)} restarts, {f.get('dispatched', 0):,} ticks)")
    return lines


def print_status(cfg: Config, secrets: Secrets, as_json: bool = False, day: date | None = None) -> int:
    """The `status` command: print the status (or one JSON object); 0, or 1 with a one-line error."""
    engine = None
    try:
        engine = read_engine(secrets.database_url)
        st = with_live_view(collect_status(engine, cfg, day))
    except StatusError as e:
        print(f"status: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - the operator gets one line, never a traceback
        print(f"status: cannot read the database: {_first_line(e)}", file=sys.stderr)
        return 1
    finally:
        if engine is not None:
            engine.dispose()
    return write_stdout(to_json(st) if as_json else render_status(st))


def write_stdout(text: str) -> int:
    """Print for a pipe that may close early (`status | head -3`): the reader leaving is not an error."""
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        # Python flushes stdout again at exit; point it at devnull so that flush cannot fail too
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return 0


# ----------------------------------------------------------------------------- heartbeat

class TickRates:
    """Ticks per second per worker from cumulative counts sampled at each heartbeat.

    A count that went down (a restarted worker starts from zero) counts from zero again.
    """

    def __init__(self, clock: Any = time.monotonic):
        self.clock = clock
        self.last: dict[Any, int] = {}
        self.last_t: float | None = None

    def update(self, counts: Mapping[Any, int] | Sequence[int]) -> list[float]:
        now = self.clock()
        items = dict(counts) if isinstance(counts, Mapping) else dict(enumerate(counts))
        dt = None if self.last_t is None else now - self.last_t
        rates = []
        for k in sorted(items):
            cur, prev = int(items[k]), self.last.get(k, 0)
            delta = cur - prev if cur >= prev else cur
            rates.append(delta / dt if dt and dt > 0 else 0.0)
        self.last, self.last_t = items, now
        return rates


def _short_num(x: float) -> str:
    x = float(x)
    if abs(x) >= 1_000_000:
        return f"{x / 1_000_000:.1f}M"
    if abs(x) >= 10_000:
        return f"{x / 1000:.0f}k"
    if abs(x) >= 1000:
        return f"{x / 1000:.1f}k"
    return f"{x:.0f}"


def heartbeat_line(stats: Mapping[str, Any]) -> str:
    """One compact INFO line. Keys (all optional): ticks_per_s (list per worker), signals, open_positions,
    realized_pnl, unrealized_pnl (None: unknown), trading_state, state_reason, broker (True/False/None or a
    word), feed_time (epoch s), orders_open."""
    parts = ["heartbeat"]
    if stats.get("feed_time"):
        parts.append(f"feed {to_ist(float(stats['feed_time'])):%H:%M:%S}")
    rates = list(stats.get("ticks_per_s") or [])
    if rates:
        parts.append(f"ticks/s {'/'.join(_short_num(r) for r in rates)} (sum {_short_num(sum(rates))})")
    parts.append(f"signals {stats.get('signals', '?')}")
    parts.append(f"open {stats.get('open_positions', '?')}")
    if "orders_open" in stats:
        parts.append(f"orders open {stats['orders_open']}")
    r, u = stats.get("realized_pnl"), stats.get("unrealized_pnl")
    parts.append(f"pnl realized {'?' if r is None else f'{float(r):+,.2f}'} "
                 f"unrealized {'?' if u is None else f'{float(u):+,.2f}'}")
    state = str(stats.get("trading_state") or "?")
    if stats.get("state_reason") and state != "ACTIVE":
        state += f" ({stats['state_reason']})"
    parts.append(f"state {state}")
    b = stats.get("broker")
    parts.append("broker " + ("n/a" if b is None else "ok" if b is True else "DOWN" if b is False else str(b)))
    return " | ".join(parts)

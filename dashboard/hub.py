"""One snapshot of everything the dashboard shows, rebuilt on the hub's own thread and shared by every client.

Live, the hub reads the Manager's live view (one round trip, off the trading thread) every PUSH_EVERY_S and
publishes it with the operator's controls as the small "live" part, and the log tail as the "log" part when a
line was added. The day's orders, signals and trades come from the database, with the intraday equity curve
kept in memory, as the larger "rows" part: read when the live view says something changed (signals counted,
working orders, positions, capital, trading state), at most every ROWS_MIN_S and at least every ROWS_EVERY_S.
Each part is serialised once per change, whole and as a delta from the version before (dashboard.delta), and
every client's event stream sends the same prepared JSON when that part's version changes: the delta to a
client that holds the version before, the part whole otherwise. n clients cost n writes, not n reads, and a
push costs what changed, not the day's hundred rows again. On a finished day (read-only) it builds the parts
once from the database.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.config import Config
from core.logs import redact
from dashboard.data import day_rows, finished_view
from dashboard.delta import doc_delta
from db import DBHandler
from execution.operator import OperatorDesk

log = logging.getLogger(__name__)

PUSH_EVERY_S = 0.5
ROWS_MIN_S = 2.0
ROWS_EVERY_S = 10.0
MAX_POINTS = 2000  # the equity curve keeps at most this many points (every second one is dropped beyond)
LOG_LINES = 100


def file_tail(path: Path, lines: int = LOG_LINES) -> list[str]:
    """The last lines of a log file (a finished day's view)."""
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 200_000))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [redact(line) for line in text.splitlines()[-lines:]]


def _json_default(o: Any) -> Any:
    if isinstance(o, Decimal):
        return float(o)
    return str(o)


def _f(v: Any) -> float | None:
    return None if v is None else float(v)


def caps_and_headroom(cfg: Config, pnl: dict[str, Any]) -> list[dict[str, Any]]:
    """Each global cap with where the day stands and how far is left before it halts trading."""
    r = cfg.risk
    start, equity, hw = _f(pnl.get("starting_capital")), _f(pnl.get("equity")), _f(pnl.get("high_water"))
    out: list[dict[str, Any]] = []
    if not start or equity is None:
        return out
    ret = (equity - start) / start * 100
    if r.global_max_loss_pct is not None:
        out.append({"cap": "global loss cap", "limit": f"{r.global_max_loss_pct}%", "now": f"{ret:.2f}%",
                    "headroom": f"{ret - r.global_max_loss_pct:.2f} pts"})
    if r.global_max_profit_pct is not None:
        out.append({"cap": "global profit cap", "limit": f"{r.global_max_profit_pct}%", "now": f"{ret:.2f}%",
                    "headroom": f"{r.global_max_profit_pct - ret:.2f} pts"})
    if r.daily_loss_limit is not None:
        loss = start - equity
        out.append({"cap": "daily loss limit", "limit": f"{r.daily_loss_limit:,.2f}", "now": f"{loss:,.2f}",
                    "headroom": f"{r.daily_loss_limit - loss:,.2f}"})
    if r.max_drawdown_pct is not None and hw:
        dd = (hw - equity) / hw * 100
        out.append({"cap": "drawdown from the day's high", "limit": f"{r.max_drawdown_pct}%", "now": f"{dd:.2f}%",
                    "headroom": f"{r.max_drawdown_pct - dd:.2f} pts"})
    return out


PARTS = ("rows", "live", "log")


class Hub:
    """Builds the snapshot (see the module's docstring) and hands the newest to the event streams."""

    def __init__(self, cfg: Config, day: date, db: DBHandler, desk: OperatorDesk | None,
                 read_view: Callable[[], dict[str, Any]] | None, logs: Callable[[], list[str]],
                 log_count: Callable[[], int] | None = None):
        self.cfg, self.day, self.db, self.desk = cfg, day, db, desk
        self.read_view, self.logs, self.log_count = read_view, logs, log_count
        self.read_only = read_view is None
        # each part: (version, whole JSON, JSON of the delta from the version before or None)
        self.parts: dict[str, tuple[int, str, str | None]] = {p: (0, "{}", None) for p in PARTS}
        self.docs: dict[str, dict[str, Any]] = {}  # each part's newest document, to take the next delta from
        self.log_seen: int | None = None
        self.rows: dict[str, Any] = {"orders": [], "signals": [], "trades": [], "capital": []}
        self.rows_key: Any = None
        self.rows_at = float("-inf")
        self.curve: list[list[float]] = []  # [feed time, equity, drawdown %]
        self.high = 0.0
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def start(self) -> None:
        self.refresh()
        if not self.read_only:
            self.thread = threading.Thread(target=self._run, name="dashboard-hub", daemon=True)
            self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout=5)

    def _run(self) -> None:
        while not self.stop_event.wait(PUSH_EVERY_S):
            self.refresh()

    def latest(self, part: str) -> tuple[int, str]:
        """(version, whole JSON) of a part: "live", "rows" or "log"."""
        with self.lock:
            version, payload, _ = self.parts[part]
        return version, payload

    def message(self, part: str, seen: int) -> tuple[int, str, str] | None:
        """What a stream that holds version `seen` of a part sends next: (version, event, JSON), the event
        being `<part>_delta` when the delta from `seen` will do, else `<part>`; None if it is up to date."""
        with self.lock:
            version, payload, delta = self.parts[part]
        if version == seen:
            return None
        if delta is not None and seen == version - 1:
            return version, f"{part}_delta", delta
        return version, part, payload

    def snapshot_json(self) -> str:
        """Every part as one JSON object (GET /api/state)."""
        with self.lock:
            payloads = [self.parts[p][1] for p in PARTS]
        doc: dict[str, Any] = {}
        for payload in payloads:
            doc.update(json.loads(payload))
        return json.dumps(doc)

    def _publish(self, part: str, doc: dict[str, Any]) -> None:
        payload = json.dumps(doc, default=_json_default)
        with self.lock:
            version, old, _ = self.parts[part]
        if payload == old:
            return
        before = self.docs.get(part)
        delta = None
        if before is not None:
            delta = json.dumps(doc_delta(before, doc), default=_json_default)
            if len(delta) >= len(payload):
                delta = None  # nothing saved: the part whole is as short
        self.docs[part] = doc
        with self.lock:
            self.parts[part] = (version + 1, payload, delta)

    def refresh(self) -> None:
        """Rebuild the parts that changed; a failure is logged (debug) and the next pass tries again."""
        try:
            if self.read_view is None:
                view = finished_view(self.db, self.day)
                self.rows = view.pop("rows")
                self._curve_from_capital()
                rows_due = True
            else:
                view = self.read_view()
                if self.desk is not None and self.desk.pending():  # its outcome is written by the trading thread
                    self.desk.load()
                self._sample(view)
                rows_due = self._rows_if_changed(view)
            self._publish("live", self._live(view))
            count = self.log_count() if self.log_count is not None else None
            if count is None or count != self.log_seen:
                self.log_seen = count
                self._publish("log", {"log": self.logs()})
            if rows_due:  # a copy of the curve: the published document must not move with the next sample
                self._publish("rows", {**self.rows, "curve": list(self.curve)})
        except Exception as e:  # noqa: BLE001 - the daemon stopping, a database hiccup: retried
            log.debug("dashboard snapshot failed: %s: %s", type(e).__name__, e)

    def _live(self, view: dict[str, Any]) -> dict[str, Any]:
        pnl = view.get("pnl") or {}
        return {"day": self.day.isoformat(), "read_only": self.read_only, "mode": self.cfg.mode.value,
                "now": time.time(), "feed_time": view.get("feed_time"), "live_at": view.get("live_at"),
                "positions": view.get("positions") or [], "pnl": pnl,
                "trading_state": view.get("trading_state"), "state_reason": view.get("state_reason"),
                "caps": caps_and_headroom(self.cfg, pnl), "symbol_caps": {
                    "loss_pct": self.cfg.risk.symbol_max_loss_pct, "profit_pct": self.cfg.risk.symbol_max_profit_pct},
                "health": view.get("health"), "signal_count": view.get("signals"),
                "symbols": [s.symbol for s in self.cfg.symbols],
                "controls": self.desk.recent() if self.desk is not None else []}

    def _rows_if_changed(self, view: dict[str, Any]) -> bool:
        """Read the day's rows if the live view says they changed (or it is long since); True if read."""
        key = (view.get("signals"), tuple(view.get("active_order_ids") or ()), view.get("active_trades"),
               (view.get("pnl") or {}).get("capital"), view.get("trading_state"), len(self.desk.recent())
               if self.desk is not None else 0)
        mono = time.monotonic()
        since = mono - self.rows_at
        if (key != self.rows_key and since >= ROWS_MIN_S) or since >= ROWS_EVERY_S:
            self.rows = day_rows(self.db, self.day, with_capital=False)  # the curve is sampled live
            self.rows_key, self.rows_at = key, mono
            return True
        return False

    def _sample(self, view: dict[str, Any]) -> None:
        equity, t = _f((view.get("pnl") or {}).get("equity")), view.get("feed_time")
        if equity is None or not t:
            return
        self.high = max(self.high, equity)
        dd = (self.high - equity) / self.high * 100 if self.high else 0.0
        point = [float(t), equity, round(dd, 4)]  # every pass: a flat stretch draws flat, not as a slope
        if self.curve and point[0] <= self.curve[-1][0]:
            self.curve[-1] = point
        else:
            self.curve.append(point)
        if len(self.curve) > MAX_POINTS:
            self.curve = self.curve[::2]

    def _curve_from_capital(self) -> None:
        """A finished day: the equity curve at each capital change (realized), from the capital log."""
        self.curve, high = [], 0.0
        for c in self.rows["capital"]:
            cap = float(c["capital"])
            high = max(high, cap)
            dd = (high - cap) / high * 100 if high else 0.0
            self.curve.append([datetime.fromisoformat(c["ts"]).timestamp(), cap, round(dd, 4)])

"""The operator's controls (pause entries, resume, flatten one symbol, flatten all, halt for the day), from the
dashboard's process to the trading thread.

A control is written to the `controls` table first (who asked, when), then the desk rings a bell: a counter in
shared memory (`new_bell`) that the dashboard's process and the driver both hold. The trading thread looks at
the counter between signals (`drain`, called from the driver's loop: one memory read when nobody pressed
anything), reads the controls it has not handled yet from the table when it moved, acts through the
TradeManager's own paths -- the RiskManager's trading state, forced exits whose orders are written ahead like
any other -- then records the outcome on the same row. Nothing here runs on the trading thread but `drain`, and
nothing the dashboard does waits for the trading thread: it reads the outcome from the row when it comes.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

import notify
from core.enums import ExitReason, TradingState
from db import DBHandler, OperatorControl, utcnow
from notify.events import TradingHalted

if TYPE_CHECKING:
    from trade_manager import TradeManager

log = logging.getLogger(__name__)

ACTIONS = ("pause", "resume", "flatten", "flatten_all", "halt")
PAUSED = "operator: entries paused from the dashboard"
HALTED = "risk: halted for the day from the dashboard"  # "risk:" makes the halt hold through a restart today
RECENT = 50  # controls the dashboard shows


@dataclass(frozen=True, slots=True)
class ControlRequested:
    """A control recorded and waiting for the trading thread."""

    control_id: int
    action: str
    symbol: str | None


def _row(c: OperatorControl) -> dict[str, Any]:
    return {"id": c.id, "action": c.action, "symbol": c.symbol, "who": c.who,
            "requested_at": c.requested_at.isoformat(timespec="seconds") if c.requested_at else None,
            "status": c.status, "note": c.note,
            "decided_at": c.decided_at.isoformat(timespec="seconds") if c.decided_at else None}


def new_bell(ctx: Any) -> Any:
    """The counter a desk rings after recording a control: shared memory, handed to the dashboard's process."""
    return ctx.Value("q", 0)


class _LocalBell:
    """The bell of a desk whose requests and drain share one process (tests, tools)."""

    def __init__(self) -> None:
        self.value = 0

    def get_lock(self) -> threading.Lock:
        return _LOCAL_LOCK


_LOCAL_LOCK = threading.Lock()


class OperatorDesk:
    """Records controls and rings the bell (the dashboard's side); acts on the new ones and records their outcome
    (the trading thread's side, `drain`); keeps the recent ones with their outcome for the page."""

    def __init__(self, db: DBHandler, day: date, symbols: set[str], bell: Any = None):
        self.db, self.day, self.symbols = db, day, symbols
        self.bell = bell if bell is not None else _LocalBell()
        self._count = bell.get_obj() if hasattr(bell, "get_obj") else self.bell  # read without the lock: one word
        self.heard = 0  # the bell's count the trading thread last acted on
        self.after: int | None = None  # controls up to this id were there before this run: not acted on again
        self.lock = threading.Lock()
        self._recent: list[dict[str, Any]] = []

    def load(self) -> None:
        """The day's controls so far (a restart, a finished day's read-only view, an outcome awaited)."""
        def read(s: Session) -> list[dict[str, Any]]:
            rows = s.scalars(select(OperatorControl).where(OperatorControl.trading_date == self.day)
                             .order_by(OperatorControl.id.desc()).limit(RECENT))
            return [_row(c) for c in rows]
        got = self.db.transaction("reading the operator's controls", read)
        with self.lock:
            self._recent = got

    def pending(self) -> bool:
        """A recent control still waits for its outcome (the page's side polls its row until it comes)."""
        with self.lock:
            return any(r["status"] == "REQUESTED" for r in self._recent)

    def start_after_existing(self) -> None:
        """The trading side's start: controls recorded before this run (a crash between request and outcome)
        are not acted on now, hours later; their rows keep saying REQUESTED."""
        def read(s: Session) -> int:
            return int(s.scalar(select(func.max(OperatorControl.id))) or 0)
        self.after = self.db.transaction("reading the last operator control", read)
        self.heard = self._rung()

    def _rung(self) -> int:
        return int(self._count.value)

    def recent(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(r) for r in self._recent]

    def request(self, action: str, symbol: str | None, who: str) -> dict[str, Any]:
        """Record a control and ring for the trading thread (the dashboard's process); ValueError if it is
        not one the daemon knows."""
        if action not in ACTIONS:
            raise ValueError(f"action: {action!r} is not allowed -- use one of {', '.join(ACTIONS)}")
        if action == "flatten":
            if not symbol or symbol not in self.symbols:
                raise ValueError(f"symbol: {symbol!r} is not allowed -- flatten needs a configured symbol")
        else:
            symbol = None

        def write(s: Session) -> dict[str, Any]:
            c = OperatorControl(trading_date=self.day, action=action, symbol=symbol, who=who[:128],
                                requested_at=utcnow(), status="REQUESTED")
            s.add(c)
            s.flush()
            return _row(c)
        rec = self.db.transaction(f"recording the control {action}", write)
        with self.lock:
            self._recent = [rec, *self._recent][:RECENT]
        log.warning("operator control %d requested: %s%s by %s", rec["id"], action,
                    f" {symbol}" if symbol else "", who)
        with self.bell.get_lock():  # after the commit: the trading thread that hears it finds the row
            self.bell.value += 1
        return rec

    def _waiting(self) -> list[ControlRequested]:
        def read(s: Session) -> list[ControlRequested]:
            q = select(OperatorControl.id, OperatorControl.action, OperatorControl.symbol).where(
                OperatorControl.trading_date == self.day, OperatorControl.status == "REQUESTED")
            if self.after is not None:
                q = q.where(OperatorControl.id > self.after)
            return [ControlRequested(i, a, sym) for i, a, sym in s.execute(q.order_by(OperatorControl.id))]
        got: list[ControlRequested] = self.db.transaction("reading the operator's new controls", read)
        return got

    def drain(self, tm: TradeManager, now: int) -> None:
        """Act on the controls recorded since the last drain, in order (the trading thread, between signals):
        one read of a shared counter when there are none, a read of the table when it moved."""
        rung = self._rung()
        if rung == self.heard:
            return
        try:
            waiting = self._waiting()
        except Exception as e:  # noqa: BLE001 - the bell stays unheard: the next pass reads again
            log.warning("could not read the operator's new controls: %s", e)
            return
        self.heard = rung
        for c in waiting:
            self.after = c.control_id if self.after is None else max(self.after, c.control_id)
            try:
                status, note = apply_control(tm, c, now)
            except Exception as e:  # noqa: BLE001 - the operator hears of it; trading goes on
                log.exception("operator control %d (%s) failed", c.control_id, c.action)
                status, note = "FAILED", f"internal error: {e}"
            self._decided(c, status, note, now)

    def _decided(self, c: ControlRequested, status: str, note: str, now: int) -> None:
        at = utcnow()

        def write(s: Session) -> None:
            s.execute(update(OperatorControl).where(OperatorControl.id == c.control_id)
                      .values(status=status, note=note, decided_at=at, decision_time=now))
        try:
            self.db.transaction(f"recording the outcome of control {c.control_id}", write)
        except Exception as e:  # noqa: BLE001 - the action happened; its row says REQUESTED until a restart
            log.warning("could not record the outcome of control %d: %s", c.control_id, e)
        log.warning("operator control %d (%s%s): %s -- %s", c.control_id, c.action,
                    f" {c.symbol}" if c.symbol else "", status, note)
        with self.lock:
            for r in self._recent:
                if r["id"] == c.control_id:
                    r.update(status=status, note=note, decided_at=at.isoformat(timespec="seconds"))


def apply_control(tm: TradeManager, c: ControlRequested, now: int) -> tuple[str, str]:
    """What a control does, on the trading thread: (DONE, REFUSED), and why."""
    rm = tm.rm
    state, reason = rm.state, rm.state_reason
    if c.action == "pause":
        if state is TradingState.ACTIVE:
            rm.set_state(TradingState.REDUCING, PAUSED)
            return "DONE", "entries paused: exits only"
        if state is TradingState.REDUCING and reason == PAUSED:
            return "DONE", "entries were already paused"
        return "REFUSED", f"trading is {state.value} ({reason}): no entries anyway"
    if c.action == "resume":
        if state is TradingState.ACTIVE:
            return "DONE", "trading was already active"
        if state is TradingState.REDUCING and reason == PAUSED:
            if now >= tm.session.entry_cutoff:
                return "REFUSED", "past the entry cut-off: exits only for the rest of the day"
            rm.set_state(TradingState.ACTIVE, "operator: entries resumed from the dashboard")
            return "DONE", "entries resumed"
        return "REFUSED", f"trading is {state.value} ({reason}); a halt holds for the day"
    if c.action == "halt":
        if state is TradingState.HALTED and reason.startswith("risk:"):
            return "DONE", f"trading was already halted ({reason})"
        rm.set_state(TradingState.HALTED, HALTED)
        notify.emit(TradingHalted(HALTED))
        return "DONE", "halted for the day: no entries; open positions stay (flatten them to close)"
    if c.action == "flatten":
        assert c.symbol is not None  # request() refuses a flatten without one
        note = tm.close_symbol(c.symbol, ExitReason.OPERATOR.value, now)
        return ("REFUSED" if note.startswith(("no open", "signals_only", "an exit order")) else "DONE"), note
    if c.action == "flatten_all":
        cancelled = tm.cancel_entries()
        symbols = sorted({t.symbol for t in rm.active_trades.values()})
        notes = [f"{sym}: {tm.close_symbol(sym, ExitReason.OPERATOR.value, now)}" for sym in symbols]
        if not symbols and not cancelled:
            return "DONE", "no open position"
        return "DONE", "; ".join(notes + ([f"{cancelled} working entry order(s) cancelled"] if cancelled else []))
    return "REFUSED", f"unknown action {c.action}"

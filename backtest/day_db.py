"""The backtest's database handler: one transaction per day, each unit of work of the live code a savepoint in it.

Why: the TradeManager, the order store and the ledger write each decision in its own transaction
(db.DBHandler.unit / transaction), which live is what makes a crash lose nothing. A backtest's database is
its own file, rebuilt by running again, and its unit is the day: a commit per decision there only costs time
(a pool checkout, BEGIN IMMEDIATE, COMMIT and the connection's reset, for every signal and fill). Here the run
holds one connection per day in one transaction and every unit the live code asks for is a SAVEPOINT inside it,
released on success and rolled back on error, so a failed unit leaves nothing behind exactly as live; the day
is committed at its end (the runner's DayRun). The live code is the same code: only the unit of work the
handler gives it differs. Outside a day (the summary's reads) it is the ordinary handler.

State documents (daemon_state: the replay's control log, the trading state) are replaced whole on every fill
and outcome, hundreds of times a day, and nothing outside the run reads them while the day is open. Within a
day their last value per key is kept in memory (read back by get_state) and written once, just before the day
commits: the committed rows are the same, and a crash loses the whole day either way (it is one transaction).

Records that nothing sent depends on (a denied signal's order, events and signal row: db.DBHandler.record) are
kept too, and written together, in one savepoint, before the next thing the handler runs (a unit, a read, the
day's end): so they are in the file in the same order, with the same ids, as written one by one, and every read
sees them. Safe because a denial sends nothing and, in a backtest, tells no one outside this process: the worker
that hears of it is the run's own handler, and the day is one transaction anyway.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy.engine import Connection, Engine, RootTransaction
from sqlalchemy.orm import Session

from db import DBHandler, write_state

log = logging.getLogger(__name__)

T = TypeVar("T")


class DayUnitDB(DBHandler):
    """A DBHandler whose units between begin_day() and end_day() are savepoints of one transaction."""

    def __init__(self, engine: Engine):
        super().__init__(engine)
        self._conn: Connection | None = None
        self._day: RootTransaction | None = None
        self._cur: Any = None  # a cursor of the DBAPI connection: SAVEPOINT and RELEASE go to it straight
        self._states: dict[str, str] = {}  # state documents set during the day (JSON), written at its end
        self._kept: list[Any] = []  # records (DBHandler.record) not written yet, in order
        self._kept_writer: Callable[[Connection, list[Any]], None] | None = None

    def begin_day(self) -> None:
        """Open the day's connection and transaction (the units that follow are savepoints in it)."""
        if self._conn is not None:
            raise RuntimeError("a day is already open on the run database")
        self._conn = self.engine.connect()
        self._day = self._conn.begin()
        raw: Any = self._conn.connection.dbapi_connection
        self._cur = raw.cursor()
        self._states = {}

    def end_day(self, commit: bool = True) -> None:
        """Write the day's state documents and commit (or, after a failure, roll back) the day, and give the
        connection back."""
        conn, day, cur, states = self._conn, self._day, self._cur, self._states
        if conn is None or day is None:
            return
        try:
            if commit:
                try:
                    self._write_kept()
                    for key, payload in states.items():
                        write_state(conn, key, payload)
                except BaseException:
                    day.rollback()
                    raise
                day.commit()
            else:
                day.rollback()
        finally:
            self._conn, self._day, self._cur, self._states = None, None, None, {}
            self._kept, self._kept_writer = [], None
            cur.close()
            conn.close()

    def record(self, what: str, item: Any, write: Callable[[Connection, list[Any]], None]) -> None:
        """Within a day: kept, written with the others kept before the handler's next use; outside: written now."""
        if self._conn is None:
            super().record(what, item, write)
            return
        if self._kept_writer is not write:
            self._write_kept()
            self._kept_writer = write
        self._kept.append(item)

    def _write_kept(self) -> None:
        """Write the records kept so far, in one savepoint (emptied first: a failure is not written twice)."""
        kept, write, conn = self._kept, self._kept_writer, self._conn
        if not kept or write is None or conn is None:
            return
        self._kept = []
        self._retry(f"{len(kept)} kept record(s)", lambda: self._savepoint(lambda: write(conn, kept)))

    def get_state(self, key: str, default: Any = None) -> Any:
        payload = self._states.get(key) if self._conn is not None else None
        if payload is None:
            return super().get_state(key, default)
        return json.loads(payload)

    def set_state(self, key: str, value: Any) -> None:
        """Within a day: kept (as the JSON written live) until the day's end; outside a day: written now."""
        if self._conn is None:
            super().set_state(key, value)
            return
        self._states[key] = json.dumps(value, default=str)

    def _savepoint(self, fn: Callable[[], T], discard: Callable[[], None] | None = None) -> T:
        """fn() inside a SAVEPOINT, released on success; on any error rolled back to it (what the unit wrote is
        gone, as a failed transaction's is live) after `discard`, and the error raised. Issued on a cursor of the
        DBAPI connection itself: through SQLAlchemy's nested transactions a savepoint cost more than the commit it
        replaces."""
        cur = self._cur
        cur.execute("SAVEPOINT unit")
        try:
            result = fn()
        except BaseException:
            if discard is not None:
                discard()
            cur.execute("ROLLBACK TO unit")
            cur.execute("RELEASE unit")
            raise
        cur.execute("RELEASE unit")
        return result

    def core(self, what: str, fn: Callable[[Connection], T]) -> T:
        conn = self._conn
        if conn is None:
            return super().core(what, fn)
        self._write_kept()
        return self._retry(what, lambda: self._savepoint(lambda: fn(conn)))

    def _run(self, what: str, fn: Callable[[Session], T]) -> T:
        conn = self._conn
        if conn is None:
            return super()._run(what, fn)
        self._write_kept()

        def once() -> T:
            # rollback_only: the session's commit flushes and leaves the day's transaction alone, and its close
            # never touches it; a failed unit is undone by the savepoint
            session = Session(bind=conn, autoflush=False, expire_on_commit=False,
                              join_transaction_mode="rollback_only")

            def go() -> T:
                result = fn(session)
                session.commit()
                session.close()
                return result
            return self._savepoint(go, discard=session.close)
        return self._retry(what, once)


@contextmanager
def day_unit(db: DBHandler) -> Iterator[None]:
    """The day's transaction on a DayUnitDB (committed at the end, rolled back if the day failed); nothing on
    any other handler (each unit its own transaction, as live)."""
    if not isinstance(db, DayUnitDB):
        yield
        return
    db.begin_day()
    try:
        yield
    except BaseException:
        db.end_day(commit=False)
        raise
    db.end_day()

"""The backtest's database handler: one transaction per day, each unit of work of the live code a savepoint in it.

Why: the TradeManager, the order store and the ledger write each decision in its own transaction
(db.DBHandler.unit / transaction), which live is what makes a crash lose nothing. A backtest's database is
its own file, rebuilt by running again, and its unit is the day: a commit per decision there only costs time
(a pool checkout, BEGIN IMMEDIATE, COMMIT and the connection's reset, for every signal and fill). Here the run
holds one connection per day in one transaction and every unit the live code asks for is a SAVEPOINT inside it,
released on success and rolled back on error, so a failed unit leaves nothing behind exactly as live; the day
is committed at its end (the runner's DayRun). The live code is the same code: only the unit of work the
handler gives it differs. Outside a day (the summary's reads) it is the ordinary handler.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy.engine import Connection, Engine, RootTransaction
from sqlalchemy.orm import Session

from db import DBHandler

log = logging.getLogger(__name__)

T = TypeVar("T")


class DayUnitDB(DBHandler):
    """A DBHandler whose units between begin_day() and end_day() are savepoints of one transaction."""

    def __init__(self, engine: Engine):
        super().__init__(engine)
        self._conn: Connection | None = None
        self._day: RootTransaction | None = None
        self._raw: Any = None  # the DBAPI connection: SAVEPOINT and RELEASE go to it straight

    def begin_day(self) -> None:
        """Open the day's connection and transaction (the units that follow are savepoints in it)."""
        if self._conn is not None:
            raise RuntimeError("a day is already open on the run database")
        self._conn = self.engine.connect()
        self._day = self._conn.begin()
        self._raw = self._conn.connection.dbapi_connection

    def end_day(self, commit: bool = True) -> None:
        """Commit (or, after a failure, roll back) the day and give the connection back."""
        conn, day, self._conn, self._day, self._raw = self._conn, self._day, None, None, None
        if conn is None or day is None:
            return
        try:
            if commit:
                day.commit()
            else:
                day.rollback()
        finally:
            conn.close()

    def _savepoint(self, fn: Callable[[], T], discard: Callable[[], None] | None = None) -> T:
        """fn() inside a SAVEPOINT, released on success; on any error rolled back to it (what the unit wrote is
        gone, as a failed transaction's is live) after `discard`, and the error raised. Issued on the DBAPI
        connection itself: through SQLAlchemy's nested transactions a savepoint cost more than the commit it
        replaces."""
        raw = self._raw
        raw.execute("SAVEPOINT unit")
        try:
            result = fn()
        except BaseException:
            if discard is not None:
                discard()
            raw.execute("ROLLBACK TO unit")
            raw.execute("RELEASE unit")
            raise
        raw.execute("RELEASE unit")
        return result

    def core(self, what: str, fn: Callable[[Connection], T]) -> T:
        conn = self._conn
        if conn is None:
            return super().core(what, fn)
        return self._retry(what, lambda: self._savepoint(lambda: fn(conn)))

    def _run(self, what: str, fn: Callable[[Session], T]) -> T:
        conn = self._conn
        if conn is None:
            return super()._run(what, fn)

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

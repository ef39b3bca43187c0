"""The backtest's run database (backtest/day_db.py): a day is one transaction and each unit of the live code a
savepoint in it, on a real SQLite file. A failed unit leaves nothing behind (as a failed transaction live), the
units before and after it stay, and only the day's end makes them visible to another connection."""
from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import insert, text

from backtest.day_db import DayUnitDB, day_unit
from backtest.runner import open_run_db
from db import CoreUnit, KeyValue


def _keys(path) -> list[str]:
    with sqlite3.connect(path) as c:
        return sorted(r[0] for r in c.execute("SELECT key FROM daemon_state WHERE key LIKE 'k%'"))


def _put(u: CoreUnit, key: str) -> None:
    u.conn.execute(insert(KeyValue.__table__).values(key=key, value="0"))  # type: ignore[arg-type]


def test_a_failed_unit_is_undone_and_the_others_are_committed_at_the_end_of_the_day(tmp_path):
    path = tmp_path / "run.sqlite"
    db = open_run_db(path)
    assert isinstance(db, DayUnitDB)
    with day_unit(db):
        db.set_state("k1", 1)                                             # an ORM unit
        db.unit("core", lambda u: _put(u, "k2"))

        def half_then_fail(u):
            _put(u, "k3")
            raise ValueError("a unit failed after writing")
        with pytest.raises(ValueError):
            db.unit("fails", half_then_fail)

        def orm_fail(s):
            s.add(KeyValue(key="k4", value="4"))
            s.flush()
            raise ValueError("an ORM unit failed after flushing")
        with pytest.raises(ValueError):
            db.transaction("fails too", orm_fail)
        db.set_state("k5", 5)
        assert db.get_state("k1") == 1 and db.get_state("k4") is None     # read inside the day's transaction
        assert _keys(path) == []                                          # nothing committed yet
    assert _keys(path) == ["k1", "k2", "k5"]
    assert db.get_state("k5") == 5                                        # outside a day: the ordinary handler


def test_a_failed_day_is_rolled_back_whole(tmp_path):
    path = tmp_path / "run.sqlite"
    db = open_run_db(path)
    with pytest.raises(RuntimeError), day_unit(db):
        db.set_state("k1", 1)
        raise RuntimeError("the day failed")
    assert _keys(path) == []
    db.core("after", lambda c: c.execute(text("SELECT 1")))  # the connection was given back

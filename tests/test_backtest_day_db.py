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


def test_a_state_document_set_during_the_day_is_written_once_at_its_end_with_its_last_value(tmp_path):
    path = tmp_path / "run.sqlite"
    db = open_run_db(path)
    db.set_state("k1", {"n": 0})                                          # before any day: written at once
    assert _values(path) == {"k1": {"n": 0}}
    written: list[str] = []
    with day_unit(db):
        raw = db._conn.connection.dbapi_connection
        raw.set_trace_callback(written.append)
        doc = {"n": 1}
        db.set_state("k1", doc)
        doc["n"] = 99                                                     # the caller's later change is not kept
        assert db.get_state("k1") == {"n": 1}
        for n in range(2, 6):
            db.set_state("k1", {"n": n})
        db.set_state("k2", [1])
        assert db.get_state("k1") == {"n": 5} and db.get_state("k2") == [1] and db.get_state("k3", "none") == "none"
        assert not [s for s in written if s.startswith(("UPDATE", "INSERT"))]  # nothing written yet
        assert _values(path) == {"k1": {"n": 0}}
    assert _values(path) == {"k1": {"n": 5}, "k2": [1]}
    assert len([s for s in written if s.startswith(("UPDATE daemon_state", "INSERT INTO daemon_state"))]) == 3
    with pytest.raises(RuntimeError), day_unit(db):                       # a failed day writes none of its own
        db.set_state("k1", {"n": 6})
        raise RuntimeError("the day failed")
    assert _values(path) == {"k1": {"n": 5}, "k2": [1]}


def test_the_scratch_settings_are_the_run_database_s_only(tmp_path):
    from db import setup

    def pragmas(engine) -> tuple[int, int]:
        with engine.connect() as c:
            return (c.exec_driver_sql("PRAGMA synchronous").scalar(), c.exec_driver_sql("PRAGMA temp_store").scalar())
    run = open_run_db(tmp_path / "run.sqlite")
    assert pragmas(run.engine) == (0, 2)                                  # OFF, MEMORY
    live, _ = setup(f"sqlite:///{tmp_path / 'live.sqlite'}")
    assert pragmas(live) == (1, 0)                                        # NORMAL, the default temp store


def _values(path) -> dict[str, object]:
    import json

    with sqlite3.connect(path) as c:
        return {k: json.loads(v) for k, v in c.execute("SELECT key, value FROM daemon_state WHERE key LIKE 'k%'")}

"""The paper broker's state file: only changed kv rows are written, and what is on disk is what was last written."""
from __future__ import annotations

from pathlib import Path

import pytest

from paper.store import Changes, Store


def _kv_rows(path: Path) -> dict[str, str]:
    import sqlite3
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT k, v FROM kv").fetchall())


def test_unchanged_kv_rows_are_not_rewritten(tmp_path: Path) -> None:
    s = Store(tmp_path / "b.sqlite")
    s.write(Changes(kv={"a": 1, "b": {"x": [1, 2]}, "c": None}))
    before = s._db.total_changes
    s.write(Changes(kv={"a": 1, "b": {"x": [1, 2]}, "c": "now"}))
    assert s._db.total_changes - before == 1  # only "c"
    s.close()
    assert Store(tmp_path / "b.sqlite").load().kv == {"a": 1, "b": {"x": [1, 2]}, "c": "now"}


def test_a_wiped_kv_is_written_again_even_if_equal_to_before(tmp_path: Path) -> None:
    s = Store(tmp_path / "b.sqlite")
    s.write(Changes(kv={"a": 1, "keep": 2}))
    s.wipe(keep_kv=("keep",))
    assert _kv_rows(tmp_path / "b.sqlite") == {"keep": "2"}
    s.write(Changes(kv={"a": 1, "keep": 2}))
    assert _kv_rows(tmp_path / "b.sqlite") == {"a": "1", "keep": "2"}
    s.wipe()
    s.write(Changes(kv={"a": 1, "keep": 2}))
    assert s.load().kv == {"a": 1, "keep": 2}
    s.close()


def test_a_rolled_back_write_leaves_its_kv_to_be_written(tmp_path: Path) -> None:
    s = Store(tmp_path / "b.sqlite")
    s.write(Changes(kv={"a": 1}))
    with pytest.raises(TypeError):
        s.write(Changes(orders=[("o1", 1, {"bad": object()})], kv={"a": 2}))
    s.write(Changes(kv={"a": 2}))
    s.close()
    assert Store(tmp_path / "b.sqlite").load().kv == {"a": 2}


def test_a_reopened_store_knows_what_its_file_holds(tmp_path: Path) -> None:
    s = Store(tmp_path / "b.sqlite")
    s.write(Changes(kv={"a": 1}))
    s.close()
    s = Store(tmp_path / "b.sqlite")
    before = s._db.total_changes
    s.write(Changes(kv={"a": 1, "b": 2}))
    assert s._db.total_changes - before == 1
    s.close()

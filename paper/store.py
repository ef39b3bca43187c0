"""The paper broker's state on disk: one SQLite file in WAL mode, written before every response.

Rows are JSON documents keyed by their natural id, so the engine's in-memory dicts round-trip exactly
and a restart (even after kill -9) finds the books as the last response left them. synchronous=NORMAL
in WAL mode survives a killed process; only a power cut can lose the last transactions. The engine hands
its whole kv state with every change; only the keys whose JSON differs from what the file holds are written
(a placement changes two or three of its twelve). The log is checkpointed by a thread of its own
(db_wal.WalCheckpointer) once it is 1,000 pages long, not by the request whose commit takes it past that.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from db_wal import AUTOCHECKPOINT_PAGES, JOURNAL_SIZE_LIMIT, WalCheckpointer

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (orderid TEXT PRIMARY KEY, seq INTEGER NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trades (seq INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS positions (pkey TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS quotes (qkey TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS future_quotes (seq INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT NOT NULL);
"""
_TABLES = ("orders", "trades", "positions", "quotes", "future_quotes", "kv")


@dataclass
class Changes:
    """Everything one request changed; written in one transaction."""

    orders: list[tuple[str, int, dict]] = field(default_factory=list)
    trades: list[tuple[int, dict]] = field(default_factory=list)
    positions: list[tuple[str, dict]] = field(default_factory=list)
    quotes: list[tuple[str, list]] = field(default_factory=list)
    future_add: list[tuple[int, list]] = field(default_factory=list)
    future_del: list[int] = field(default_factory=list)
    kv: dict[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.orders or self.trades or self.positions or self.quotes or self.future_add
                    or self.future_del or self.kv)


@dataclass
class Snapshot:
    orders: list[dict]
    trades: list[dict]
    positions: list[dict]
    quotes: list[list]
    future_quotes: list[tuple[int, list]]
    kv: dict[str, Any]


# one encoder for every row: json.dumps with separators builds a new JSONEncoder per call (half its cost here)
_dumps = json.JSONEncoder(separators=(",", ":")).encode


class Store:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
        self._db.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
        self._db.executescript(SCHEMA)
        self._kv_on_disk: dict[str, str] = dict(self._db.execute("SELECT k, v FROM kv").fetchall())
        self._checkpointer = WalCheckpointer(str(self.path))
        self._checkpointer.start()

    def load(self) -> Snapshot:
        with self._lock:
            q = self._db.execute
            return Snapshot(
                orders=[json.loads(b) for (b,) in q("SELECT body FROM orders ORDER BY seq")],
                trades=[json.loads(b) for (b,) in q("SELECT body FROM trades ORDER BY seq")],
                positions=[json.loads(b) for (b,) in q("SELECT body FROM positions ORDER BY pkey")],
                quotes=[json.loads(b) for (b,) in q("SELECT body FROM quotes ORDER BY qkey")],
                future_quotes=[(s, json.loads(b)) for s, b in q("SELECT seq, body FROM future_quotes ORDER BY seq")],
                kv={k: json.loads(v) for k, v in q("SELECT k, v FROM kv")},
            )

    def write(self, c: Changes) -> None:
        if not c:
            return
        with self._lock:
            db = self._db
            db.execute("BEGIN")
            try:
                if c.orders:
                    db.executemany("INSERT OR REPLACE INTO orders VALUES (?,?,?)",
                                   [(oid, seq, _dumps(body)) for oid, seq, body in c.orders])
                if c.trades:
                    db.executemany("INSERT OR REPLACE INTO trades VALUES (?,?)",
                                   [(seq, _dumps(body)) for seq, body in c.trades])
                if c.positions:
                    db.executemany("INSERT OR REPLACE INTO positions VALUES (?,?)",
                                   [(k, _dumps(body)) for k, body in c.positions])
                if c.quotes:
                    db.executemany("INSERT OR REPLACE INTO quotes VALUES (?,?)",
                                   [(k, _dumps(row)) for k, row in c.quotes])
                if c.future_add:
                    db.executemany("INSERT OR REPLACE INTO future_quotes VALUES (?,?)",
                                   [(s, _dumps(row)) for s, row in c.future_add])
                if c.future_del:
                    db.executemany("DELETE FROM future_quotes WHERE seq=?", [(s,) for s in c.future_del])
                kv = [(k, j) for k, j in ((k, _dumps(v)) for k, v in c.kv.items()) if self._kv_on_disk.get(k) != j]
                if kv:
                    db.executemany("INSERT OR REPLACE INTO kv VALUES (?,?)", kv)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._kv_on_disk.update(kv)

    def wipe(self, keep_kv: tuple[str, ...] = ()) -> None:
        with self._lock:
            db = self._db
            db.execute("BEGIN")
            for t in _TABLES:
                if t == "kv" and keep_kv:
                    marks = ",".join("?" * len(keep_kv))
                    db.execute(f"DELETE FROM kv WHERE k NOT IN ({marks})", keep_kv)
                else:
                    db.execute(f"DELETE FROM {t}")
            db.execute("COMMIT")
            self._kv_on_disk = {k: v for k, v in self._kv_on_disk.items() if k in keep_kv}

    def close(self) -> None:
        self._checkpointer.stop()
        with self._lock:
            self._db.close()

"""Checkpoints of an SQLite database's write-ahead log, on a thread of their own.

By default SQLite checkpoints inside the commit that takes the log past 1,000 pages: that commit copies the
pages into the database file and syncs it, 6-20 ms on this project's machine, and whichever thread commits
then pays, an order's write-ahead or its acknowledgement as likely as a batch of ticks. Here each process that
opens the database checkpoints it every CHECKPOINT_EVERY_S with PASSIVE (it never waits for, nor blocks, a
reader or a writer), and the commits' own automatic checkpoint is pushed out to AUTOCHECKPOINT_PAGES, where it
still bounds the log should this thread fall behind (a reader holding an old snapshot for long). Durability is
unchanged: a committed transaction is in the log, which SQLite replays on open whatever was checkpointed.
"""
from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)

CHECKPOINT_EVERY_S = 0.5
AUTOCHECKPOINT_PAGES = 10_000  # ~40 MB of log: a commit checkpoints only when the thread fell this far behind
GIVE_UP_MISSING_S = 30.0  # a database file missing this long (removed with its folder) ends its checkpointer


class WalCheckpointer:
    """Runs `PRAGMA wal_checkpoint(PASSIVE)` on the database file at `path` every `every_s` seconds."""

    def __init__(self, path: str, every_s: float = CHECKPOINT_EVERY_S):
        self.path = path
        self.every_s = every_s
        self.passes = 0  # checkpoints that ran (for tests and diagnostics)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-wal-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (it finishes a checkpoint under way first)."""
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        missing = 0  # checks in a row that found no file
        try:
            while not self._stop.wait(self.every_s):
                if not Path(self.path).exists():  # not created yet, or removed (a test's folder): stop after a while
                    missing += 1
                    if missing * self.every_s >= GIVE_UP_MISSING_S:
                        log.debug("%s has been missing for %.0fs: checkpointer stopped", self.path, GIVE_UP_MISSING_S)
                        return
                    continue
                missing = 0
                if conn is None:
                    conn = self._connect()
                if conn is not None:
                    self.checkpoint(conn)
        finally:
            if conn is not None:
                conn.close()

    def _connect(self) -> sqlite3.Connection | None:
        """A connection of the thread's own (mode=rw: the file is never created from here)."""
        try:
            return sqlite3.connect(f"file:{self.path}?mode=rw", uri=True, timeout=0, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as e:
            log.debug("checkpointer cannot open %s yet: %s", self.path, e)
            return None

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        """One PASSIVE checkpoint; a busy database (another checkpoint running) is simply tried next time."""
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as e:
            log.debug("checkpoint of %s skipped: %s", self.path, e)
            return
        self.passes += 1

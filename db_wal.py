"""Checkpoints of an SQLite database's write-ahead log, on a thread of their own, and only of a long log.

By default SQLite checkpoints inside the commit that takes the log past 1,000 pages: that commit copies the
pages into the database file and syncs it, 6-20 ms on this project's machine, and whichever thread commits
then pays, an order's write-ahead or its acknowledgement as likely as a batch of ticks. Here each process that
opens the database looks at the log every CHECKPOINT_EVERY_S and checkpoints it with PASSIVE (it never waits
for, nor blocks, a reader or a writer) once it holds CHECKPOINT_LOG_PAGES; the commits' own automatic
checkpoint is pushed out to AUTOCHECKPOINT_PAGES, where it still bounds the log should this thread fall behind.

Why only a long log: after a checkpoint has copied the whole log, the next commit starts the log again from
its beginning and, under synchronous=NORMAL, syncs the log's header first (1-9 ms here). Checkpointing a log of
a few pages every half second made about one order commit in three pay that. The log's length is read from
its file's size, which says it because every writing connection sets JOURNAL_SIZE_LIMIT (a restarted log is
cut to its first transaction); a connection without it leaves the file long, and the checkpoints then happen
whenever anything was written since the last one, as they did before. Reading the length from the -shm
wal-index instead is unsafe: closing any descriptor of that file drops the process's POSIX locks on it,
SQLite's own included. Durability is unchanged: a committed transaction is in the log, which SQLite replays on
open whatever was checkpointed.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)

CHECKPOINT_EVERY_S = 0.5
CHECKPOINT_LOG_PAGES = 1_000  # the thread checkpoints a log this long (SQLite's own default threshold)
AUTOCHECKPOINT_PAGES = 10_000  # ~40 MB of log: a commit checkpoints only when the thread fell this far behind
JOURNAL_SIZE_LIMIT = 0  # PRAGMA journal_size_limit for every writing connection: a restarted log is cut short
WAL_HEADER_BYTES, FRAME_HEADER_BYTES = 32, 24
GIVE_UP_MISSING_S = 30.0  # a database file missing this long (removed with its folder) ends its checkpointer


class WalCheckpointer:
    """Every `every_s` seconds, runs `PRAGMA wal_checkpoint(PASSIVE)` on the database file at `path` if its
    log holds `min_pages` pages or more and was written since the last checkpoint that copied all of it."""

    def __init__(self, path: str, every_s: float = CHECKPOINT_EVERY_S, min_pages: int = CHECKPOINT_LOG_PAGES):
        self.path = path
        self.every_s = every_s
        self.min_pages = min_pages
        self.looks = 0  # times the log was looked at (for tests and diagnostics)
        self.passes = 0  # checkpoints that ran
        self._min_bytes: int | None = None  # the log's size at min_pages, once the page size is known
        self._copied: tuple[int, int] | None = None  # the log file's (size, mtime) when a checkpoint copied it all
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
                if conn is not None and self._log_is_long(conn):
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

    def _log_is_long(self, conn: sqlite3.Connection) -> bool:
        self.looks += 1
        try:
            st = os.stat(self.path + "-wal")
        except OSError:  # no log (yet, or removed with its database)
            return False
        if self._min_bytes is None:
            try:
                page = int(conn.execute("PRAGMA page_size").fetchone()[0])
            except sqlite3.Error as e:
                log.debug("page size of %s unknown yet: %s", self.path, e)
                return False
            self._min_bytes = WAL_HEADER_BYTES + self.min_pages * (page + FRAME_HEADER_BYTES)
        return st.st_size >= self._min_bytes and (st.st_size, st.st_mtime_ns) != self._copied

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        """One PASSIVE checkpoint; a busy database (another checkpoint running) is simply tried next time."""
        try:
            st = os.stat(self.path + "-wal")
            busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except (OSError, sqlite3.Error) as e:
            log.debug("checkpoint of %s skipped: %s", self.path, e)
            return
        self.passes += 1
        # all of it copied: nothing to do until a commit writes to the log again (its size or time moves)
        self._copied = (st.st_size, st.st_mtime_ns) if not busy and frames == copied else None

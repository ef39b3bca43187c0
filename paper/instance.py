"""One paper broker per state file: an OS lock held for the process lifetime, plus who holds it.

Two brokers on one SQLite file would each keep their own books in memory and overwrite each other's rows.
The lock is `flock` on a sidecar `<state file>.lock`; the kernel drops it when the process dies however it
dies (kill -9 included), so a stale record of a dead broker never blocks a new one. The record (pid, URL,
state file) is only there to name the running broker in the refusal.
"""
from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import IO, Any


class AlreadyRunning(Exception):
    """Another live paper broker holds the state file; the message names it."""


def lock_path(state_file: Path | str) -> Path:
    p = Path(state_file)
    return p.with_name(p.name + ".lock")


def _describe(state_file: Path, rec: dict[str, Any]) -> str:
    who = f"pid {rec.get('pid', '?')}" if rec else "a process that has not written its record yet"
    url = f" on {rec['url']}" if rec.get("url") else ""
    return f"paper broker already running for {display(state_file)}: {who}{url}"


def display(path: Path) -> str:
    """The path relative to the project when inside it (as the user typed it), else absolute."""
    root = Path(__file__).resolve().parent.parent
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)


def _read(f: IO[str]) -> dict[str, Any]:
    f.seek(0)
    try:
        rec = json.loads(f.read() or "{}")
    except ValueError:
        return {}
    return rec if isinstance(rec, dict) else {}


class InstanceLock:
    """Held from acquire() until the process exits (or release())."""

    def __init__(self, state_file: Path | str):
        self.state_file = Path(state_file)
        self.path = lock_path(self.state_file)
        self._f: IO[str] | None = None

    def acquire(self, url: str = "") -> InstanceLock:
        """Take the lock or raise AlreadyRunning naming the holder; then write our record."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - kept open: the lock lives with it
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            rec = _read(f)
            f.close()
            raise AlreadyRunning(_describe(self.state_file, rec)) from None
        self._f = f
        self.update(url)
        return self

    def update(self, url: str) -> None:
        """Rewrite the record, e.g. with the URL once the port is bound."""
        assert self._f is not None, "update() before acquire()"
        rec = {"pid": os.getpid(), "url": url, "state_file": str(self.state_file), "since": round(time.time(), 3)}
        self._f.seek(0)
        self._f.truncate()
        self._f.write(json.dumps(rec))
        self._f.flush()

    def release(self) -> None:
        if self._f is not None:
            self._f.seek(0)
            self._f.truncate()
            self._f.close()  # closing the only descriptor drops the flock
            self._f = None


def holder(state_file: Path | str) -> str | None:
    """The refusal text if a live broker holds `state_file`, else None (the lock is free or never taken)."""
    p = lock_path(state_file)
    try:
        f = open(p, encoding="utf-8")  # noqa: SIM115
    except FileNotFoundError:
        return None
    with f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _describe(Path(state_file), _read(f))
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        return None

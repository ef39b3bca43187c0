"""Whether the daemon is running: the driver records its pid at start-up, a heartbeat every few seconds and
its exit; `status` reads the record and checks the pid.

A pid alone proves little: pids are reused, so the record also keeps the process's start time (from /proc)
and `status` trusts a live pid only when that start time matches. The heartbeat is one small row rewritten
every ALIVE_EVERY_S seconds by the driver's monitor loop (never per tick); a running daemon whose heartbeat
is old is shown as such (stuck, or its database writes fail).
"""
from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.clock import to_ist

log = logging.getLogger(__name__)

DAEMON_KEY = "daemon"
ALIVE_EVERY_S = 5.0  # how often the driver rewrites its heartbeat
STALE_AFTER_S = 60.0  # a heartbeat older than this on a live pid: the daemon is not making progress


def process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22); None if unknown."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        return int(text[text.rindex(")") + 2:].split()[19])  # fields after the command name start at field 3
    except (ValueError, IndexError):
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    except OSError:
        return False
    return True


class DaemonRecord:
    """The driver's side: writes the `daemon` row of daemon_state at start, at each beat and at exit."""

    def __init__(self, db: Any, day: str, mode: str, feed: str):
        self.db = db
        pid = os.getpid()
        self.doc: dict[str, Any] = {"pid": pid, "host": socket.gethostname(), "proc_start": process_start(pid),
                                    "started": time.time(), "heartbeat": time.time(), "day": day, "mode": mode,
                                    "feed": feed, "ended": None, "exit_code": None}
        self.failed = False

    def _write(self) -> None:
        try:
            self.db.set_state(DAEMON_KEY, self.doc)
            if self.failed:
                log.info("heartbeat recorded again")
            self.failed = False
        except Exception as e:  # noqa: BLE001 - status loses its heartbeat; trading goes on
            if not self.failed:
                log.warning("could not record the heartbeat for status: %s", e)
            self.failed = True

    def started(self) -> None:
        self._write()

    def beat(self) -> None:
        self.doc["heartbeat"] = time.time()
        self._write()

    def ended(self, code: int) -> None:
        self.doc.update(heartbeat=time.time(), ended=time.time(), exit_code=code)
        self._write()


def _ist(epoch: float | None) -> str | None:
    return None if epoch is None else to_ist(float(epoch)).strftime("%Y-%m-%d %H:%M:%S IST")


def assess(doc: Mapping[str, Any] | None, now: float | None = None) -> dict[str, Any]:
    """What the record says about the daemon now: running or not, pid, heartbeat age, how the last run ended."""
    now = time.time() if now is None else now
    if not doc:
        return {"running": False, "pid": None, "heartbeat": None, "heartbeat_age_s": None, "ended": None,
                "exit_code": None, "summary": "not running (no run of this version recorded in the database)"}
    pid, hb = doc.get("pid"), doc.get("heartbeat")
    age = None if hb is None else max(0.0, now - float(hb))
    out: dict[str, Any] = {"pid": pid, "host": doc.get("host"), "started": _ist(doc.get("started")),
                           "heartbeat": _ist(hb), "heartbeat_age_s": None if age is None else round(age, 1),
                           "ended": _ist(doc.get("ended")), "exit_code": doc.get("exit_code"), "day": doc.get("day")}
    if doc.get("ended") is not None:
        code = doc.get("exit_code")
        out.update(running=False, summary=f"not running (last run ended {out['ended']}"
                                          f"{'' if code is None else f', exit {code}'})")
        return out
    if doc.get("host") not in (None, socket.gethostname()):
        # another machine's pid cannot be checked: the heartbeat's age is all there is
        running = age is not None and age < STALE_AFTER_S
        out.update(running=running, summary=(f"running on {doc['host']} (pid {pid}, last heartbeat {age:.0f}s ago)"
                                             if running else f"not running on {doc.get('host')} as far as can be "
                                             f"told: last heartbeat {out['heartbeat']}, no exit recorded"))
        return out
    same = isinstance(pid, int) and pid_alive(pid)
    if same and doc.get("proc_start") is not None:
        same = process_start(pid) == doc["proc_start"]  # the pid may belong to another process by now
    if not same:
        out.update(running=False, summary=f"not running (pid {pid} is gone without recording an exit: killed or "
                                          f"crashed; last heartbeat {out['heartbeat']})")
        return out
    stale = age is not None and age > STALE_AFTER_S
    out["live"] = doc.get("live")  # where its Manager serves the live view (address, key file), if it got that far
    out.update(running=True, summary=f"running (pid {pid}, last heartbeat {age:.0f}s ago"
                                     f"{': STALE, the daemon is not making progress' if stale else ''})")
    return out

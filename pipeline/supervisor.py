"""The driver's health-monitoring thread (seed chart 1): notices a dead worker or feed process and restarts it,
and publishes the live view, on a thread of its own.

It used to be a step of the trading loop, so a trading thread waiting on the database (a lock held by another
writer, a slow disk, a PostgreSQL failover) also stopped the detection of dead workers: the feed kept running
into a dead pipe. Here a restart needs only `pipe_lock`, which the trading thread holds while it moves messages
between the workers, the feed and the sequencer, never while it waits on the database or the broker.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import notify
from notify.events import WorkerRestarted

log = logging.getLogger(__name__)

CHECK_EVERY_S = 0.25


class Supervisor:
    """Checks the worker and feed processes every CHECK_EVERY_S; restarts what died (at most `max_restarts`
    times each), or ends the run through `failed` when it cannot go on."""

    def __init__(self, pool: Any, feed: Any, sequencer: Any, pipe_lock: threading.Lock, live_data: bool,
                 summary: dict[str, Any], max_restarts: int, on_pass: Callable[[], None] | None = None,
                 every_s: float = CHECK_EVERY_S):
        self.pool = pool
        self.feed = feed
        self.sequencer = sequencer
        self.pipe_lock = pipe_lock
        self.live_data = live_data
        self.summary = summary
        self.max_restarts = max_restarts
        self.on_pass = on_pass  # the live view's publishing, off the trading thread
        self.every_s = every_s
        self.failed: str | None = None  # why the run must stop; the trading loop reads it
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop checking (before shutdown stops the workers on purpose); waits for a restart under way."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s) and self.failed is None:
            try:
                self.check()
            except Exception:  # noqa: BLE001 - a supervisor that dies silently would hide every later death
                log.exception("supervisor: check failed; stopping the run")
                self.failed = "the supervisor failed"
            if self.on_pass is not None:
                try:
                    self.on_pass()
                except Exception as e:  # noqa: BLE001 - the live view is for readers; trading goes on
                    log.warning("supervisor: could not publish the live view: %s", e)

    def check(self) -> None:
        """One pass: restart dead workers, then a dead feed (live only: a replay cannot start its day again)."""
        for i in self.pool.dead_workers():
            if self._stop.is_set():
                return
            if self.pool.restarts[i] >= self.max_restarts:
                log.error("worker %d died again after %d restarts; stopping (see its log, worker-%d.log)",
                          i, self.pool.restarts[i], i)
                self.failed = f"worker {i} keeps dying"
                return
            with self.pipe_lock:
                self.summary["worker_restarts"] += 1
                self.pool.restart(i, self.feed, self.sequencer)
            notify.emit(WorkerRestarted(f"worker {i}", self.pool.restarts[i]))
        feed = self.feed
        if feed.failed and not self._stop.is_set():
            if not self.live_data:
                log.error("the feed process died (exit code %s); the replay cannot go on", feed.proc.exitcode)
                self.failed = "the feed process died"
                return
            if feed.restarts >= self.max_restarts:
                log.error("the feed process died again after %d restarts; stopping (see feed.log)", feed.restarts)
                self.failed = "the feed process keeps dying"
                return
            feed.restart()  # its own locks: the trading thread only reads cycles it reported and sends commands
            notify.emit(WorkerRestarted("the feed process", feed.restarts))

    def health(self) -> dict[str, Any]:
        """Worker and feed health for the live view."""
        now = time.time()
        workers = {}
        for i, p in enumerate(self.pool.procs):
            workers[str(i)] = {"alive": p is not None and p.is_alive(), "pid": None if p is None else p.pid,
                               "restarts": self.pool.restarts[i]}
        f = self.feed
        return {"workers": workers, "feed": {"alive": f.proc is not None and f.proc.is_alive(),
                                             "pid": None if f.proc is None else f.proc.pid,
                                             "restarts": f.restarts, "finished": f.finished,
                                             "dispatched": f.dispatched,
                                             "rejected_by_reason": dict(getattr(f, "rejected", {}))},
                "bad_at_workers": self.pool.bad_ticks(), "checked_at": now, "failed": self.failed}

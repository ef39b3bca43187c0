"""The worker processes: start them, notice when one dies, restart it from its last checkpoint with the
same symbols, send them the TradeManager's feedback, and stop them in order (ask, wait, terminate, kill).

Each worker reads ticks from a pipe whose writing end belongs to the feed process (pipeline.dispatcher), and
feedback from its control pipe, which the driver writes without a feeder thread (pipeline.control); it writes
its events into a pipe of its own that the driver reads (pipeline.events). The driver
keeps neither end of a tick pipe once both processes have theirs: then a dead worker's pipe refuses writes at
once, and a dead feed's pipe ends (EOF) for its worker.

This is the driver's side of the workers. Inside a worker process, worker.run_worker is the loop and
market_data_handler.MarketDataHandler handles each tick.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from core.config import Config
from core.errors import StartupError
from pipeline.control import ControlWriter
from pipeline.events import WorkerEvents
from pipeline.messages import ApplyFeedback, StopWorker, UseTickPipe, WorkerProgress, WorkerReady
from worker import run_worker

log = logging.getLogger(__name__)


class WorkerPool:
    def __init__(self, ctx: Any, cfg: Config, symbols: list[list[str]], out_q: WorkerEvents, db_url: str | None,
                 secrets: list[str], broker: tuple[str, str] | None, log_channel: Callable[[str], Any] | None = None,
                 warmup: tuple[dict[str, list[Any]], int] | None = None,
                 resume: tuple[dict[str, Any], int] | None = None):
        """`warmup`: history candles by symbol and the time they end at (pipeline.warmup); `resume`: the open
        positions the strategies take up, by symbol, and the run's start (pipeline.resume); both for a worker
        starting without a checkpoint. `out_q`: the workers' event pipes, one per worker."""
        self.ctx = ctx
        self.cfg = cfg
        self.symbols = symbols
        self.out_q = out_q
        self.db_url = db_url
        self.secrets = secrets
        self.broker = broker
        self.log_channel = log_channel  # the driver's log sink: a new pipe per worker process
        ctl = [ctx.Pipe(duplex=False) for _ in symbols]
        self.control_readers: list[Any] = [r for r, _w in ctl]  # until the worker has its own
        self.controls = [ControlWriter(w) for _r, w in ctl]
        pipes = [ctx.Pipe(duplex=False) for _ in symbols]
        self.tick_readers: list[Any] = [r for r, _w in pipes]  # until the worker has its own
        self.tick_writers: list[Any] = [w for _r, w in pipes]  # until the feed process has its own
        # feedback sent since each worker's last checkpoint, numbered, for a restarted worker
        self.ctl_lock = threading.Lock()
        self.ctl_seq = [0] * len(symbols)
        self.ctl_sent: list[deque] = [deque() for _ in symbols]
        self.down: set[int] = set()
        self.procs: list[Any] = [None] * len(symbols)
        self.ready: set[int] = set()
        self.pids: dict[int, int] = {}
        self.stopped: dict[int, dict] = {}
        self.checkpoints: dict[int, tuple[int, dict, tuple[float, float]]] = {}
        self.stats: dict[int, WorkerProgress] = {}
        self.restarts = [0] * len(symbols)
        self.stopping = False
        self.max_held_ticks = 0  # the most ticks one worker held back for pending signals (a memory figure)
        self.disabled: dict[str, str] = {}  # symbol -> reason: strategies off for the day, kept off by a restart
        self.warmup = warmup
        self.resume = resume

    def _spawn(self, i: int, restore: dict | None) -> None:
        reader, self.tick_readers[i] = self.tick_readers[i], None
        ctl_reader, self.control_readers[i] = self.control_readers[i], None
        log_conn = self.log_channel(f"worker-{i}.log") if self.log_channel is not None else None
        warm = None
        if restore is None and self.warmup is not None:  # a checkpoint carries its strategies' state instead
            got, now = self.warmup
            warm = ({s: got[s] for s in self.symbols[i] if s in got}, now)
        held = None
        if restore is None and self.resume is not None and self.resume[0]:  # a checkpoint has the positions
            positions, now = self.resume
            held = ({s: positions[s] for s in self.symbols[i] if s in positions}, now)
        p = self.ctx.Process(target=run_worker, name=f"worker-{i}",
                             args=(i, self.symbols[i], self.cfg, reader, ctl_reader, self.out_q.writer(i),
                                   self.db_url, self.secrets, self.broker, restore, dict(self.disabled), log_conn,
                                   warm, held),
                             daemon=True)
        try:
            p.start()
        finally:
            reader.close()
            ctl_reader.close()  # the worker's alone: its exit makes writes fail rather than fill the pipe
            self.out_q.handed_over(i)  # likewise: its exit ends its event pipe for the driver
            if log_conn is not None:
                log_conn.close()  # the worker has its own: its exit ends the pipe for the sink
        self.procs[i] = p

    def take_tick_writers(self) -> list[Any]:
        """The writing ends of the tick pipes, for the feed process (the caller closes them once it has them)."""
        writers, self.tick_writers = self.tick_writers, [None] * len(self.symbols)
        return writers

    def new_tick_pipes(self) -> None:
        """For a restarted feed process: every worker is told to go on with a new pipe once its old one ends."""
        from multiprocessing.reduction import ForkingPickler

        for i in range(len(self.symbols)):
            reader, self.tick_writers[i] = self.ctx.Pipe(duplex=False)
            # pickled here, not later on the queue's thread: the pickle holds a duplicate, so ours can go now
            self.controls[i].put(UseTickPipe(bytes(ForkingPickler.dumps(reader))))
            reader.close()

    def send_control(self, i: int, ctl: Any) -> None:
        """Feedback for worker i, kept until a checkpoint shows the worker has applied it."""
        with self.ctl_lock:
            self.ctl_seq[i] += 1
            msg = ApplyFeedback(self.ctl_seq[i], ctl)
            self.ctl_sent[i].append(msg)
            if i not in self.down:
                self.controls[i].put(msg)

    def flush_control(self) -> None:
        """Write on the feedback a worker's pipe had no room for (the driver's loop calls this each turn)."""
        for c in self.controls:
            if c.pending_bytes:
                c.flush()

    def checkpointed(self, i: int, seq: int, state: dict, through: tuple[float, float]) -> None:
        self.checkpoints[i] = (seq, state, through)
        applied = state.get("ctl_seq", 0)
        with self.ctl_lock:
            sent = self.ctl_sent[i]
            while sent and sent[0].n <= applied:
                sent.popleft()

    def start(self) -> None:
        for i in range(len(self.symbols)):
            self._spawn(i, None)

    def wait_ready(self, timeout_s: float) -> None:
        """WorkerReady events are consumed by the driver's loop; here we only wait for the processes to be up."""
        deadline = time.monotonic() + timeout_s
        pending: list[Any] = []
        while len(self.ready) < len(self.symbols):
            if time.monotonic() > deadline:
                raise StartupError(f"workers not ready after {timeout_s:.0f}s: "
                                   f"{sorted(set(range(len(self.symbols))) - self.ready)} (see logs/worker-N.log)")
            dead = [i for i, p in enumerate(self.procs) if not p.is_alive()]
            if dead:
                raise StartupError(f"worker(s) {dead} exited during start-up (see logs/worker-N.log)")
            try:
                msg = self.out_q.get(timeout=0.1)
            except queue.Empty:
                continue
            if isinstance(msg, WorkerReady):
                self.ready.add(msg.worker)
                self.pids[msg.worker] = msg.pid
            else:
                pending.append(msg)
        self.out_q.put_back(pending)  # nothing but WorkerReady is expected before the feed starts; keep order anyway
        log.info("%d workers ready (pids %s)", len(self.ready), " ".join(str(self.pids[i]) for i in sorted(self.pids)))

    def dead_workers(self) -> list[int]:
        if self.stopping:
            return []
        return [i for i, p in enumerate(self.procs) if p is not None and not p.is_alive()]

    def restart(self, i: int, feed: Any, sequencer: Any) -> None:
        """Same symbols, state from the last checkpoint; the feed process resends the ticks sent since then into
        a new pipe, and the feedback the checkpoint had not seen goes on a new control queue."""
        old = self.procs[i]
        log.error("worker %d (pid %s) died with exit code %s; restarting it with its %d symbols",
                  i, old.pid, old.exitcode, len(self.symbols[i]))
        feed.worker_down(i)
        with self.ctl_lock:
            self.down.add(i)
        self.restarts[i] += 1
        self.controls[i].close()
        ctl_reader, ctl_writer = self.ctx.Pipe(duplex=False)
        self.control_readers[i], self.controls[i] = ctl_reader, ControlWriter(ctl_writer)
        self.out_q.renew(i)  # what the dead worker wrote after its checkpoint, its replacement writes again
        reader, writer = self.ctx.Pipe(duplex=False)
        self.tick_readers[i] = reader
        ckpt = self.checkpoints.get(i)
        restore = None
        if ckpt is not None:
            seq, state, through = ckpt
            restore = dict(state, seq=seq)
            sequencer.reset_worker(i, *through)
            held = state.get("handler", {}).get("held_ticks", 0)
            if held:
                feed.count_dropped(held)
                log.warning("worker %d: %d ticks it held for pending signals at its checkpoint are lost (counted "
                            "as dropped)", i, held)
        else:
            sequencer.reset_worker(i, -1.0, -1.0)
        self._spawn(i, restore)
        with self.ctl_lock:
            for msg in self.ctl_sent[i]:
                self.controls[i].put(msg)
            self.down.discard(i)
        feed.worker_replaced(i, writer)
        log.info("worker %d restarted (pid %s) from its checkpoint", i, self.procs[i].pid)

    def note_stats(self, i: int, stats: WorkerProgress) -> None:
        self.stats[i] = stats
        if stats.held_ticks > self.max_held_ticks:
            self.max_held_ticks = stats.held_ticks

    def bad_ticks(self) -> int:
        total = sum(s.bad_ticks for s in self.stats.values())
        return max(total, sum(st.get("bad_ticks", 0) for st in self.stopped.values()))

    def stop(self, out_q: WorkerEvents, on_message: Callable[[Any], None], timeout_s: float = 10.0) -> None:
        """Ask every worker to drain and stop; terminate, then kill, the ones that do not."""
        self.stopping = True
        for c in self.tick_readers + self.tick_writers + self.control_readers:  # never handed over (start-up failed)
            if c is not None:
                c.close()
        for i, ctl in enumerate(self.controls):
            if self.procs[i] is not None and self.procs[i].is_alive():
                ctl.put(StopWorker())
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and any(p is not None and p.is_alive() for p in self.procs):
            self.flush_control()
            try:
                on_message(out_q.get(timeout=0.05))
            except queue.Empty:
                pass
        for p in self.procs:
            if p is not None and p.is_alive():
                log.warning("worker %s did not stop in %.0fs; terminating it", p.name, timeout_s)
                p.terminate()
                p.join(3)
                if p.is_alive():
                    p.kill()
                    p.join(1)
        while True:  # what the workers said on their way out
            try:
                on_message(out_q.get_nowait())
            except (queue.Empty, OSError, ValueError):
                break
        for ctl in self.controls:
            ctl.close()

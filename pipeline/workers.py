"""The worker processes: start them, notice when one dies, restart it from its last checkpoint with the
same symbols, and stop them in order (ask, wait, terminate, kill)."""
from __future__ import annotations

import logging
import queue
import time
from typing import Any, Callable

from core.config import Config
from core.errors import StartupError
from pipeline.messages import STOP
from worker import run_worker

log = logging.getLogger(__name__)


class WorkerPool:
    def __init__(self, ctx: Any, cfg: Config, symbols: list[list[str]], out_q: Any, db_url: str | None,
                 secrets: list[str], broker: tuple[str, str] | None):
        self.ctx = ctx
        self.cfg = cfg
        self.symbols = symbols
        self.out_q = out_q
        self.db_url = db_url
        self.secrets = secrets
        self.broker = broker
        self.queues = [ctx.Queue() for _ in symbols]
        self.control_queues = [ctx.Queue() for _ in symbols]
        self.procs: list[Any] = [None] * len(symbols)
        self.ready: set[int] = set()
        self.pids: dict[int, int] = {}
        self.stopped: dict[int, dict] = {}
        self.checkpoints: dict[int, tuple[int, dict, float]] = {}
        self.stats: dict[int, tuple] = {}
        self.restarts = [0] * len(symbols)
        self.stopping = False
        self.max_held_ticks = 0  # the most ticks one worker held back for pending signals (a memory figure)

    def _spawn(self, i: int, restore: dict | None) -> None:
        p = self.ctx.Process(target=run_worker, name=f"worker-{i}",
                             args=(i, self.symbols[i], self.cfg, self.queues[i], self.control_queues[i], self.out_q,
                                   self.db_url,
                                   self.secrets, self.broker, restore), daemon=True)
        p.start()
        self.procs[i] = p

    def start(self) -> None:
        for i in range(len(self.symbols)):
            self._spawn(i, None)

    def wait_ready(self, timeout_s: float) -> None:
        """READY messages are consumed by the driver's loop; here we only wait for the processes to be up."""
        from pipeline.messages import READY

        deadline = time.monotonic() + timeout_s
        pending: list[tuple] = []
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
            if msg[0] == READY:
                self.ready.add(msg[1])
                self.pids[msg[1]] = msg[2]
            else:
                pending.append(msg)
        for m in pending:  # nothing but READY is expected before the feed starts; keep order anyway
            self.out_q.put(m)
        log.info("%d workers ready (pids %s)", len(self.ready), " ".join(str(self.pids[i]) for i in sorted(self.pids)))

    def dead_workers(self) -> list[int]:
        if self.stopping:
            return []
        return [i for i, p in enumerate(self.procs) if p is not None and not p.is_alive()]

    def restart(self, i: int, dispatcher: Any, sequencer: Any) -> None:
        """Same symbols, state from the last checkpoint, and the ticks sent since then again."""
        old = self.procs[i]
        log.error("worker %d (pid %s) died with exit code %s; restarting it with its %d symbols",
                  i, old.pid, old.exitcode, len(self.symbols[i]))
        dispatcher.mark_down(i)
        self.restarts[i] += 1
        q = self.ctx.Queue()  # the old queues may be locked by the dead reader
        self.queues[i] = q
        self.control_queues[i] = self.ctx.Queue()
        ckpt = self.checkpoints.get(i)
        restore = None
        if ckpt is not None:
            seq, state, through = ckpt
            restore = dict(state, seq=seq)
            sequencer.reset_worker(i, through)
            held = state.get("handler", {}).get("held_ticks", 0)
            if held:
                dispatcher.count_dropped(held)
                log.warning("worker %d: %d ticks it held for pending signals at its checkpoint are lost (counted "
                            "as dropped)", i, held)
        else:
            sequencer.reset_worker(i, -1.0)
        self._spawn(i, restore)
        resent = dispatcher.replace_queue(i, q, self.control_queues[i])
        log.info("worker %d restarted (pid %s); %d ticks resent since its checkpoint", i, self.procs[i].pid, resent)

    def note_stats(self, i: int, stats: tuple) -> None:
        self.stats[i] = stats
        if stats[4] > self.max_held_ticks:
            self.max_held_ticks = stats[4]

    def bad_ticks(self) -> int:
        total = sum(s[1] for s in self.stats.values())
        return max(total, sum(st.get("bad_ticks", 0) for st in self.stopped.values()))

    def stop(self, out_q: Any, on_message: Callable[[tuple], None], timeout_s: float = 10.0) -> None:
        """Ask every worker to drain and stop; terminate, then kill, the ones that do not."""
        self.stopping = True
        for i, q in enumerate(self.queues):
            if self.procs[i] is not None and self.procs[i].is_alive():
                q.put((STOP,))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and any(p is not None and p.is_alive() for p in self.procs):
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
        for q in self.queues + self.control_queues:
            q.close()
            q.cancel_join_thread()

"""The feed process: the tick feed (the Fyers socket live, a SimulatedWebSocket in replay) and its
TickBatcher run here, and send Cycles of pickled per-worker batches to the driver through a pipe.

Why a process of its own: routing and pickling every tick is most of the daemon's per-tick work outside the
workers. In the driver it fought the TradeManager, the signal loop and the queue threads for one GIL, and every
database call or queue read there waited for the feed thread to let go. Here it has its own interpreter; the
driver only copies bytes into the worker queues. Live and replay run this same path.
"""
from __future__ import annotations

import logging
import os
import signal as signals
import threading
import time
from typing import Any, Callable

from core.clock import ist_epoch
from core.config import Config, Secrets
from core.errors import StartupError
from pipeline.batcher import Cycle, TickBatcher

log = logging.getLogger(__name__)

# How old a cycle may get before it goes out while ticks keep coming: live and paced replay care about
# tick-to-signal latency; a replay at full speed cares about throughput (a cycle costs a marker to and a
# watermark from every worker, so fewer, fuller cycles).
REAL_TIME_MAX_AGE_S = 0.001
FULL_SPEED_MAX_AGE_S = 0.05

STARTED = "started"
ERROR = "error"
CYCLE = "cycle"


def make_feed(cfg: Config, secrets: Secrets, opts: Any, on_message: Callable[[Any], None],
              on_idle: Callable[..., None] | None = None) -> Any:
    """The Fyers socket when LIVE_DATA=true, else a SimulatedWebSocket replaying the chosen source from the day's
    start, or from --start (a restarted replay is answered from the database up to where it stopped)."""
    tickers = [s.fyers for s in cfg.symbols]
    if opts.live_data:
        from core.session import in_market_hours
        from feeds.fyers import FeedError, FyersFeed

        feed = FyersFeed(secrets.fyers_app_id, secrets.fyers_access_token, tickers, on_message, on_idle=on_idle,
                         log_dir=cfg.resolve_path(cfg.monitoring.log_dir),
                         stale_after_s=cfg.monitoring.feed_silence_seconds,
                         in_market_hours=lambda: in_market_hours(cfg.session, time.time()))
        try:
            feed.start()
        except FeedError as e:
            raise StartupError(f"Fyers data socket: {e}") from None
        return feed
    from core.faults import feed_drops  # DAEMON_FEED_DROP_AT, for the feed-recovery tests; off unless set
    from feeds.simulated import SimulatedWebSocket

    if opts.source == "synthetic":
        from feeds.synthetic import generate_day

        def source() -> Any:
            return generate_day(tickers, opts.day, cfg.replay.seed, cfg.session)
    else:
        from feeds.recorded import read_ticks

        def source() -> Any:
            return read_ticks(opts.source)
    start_after = None if opts.start is None else ist_epoch(opts.day, opts.start) - 1
    feed = ReplayFeed(SimulatedWebSocket(source, on_message=on_message, speed=opts.speed, on_idle=on_idle,
                                         start_after=start_after, disconnects=feed_drops(opts.day)), tickers)
    feed.start()
    return feed


class ReplayFeed:
    """Drives a SimulatedWebSocket the way the live adapter drives the Fyers socket."""

    def __init__(self, sock: Any, tickers: list[str]):
        self.sock = sock
        self.tickers = tickers

    def start(self) -> None:
        self.sock.on_connect = self._on_connect
        self.sock.connect()

    def _on_connect(self) -> None:
        """Every (re)connection: the socket forgets subscriptions when the line drops, so subscribe again."""
        if self.sock.reconnects:
            log.info("replay feed reconnected after a drop: resubscribing %d symbols", len(self.tickers))
        self.sock.subscribe(symbols=self.tickers, data_type="SymbolUpdate")

    @property
    def finished(self) -> bool:
        return bool(self.sock.finished)

    def close(self) -> None:
        self.sock.close_connection()


def _recording(record: Callable[[Any], None], dispatch: Callable[[Any], None]) -> Callable[[Any], None]:
    """on_message that also records each tick (not the socket's control messages)."""
    def on_message(msg: Any) -> None:
        if type(msg) is dict and "s" not in msg:
            record(msg)
        dispatch(msg)
    return on_message


def run_feed(cfg: Config, secrets: Secrets, opts: Any, worker_of: dict[str, int], n_workers: int, conn: Any,
             stop: Any, log_secrets: list[str]) -> None:
    """Process entry point (spawned): run the feed until it finishes (replay) or the driver says stop (a
    message on `stop`, or its end closing), then send the last cycle. A pipe, not an Event: notifying a
    multiprocessing Event whose waiter was killed blocks forever."""
    from core.faults import die_with_parent, parent_gone
    from core.logs import setup_logging

    signals.signal(signals.SIGINT, signals.SIG_IGN)  # the driver decides when the feed stops
    die_with_parent()
    setup_logging(cfg.monitoring.log_level, cfg.resolve_path(cfg.monitoring.log_dir), log_secrets,
                  filename="feed.log")
    full_speed = not opts.live_data and opts.speed is None
    batcher = TickBatcher(worker_of, n_workers, lambda c: conn.send((CYCLE, c)),
                          max_age_s=FULL_SPEED_MAX_AGE_S if full_speed else REAL_TIME_MAX_AGE_S)
    on_message, recorder = batcher.dispatch, None
    if opts.record is not None:
        from feeds.recorder import TickRecorder

        try:
            recorder = TickRecorder(opts.record)
        except OSError as e:
            conn.send((ERROR, f"--record: cannot write {opts.record}: {e.strerror or e}"))
            return
        on_message = _recording(recorder.record, batcher.dispatch)
    try:
        feed = make_feed(cfg, secrets, opts, on_message, batcher.idle)
    except StartupError as e:
        conn.send((ERROR, str(e)))
        if recorder is not None:
            recorder.close()
        return
    batcher.start_flusher()
    conn.send((STARTED, os.getpid()))
    try:
        while not stop.poll(0.05):
            if feed.finished or parent_gone():
                break
    finally:
        feed.close()
        batcher.stop()
        try:
            batcher.flush(final=True)
        except (BrokenPipeError, OSError):
            pass  # the driver is gone
        if recorder is not None:
            recorder.close()
    log.info("feed stopped: %d ticks dispatched", batcher.dispatched)


class FeedProcess:
    """The driver's handle on the feed process: starts it, relays its cycles into the DataDispatcher (waiting
    while workers are too far behind, which in turn makes the feed wait on the pipe), and stops it."""

    def __init__(self, ctx: Any, cfg: Config, secrets: Secrets, opts: Any, worker_of: dict[str, int],
                 dispatcher: Any):
        self.ctx = ctx
        self.cfg = cfg
        self.secrets = secrets
        self.opts = opts
        self.worker_of = worker_of
        self.dispatcher = dispatcher
        self.proc: Any = None
        self.conn: Any = None
        self.stop_send: Any = None
        self.relay: threading.Thread | None = None
        self.finished = False  # the last cycle was delivered
        self.closing = False
        self.restarts = 0

    def start(self, timeout_s: float = 60.0) -> None:
        recv, send = self.ctx.Pipe(duplex=False)
        stop_recv, self.stop_send = self.ctx.Pipe(duplex=False)
        self.proc = self.ctx.Process(target=run_feed, name="feed", daemon=True, args=(
            self.cfg, self.secrets, self.opts, self.worker_of, self.dispatcher.n, send, stop_recv,
            self.secrets.secret_values()))
        self.proc.start()
        send.close()  # ours is the reading end: EOF when the feed process ends
        stop_recv.close()
        self.conn = recv
        deadline = time.monotonic() + timeout_s
        while not recv.poll(0.1):
            if not self.proc.is_alive() or time.monotonic() > deadline:
                self._end_process()
                raise StartupError(f"the feed process did not start (exit code {self.proc.exitcode}; see logs/feed.log)")
        try:
            kind, value = recv.recv()
        except EOFError:
            self._end_process()
            raise StartupError("the feed process exited during start-up (see logs/feed.log)") from None
        if kind == ERROR:
            self._end_process()
            raise StartupError(value)
        log.info("feed process started (pid %s)", value)
        self.relay = threading.Thread(target=self._relay, args=(recv,), name="feed-relay", daemon=True)
        self.relay.start()

    def _relay(self, conn: Any) -> None:
        d = self.dispatcher
        while True:
            try:
                kind, cycle = conn.recv()
            except (EOFError, OSError):
                return
            if kind != CYCLE:
                continue
            d.deliver(cycle)
            if cycle.final:
                self.finished = True
                return
            if d.max_lag and not self.closing:
                d.wait_for_workers()

    @property
    def failed(self) -> bool:
        """The feed process ended without its last cycle (killed, crashed)."""
        return not self.finished and not self.closing and self.proc is not None and not self.proc.is_alive() \
            and (self.relay is None or not self.relay.is_alive())

    @property
    def last_time(self) -> float:
        return float(self.dispatcher.max_ts)

    def restart(self) -> None:
        """Live only: a new feed process (the Fyers adapter subscribes again on connect)."""
        self.restarts += 1
        log.error("the feed process died (exit code %s); starting it again", self.proc.exitcode)
        self._end_process()
        self.start()

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the feed; deliver what it had batched; bounded."""
        self.closing = True
        self.dispatcher.stop()  # a relay waiting for slow workers lets go
        if self.stop_send is not None:
            try:
                self.stop_send.send("stop")
            except OSError:
                pass  # the feed process is gone already
        if self.relay is not None:
            self.relay.join(timeout_s)
        self._end_process()

    def _end_process(self) -> None:
        p = self.proc
        if p is None:
            return
        p.join(5)
        if p.is_alive():
            log.warning("feed process did not stop; terminating it")
            p.terminate()
            p.join(2)
            if p.is_alive():
                p.kill()
                p.join(1)
        for c in (self.conn, self.stop_send):
            if c is not None:
                c.close()
        self.conn = self.stop_send = None


__all__ = ["FeedProcess", "ReplayFeed", "make_feed", "run_feed", "Cycle"]

"""The feed process: the tick feed (the Fyers socket live, a SimulatedWebSocket in replay), its TickBatcher
and the DataDispatcher run here and write each worker's batches straight into that worker's tick pipe.

Why a process of its own: routing and pickling every tick is most of the daemon's per-tick work outside the
workers. In the driver it fought the TradeManager, the signal loop and the queue threads for one GIL, and every
database call or queue read there waited for the feed thread to let go. The driver hears a short report per
cycle (counts, feed time) and sends commands back (checkpoints, worker restarts, the signals' low watermark).
Live and replay run this same path.
"""
from __future__ import annotations

import logging
import os
import signal as signals
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from core.clock import ist_epoch
from core.config import Config, Secrets
from core.enums import TickPersistence
from core.errors import StartupError
from core.gc_tuning import REAL_TIME_YOUNG_EVERY, YOUNG_EVERY, tune_for_ticks
from pipeline.batcher import TickBatcher
from pipeline.dispatcher import DataDispatcher
from pipeline.messages import (
    END_OF_FEED,
    CycleDelivered,
    FeedCommand,
    FeedFailed,
    FeedReport,
    FeedStarted,
    ForgetThrough,
    MarkWorkerDown,
    ReplaceTickPipe,
    SetLowWatermark,
    StopFeed,
    TicksResent,
)
from pipeline.tick_validator import TickValidator
from pipeline.tick_writer_process import WriterLink, run_tick_writer

log = logging.getLogger(__name__)

# How old a cycle may get before it goes out while ticks keep coming: live and paced replay care about
# tick-to-signal latency; a replay at full speed cares about throughput (a cycle costs a frame to and a
# watermark from every worker, so fewer, fuller cycles).
REAL_TIME_MAX_AGE_S = 0.0003
FULL_SPEED_MAX_AGE_S = 0.05
LOW_EVERY_S = 0.05


def make_feed(cfg: Config, secrets: Secrets, opts: Any, on_message: Callable[[Any], None],
              on_idle: Callable[..., None] | None = None,
              on_columns: Callable[[Any], None] | None = None) -> Any:
    """The Fyers socket when LIVE_DATA=true, else a SimulatedWebSocket replaying the chosen source from the day's
    start, or from --start (a restarted replay is answered from the database up to where it stopped). The
    synthetic day at full speed reaches `on_columns` as columns, when given (the same ticks, in bulk)."""
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
        from feeds.synthetic import SyntheticDay

        def source() -> Any:
            return SyntheticDay(tickers, opts.day, cfg.replay.seed, cfg.session)
    else:
        from feeds.recorded import read_ticks

        def source() -> Any:
            return read_ticks(opts.source)
    start_after = None if opts.start is None else ist_epoch(opts.day, opts.start) - 1
    feed = ReplayFeed(SimulatedWebSocket(source, on_message=on_message, speed=opts.speed, on_idle=on_idle,
                                         start_after=start_after, disconnects=feed_drops(opts.day),
                                         on_columns=on_columns), tickers)
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


def make_validator(cfg: Config, opts: Any) -> TickValidator:
    """The feed's TickValidator. Its clock starts at the replay's --start, or the session's open (pre-open ticks
    are behind it, never ahead); live, it is never behind the wall clock, so a quiet spell is no gap."""
    md = cfg.market_data
    if opts.live_data:
        start, wall = None, time.time
    else:
        start, wall = ist_epoch(opts.day, max(opts.start or cfg.session.open, cfg.session.open)), None
    return TickValidator({s.fyers for s in cfg.symbols}, max_ahead_s=md.max_ahead_s,
                         gap_confirm_ticks=md.gap_confirm_ticks, max_price_move_pct=md.max_price_move_pct,
                         start=start, wall=wall)


def make_writer(cfg: Config, writer_conns: tuple[Any, Any] | None, live: bool = False) -> WriterLink | None:
    """The feed's end of its tick writer process (None: market_data.persist off, or no database); `live`: a
    database far behind costs ticks of the record, never a wait of the feed."""
    if writer_conns is None:
        return None
    out, acks = writer_conns
    return WriterLink(out, acks, drop_when_behind=live)


def _recording(record: Callable[[Any], None], dispatch: Callable[[Any], None]) -> Callable[[Any], None]:
    """on_message that also records each tick (not the socket's control messages)."""
    def on_message(msg: Any) -> None:
        if type(msg) is dict and "s" not in msg:
            record(msg)
        dispatch(msg)
    return on_message


def run_feed(cfg: Config, secrets: Secrets, opts: Any, worker_of: dict[str, int], pipes: list[Any], conn: Any,
             commands: Any, log_secrets: list[str], first_pos: int = 0, first_seq: int = 0,
             log_sink: Any = None, writer_conns: tuple[Any, Any] | None = None) -> None:
    """Process entry point (spawned): run the feed until it finishes (replay) or the driver says stop (a
    message on `commands`, or its end closing), then send the last cycle. Commands come on a pipe, not through
    multiprocessing Events: notifying an Event whose waiter was killed blocks forever. `writer_conns`: the
    pipes to the tick writer process that persists the routed ticks (market_data.persist); the last batch is
    written before the last cycle goes out."""
    from core.faults import die_with_parent, parent_gone, started_report_delay
    from core.logs import setup_logging

    signals.signal(signals.SIGINT, signals.SIG_IGN)  # the driver decides when the feed stops
    die_with_parent()
    setup_logging(cfg.monitoring.log_level, cfg.resolve_path(cfg.monitoring.log_dir), log_secrets,
                  filename="feed.log", sink=log_sink)
    full_speed = not opts.live_data and opts.speed is None
    report_lock = threading.Lock()

    def report(msg: FeedReport) -> None:
        with report_lock:
            conn.send(msg)

    dispatcher = DataDispatcher(pipes, report, first_seq=first_seq)
    validator = make_validator(cfg, opts)
    writer = make_writer(cfg, writer_conns, live=opts.live_data)
    batcher = TickBatcher(worker_of, len(pipes), dispatcher.deliver,
                          max_age_s=FULL_SPEED_MAX_AGE_S if full_speed else REAL_TIME_MAX_AGE_S, first_pos=first_pos,
                          validator=validator, writer=writer)
    on_message, recorder = batcher.dispatch, None
    on_columns: Callable[[Any], None] | None = batcher.dispatch_columns  # the synthetic day, in bulk
    if opts.record is not None:
        from feeds.recorder import TickRecorder

        try:
            recorder = TickRecorder(opts.record)
        except OSError as e:
            conn.send(FeedFailed(f"--record: cannot write {opts.record}: {e.strerror or e}"))
            return
        on_message = _recording(recorder.record, batcher.dispatch)
        on_columns = None  # the recorder writes each tick as it came: the day goes one tick at a time
    try:
        if not opts.live_data:
            from core.faults import injected_feed  # DAEMON_INJECT_TICKS, for the bad-tick tests; off unless set
            on_message, on_columns = injected_feed(on_message, on_columns)
        feed = make_feed(cfg, secrets, opts, on_message, batcher.idle, on_columns)
    except StartupError as e:
        conn.send(FeedFailed(str(e)))
        if recorder is not None:
            recorder.close()
        if writer is not None:
            writer.close()
        return
    tune_for_ticks(YOUNG_EVERY if full_speed else REAL_TIME_YOUNG_EVERY)
    batcher.start_flusher()
    stopping = threading.Event()

    def serve_commands() -> None:
        """On a thread of its own: the feed's threads may be waiting for a command (a new low watermark)
        while holding the batcher's lock, so whatever takes that lock must not be what reads commands."""
        try:
            while True:
                msg = commands.recv()
                if isinstance(msg, StopFeed):
                    break
                dispatcher.command(msg)
        except (EOFError, OSError):
            pass  # the driver is gone
        dispatcher.stop()
        stopping.set()

    threading.Thread(target=serve_commands, name="feed-commands", daemon=True).start()
    started_report_delay()  # tests only: the feed's first cycles then reach the driver before this report
    conn.send(FeedStarted(os.getpid()))
    try:  # until the driver says stop, also after a replay ends: a worker may yet need its ticks resent
        while not stopping.wait(0.05) and not parent_gone():
            if feed.finished and not dispatcher.finished:
                batcher.flush(final=True)
    finally:
        dispatcher.stop()
        feed.close()
        batcher.stop()
        try:
            batcher.flush(final=True)
        except (BrokenPipeError, OSError):
            pass  # the driver is gone
        if recorder is not None:
            recorder.close()
        if writer is not None:
            writer.close()  # the final cycle wrote the rest already, unless the driver went first
        dispatcher.close()
    log.info("feed stopped: %d ticks dispatched, %d rejected%s%s", batcher.dispatched, validator.rejected,
             "".join(f"; {r}: {n}" for r, n in sorted(validator.counts.items())),
             "" if writer is None else f"; {writer.written} persisted" + (
                 f", {writer.failed} not written (database errors)" if writer.failed else "") + (
                 f", {writer.dropped} left out (database behind)" if writer.dropped else ""))


class FeedProcess:
    """The driver's handle on the feed process: starts it, reads its per-cycle reports, passes it the driver's
    commands (checkpoints, worker restarts, the signals' low watermark) and stops it."""

    def __init__(self, ctx: Any, cfg: Config, secrets: Secrets, opts: Any, worker_of: dict[str, int],
                 pool: Any, log_channel: Callable[[str], Any] | None = None, db_url: str | None = None):
        self.ctx = ctx
        self.db_url = db_url  # where the tick writer process persists ticks (market_data.persist)
        self.writer_proc: Any = None  # started with each feed process when ticks are persisted
        self.log_channel = log_channel  # the driver's log sink: a new pipe per feed process
        self.cfg = cfg
        self.secrets = secrets
        self.opts = opts
        self.worker_of = worker_of
        self.pool = pool
        self.proc: Any = None
        self.conn: Any = None
        self.cmd: Any = None
        self.cmd_lock = threading.Lock()
        self.reader: threading.Thread | None = None
        self.finished = False  # the last cycle was delivered
        self.closing = False
        self.restarts = 0
        self.dispatched = 0
        self.unroutable = 0
        self.not_ticks = 0
        self.rejected: dict[str, int] = {}  # ticks the feed's validator refused, by reason
        self.dropped = 0  # ticks a worker restart could not be given again (the feed's count and the workers')
        self._feed_dropped = 0
        self.persisted = 0  # ticks written to the database, by every feed process of the run
        self._feed_persisted = 0
        self.max_ts = 0
        self.max_pos = 0
        self.max_seq = 0
        self._low_sent: float | None = None
        self._low_at = 0.0
        # (seq, through_ts, through_pos, workers sent) per cycle, for the sequencer on the driver's main thread,
        # which waits on wake_fd as well as on the workers' queue
        self.delivered: deque = deque()
        # the main thread wants a wake-up per report (a signal waits for its release); otherwise it takes the
        # reports with the next worker event, and the reading thread spares the write
        self.want_wake = True
        self.wake_fd, self._wake_w = os.pipe()
        os.set_blocking(self.wake_fd, False)
        os.set_blocking(self._wake_w, False)

    def start(self, timeout_s: float = 60.0) -> None:
        """Spawn the feed process with the writing ends of the workers' tick pipes (the driver keeps none), and
        its tick writer process when ticks are persisted."""
        writers = self.pool.take_tick_writers()
        recv, send = self.ctx.Pipe(duplex=False)
        cmd_recv, self.cmd = self.ctx.Pipe(duplex=False)
        log_conn = self.log_channel("feed.log") if self.log_channel is not None else None
        handed: list[Any] = [*writers, send, cmd_recv, *([log_conn] if log_conn is not None else [])]
        writer_conns = self._start_writer(handed)
        self.proc = self.ctx.Process(target=run_feed, name="feed", daemon=True, args=(
            self.cfg, self.secrets, self.opts, self.worker_of, writers, send, cmd_recv,
            self.secrets.secret_values(), self.max_pos, self.max_seq, log_conn, writer_conns))
        try:
            self.proc.start()
        finally:
            for c in handed:
                c.close()  # the feed process has its own; ours would keep a dead worker's pipe, or EOF, from showing
        self.conn = recv
        self._feed_dropped = self._feed_persisted = 0
        self._low_sent, self._low_at = None, 0.0
        deadline = time.monotonic() + timeout_s
        while True:  # typed messages: the feed may report its first cycles before it reports that it started
            while not recv.poll(0.1):
                if not self.proc.is_alive() or time.monotonic() > deadline:
                    self._end_process()
                    raise StartupError(f"the feed process did not start (exit code {self.proc.exitcode}; "
                                       "see logs/feed.log)")
            try:
                msg = recv.recv()
            except EOFError:
                self._end_process()
                raise StartupError("the feed process exited during start-up (see logs/feed.log)") from None
            if isinstance(msg, FeedFailed):
                self._end_process()
                raise StartupError(msg.reason)
            if isinstance(msg, FeedStarted):
                break
            self._on_report(msg)
        log.info("feed process started (pid %s)", msg.pid)
        self.reader = threading.Thread(target=self._reports, args=(recv,), name="feed-reports", daemon=True)
        self.reader.start()

    def _start_writer(self, handed: list[Any]) -> tuple[Any, Any] | None:
        """The tick writer process (market_data.persist on and a database), and the feed's ends of its pipes;
        every end goes in `handed`, for the driver to close once both processes have theirs."""
        md = self.cfg.market_data
        if md.persist is TickPersistence.OFF or self.db_url is None:
            return None
        inbox, out = self.ctx.Pipe(duplex=False)
        acks_in, acks_out = self.ctx.Pipe(duplex=False)
        log_conn = self.log_channel("tick_writer.log") if self.log_channel is not None else None
        handed += [inbox, out, acks_in, acks_out, *([log_conn] if log_conn is not None else [])]
        self.writer_proc = self.ctx.Process(target=run_tick_writer, name="tick-writer", daemon=True, args=(
            self.db_url, md.persist, md.sample_seconds, md.batch_rows, md.flush_seconds, inbox, acks_out,
            self.cfg.monitoring.log_level, self.cfg.resolve_path(self.cfg.monitoring.log_dir),
            self.secrets.secret_values(), log_conn))
        self.writer_proc.start()
        return out, acks_in

    def _reports(self, conn: Any) -> None:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                return
            self._on_report(msg)

    def _on_report(self, msg: FeedReport) -> None:
        """One report from the feed process, by its type; a type this driver does not expect is logged."""
        if isinstance(msg, CycleDelivered):
            if msg.through_pos < END_OF_FEED:
                self.max_pos = max(self.max_pos, msg.through_pos)
            self.max_seq = max(self.max_seq, msg.seq)
            self.delivered.append((msg.seq, msg.through_ts, msg.through_pos, msg.sent))
            if self.want_wake:
                try:
                    os.write(self._wake_w, b"\0")
                except BlockingIOError:
                    pass  # the main loop has plenty of wake-ups to read already
            self.dispatched += msg.ticks
            self.unroutable += msg.unroutable
            self.not_ticks += msg.not_ticks
            for reason, k in msg.rejected:
                self.rejected[reason] = self.rejected.get(reason, 0) + k
            self.max_ts = max(self.max_ts, msg.feed_time)
            self.dropped += msg.dropped - self._feed_dropped  # the feed reports its running total
            self._feed_dropped = msg.dropped
            self.persisted += msg.persisted - self._feed_persisted  # so is this
            self._feed_persisted = msg.persisted
            if msg.final:
                self.finished = True
        elif isinstance(msg, TicksResent):
            log.info("worker %d: %d ticks resent since its checkpoint", msg.worker, msg.ticks)
        else:
            log.warning("feed process: unexpected report %r ignored", msg)

    def take_delivered(self, woken: bool = True) -> list[tuple]:
        """The cycles reported since the last call, in order (main thread). `woken`: wake_fd was readable (its
        wake-ups are read; otherwise that read is spared)."""
        if woken:
            try:
                while os.read(self.wake_fd, 65536):
                    pass
            except BlockingIOError:
                pass
        out = []
        delivered = self.delivered
        while delivered:
            out.append(delivered.popleft())
        return out

    def wake_on_reports(self, on: bool) -> bool:
        """Whether the main loop is to be woken by each report from now on; True if reports came meanwhile
        without a wake-up (then the loop must not wait for one)."""
        self.want_wake = on
        return on and bool(self.delivered)

    def command(self, msg: FeedCommand) -> None:
        with self.cmd_lock:
            if self.cmd is None:
                return
            try:
                self.cmd.send(msg)
            except OSError:
                pass  # the feed process is gone: the health check restarts it or ends the run

    def low_watermark(self, w: float) -> None:
        """How far trading decisions have got: the feed waits while it is too far ahead (memory). Sent at most
        every LOW_EVERY_S: the limit is minutes of feed time, and each command wakes a thread in the feed."""
        now = time.monotonic()
        if w != self._low_sent and now - self._low_at >= LOW_EVERY_S:
            self._low_sent, self._low_at = w, now
            self.command(SetLowWatermark(w))

    def checkpointed(self, worker: int, seq: int) -> None:
        self.command(ForgetThrough(worker, seq))

    def worker_down(self, worker: int) -> None:
        self.command(MarkWorkerDown(worker))

    def worker_replaced(self, worker: int, writer: Any) -> None:
        """Hand the feed process the restarted worker's new pipe; it resends what came since the checkpoint."""
        self.command(ReplaceTickPipe(worker, writer))
        writer.close()

    def count_dropped(self, n: int) -> None:
        self.dropped += n

    def stats(self) -> dict[str, Any]:
        return {"dispatched": self.dispatched, "unroutable": self.unroutable, "control_or_junk": self.not_ticks,
                "dropped": self.dropped, "rejected": sum(self.rejected.values()), "rows_persisted": self.persisted,
                "rejected_by_reason": dict(sorted(self.rejected.items()))}

    @property
    def failed(self) -> bool:
        """The feed process ended without being asked to (killed, crashed)."""
        return not self.closing and self.proc is not None and not self.proc.is_alive() \
            and (self.reader is None or not self.reader.is_alive())

    @property
    def last_time(self) -> float:
        return float(self.max_ts)

    def restart(self) -> None:
        """Live only: a new feed process with new tick pipes (a killed one may have left half a frame in the
        old ones); the Fyers adapter subscribes again on connect."""
        self.restarts += 1
        log.error("the feed process died (exit code %s); starting it again", self.proc.exitcode)
        self._end_process()
        self.pool.new_tick_pipes()
        self.start()

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the feed; it delivers what it had batched (the last frame); bounded."""
        self.closing = True
        self.command(StopFeed())
        if self.reader is not None:
            self.reader.join(timeout_s)
        self._end_process()
        for fd in (self.wake_fd, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

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
        w = self.writer_proc
        if w is not None:  # it ends once the feed's end of its pipe closes, after writing what it was given
            w.join(30)
            if w.is_alive():
                log.warning("tick writer process did not stop; terminating it")
                w.terminate()
                w.join(2)
        with self.cmd_lock:
            for c in (self.conn, self.cmd):
                if c is not None:
                    c.close()
            self.conn = self.cmd = None


__all__ = ["FeedProcess", "ReplayFeed", "make_feed", "run_feed"]

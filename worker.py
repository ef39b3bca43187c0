"""A worker process: owns a fixed set of symbols, runs their strategies on the ticks the dispatcher sends,
and reports signals and progress to the driver.

Its main loop reads its control pipe (pipeline.control) first, then its tick pipe. Each frame on the tick pipe
is one cycle: a marker saying how far the feed has got, with this worker's batch of ticks. The worker echoes
the marker as a WatermarkReached once it has processed the batch (and, in paper mode, sent the quotes the
paper broker needs); frames it finds already waiting behind one share one echo, the last one's. The driver
acts on a signal once every worker is past its tick (pipeline.sequencer), in feed order, which is what makes a
replay deterministic.

The worker's job in three modules: this one is the process's loop (pipes, watermarks, quotes);
market_data_handler.MarketDataHandler does everything with one tick (strategy, holds, tick rows); the driver
side that starts, watches and restarts these processes is pipeline.workers.WorkerPool.
"""
from __future__ import annotations

import logging
import math
import os
import signal as signals
import time
from collections.abc import Mapping
from multiprocessing.reduction import ForkingPickler
from typing import Any

from core.config import Config
from core.faults import die_with_parent, parent_gone
from core.gc_tuning import tune_for_ticks
from core.logs import setup_logging
from core.types import Signal, Tick
from paper.client import PaperBrokerAdmin, PaperBrokerError
from pipeline.events import EventWriter
from pipeline.messages import (
    END_OF_FEED,
    ApplyFeedback,
    CheckpointTaken,
    Marks,
    MarksTaken,
    SignalRaised,
    StopWorker,
    StrategyDisabled,
    StrategyTurnedOff,
    UseTickPipe,
    Watch,
    WatermarkReached,
    WorkerProgress,
    WorkerReady,
    WorkerStopped,
    decode_frame,
)
from pipeline.polling import PollSet

log = logging.getLogger(__name__)

CHECKPOINT_EVERY_S = 1.0
ECHO_WITHIN_S = 0.002  # the longest a processed frame's watermark waits for the frames queued behind it
DRAIN_AT_STOP_S = 5.0  # how long StopWorker waits for the feed's last frame


def _num(v: Any) -> float:
    return v if type(v) in (int, float) and 0 <= v < math.inf else 0.0


class QuoteSink:
    """Sends the paper broker the quotes of symbols that have an order or a position, in batches."""

    PUSH_EVERY_S = 0.02

    def __init__(self, host: str, api_key: str, exchange: str, exchanges: Mapping[str, str] | None = None):
        self.admin = PaperBrokerAdmin(host, api_key)
        self.exchange = exchange
        self.exchanges = dict(exchanges or {})  # symbols quoted elsewhere: an index on NSE_INDEX
        self.watched: set[str] = set()
        self.rows: list[list[Any]] = []
        self.first_pending: tuple[float, int] | None = None  # feed time and position of the oldest unsent quote
        self.last_push = 0.0
        self.failures = 0
        self.refused = 0  # quotes the broker refused as malformed: dropped, never retried
        self.refused_batches = 0

    def add(self, sym: str, tick: Tick, ts: float, pos: int) -> None:
        """A quote from an accepted tick (its LTP and time are checked); a missing, negative or non-finite
        side value goes as 0, which the broker reads as 'none' (a NaN would make the batch unsendable)."""
        self.rows.append([sym, self.exchanges.get(sym, self.exchange), int(ts), tick.ltp, _num(tick.bid_price),
                          _num(tick.ask_price),
                          _num(tick.high_price), _num(tick.low_price), _num(tick.open_price),
                          _num(tick.prev_close_price), _num(tick.vol_traded_today)])
        if self.first_pending is None:
            self.first_pending = (ts, pos)

    def flush(self, force: bool = False) -> None:
        if not self.rows:
            return
        now = time.monotonic()
        if not force and now - self.last_push < self.PUSH_EVERY_S:
            return
        rows, self.rows = self.rows, []
        try:
            res = self.admin.push_market(rows)
            self.failures = 0
            self.refused += int(res.get("rejected") or 0)  # rows the broker dropped one by one
        except PaperBrokerError as e:
            if e.http_status != 400:
                self._retry_later(rows, e)
                return
            # refused as malformed: sending it again cannot succeed, and holding it would hold the watermark
            self.refused_batches += 1
            if self.refused_batches == 1:
                log.error("the paper broker refused a batch of %d quotes as malformed (%s); dropped (further "
                          "refusals are counted, not logged)", len(rows), e)
            self.refused += len(rows)
        except Exception as e:  # noqa: BLE001 - keep the rows and try again on the next flush
            self._retry_later(rows, e)
            return
        self.first_pending = None
        self.last_push = now

    def _retry_later(self, rows: list[list[Any]], e: Exception) -> None:
        """The broker could not be reached or failed: the quotes go again with the next flush."""
        self.rows = rows + self.rows
        self.failures += 1
        if self.failures in (1, 10, 100):
            log.warning("could not send quotes to the paper broker (%s); will retry", e)

    def cap(self) -> tuple[float, float]:
        """Quotes not yet at the broker hold the watermark back: a fill must find its price there."""
        if self.first_pending is None:
            return float("inf"), float("inf")
        return self.first_pending[0] - 1, self.first_pending[1] - 1


def run_worker(worker_id: int, symbols: list[str], cfg: Config, ticks_in: Any, ctl_in: Any, events_out: Any,
               db_url: str | None, secrets: list[str], broker: tuple[str, str] | None,
               restore: dict[str, Any] | None = None, disabled: dict[str, str] | None = None,
               log_sink: Any = None, warmup: tuple[dict[str, list[Any]], int] | None = None,
               held: tuple[dict[str, Any], int] | None = None) -> None:
    """Process entry point (spawned). Feedback (ctl_in, the reading end of the driver's control pipe) is read
    before ticks: a symbol held for its signal's
    outcome should not wait behind the backlog of every other symbol's ticks. `events_out`: the writing end of
    this worker's event pipe to the driver (pipeline.events), written by this thread. `disabled`: symbols whose
    strategy is off for the day (symbol -> reason), not run again. `log_sink`: the driver's log pipe for
    this worker (core.logs.LogSink), or None to write its own file. `warmup`: history candles by symbol and
    the time they end at, fed to the strategies before the first tick (pipeline.warmup). `held`: the open
    positions by symbol the strategies take up after that, and the run's start (pipeline.resume). `db_url` is
    not used: ticks are persisted by the feed process (pipeline.tick_writer), so a worker opens no database."""
    from market_data_handler import MarketDataHandler

    signals.signal(signals.SIGINT, signals.SIG_IGN)  # the driver decides when workers stop
    die_with_parent()
    setup_logging(cfg.monitoring.log_level, cfg.resolve_path(cfg.monitoring.log_dir), secrets,
                  filename=f"worker-{worker_id}.log", sink=log_sink)
    out_q = EventWriter(events_out)
    sink = QuoteSink(broker[0], broker[1], cfg.exchange, {s: cfg.quote_exchange(s) for s in symbols}) \
        if broker else None
    if sink is not None:  # an options index prices its chain at the broker from the first tick, not the first order
        sink.watched.update(s for s in symbols if cfg.symbol(s).is_options)

    def emit(sig: Signal, latency_ms: float, held: bool, pos: int) -> None:
        if sink is not None:  # the order for this signal will need this symbol's current price
            sink.watched.add(sig.symbol)
        out_q.put(SignalRaised(worker_id, sig, latency_ms, held, pos, time.time()))

    def strategy_disabled(ev: StrategyDisabled) -> None:
        out_q.put(StrategyTurnedOff(worker_id, ev))

    def emit_marks(marks: Marks, pos: int) -> None:
        out_q.put(MarksTaken(worker_id, marks, pos))

    handler = MarketDataHandler(cfg, symbols, emit, emit_marks=emit_marks, on_disabled=strategy_disabled,
                                disabled=disabled)
    if sink is not None:
        def quote(sym: str, tick: Tick, ts: float, pos: int) -> None:
            """A tick that has run (not one held behind a pending signal: the order of that signal must fill at
            the tick it was decided on, not at a later one its strategy has not seen) prices the broker."""
            if sym in sink.watched:
                sink.add(sym, tick, ts, pos)
        handler.on_ran = quote
    if restore:
        handler.restore(restore.get("handler", {}))
        if sink is not None:
            sink.watched.update(restore.get("watched", ()))
        log.info("worker %d restored %d symbols from checkpoint %s", worker_id, len(symbols), restore.get("seq"))
    else:
        if warmup is not None:
            handler.warm_up(*warmup)
        if held is not None:
            handler.resume_positions(*held)
            if sink is not None:  # the broker prices the positions' exits from the first tick
                sink.watched.update(held[0])
    def report(seq: int, through: float, through_pos: float, again: bool = False) -> None:
        """Echo a marker: how far this worker has really got (held symbols and unsent quotes hold it back).
        `again`: the same marker once more, if what holds it back has changed."""
        cap_ts, cap_pos = handler.held_cap()
        if sink is not None:
            sink.flush(force=bool(handler.awaiting))
            q_ts, q_pos = sink.cap()
            cap_ts, cap_pos = min(cap_ts, q_ts), min(cap_pos, q_pos)
        if again and reported[0] == (seq, cap_ts, cap_pos):
            return
        reported[0] = (seq, cap_ts, cap_pos)
        unreported[0] = 0.0
        st = handler.stats
        out_q.put(WatermarkReached(worker_id, seq, min(through, cap_ts), min(through_pos, cap_pos), cap_ts, cap_pos,
                                   WorkerProgress(st.ticks, st.bad_ticks, st.signals, len(handler.awaiting),
                                                  sum(len(q) for q in handler.backlog.values()))))

    tune_for_ticks()
    out_q.put(WorkerReady(worker_id, os.getpid()))
    last_marker: tuple[int, float, float] | None = None
    reported: list[Any] = [None]  # the last watermark's (seq, caps): one held back is sent again when they move
    # when the oldest frame processed and not yet echoed came (0: none): the echo waits until no further frame
    # is waiting, so a worker that finds several in its pipe sends one watermark for them all (the last one's
    # marker covers them), but no longer than ECHO_WITHIN_S behind a backlog (full speed: the pipe never empties)
    unreported = [0.0]
    last_ckpt = time.monotonic()
    ctl_seq = restore.get("ctl_seq", 0) if restore else 0  # the last feedback applied
    next_pipe: Any = None  # from a restarted feed process: read once the current pipe ends
    stop_by: float | None = None  # StopWorker came: drain the pipe until the feed's last frame, or this deadline
    seen_end = False
    polls = PollSet()  # the control and tick pipes (Connection.poll and wait build a selector per call)
    woke: list[Any] = []  # what the last wait found ready: the next turn reads it without polling again
    if restore and restore.get("marker"):
        last_marker = tuple(restore["marker"])
        report(*last_marker)  # where the checkpoint left it: the driver counts this worker as caught up from here

    def on_frame(buf: bytes) -> None:
        nonlocal last_marker, last_ckpt, seen_end
        frame = decode_frame(buf)  # a malformed frame raises: this worker must not go on without its ticks
        seq, through, through_pos, t_wall = frame.seq, frame.through_ts, frame.through_pos, frame.t_wall
        if frame.ticks:  # quotes go to the broker from handler.on_ran, as each tick runs
            handler.process_batch(frame.ticks, t_wall, frame.positions)
        last_marker = (seq, through, through_pos)
        seen_end = through >= END_OF_FEED
        now = time.monotonic()
        if not unreported[0]:
            unreported[0] = now
        elif now - unreported[0] >= ECHO_WITHIN_S:
            report(*last_marker)
        if now - last_ckpt >= CHECKPOINT_EVERY_S:
            last_ckpt = now
            if unreported[0]:
                report(*last_marker)  # the driver notes the checkpoint with this worker's watermark: echoed first
            try:
                out_q.put(CheckpointTaken(worker_id, seq, {
                    "handler": handler.state(), "watched": sorted(sink.watched) if sink else [], "ctl_seq": ctl_seq,
                    "marker": last_marker}))
            except TypeError as e:  # a strategy's state that is not JSON-safe: a restart uses the last one sent
                log.error("worker %d: checkpoint at frame %d not taken: %s", worker_id, seq, e)

    while not (stop_by is not None and (seen_end or ticks_in is None or time.monotonic() > stop_by)):
        if out_q.pending_bytes:  # events the pipe had no room for: on before anything else happens
            out_q.flush()
        msg = None
        waiting = [ctl_in] + ([ticks_in] if ticks_in is not None else [])
        ready = woke or polls.ready(waiting, 0)  # one poll for both pipes, on a set kept across turns
        woke = []
        if ctl_in in ready:
            try:
                msg = ForkingPickler.loads(ctl_in.recv_bytes())
            except (EOFError, OSError):  # the driver is gone (its pipe ended)
                log.error("worker %d: the driver's control pipe ended; exiting", worker_id)
                return
        if msg is None:
            if ticks_in is not None and ticks_in in ready:
                try:
                    on_frame(ticks_in.recv_bytes())
                except (EOFError, OSError):  # the feed process ended (half a frame, if it was killed mid-write)
                    ticks_in.close()
                    ticks_in, next_pipe = next_pipe, None
                continue
            if unreported[0] and last_marker is not None:
                report(*last_marker)  # no further frame waiting: echo the last one's marker
            woke = polls.ready(waiting, 0.002 if out_q.pending_bytes else 0.05)
            if not woke:
                if last_marker is not None:
                    report(*last_marker, again=True)  # sends due quotes; if they went, the watermark moves
                elif sink is not None:
                    sink.flush()
                if parent_gone():
                    log.error("worker %d: the driver is gone; exiting", worker_id)
                    return
            continue
        if isinstance(msg, ApplyFeedback):
            if msg.n <= ctl_seq:
                continue  # applied before the checkpoint this worker was restarted from
            ctl_seq, ctl = msg.n, msg.body
            if isinstance(ctl, Watch):
                # once watched, a symbol stays watched for the day: a late "off" racing a new signal's "on"
                # would leave the broker without the prices it fills at
                if sink is not None and ctl.on:
                    sink.watched.add(ctl.symbol)
            else:
                held = dict(handler.awaiting)
                handler.apply_control(ctl)
                if last_marker is not None and handler.awaiting != held:
                    report(*last_marker, again=True)  # a released symbol may let the watermark move on
        elif isinstance(msg, UseTickPipe):
            conn = ForkingPickler.loads(msg.pipe)
            if ticks_in is None:
                ticks_in = conn
            else:
                next_pipe = conn
        elif isinstance(msg, StopWorker):
            stop_by = time.monotonic() + DRAIN_AT_STOP_S
        else:
            log.warning("worker %d: unexpected control message %r ignored", worker_id, msg)
    if unreported[0] and last_marker is not None:
        report(*last_marker)
    if not seen_end and ticks_in is not None:
        log.warning("worker %d: stopping without the feed's last frame (waited %.0fs)", worker_id, DRAIN_AT_STOP_S)
    if sink is not None:
        sink.flush(force=True)
    st = handler.stats
    out_q.put(WorkerStopped(worker_id, {"ticks": st.ticks, "bad_ticks": st.bad_ticks, "bad_by_reason": st.bad_by_reason,
                                    "signals": st.signals,
                                    "quotes_refused": sink.refused if sink is not None else 0}))
    out_q.close()
    log.info("worker %d stopped: %d ticks, %d bad, %d signals", worker_id, st.ticks, st.bad_ticks, st.signals)
    if handler.awaiting:
        log.info("worker %d stopped with signals still awaiting their outcome: %s", worker_id, handler.awaiting)

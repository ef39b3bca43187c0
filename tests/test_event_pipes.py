"""The workers' event pipes (pipeline.events) between real processes: events arrive whole and in order; one
larger than the pipe waits in the writer's backlog, never blocking it; a writer that dies in mid-message leaves
the driver its earlier events and an ended pipe, not a blocked read; a renewed pipe carries the replacement's."""
from __future__ import annotations

import math
import multiprocessing as mp
import os
import queue
import signal
import time

import pytest

from core.enums import PositionSide, SignalType
from core.types import Signal
from pipeline import messages as m
from pipeline.events import EventWriter, WorkerEvents, frame_event
from tests.conftest import wait_for

T0 = 1_795_140_900  # 2026-11-20 09:15 IST
SIG = Signal(symbol="SBIN", time=T0, price=264.15, type=SignalType.ENTRY, current_position=PositionSide.LONG,
             strategy="orb", stop_loss=262.0, note="break")
EVENTS = [m.WorkerReady(0, 4242), m.SignalRaised(0, SIG, 1.25, True, 17, 1.7e9),
          m.MarksTaken(0, m.Marks(T0, {"SBIN": 264.1}), 18),
          m.WatermarkReached(0, 9, T0, 18, math.inf, math.inf, m.WorkerProgress(100, 1, 2, 1, 40)),
          m.CheckpointTaken(0, 9, {"handler": {"last_ts": {"SBIN": T0}}, "ctl_seq": 4, "marker": [9, T0, 18]}),
          m.StrategyTurnedOff(0, m.StrategyDisabled("SBIN", "orb", "ZeroDivisionError in run: boom", T0)),
          m.WorkerStopped(0, {"ticks": 100, "bad_ticks": 1})]


def _write(conn, events: list, then_sleep: float = 0.0) -> None:
    w = EventWriter(conn)
    for ev in events:
        w.put(ev)
    if then_sleep:
        time.sleep(then_sleep)  # the test kills it meanwhile
    w.close()


def _take(events: WorkerEvents, n: int) -> list:
    got: list = []
    deadline = time.monotonic() + 30
    while len(got) < n and time.monotonic() < deadline:
        try:
            got.append(events.get(timeout=0.5))
        except queue.Empty:
            pass
    return got


def test_events_cross_between_processes_whole_and_in_order():
    ctx = mp.get_context("spawn")
    events = WorkerEvents(ctx, 2)
    procs = [ctx.Process(target=_write, args=(events.writer(i), [msg_for(e, i) for e in EVENTS])) for i in (0, 1)]
    for i, p in enumerate(procs):
        p.start()
        events.handed_over(i)
    try:
        got = _take(events, 2 * len(EVENTS))
    finally:
        for p in procs:
            p.join(30)
    for i in (0, 1):
        mine = [repr(x) for x in got if x.worker == i]
        assert mine == [repr(msg_for(e, i)) for e in EVENTS]
    assert all(p.exitcode == 0 for p in procs)
    wait_for(lambda: not _drained_readers(events), timeout=10, what="both pipes ended with their writers")
    events.close()


def msg_for(ev: m.WorkerEvent, worker: int) -> m.WorkerEvent:
    import msgspec
    return msgspec.structs.replace(ev, worker=worker)


def _drained_readers(events: WorkerEvents) -> list:
    try:
        events.get_nowait()
    except queue.Empty:
        pass
    return events.readers


def test_an_event_larger_than_the_pipe_waits_in_the_backlog_and_arrives_whole():
    ctx = mp.get_context("spawn")
    r, w = ctx.Pipe(duplex=False)
    writer = EventWriter(w)
    big = m.CheckpointTaken(1, 3, {"handler": {"rows": ["x" * 100] * 40_000}})  # ~4 MB: more than any pipe holds
    t0 = time.monotonic()
    writer.put(big)
    writer.put(m.WorkerReady(1, 7))
    assert time.monotonic() - t0 < 1.0 and writer.pending_bytes > 0  # the writer went on without the reader
    # the reader's side, as the driver reads it: whatever is there, a message kept until its rest has come
    from collections import deque

    from pipeline.events import _Reader
    reader, out = _Reader(r), deque()
    while len(out) < 2:
        reader.read_into(out)
        writer.flush()
    assert [m.decode_event(b) for b in out] == [big, m.WorkerReady(1, 7)] and writer.pending_bytes == 0
    writer.close()
    reader.read_into(out)
    assert reader.ended


def test_a_writer_killed_in_mid_message_leaves_its_earlier_events_and_an_ended_pipe():
    ctx = mp.get_context("spawn")
    events = WorkerEvents(ctx, 1)
    w = events.writer(0)
    half = frame_event(m.WorkerStopped(0, {"ticks": 1}))
    os.write(w.fileno(), bytes(frame_event(m.WorkerReady(0, 1))) + bytes(half[:len(half) // 2]))
    p = ctx.Process(target=_write, args=(w, [], 60.0))  # a worker that hangs, then is killed
    p.start()
    events.handed_over(0)
    try:
        got = _take(events, 1)
        assert got == [m.WorkerReady(0, 1)]
        os.kill(p.pid, signal.SIGKILL)
        p.join(30)
        # the half message is never read as an event, the driver is never blocked on it, and the pipe ends
        with pytest.raises(queue.Empty):
            events.get(timeout=5)
        assert events.readers == []
        # the replacement gets a pipe of its own
        events.renew(0)
        p2 = ctx.Process(target=_write, args=(events.writer(0), [m.WorkerReady(0, 3)]))
        p2.start()
        events.handed_over(0)
        assert _take(events, 1) == [m.WorkerReady(0, 3)]
        p2.join(30)
    finally:
        if p.is_alive():
            p.kill()
        events.close()


def test_the_loop_reads_only_the_pipes_that_woke_it():
    ctx = mp.get_context("spawn")
    events = WorkerEvents(ctx, 2)
    from multiprocessing.connection import wait
    try:
        os.write(events.writer(1).fileno(), bytes(frame_event(m.WorkerReady(1, 11))))
        ready = wait(events.readers, 10)
        assert ready == [events.readers[1]]
        os.write(events.writer(0).fileno(), bytes(frame_event(m.WorkerReady(0, 10))))  # after the wait
        events.read(ready)
        assert events.pop_nowait() == m.WorkerReady(1, 11)
        with pytest.raises(queue.Empty):
            events.pop_nowait()  # worker 0's event waits for the next turn's wait, which returns at once
        events.read(wait(events.readers, 10))
        assert events.pop_nowait() == m.WorkerReady(0, 10)
    finally:
        events.close()

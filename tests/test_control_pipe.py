"""The driver's control pipe to a worker (pipeline.control): written at once from the caller's thread, never
blocking, in order, read by an ordinary multiprocessing Connection; a dead reader ends the writes."""
from __future__ import annotations

import multiprocessing as mp
import threading
import time
from multiprocessing.reduction import ForkingPickler

from pipeline.control import ControlWriter
from pipeline.messages import Outcome


def test_a_message_is_in_the_pipe_when_put_returns() -> None:
    reader, writer = mp.get_context("spawn").Pipe(duplex=False)
    ctl = ControlWriter(writer)
    msg = Outcome("s1", "SBIN", "ENTRY", "filled")
    ctl.put(msg)
    assert reader.poll(0), "no feeder thread: the bytes are written by put itself"
    assert ForkingPickler.loads(reader.recv_bytes()) == msg
    ctl.close()
    reader.close()


def test_a_full_pipe_keeps_the_rest_in_order_and_never_blocks() -> None:
    reader, writer = mp.get_context("spawn").Pipe(duplex=False)
    ctl = ControlWriter(writer)
    sent = [("n", i, "x" * 1000) for i in range(400)]  # ~400 kB: several times a pipe's buffer
    for m in sent:
        ctl.put(m)  # would block on a blocking pipe with nobody reading
    assert ctl.pending_bytes > 0
    got: list = []
    t = threading.Thread(target=lambda: got.extend(ForkingPickler.loads(reader.recv_bytes()) for _ in sent))
    t.start()  # the worker's side: another process in the daemon, reading as it goes
    deadline = time.monotonic() + 10
    while not ctl.flush():
        assert time.monotonic() < deadline, "the backlog never drained"
    t.join(10)
    assert got == sent
    ctl.close()
    reader.close()


def test_writes_to_a_closed_reader_are_dropped_not_raised() -> None:
    reader, writer = mp.get_context("spawn").Pipe(duplex=False)
    ctl = ControlWriter(writer)
    reader.close()
    ctl.put("first")
    assert ctl.broken
    ctl.put("second")
    assert ctl.flush()
    ctl.close()

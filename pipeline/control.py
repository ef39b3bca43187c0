"""The driver's feedback to one worker (outcomes, cap triggers, watches, a new tick pipe, stop): a pipe the
driver writes from the thread that decided, with no feeder thread in between.

A multiprocessing queue hands each message to a feeder thread, which then has to win the GIL from the
driver's loop: up to the interpreter's switch interval (5 ms) while the loop is busy, and a symbol held for
its signal's outcome waits that long. Here the message is written at once, in the framing
multiprocessing.connection uses, so the worker reads it with an ordinary Connection.

Writing never blocks the driver: the pipe's write end is non-blocking and what does not fit (a worker busy or
hung, a burst resent after a restart) stays in order in a backlog that the next message or the driver's loop
(flush) writes on. The driver keeps only the write end once the worker has its reading end, so a dead
worker's pipe refuses writes (EPIPE) at once; its messages are kept by WorkerPool for its replacement.
"""
from __future__ import annotations

import struct
import threading
from multiprocessing.reduction import ForkingPickler
from typing import Any

from pipeline.pipe_writer import PipeWriter

_HEADER = struct.Struct("!i")  # multiprocessing.connection's length prefix for a message under 2 GiB


def frame(msg: Any) -> bytes:
    """One message as Connection.recv_bytes reads it: its length, then its pickle."""
    body = bytes(ForkingPickler.dumps(msg))
    return _HEADER.pack(len(body)) + body


class ControlWriter(PipeWriter):
    """The driver's end of one worker's control pipe. Thread-safe: the loop, the supervisor and the
    TradeManager's notifications may write."""

    def __init__(self, conn: Any) -> None:
        super().__init__(conn, "control pipe")
        self._lock = threading.Lock()

    def put(self, msg: Any) -> None:
        data = frame(msg)
        with self._lock:
            self.write(data)

    def flush(self) -> bool:
        with self._lock:
            return super().flush()

    def close(self, drain_s: float = 0.0) -> None:
        """Closed at once: a dead worker's feedback is kept by the WorkerPool for its replacement."""
        with self._lock:
            self._backlog.clear()
            super().close()

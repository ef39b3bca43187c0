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

import logging
import os
import struct
import threading
from multiprocessing.reduction import ForkingPickler
from typing import Any

log = logging.getLogger(__name__)

_HEADER = struct.Struct("!i")  # multiprocessing.connection's length prefix for a message under 2 GiB


def frame(msg: Any) -> bytes:
    """One message as Connection.recv_bytes reads it: its length, then its pickle."""
    body = bytes(ForkingPickler.dumps(msg))
    return _HEADER.pack(len(body)) + body


class ControlWriter:
    """The driver's end of one worker's control pipe. Thread-safe: the loop, the supervisor and the
    TradeManager's notifications may write."""

    def __init__(self, conn: Any) -> None:
        """`conn`: the writing Connection of a ctx.Pipe(duplex=False); this object owns it from now on."""
        self._conn = conn
        self._fd = conn.fileno()
        os.set_blocking(self._fd, False)
        self._backlog = bytearray()
        self._lock = threading.Lock()
        self.broken = False  # the reader is gone (the worker died): nothing more is written

    def put(self, msg: Any) -> None:
        data = frame(msg)
        with self._lock:
            if self.broken:
                return
            self._backlog += data
            self._write()

    def flush(self) -> bool:
        """Write what the pipe had no room for; True once nothing is left."""
        with self._lock:
            if self._backlog and not self.broken:
                self._write()
            return not self._backlog

    def _write(self) -> None:
        try:
            while self._backlog:
                n = os.write(self._fd, self._backlog)
                del self._backlog[:n]
        except BlockingIOError:
            pass  # the pipe is full: the rest goes with the next put or flush
        except (BrokenPipeError, OSError) as e:
            self.broken = True
            self._backlog.clear()
            log.debug("control pipe closed by its worker (%s): further feedback dropped", e)

    @property
    def pending_bytes(self) -> int:
        return len(self._backlog)

    def close(self) -> None:
        with self._lock:
            self.broken = True
            self._backlog.clear()
            self._conn.close()

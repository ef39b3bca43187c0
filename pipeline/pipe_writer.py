"""PipeWriter: the write end of a pipe that never blocks its writer, for the two ways the driver and a worker
talk without a feeder thread (pipeline.control: the driver's feedback to a worker; pipeline.events: a
worker's events to the driver).

A multiprocessing queue hands each message to a feeder thread, which must then win the GIL from the busy
thread that put it: up to the interpreter's switch interval (5 ms) per message. Here the writer writes the
bytes itself; the pipe's end is non-blocking, and what it has no room for (a reader busy for a moment, a
large message) stays in order in a backlog that the next write or flush() sends on. Once the reader is gone
(EPIPE: its process died) nothing more is written.
"""
from __future__ import annotations

import logging
import os
import select
import time
from typing import Any

log = logging.getLogger(__name__)


class PipeWriter:
    """Not thread-safe by itself: a subclass written from several threads holds its own lock around these."""

    def __init__(self, conn: Any, name: str) -> None:
        """`conn`: the writing Connection of a ctx.Pipe(duplex=False); this object owns it from now on."""
        self._conn = conn
        self._fd = conn.fileno()
        os.set_blocking(self._fd, False)
        self._backlog = bytearray()
        self._name = name
        self.broken = False  # the reader is gone: nothing more is written

    def write(self, data: bytes | bytearray) -> None:
        """Written now as far as the pipe has room; the rest after what is already waiting."""
        if self.broken:
            return
        if self._backlog:
            self._backlog += data
            self._send_backlog()
            return
        try:
            n = os.write(self._fd, data)
        except BlockingIOError:
            n = 0
        except OSError as e:
            self._break(e)
            return
        if n < len(data):
            self._backlog += memoryview(data)[n:]

    def flush(self) -> bool:
        """Write what the pipe had no room for; True once nothing is left."""
        if self._backlog and not self.broken:
            self._send_backlog()
        return not self._backlog

    @property
    def pending_bytes(self) -> int:
        return len(self._backlog)

    def close(self, drain_s: float = 0.0) -> None:
        """Close, after writing the backlog out for at most drain_s seconds while the reader reads."""
        deadline = time.monotonic() + drain_s
        while self._backlog and not self.broken:
            left = deadline - time.monotonic()
            if left <= 0 or not _writable(self._fd, left):
                log.warning("%s: the reader read nothing for %.0fs; %d bytes dropped", self._name, drain_s,
                            len(self._backlog))
                break
            self._send_backlog()
        self.broken = True
        self._backlog.clear()
        self._conn.close()

    def _send_backlog(self) -> None:
        try:
            while self._backlog:
                n = os.write(self._fd, self._backlog)
                del self._backlog[:n]
        except BlockingIOError:
            pass  # the pipe is full: the rest goes with the next write or flush
        except OSError as e:
            self._break(e)

    def _break(self, e: OSError) -> None:
        self.broken = True
        self._backlog.clear()
        log.debug("%s closed by its reader (%s): further messages dropped", self._name, e)


def _writable(fd: int, timeout_s: float) -> bool:
    p = select.poll()
    p.register(fd, select.POLLOUT)
    return bool(p.poll(timeout_s * 1000))


__all__ = ["PipeWriter"]

"""The workers' events to the driver (pipeline.messages.WorkerEvent): one pipe per worker, written by the
worker's own thread and read by the driver in batches, with no feeder thread on either side.

A multiprocessing queue hands each put to a feeder thread, which must win the GIL from the worker's main
thread while that thread is busy with ticks: up to the interpreter's switch interval (5 ms) per event, and
both a signal and the watermark that releases it wait that long. Here the worker writes the event itself.

Each event crosses as a 4-byte little-endian length and its msgpack (pipeline.messages.encode_event). The
worker's end is non-blocking: what the pipe has no room for (a driver busy for a moment, a large checkpoint)
stays in order in a backlog that the worker's loop writes on (EventWriter.flush); a worker never waits on the
driver while it has ticks to run. The driver's ends are non-blocking too: it reads whatever each pipe holds
in one call and keeps a message cut short until its rest arrives, so a worker that dies in mid-message can
never block the driver. The driver keeps only the reading ends once the workers have theirs, so a dead
worker's pipe ends (EOF) for the driver.
"""
from __future__ import annotations

import fcntl
import logging
import os
import queue
import struct
from collections import deque
from collections.abc import Iterable
from multiprocessing.connection import wait
from typing import Any

import msgspec

from pipeline.messages import WorkerEvent, decode_event
from pipeline.pipe_writer import PipeWriter
from pipeline.polling import PollSet

log = logging.getLogger(__name__)

_LEN = struct.Struct("<I")
_READ_CHUNK = 1 << 20
_PIPE_BYTES = 1 << 20  # asked of the kernel (Linux, F_SETPIPE_SZ) so a slow moment of the driver rarely backs up
_encoder = msgspec.msgpack.Encoder()


def _widen(fd: int) -> None:
    """Ask for a larger pipe buffer where the platform allows it; the default (64 KiB) still works."""
    setsz = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setsz is None:
        return
    try:
        fcntl.fcntl(fd, setsz, _PIPE_BYTES)
    except OSError:
        pass  # above the system's pipe-max-size: the default size it is


def frame_event(event: WorkerEvent) -> bytearray:
    """One event as it crosses: its length, then its msgpack. TypeError for a value msgpack cannot carry."""
    buf = bytearray(_LEN.size)
    _encoder.encode_into(event, buf, _LEN.size)
    _LEN.pack_into(buf, 0, len(buf) - _LEN.size)
    return buf


class EventWriter(PipeWriter):
    """A worker's end of its event pipe. One thread (the worker's loop) writes."""

    def __init__(self, conn: Any) -> None:
        super().__init__(conn, "event pipe")

    def put(self, event: WorkerEvent) -> None:
        """Encoded and written now (TypeError, nothing written, if the event cannot be encoded); what the pipe
        has no room for goes with the next put or flush."""
        self.write(frame_event(event))

    def close(self, drain_s: float = 5.0) -> None:
        """The backlog written out while the driver reads (it does while it stops the workers), for at most
        drain_s: a worker's last words (WorkerStopped) must not be lost at its exit."""
        super().close(drain_s)


class _Reader:
    """The driver's end of one worker's pipe, with the part of a message that has not all arrived."""

    __slots__ = ("conn", "fd", "buf", "ended")

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.fd = conn.fileno()
        os.set_blocking(self.fd, False)
        self.buf = bytearray()
        self.ended = False

    def read_into(self, out: deque[bytes]) -> None:
        """Everything the pipe holds now, as whole messages onto `out`; `ended` once the worker's end closed."""
        while True:
            try:
                chunk = os.read(self.fd, _READ_CHUNK)
            except BlockingIOError:
                break
            except OSError:  # the pipe broke with its worker
                chunk = b""
            if not chunk:
                self.ended = True
                break
            self.buf += chunk
            if len(chunk) < _READ_CHUNK:
                break
        buf, at, size = self.buf, 0, len(self.buf)
        while size - at >= _LEN.size:
            (n,) = _LEN.unpack_from(buf, at)
            end = at + _LEN.size + n
            if end > size:
                break
            out.append(bytes(buf[at + _LEN.size:end]))
            at = end
        if at:
            del buf[:at]


class WorkerEvents:
    """The driver's side of the workers' event pipes: one per worker, renewed when a worker is restarted.

    Events of one worker come in the order it wrote them; the driver's sequencer orders signals across
    workers by feed position, not by arrival. Only the driver's loop (and the WorkerPool on its behalf at
    start and stop) reads; `renew` may run on the supervisor's thread, under the driver's pipe lock."""

    def __init__(self, ctx: Any, n_workers: int) -> None:
        self._ctx = ctx
        self._readers: list[_Reader | None] = [None] * n_workers
        self._writers: list[Any] = [None] * n_workers  # until the worker has its own
        self._retired: list[_Reader] = []  # a restarted worker's old pipe, closed by the reading thread
        self._ready: deque[bytes] = deque()
        self._polls = PollSet()  # the driver's loop's (wait)
        for i in range(n_workers):
            self._open(i)

    def _open(self, i: int) -> None:
        r, w = self._ctx.Pipe(duplex=False)
        _widen(w.fileno())
        self._readers[i] = _Reader(r)
        self._writers[i] = w

    def writer(self, i: int) -> Any:
        """The writing Connection for worker i's process (handed over with its arguments)."""
        return self._writers[i]

    def handed_over(self, i: int) -> None:
        """Worker i's process has its own writing end: drop ours, so its exit ends the pipe."""
        w, self._writers[i] = self._writers[i], None
        if w is not None:
            w.close()

    def renew(self, i: int) -> None:
        """A new pipe for worker i's replacement. What the dead worker wrote and the driver had not read is
        dropped: its replacement starts from its checkpoint and says it all again."""
        old = self._readers[i]
        if old is not None:
            self._retired.append(old)
        self.handed_over(i)
        self._open(i)

    @property
    def readers(self) -> list[Any]:
        """The connections to wait on (multiprocessing.connection.wait) for the next events."""
        return [r.conn for r in self._readers if r is not None]

    def wait(self, others: list[int], timeout: float) -> list[Any]:
        """The workers' pipes (as in `readers`) and the file descriptors `others` that have something to read
        within `timeout` seconds, as multiprocessing.connection.wait would return them, from a poll set kept
        while they stay the same (pipeline.polling: the driver's loop turns thousands of times a second)."""
        return self._polls.ready(self.readers + others, timeout)

    def _read(self, ready: Iterable[Any] | None = None) -> None:
        """Read the pipes (those in `ready`, or all), closing the ones that ended."""
        while self._retired:
            old = self._retired.pop()
            dropped: deque[bytes] = deque()
            if not old.ended:
                old.read_into(dropped)
            if dropped:
                log.info("%d events of a worker that died were not read; its replacement raises them again",
                         len(dropped))
            old.conn.close()
        if ready is not None and not isinstance(ready, (set, frozenset)):
            ready = set(ready)
        for i, r in enumerate(self._readers):
            if r is None or (ready is not None and r.conn not in ready):
                continue
            r.read_into(self._ready)
            if r.ended:
                r.conn.close()
                self._readers[i] = None

    def get_nowait(self) -> WorkerEvent:
        """The next event (queue.Empty if none has arrived). MessageError for one that cannot be read: it is
        consumed, and the next call goes on with the one after."""
        if not self._ready:
            self._read()
            if not self._ready:
                raise queue.Empty
        return decode_event(self._ready.popleft())

    def get(self, timeout: float | None = None) -> WorkerEvent:
        """The next event, waiting up to `timeout` seconds for one (queue.Empty then)."""
        if not self._ready:
            self._read()
            if not self._ready:
                readers = self.readers
                ready = wait(readers, timeout) if readers else []
                if ready:
                    self._read(ready)
                if not self._ready:
                    raise queue.Empty
        return decode_event(self._ready.popleft())

    def read(self, ready: Iterable[Any]) -> None:
        """Read the pipes among `ready` (what multiprocessing.connection.wait returned): the driver's loop reads
        only the pipes that woke it, not all eight each turn. Then take the events with pop_nowait."""
        self._read(ready)

    def pop_nowait(self) -> WorkerEvent:
        """The next event already read (queue.Empty if none); MessageError as get_nowait."""
        if not self._ready:
            raise queue.Empty
        return decode_event(self._ready.popleft())

    def put_back(self, events: Iterable[WorkerEvent]) -> None:
        """Events taken early (the pool's start-up waits for WorkerReady only): read again first, in order."""
        frames = [bytes(frame_event(e)[_LEN.size:]) for e in events]
        self._ready.extendleft(reversed(frames))

    def close(self) -> None:
        for i in range(len(self._readers)):
            self.handed_over(i)
            r = self._readers[i]
            if r is not None:
                r.conn.close()
                self._readers[i] = None
        for old in self._retired:
            old.conn.close()
        self._retired.clear()


__all__ = ["EventWriter", "WorkerEvents", "frame_event"]

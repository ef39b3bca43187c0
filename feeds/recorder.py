"""Record live ticks to the replay format, so a day seen live can be replayed exactly.

record() only puts the tick on a queue (safe from any thread, never touches the disk), and a writer
thread writes in batches and pushes the file to the OS every `flush_interval_s`, so the feed's consumer
thread is never held up by I/O and a crash loses at most that interval. A disk error is logged and the
affected ticks are counted as dropped; it never stops the feed. If the file already exists (a restart
during the day), the recording continues in a new part file that read_ticks() reads after it.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from core.types import FyersTick
from feeds.recorded import TickWriter, file_format, part_path, recording_parts

log = logging.getLogger(__name__)
_STOP = object()


def next_recording_path(path: Path | str) -> Path:
    """`path` if nothing was recorded there yet, else the next free part file."""
    p = Path(path)
    file_format(p)
    existing = recording_parts(p)
    if not existing:
        return p
    n = len(existing) + 1
    while part_path(p, n).exists():
        n += 1
    return part_path(p, n)


class TickRecorder:
    """Append ticks to a recording from any thread; close() writes what is left and closes the file."""

    def __init__(self, path: Path | str, *, batch_size: int = 5000, flush_interval_s: float = 1.0):
        if batch_size < 1 or flush_interval_s <= 0:
            raise ValueError("batch_size must be >= 1 and flush_interval_s > 0")
        self.requested_path = Path(path)
        self.path = next_recording_path(path)
        self._writer = TickWriter(self.path, exclusive=True)
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self.received = 0      # counted by the writer thread, as it takes ticks off the queue
        self.written = 0
        self.dropped = 0
        self._last_error_log = 0.0
        if self.path != self.requested_path:
            log.info("recording ticks to %s (continuing %s)", self.path, self.requested_path)
        else:
            log.info("recording ticks to %s", self.path)
        self._thread = threading.Thread(target=self._run, name="tick-recorder", daemon=True)
        self._thread.start()

    def record(self, tick: FyersTick) -> None:
        """Queue one tick; the dict must not be changed afterwards."""
        if self._closed:
            self._late(1)
            return
        self._q.put(tick)

    def record_many(self, ticks: Iterable[FyersTick]) -> None:
        """Queue a batch (one queue operation for all of them)."""
        batch = list(ticks)
        if self._closed:
            self._late(len(batch))
            return
        if batch:
            self._q.put(batch)

    def _late(self, n: int) -> None:
        self.dropped += n
        log.debug("recorder closed: %d tick(s) not recorded", n)

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued so far, then close the file (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._q.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("tick recorder did not finish writing %s within %.0fs", self.path, timeout)
            return
        log.info("recorded %d ticks to %s%s", self.written, self.path,
                 f" ({self.dropped} dropped)" if self.dropped else "")

    def __enter__(self) -> TickRecorder:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def stats(self) -> dict[str, Any]:
        return {"path": str(self.path), "received": self.received, "written": self.written,
                "dropped": self.dropped, "queued": self._q.qsize()}

    # ---------------------------------------------------------------- writer thread

    def _run(self) -> None:
        q = self._q
        last_flush = time.monotonic()
        stop = False
        while not stop:
            buf: list[FyersTick] = []
            try:
                item = q.get(timeout=self.flush_interval_s)
            except queue.Empty:
                item = None
            while item is not None:
                if item is _STOP:
                    stop = True
                    break
                if type(item) is list:
                    buf.extend(item)
                else:
                    buf.append(item)
                if len(buf) >= self.batch_size:
                    break
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    item = None
            if buf:
                self.received += len(buf)
                self._write(buf)
            now = time.monotonic()
            if stop or now - last_flush >= self.flush_interval_s:
                self._flush()
                last_flush = now
        self._drain_after_stop()
        try:
            self._writer.close()
        except OSError as e:
            self._error(e, 0)

    def _drain_after_stop(self) -> None:
        while True:
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP:
                self._late(len(item) if type(item) is list else 1)

    def _write(self, buf: list[FyersTick]) -> None:
        try:
            n = self._writer.write_many(buf)
            self.written += n
            self.dropped += len(buf) - n  # ticks the writer refused (logged there)
        except (OSError, ValueError) as e:
            self._error(e, len(buf))

    def _flush(self) -> None:
        try:
            self._writer.flush()
        except OSError as e:
            self._error(e, 0)

    def _error(self, e: Exception, lost: int) -> None:
        self.dropped += lost
        now = time.monotonic()
        if now - self._last_error_log > 60.0:
            self._last_error_log = now
            log.error("cannot write ticks to %s (%s); %d tick(s) dropped so far, the feed goes on",
                      self.path, e, self.dropped)


__all__ = ["TickRecorder", "next_recording_path"]

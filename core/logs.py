"""Logging set-up: one format with the process name, a daily-rotating file in the logs folder, and a
filter that masks every secret value before a record is written anywhere. Times are IST with the offset
(2026-12-02 17:10:03.123+05:30), whatever the host's zone, so log lines match `status` and the reports.

One sink for the daemon's processes: the workers and the feed process hand their records (redacted, message
formatted) to the driver through a QueueHandler over a pipe of their own, and the driver's LogSink writes
every file and the console. One writer per file: lines never interleave mid-line, and rotation at midnight
is done once. A pipe per process, not one shared queue: a process killed mid-write (SIGKILL) can break only
its own pipe, never hold a lock the others need. The paper broker is a separate server with its own log.
"""
from __future__ import annotations

import logging
import logging.handlers
import os
import pickle
import sys
import threading
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from multiprocessing.connection import Connection, Pipe, wait
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)-7s %(processName)s %(name)s: %(message)s"
_redactor: RedactSecrets | None = None
IST_OFFSET = timezone(timedelta(hours=5, minutes=30), "IST")  # India has no daylight saving time


class ISTFormatter(logging.Formatter):
    """Stamps each record in IST with its offset (the host may run in UTC): one clock for logs and reports."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging API
        t = datetime.fromtimestamp(int(record.created), IST_OFFSET)  # msecs carries the fraction
        if datefmt:
            return t.strftime(datefmt)
        return f"{t:%Y-%m-%d %H:%M:%S}.{int(record.msecs):03d}+05:30"


class RedactSecrets(logging.Filter):
    """Replaces known secret strings in the final message (args included) with '***'."""

    def __init__(self, secrets: Iterable[str] = ()):
        super().__init__()
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for s in self.secrets:
            if s in text:
                text = text.replace(s, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            msg = record.getMessage()
            clean = self.redact(msg)
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = self.redact(record.exc_text)
            if clean != msg:
                record.msg, record.args = clean, None
        return True


def add_secrets(values: Iterable[str]) -> None:
    """More values to mask from now on: secrets known only after logging was set up (notification URLs)."""
    if _redactor is not None:
        _redactor.secrets = sorted({*_redactor.secrets, *(v for v in values if v)}, key=len, reverse=True)


def redact(text: str) -> str:
    """Mask secrets in text bound for a user, a file or a database row."""
    return _redactor.redact(text) if _redactor else text


def _file_handler(log_dir: Path, filename: str) -> logging.Handler:
    log_dir.mkdir(parents=True, exist_ok=True)
    return logging.handlers.TimedRotatingFileHandler(log_dir / filename, when="midnight", backupCount=30,
                                                     encoding="utf-8", delay=True)


def setup_logging(level: str = "INFO", log_dir: Path | None = None, secrets: Iterable[str] = (),
                  filename: str = "daemon.log", stream: bool = True, sink: Connection | None = None) -> None:
    """Idempotent; call once per process (child processes call it again after spawn). With `sink` (a child of
    the driver), records go to the driver's LogSink, which writes `filename` and the console for it."""
    global _redactor
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    root.setLevel(level)
    _redactor = RedactSecrets(secrets)
    fmt = ISTFormatter(FORMAT)
    handlers: list[logging.Handler] = []
    if sink is not None:
        handlers.append(logging.handlers.QueueHandler(_PipeQueue(sink)))  # type: ignore[arg-type]
    else:
        if stream:
            handlers.append(logging.StreamHandler(sys.stderr))
        if log_dir is not None:
            handlers.append(_file_handler(log_dir, filename))
    for h in handlers:
        if not isinstance(h, logging.handlers.QueueHandler):  # the sink's handlers format, in IST
            h.setFormatter(fmt)
        h.addFilter(_redactor)  # redacted before it leaves the process, and again where it is written
        root.addHandler(h)
    for noisy in ("urllib3", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class _PipeQueue:
    """What a QueueHandler puts records into, in a child: its own pipe to the driver's LogSink. The send is
    synchronous (no feeder thread), so a record logged before a crash has reached the driver."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.lock = threading.Lock()

    def put_nowait(self, record: logging.LogRecord) -> None:
        data = pickle.dumps(record.__dict__, pickle.HIGHEST_PROTOCOL)
        with self.lock:
            self.conn.send_bytes(data)


class LogSink:
    """The driver's one writer of its children's logs: reads every child's pipe on one thread and writes each
    record to that child's file (worker-N.log, feed.log) and to the driver's console handlers."""

    def __init__(self, log_dir: Path | None, echo: Iterable[logging.Handler] = ()):
        self.log_dir = log_dir
        self.echo = list(echo)
        self.files: dict[str, logging.Handler] = {}
        self.readers: dict[Connection, str] = {}
        self.lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-sink", daemon=True)
        self._thread.start()

    def channel(self, filename: str) -> Connection:
        """A new pipe for a child that logs to `filename`; the caller hands the returned end to the child and
        closes its own copy once the child has started (so the child's exit shows as the pipe's end here)."""
        reader, writer = Pipe(duplex=False)
        with self.lock:
            self.readers[reader] = filename
        os.write(self._wake_w, b"\0")
        return writer

    def _run(self) -> None:
        while True:
            with self.lock:
                readers = list(self.readers)
            if self._closing.is_set() and not readers:
                return
            try:
                ready = wait([*readers, self._wake_r], timeout=0.5)
            except (OSError, ValueError):  # closed under us: close() gave up waiting for a child
                return
            for r in ready:
                if r == self._wake_r:
                    os.read(self._wake_r, 4096)
                    continue
                try:
                    data = r.recv_bytes()  # type: ignore[union-attr]
                except (EOFError, OSError):  # the child exited (or was killed mid-record): its pipe is done
                    with self.lock:
                        self.readers.pop(r, None)  # type: ignore[call-overload]
                    r.close()  # type: ignore[union-attr]
                    continue
                try:
                    record = logging.makeLogRecord(pickle.loads(data))
                except Exception:  # noqa: BLE001 - a torn record is dropped, the pipe goes on
                    continue
                self._write(record, self.readers.get(r, "children.log"))  # type: ignore[call-overload]

    def _write(self, record: logging.LogRecord, filename: str) -> None:
        targets = list(self.echo)
        if self.log_dir is not None:
            h = self.files.get(filename)
            if h is None:
                h = self.files[filename] = _file_handler(self.log_dir, filename)
                h.setFormatter(ISTFormatter(FORMAT))
                if _redactor is not None:
                    h.addFilter(_redactor)
            targets.append(h)
        for h in targets:
            if record.levelno >= h.level:
                h.handle(record)

    def close(self, timeout_s: float = 5.0) -> None:
        """After the children have stopped: write what they sent last, then close the files. Idempotent."""
        if self._closing.is_set():
            return
        self._closing.set()
        os.write(self._wake_w, b"\0")
        self._thread.join(timeout_s)
        with self.lock:
            for r in list(self.readers):
                r.close()
            self.readers.clear()
        for h in self.files.values():
            h.close()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)

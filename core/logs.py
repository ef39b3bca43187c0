"""Logging set-up: one format with the process name, a daily-rotating file in the logs folder, and a
filter that masks every secret value before a record is written anywhere. Times are IST with the offset
(2026-12-02 17:10:03.123+05:30), whatever the host's zone, so log lines match `status` and the reports."""
from __future__ import annotations

import logging
import logging.handlers
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable

FORMAT = "%(asctime)s %(levelname)-7s %(processName)s %(name)s: %(message)s"
_redactor: "RedactSecrets | None" = None
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


def redact(text: str) -> str:
    """Mask secrets in text bound for a user, a file or a database row."""
    return _redactor.redact(text) if _redactor else text


def setup_logging(level: str = "INFO", log_dir: Path | None = None, secrets: Iterable[str] = (),
                  filename: str = "daemon.log", stream: bool = True) -> None:
    """Idempotent; call once per process (child processes call it again after spawn)."""
    global _redactor
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    root.setLevel(level)
    _redactor = RedactSecrets(secrets)
    fmt = ISTFormatter(FORMAT)
    handlers: list[logging.Handler] = []
    if stream:
        handlers.append(logging.StreamHandler(sys.stderr))
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.handlers.TimedRotatingFileHandler(
            log_dir / filename, when="midnight", backupCount=30, encoding="utf-8", delay=True))
    for h in handlers:
        h.setFormatter(fmt)
        h.addFilter(_redactor)
        root.addHandler(h)
    for noisy in ("urllib3", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

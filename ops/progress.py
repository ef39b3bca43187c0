"""A one-line progress bar for replays: ticks done, share of the session by feed time, and ETA.

It draws at most a few times a second and says nothing at all when the stream is not a terminal, so logs
and pipes stay clean. update() is cheap enough to call per dispatched batch.
"""
from __future__ import annotations

import logging
import shutil
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from core.clock import to_ist


def _hms(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _count(n: float) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n:,.0f}"


class ReplayProgress:
    """`update(ticks_done, feed_time_epoch)` as the replay goes; `close()` at the end."""

    BAR = 16

    def __init__(self, session_start_epoch: float, session_end_epoch: float, stream: TextIO | None = None,
                 min_interval_s: float = 0.2, clock: Callable[[], float] = time.monotonic,
                 width: int | None = None):
        self.start = float(session_start_epoch)
        self.end = float(session_end_epoch)
        self.stream = sys.stderr if stream is None else stream
        self.min_interval_s = min_interval_s
        self.clock = clock
        self.width = width  # None: the terminal's width at each redraw
        try:
            self.enabled = bool(self.stream.isatty())
        except (AttributeError, ValueError):  # closed or not a file
            self.enabled = False
        self.t0 = clock()
        self.last_draw = float("-inf")
        self.drawn = False
        self.last_width = 0
        self.ticks = 0
        self.feed_time = self.start
        self.redraws = 0

    def update(self, ticks_done: int, feed_time_epoch: float | None) -> None:
        if not self.enabled:
            return
        self.ticks = ticks_done
        if feed_time_epoch:
            self.feed_time = feed_time_epoch
        now = self.clock()
        if now - self.last_draw < self.min_interval_s:
            return
        self.last_draw = now
        self._draw(now)

    def share(self) -> float:
        span = self.end - self.start
        if span <= 0:
            return 1.0
        return min(max((self.feed_time - self.start) / span, 0.0), 1.0)

    def render(self, now: float | None = None) -> str:
        """The line as it would be drawn (without the carriage return); the ETA comes early so a narrow
        terminal still shows it."""
        now = self.clock() if now is None else now
        share = self.share()
        elapsed = max(now - self.t0, 0.0)
        filled = int(round(share * self.BAR))
        bar = "#" * filled + "-" * (self.BAR - filled)
        rate = self.ticks / elapsed if elapsed > 0 else 0.0
        if share >= 1.0:
            eta = f"done in {_hms(elapsed)}"
        elif share > 0 and elapsed > 0:
            eta = "ETA " + _hms(elapsed * (1 - share) / share)
        else:
            eta = "ETA -:--:--"
        return (f"replay {share * 100:5.1f}% [{bar}] {eta}  feed {to_ist(self.feed_time):%H:%M:%S}  "
                f"{_count(self.ticks)} ticks  {_count(rate)}/s")

    def _draw(self, now: float) -> None:
        width = self.width or max(shutil.get_terminal_size((100, 24)).columns - 1, 20)
        line = self.render(now)[:width]
        pad = " " * max(self.last_width - len(line), 0)
        try:
            self.stream.write("\r" + line + pad)
            self.stream.flush()
        except (OSError, ValueError):
            self.enabled = False
            return
        self.last_width = len(line)
        self.drawn = True
        self.redraws += 1

    def clear(self) -> None:
        """Erase the bar so a log line can be written on a clean line; the next update() redraws it."""
        if not self.enabled or not self.last_width:
            return
        try:
            self.stream.write("\r" + " " * self.last_width + "\r")
            self.stream.flush()
        except (OSError, ValueError):
            self.enabled = False
        self.last_width = 0
        self.last_draw = float("-inf")

    def log_filter(self) -> logging.Filter:
        """A filter for the console log handler: clears the bar before each record is written."""
        progress = self

        class _ClearBar(logging.Filter):
            def filter(self, record: logging.LogRecord) -> bool:
                progress.clear()
                return True
        return _ClearBar()

    def close(self) -> None:
        """Draw the final state and end the line (nothing when the stream is not a terminal)."""
        if not self.enabled:
            return
        self._draw(self.clock())
        try:
            self.stream.write("\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass
        self.enabled = False

    def __enter__(self) -> ReplayProgress:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()


class CountProgress:
    """Progress over a known number of units (symbol-days of a history fetch): a bar with ETA on a terminal,
    and when the stream is not one, a plain line each time another whole percent is done, so a log shows how
    far a long run got without a line per unit."""

    BAR = 20

    def __init__(self, total: int, label: str, stream: TextIO | None = None, min_interval_s: float = 0.2,
                 clock: Callable[[], float] = time.monotonic):
        self.total = max(int(total), 0)
        self.label = label
        self.stream = sys.stderr if stream is None else stream
        self.min_interval_s = min_interval_s
        self.clock = clock
        try:
            self.tty = bool(self.stream.isatty())
        except (AttributeError, ValueError):
            self.tty = False
        self.t0 = clock()
        self.done = 0
        self.note = ""
        self.last_draw = float("-inf")
        self.last_pct = -1
        self.last_width = 0

    def render(self, now: float | None = None) -> str:
        now = self.clock() if now is None else now
        share = 1.0 if self.total == 0 else min(self.done / self.total, 1.0)
        elapsed = max(now - self.t0, 0.0)
        filled = int(round(share * self.BAR))
        if share >= 1.0:
            eta = f"done in {_hms(elapsed)}"
        elif share > 0:
            eta = "ETA " + _hms(elapsed * (1 - share) / share)
        else:
            eta = "ETA -:--:--"
        bar = "#" * filled + "-" * (self.BAR - filled)
        note = f"  {self.note}" if self.note else ""
        return f"{self.label} {share * 100:5.1f}% [{bar}] {eta}  {_count(self.done)}/{_count(self.total)}{note}"

    def advance(self, n: int = 1, note: str | None = None) -> None:
        self.done += n
        if note is not None:
            self.note = note
        now = self.clock()
        if self.tty:
            if now - self.last_draw >= self.min_interval_s or self.done >= self.total:
                self.last_draw = now
                self._write("\r" + self._padded(self.render(now)))
            return
        pct = 100 if self.total == 0 else int(self.done * 100 // self.total)
        if pct > self.last_pct:
            self.last_pct = pct
            self._write(self.render(now) + "\n")

    def _padded(self, line: str) -> str:
        width = max(shutil.get_terminal_size((100, 24)).columns - 1, 20)
        line = line[:width]
        pad = " " * max(self.last_width - len(line), 0)
        self.last_width = len(line)
        return line + pad

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            self.tty = False

    def close(self) -> None:
        """End the bar's line on a terminal."""
        if self.tty and self.last_width:
            self._write("\r" + self._padded(self.render()) + "\n")
            self.last_width = 0

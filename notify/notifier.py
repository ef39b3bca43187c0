"""Sends notification events to every configured Apprise URL without ever making the caller wait.

`emit` runs on the trading thread (or the supervisor's): it checks the event's level, counts it against the
storm limit and puts it on each channel's bounded queue -- no I/O, no waiting, microseconds. Each URL has its own
sender thread, so a URL that hangs delays only its own messages. A storm of one event is rate-limited: at most
`storm_limit` per `storm_window_s`, the rest counted and sent as one summary when the window ends ("12 more order
rejections in the last 60 s"). A full queue drops the newest message, counts it, and the channel says so
("3 notification(s) dropped") as soon as it can send again. Nothing is dropped silently.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from notify.config import Channel, NotificationsConfig
from notify.events import Event, Level, NotificationsDropped, StormSummarized

log = logging.getLogger(__name__)

_NOTIFY_TYPE = {Level.INFO: "info", Level.WARNING: "warning", Level.CRITICAL: "failure"}
_STOP = object()
STORM_CHECK_S = 0.5  # how often windows that ended are summarised


@dataclass
class _Window:
    start: float
    noun: str
    seen: int = 0
    held: int = 0  # over the limit: counted, summarised when the window ends
    level: Level = Level.INFO


@dataclass
class ChannelStats:
    sent: int = 0
    failed: int = 0
    dropped: int = 0  # queue full (all time)
    unsent_at_close: int = 0


@dataclass
class _Sender:
    """One URL's queue and thread."""

    channel: Channel
    q: queue.Queue[object]
    stats: ChannelStats = field(default_factory=ChannelStats)
    to_report: int = 0  # dropped since the last "dropped" message
    lock: threading.Lock = field(default_factory=threading.Lock)
    thread: threading.Thread | None = None


def apprise_send(channel: Channel) -> Callable[[str, str, Level], bool]:
    """A function that sends one message to the channel's URL through Apprise; True when it was delivered."""
    import apprise

    ap = apprise.Apprise()
    ap.add(channel.url)

    def send(title: str, body: str, level: Level) -> bool:
        return bool(ap.notify(body=body, title=title, notify_type=_NOTIFY_TYPE[level]))
    return send


class Notifier:
    """Fan-out of events to channels, with levels, storm limits and bounded queues; see the module docstring."""

    def __init__(self, cfg: NotificationsConfig, channels: list[Channel],
                 make_send: Callable[[Channel], Callable[[str, str, Level], bool]] = apprise_send,
                 clock: Callable[[], float] = time.monotonic):
        self.cfg = cfg
        self.clock = clock
        self._make_send = make_send
        self._senders = [_Sender(c, queue.Queue(cfg.queue_size)) for c in channels]
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._stop = threading.Event()
        self._abandoned = threading.Event()
        self._storm_thread: threading.Thread | None = None

    @property
    def stats(self) -> dict[str, ChannelStats]:
        return {s.channel.name: s.stats for s in self._senders}

    def start(self) -> None:
        """Build each URL's client here, before trading starts (importing Apprise's plugins takes a while), then
        start the senders."""
        for s in self._senders:
            try:
                send = self._make_send(s.channel)
            except Exception as e:  # noqa: BLE001 - a channel that cannot start must not stop the daemon
                log.error("notifications: %s cannot be used (%s); its messages are not sent", s.channel.name,
                          type(e).__name__)
                continue
            s.thread = threading.Thread(target=self._run, args=(s, send), name=f"notify {s.channel.name}",
                                        daemon=True)
            s.thread.start()
        self._storm_thread = threading.Thread(target=self._storms, name="notify storms", daemon=True)
        self._storm_thread.start()

    # ------------------------------------------------------------------ the caller's side: never waits
    def emit(self, ev: Event) -> None:
        """Queue `ev` for every channel whose minimum its level reaches; returns at once."""
        if self._closed:
            return
        level = ev.level if isinstance(ev, StormSummarized) else self.cfg.level_of(ev.kind)
        if level is None:
            return
        if ev.ends_storms:
            self.flush_storms(all_windows=True)
        if not isinstance(ev, StormSummarized):
            now = self.clock()
            with self._lock:
                w = self._windows.get(ev.kind)
                if w is None or now - w.start >= self.cfg.storm_window_s:
                    if w is not None and w.held:
                        self._summarise(w)
                    w = self._windows[ev.kind] = _Window(now, type(ev).noun)
                w.seen += 1
                if w.seen > self.cfg.storm_limit:
                    w.held += 1
                    w.level = max(w.level, level)
                    return
        self._offer(ev, level)

    def _summarise(self, w: _Window) -> None:
        """Called under the lock for a window that ended with messages held back."""
        summary = StormSummarized(w.held, w.noun, self.cfg.storm_window_s, w.level)
        log.info("notifications: %d more %s in the last %.0f s were rate-limited", w.held, w.noun,
                 self.cfg.storm_window_s)
        self._offer(summary, w.level)

    def _offer(self, ev: Event, level: Level) -> None:
        for s in self._senders:
            if level < s.channel.min_level:
                continue
            try:
                s.q.put_nowait((ev, level))
            except queue.Full:
                with s.lock:
                    s.stats.dropped += 1
                    s.to_report += 1

    def _storms(self) -> None:
        """Summarise windows that ended with messages held back, when no later event of their kind comes."""
        while not self._stop.wait(STORM_CHECK_S):
            self.flush_storms()

    def flush_storms(self, all_windows: bool = False) -> None:
        """Send the summary of every ended window (of every window with `all_windows`, at close)."""
        now = self.clock()
        with self._lock:
            for kind, w in list(self._windows.items()):
                if all_windows or now - w.start >= self.cfg.storm_window_s:
                    del self._windows[kind]
                    if w.held:
                        self._summarise(w)

    # ------------------------------------------------------------------ each channel's thread
    def _run(self, s: _Sender, send: Callable[[str, str, Level], bool]) -> None:
        while True:
            item = s.q.get()
            if item is _STOP or self._abandoned.is_set():  # closed, or close gave up waiting: send no more
                return
            with s.lock:
                dropped, s.to_report = s.to_report, 0
            if dropped:
                log.warning("notifications: %d message(s) to %s dropped: its queue was full", dropped,
                            s.channel.name)
                self._deliver(s, send, NotificationsDropped(dropped), Level.WARNING)
            ev, level = cast(tuple[Event, Level], item)
            self._deliver(s, send, ev, level)

    def _deliver(self, s: _Sender, send: Callable[[str, str, Level], bool], ev: Event, level: Level) -> None:
        try:
            ok = send(ev.title(), ev.text(), level)
        except Exception as e:  # noqa: BLE001 - the endpoint's problem; the daemon goes on
            log.warning("notifications: sending %r to %s raised %s", ev.kind, s.channel.name, type(e).__name__)
            ok = False
        if ok:
            s.stats.sent += 1
        else:
            s.stats.failed += 1
            log.warning("notifications: %s did not take %r (%s)", s.channel.name, ev.kind, ev.title())

    # ------------------------------------------------------------------ shutdown
    def close(self, timeout_s: float = 10.0) -> None:
        """Send what is queued (and the held-back counts) for at most `timeout_s`, then stop."""
        if self._closed:
            return
        self.flush_storms(all_windows=True)
        self._closed = True
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        for s in self._senders:
            try:
                s.q.put(_STOP, timeout=max(0.0, deadline - time.monotonic()))
            except queue.Full:
                pass
        for s in self._senders:
            if s.thread is not None:
                s.thread.join(max(0.0, deadline - time.monotonic()))
                if s.thread.is_alive():
                    self._abandoned.set()
                    s.stats.unsent_at_close = max(0, s.q.qsize() - 1) + 1  # the one in flight too, not the stop
                    log.warning("notifications: %s did not finish within %gs; about %d message(s) not sent",
                                s.channel.name, timeout_s, s.stats.unsent_at_close)

"""PollSet: a poll set kept across the turns of a loop that waits on the same few pipes again and again.

Why: multiprocessing.connection.wait (and Connection.poll, which calls it) builds, fills and closes a selector
on every call: ~20 us for the driver's ten pipes, ~5 us for one. The driver's loop and each worker's loop turn
thousands of times a second when paced or live (a few ticks per cycle), and on two cores every such
microsecond is one a tick waits for. Here the set is built once, and again only when the pipes change.
"""
from __future__ import annotations

import select
from typing import Any


class PollSet:
    """Connections (anything with fileno()) and plain file descriptors, as multiprocessing.connection.wait takes
    them. One thread uses it."""

    def __init__(self) -> None:
        self._poll: Any = None
        self._objs: list[Any] = []
        self._by_fd: dict[int, Any] = {}

    def ready(self, objs: list[Any], timeout: float | None) -> list[Any]:
        """Those of `objs` with something to read (or ended) within `timeout` seconds (None: no limit), as
        multiprocessing.connection.wait returns them."""
        if objs != self._objs:  # compared by identity: a new pipe may reuse a closed one's descriptor number
            poll = select.poll()
            by_fd = {}
            for o in objs:
                fd = o if isinstance(o, int) else o.fileno()
                poll.register(fd, select.POLLIN)
                by_fd[fd] = o
            self._poll, self._objs, self._by_fd = poll, list(objs), by_fd
        by_fd = self._by_fd
        return [by_fd[fd] for fd, _ev in self._poll.poll(None if timeout is None else timeout * 1000.0)
                if fd in by_fd]


__all__ = ["PollSet"]

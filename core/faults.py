"""Fault injection for the crash-safety tests; off unless the variable is set, never set in production.

`DAEMON_CRASH_AT=name:N` kills this process with SIGKILL the N-th time execution passes the point `name`.
Points: order_committed (recorded as SENT_TO_BROKER, not yet sent), order_acknowledged (the broker took
it, its id not yet recorded), fill_seen (a fill read from the broker, not yet applied).

`DAEMON_FEED_DROP_AT=HH:MM:SS/SECONDS[,...]` drops a replay's simulated feed connection when the replay
reaches that IST time of the replayed day, for that many feed seconds (deterministic at any speed); the
socket then reconnects and the client must resubscribe, as with the live Fyers socket.

`DAEMON_KILL_AT=HH:MM:SS` (replay only) kills the driver with SIGKILL once its replay clock reaches that IST time
of the replayed day (deterministic at any speed): a daemon killed mid-day with positions open, for the restart tests.

`DAEMON_FEED_STARTED_DELAY_S=SECONDS` makes the feed process report "started" that long after its feed began,
so its first cycles reach the driver before that report (the start-up ordering the driver must accept).
`DAEMON_INJECT_TICKS=PATH` (replay only) hands the feed process's tick handler extra messages, as if the socket
had sent them: PATH holds JSON lines {"before": N, "tick": <any JSON value, NaN allowed>}, each delivered just
before the socket's N-th tick (counting from 0) of the replay.
"""
from __future__ import annotations

import os
import signal
from collections.abc import Callable
from datetime import date
from datetime import time as dtime
from typing import Any

_spec = os.environ.get("DAEMON_CRASH_AT", "")
_name, _, _n = _spec.partition(":")
_left = int(_n) if _n.isdigit() else 1
_hits = 0


def crash_point(name: str) -> None:
    global _hits
    if name != _name:
        return
    _hits += 1
    if _hits >= _left:
        os.kill(os.getpid(), signal.SIGKILL)


def die_with_parent() -> None:
    """Linux: ask the kernel to kill this process when its parent dies (a SIGKILLed driver must not leave
    workers or its Manager running), and go at once if the parent already died while we were starting."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if parent_gone():
        os._exit(1)


def parent_gone() -> bool:
    import multiprocessing

    parent = multiprocessing.parent_process()
    return parent is not None and os.getppid() != parent.pid


def feed_drops(day: date, spec: str | None = None) -> list[tuple[int, float]]:
    """DAEMON_FEED_DROP_AT (or `spec`) as (feed time in epoch seconds, seconds down) for SimulatedWebSocket's
    `disconnects`; [] when unset. A malformed value stops start-up with a message naming the variable."""
    from core.clock import ist_epoch
    from core.errors import StartupError

    spec = os.environ.get("DAEMON_FEED_DROP_AT", "") if spec is None else spec
    drops = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        at, _, secs = part.partition("/")
        try:
            when, down = dtime.fromisoformat(at), float(secs)
            if not down > 0:
                raise ValueError
        except ValueError:
            raise StartupError(f"DAEMON_FEED_DROP_AT: {part!r} is not allowed -- use HH:MM:SS/SECONDS, "
                               "e.g. 09:45:00/120") from None
        drops.append((int(ist_epoch(day, when)), down))
    return drops


def kill_time(day: date) -> int | None:
    """DAEMON_KILL_AT as epoch seconds on `day`; None when unset. A malformed value stops start-up with a message
    naming the variable."""
    from core.clock import ist_epoch
    from core.errors import StartupError

    spec = os.environ.get("DAEMON_KILL_AT", "").strip()
    if not spec:
        return None
    try:
        return int(ist_epoch(day, dtime.fromisoformat(spec)))
    except ValueError:
        raise StartupError(f"DAEMON_KILL_AT: {spec!r} is not allowed -- use HH:MM:SS, e.g. 10:05:00") from None


def kill_now() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def started_report_delay() -> None:
    """DAEMON_FEED_STARTED_DELAY_S: hold back the feed process's "started" report (tests only)."""
    import time

    try:
        delay = float(os.environ.get("DAEMON_FEED_STARTED_DELAY_S", "") or 0)
    except ValueError:
        delay = 0.0
    if delay > 0:
        time.sleep(delay)
def injected_ticks(on_message: Callable[[Any], None], spec: str | None = None) -> Callable[[Any], None]:
    """`on_message` with DAEMON_INJECT_TICKS's messages slipped in before the socket's N-th tick; `on_message`
    itself when unset. An unreadable file stops start-up with a message naming the variable."""
    return injected_feed(on_message, None, spec)[0]


def injected_feed(on_message: Callable[[Any], None], on_columns: Callable[[Any], None] | None,
                  spec: str | None = None) -> tuple[Callable[[Any], None], Callable[[Any], None] | None]:
    """injected_ticks for a socket that delivers ticks one by one (on_message) and as columns (on_columns, a
    TickColumns): one count of the socket's ticks over both, the injected messages going to `on_message`."""
    import json

    from core.errors import StartupError

    path = os.environ.get("DAEMON_INJECT_TICKS", "") if spec is None else spec
    if not path:
        return on_message, on_columns
    extra: dict[int, list[Any]] = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in filter(str.strip, f):
                doc = json.loads(line)
                extra.setdefault(int(doc["before"]), []).append(doc["tick"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise StartupError(f"DAEMON_INJECT_TICKS: cannot read {path!r} ({e}) -- expected JSON lines "
                           '{"before": N, "tick": ...}') from None
    seen = 0

    def deliver(msg: Any) -> None:
        nonlocal seen
        if type(msg) is dict and "s" not in msg:
            for bad in extra.pop(seen, ()):
                on_message(bad)
            seen += 1
        on_message(msg)

    def deliver_columns(cols: Any) -> None:
        nonlocal seen
        assert on_columns is not None
        n, lo = len(cols), 0
        for at in sorted(k for k in extra if seen <= k < seen + n):
            if at - seen > lo:
                on_columns(cols.slice(lo, at - seen))
                lo = at - seen
            for bad in extra.pop(at):
                on_message(bad)
        if lo < n:
            on_columns(cols.slice(lo, n))
        seen += n
    return deliver, (None if on_columns is None else deliver_columns)

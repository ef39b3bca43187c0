"""Crash points for the crash-safety tests: `DAEMON_CRASH_AT=name:N` kills this process with SIGKILL the
N-th time execution passes the point `name`. Off unless that variable is set; never set it in production.

Points: order_committed (recorded as SENT_TO_BROKER, not yet sent), order_acknowledged (the broker took
it, its id not yet recorded), fill_seen (a fill read from the broker, not yet applied).
"""
from __future__ import annotations

import os
import signal

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

"""How soon a thread waiting for the interpreter lock gets it, in the processes where one thread's latency
matters while another computes.

Why: a thread coming back from a blocking call (a socket read, a queue wait) needs the lock again, and while
another thread holds it and computes, CPython makes it wait the whole switch interval (5 ms by default)
before asking the holder to let go. An order's round trip takes the lock back several times (the request
sent, the answer read, the answer reported), so with the trading thread busy on ticks the sender waited
5 ms at each: on the order bench with a thread computing beside the TradeManager, the placeorder call's
median went from 12.9 ms to 4.6 ms at 0.5 ms (a loaded host, load average 10-13). A thread that holds the
lock while no other waits is never interrupted, so only contended moments pay for the shorter interval.
"""
from __future__ import annotations

import logging
import sys

log = logging.getLogger(__name__)

SWITCH_INTERVAL_S = 0.0005  # CPython's default is 0.005


def shorten_switch_interval(limit_s: float = SWITCH_INTERVAL_S) -> None:
    """Make the process's switch interval at most `limit_s` (never longer than it already is)."""
    if sys.getswitchinterval() > limit_s:
        sys.setswitchinterval(limit_s)
        log.debug("thread switch interval set to %.2f ms", limit_s * 1000)

"""What a loop pays to learn which of its pipes has something to read; prints ONE JSON line.

    .venv/bin/python bench/polling.py [--calls 20000]

The driver's loop waits on its ten pipes (eight workers' events, the feed's reports, the broker's answers) and
each worker's loop on two (control, ticks) at every turn: paced or live, a few thousand turns a second. Per
call, in CPU microseconds of this thread (nothing readable, timeout 0, so only the call's own cost counts):
multiprocessing.connection.wait over the ten pipes (what the driver called), over two (a worker's idle wait),
Connection.poll on one (a worker called it twice per turn), and pipeline.polling.PollSet over the same ten and
two (what both loops call now).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipeline.polling import PollSet  # noqa: E402


def per_call_us(fn: Any, calls: int) -> float:
    """CPU microseconds per call, best of three rounds (the least disturbed by the rest of the machine)."""
    best = float("inf")
    for _ in range(3):
        t = time.thread_time()
        for _ in range(calls):
            fn()
        best = min(best, (time.thread_time() - t) / calls * 1e6)
    return round(best, 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=20000)
    a = ap.parse_args()
    ctx = mp.get_context("spawn")
    pipes = [ctx.Pipe(duplex=False) for _ in range(9)]
    fd_r, fd_w = os.pipe()
    ten: list[Any] = [r for r, _w in pipes] + [fd_r]
    two = ten[:2]
    ps10, ps2 = PollSet(), PollSet()
    out = {"bench": "polling", "calls": a.calls, "load_avg_1m": round(os.getloadavg()[0], 2),
           "mp_wait_10_us": per_call_us(lambda: wait(ten, 0), a.calls),
           "pollset_10_us": per_call_us(lambda: ps10.ready(ten, 0), a.calls),
           "mp_wait_2_us": per_call_us(lambda: wait(two, 0), a.calls),
           "connection_poll_1_us": per_call_us(lambda: two[0].poll(), a.calls),
           "pollset_2_us": per_call_us(lambda: ps2.ready(two, 0), a.calls)}
    for r, w in pipes:
        r.close()
        w.close()
    os.close(fd_r)
    os.close(fd_w)
    print(json.dumps(out))


if __name__ == "__main__":
    main()

"""The replay progress bar: silent off a terminal, throttled and informative on one."""
from __future__ import annotations

import io
import logging
from datetime import date
from datetime import time as dtime

from core.clock import ist_epoch
from ops.progress import ReplayProgress

DAY = date(2026, 3, 2)
OPEN, CLOSE = ist_epoch(DAY, dtime(9, 15)), ist_epoch(DAY, dtime(15, 30))


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_silent_when_not_a_terminal():
    out = io.StringIO()
    p = ReplayProgress(OPEN, CLOSE, stream=out)
    for i in range(1000):
        p.update(i, OPEN + i)
    p.close()
    assert out.getvalue() == "" and p.redraws == 0


def test_renders_share_eta_and_is_throttled():
    out, clock = FakeTty(), Clock()
    p = ReplayProgress(OPEN, CLOSE, stream=out, clock=clock, width=120)
    clock.t += 10.0
    quarter = OPEN + (CLOSE - OPEN) / 4
    p.update(50_000, quarter)
    first = out.getvalue()
    assert first == "\rreplay  25.0% [####------------] ETA 0:00:30  feed 10:48:45  50,000 ticks  5,000/s"
    # 10 s for a quarter of the session -> 30 s for the rest
    for i in range(100):                     # many updates within the same 0.2 s: no redraw
        p.update(50_000 + i, quarter + i)
    assert p.redraws == 1
    clock.t += 0.25
    p.update(60_000, OPEN + (CLOSE - OPEN) / 2)
    assert p.redraws == 2 and " 50.0%" in out.getvalue().split("\r")[-1]
    clock.t += 5
    p.update(100_000, CLOSE + 60)            # past the close: capped at 100%
    p.close()
    last = out.getvalue().split("\r")[-1]
    assert "100.0%" in last and "done in 0:00:15" in last and last.endswith("\n")
    p.update(1, OPEN)                        # after close: nothing more
    assert out.getvalue().split("\r")[-1] == last


def test_shorter_line_clears_the_previous_one():
    out, clock = FakeTty(), Clock()
    p = ReplayProgress(OPEN, CLOSE, stream=out, clock=clock, width=120)
    clock.t += 1
    p.update(10**9, OPEN + 60)
    long_len = len(out.getvalue().split("\r")[-1])
    clock.t += 1
    p.update(1, OPEN + 120)
    assert len(out.getvalue().split("\r")[-1]) >= long_len


def test_line_is_cut_to_the_terminal_width():
    out, clock = FakeTty(), Clock()
    p = ReplayProgress(OPEN, CLOSE, stream=out, clock=clock, width=40)
    clock.t += 1
    p.update(5, OPEN + 600)
    assert out.getvalue() == "\r" + p.render()[:40] and "ETA" in out.getvalue()


def test_log_lines_do_not_collide_with_the_bar():
    out, clock = FakeTty(), Clock()
    p = ReplayProgress(OPEN, CLOSE, stream=out, clock=clock, width=120)
    handler = logging.StreamHandler(out)
    handler.addFilter(p.log_filter())
    lg = logging.getLogger("test_ops_progress")
    lg.addHandler(handler)
    lg.propagate = False
    try:
        clock.t += 1
        p.update(10, OPEN + 60)
        bar_len = len(out.getvalue()) - 1
        lg.warning("hello")
        assert out.getvalue().endswith("\r" + " " * bar_len + "\rhello\n")
        p.update(11, OPEN + 61)  # redrawn at once, not after the throttle interval
        assert p.redraws == 2 and out.getvalue().endswith(p.render())
    finally:
        lg.removeHandler(handler)

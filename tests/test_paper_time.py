"""The paper broker's IST arithmetic (fixed +05:30) agrees with pytz's Asia/Kolkata on the epochs it sees."""
from __future__ import annotations

import random
from datetime import datetime, timedelta
from datetime import time as dtime

from core.clock import IST, ist_epoch, to_ist
from paper.engine import stamp
from paper.market_hours import latest_boundary


def _reference(t: float, at: dtime) -> float:
    d = to_ist(t).date()
    b = ist_epoch(d, at)
    if b > t:
        b = ist_epoch(d - timedelta(days=1), at)
    return float(b)


def test_latest_boundary_matches_pytz() -> None:
    r = random.Random(14)
    ats = [dtime(0, 0), dtime(3, 0), dtime(15, 15), dtime(16, 45), dtime(23, 30)]
    for i in range(1000):
        t = r.uniform(0, 4e9) if i % 2 else float(r.randrange(0, 4_000_000_000))
        if i % 4 == 0:  # on and a hair around the half-hours the boundaries fall on
            t = float(int(t) // 1800 * 1800) + r.choice([0.0, -1e-6, 1e-6, -0.5, 0.5])
        for at in ats:
            assert latest_boundary(t, at) == _reference(t, at), (t, at)


def test_stamp_matches_pytz() -> None:
    r = random.Random(15)
    for _ in range(2000):
        t = r.uniform(0, 4e9)
        assert stamp(t) == datetime.fromtimestamp(t, IST).strftime("%Y-%m-%d %H:%M:%S")

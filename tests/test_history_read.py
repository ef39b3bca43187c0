"""The backtest's quick read of cached days (history.cached_days) answers as the one-day reader (history.cache)
does, day by day, report by report."""
from __future__ import annotations

import os
import random
from datetime import date, timedelta
from datetime import time as dtime

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core.clock import ist_epoch
from history.cache import CandleCache
from history.cached_days import CachedDays
from history.frames import CandleColumns
from history.intervals import parse_interval
from history.quality import check_columns, last_close
from history.store import HistoryStore
from history.synthetic import SyntheticSource
from strategies.base import Candle

DAY = date(2026, 11, 20)  # a Friday
M1 = parse_interval("1m")
SESSION = (ist_epoch(DAY, dtime(9, 15)), ist_epoch(DAY, dtime(15, 30)))
NAMES = ("start", "open", "high", "low", "close", "volume")


def _day(rng: random.Random, n: int = 375, price: float = 100.0) -> list[Candle]:
    out = []
    for i in range(n):
        o = price
        c = price * (1 + rng.uniform(-0.004, 0.004))
        h, lo = max(o, c) * (1 + rng.uniform(0, 0.002)), min(o, c) * (1 - rng.uniform(0, 0.002))
        out.append(Candle("X", SESSION[0] + 60 * i, 60, o, h, lo, c, rng.randrange(0, 5000)))
        price = c
    return out


def _same(a: CandleColumns | None, b: CandleColumns | None) -> bool:
    if a is None or b is None:
        return a is b
    return all(getattr(a, n).dtype == getattr(b, n).dtype
               and np.array_equal(getattr(a, n), getattr(b, n), equal_nan=getattr(a, n).dtype.kind == "f")
               for n in NAMES)


def test_cached_days_read_every_kind_of_day_as_the_cache_does(tmp_path):
    cache = CandleCache(tmp_path, "src")
    rng = random.Random(3)
    days = [DAY + timedelta(days=i) for i in range(8)]
    cache.write("X", "NSE", M1, days[0], _day(rng))
    cache.write("X", "NSE", M1, days[1], [])                                    # the source had nothing
    odd = _day(rng, 50)
    odd[3], odd[4] = odd[4], odd[3]                                             # kept out of order
    odd[7] = Candle("X", odd[7].start, 60, float("nan"), 1.0, 1.0, 1.0, 1)
    cache.write("X", "NSE", M1, days[2], odd)
    folder = cache.folder("X", "NSE", M1)
    # a file of another schema (float volume, int prices): read through the same cast
    pq.write_table(pa.table({"start": [SESSION[0]], "open": [5], "high": [6], "low": [4], "close": [5],
                             "volume": [7.0]}), folder / f"{days[3].isoformat()}.parquet")
    cache.write("X", "NSE", M1, days[4], _day(rng, 10))
    (folder / f"{days[4].isoformat()}.empty").touch()                           # both: the marker wins
    cache.write("X", "NSE", M1, days[6], _day(rng, 20))                         # days[5], days[7]: not cached
    listed = CachedDays(folder)
    os.unlink(folder / f"{days[6].isoformat()}.parquet")                        # gone since the listing
    for d in days:
        assert listed.has(d) == (d not in (days[5], days[7])), d
        assert _same(listed.read(d), cache.read("X", "NSE", M1, d)), d
    assert listed.read(days[6]) is None
    assert CachedDays(tmp_path / "nothing").read(DAY) is None and not CachedDays(tmp_path / "nothing").has(DAY)


def test_the_store_gives_the_days_and_reports_of_the_one_day_reader_and_the_full_check(tmp_path):
    source = SyntheticSource(7)
    store = HistoryStore(source, tmp_path, today=date(2026, 12, 31))
    first, last = date(2026, 9, 1), date(2026, 11, 30)
    got = list(store.days("SBIN", "NSE", M1, first, last))
    cache = CandleCache(tmp_path, source.key)
    prev = None
    want = []
    for d in (first + timedelta(days=i) for i in range((last - first).days + 1)):
        cols = cache.read("SBIN", "NSE", M1, d)
        assert cols is not None
        hours = store.calendar.hours(d)
        if not len(cols) and hours is None:
            continue
        session = None if hours is None else (ist_epoch(d, hours[0]), ist_epoch(d, hours[1]))
        want.append((d, cols, check_columns("SBIN", d, cols, 60, session, prev, store.jump_pct)))
        prev = last_close(cols) or prev
    assert [h.day for h in got] == [d for d, _, _ in want] and len(got) > 50
    assert all(_same(h.columns, cols) and h.report == report for h, (_, cols, report) in zip(got, want, strict=True))
    assert any(not h.report.ok for h in got)      # the synthetic data has gaps: findings are compared too

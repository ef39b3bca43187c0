"""The backtest's quick read of cached days (history.cached_days) and its quick quality check answer as the
one-day reader (history.cache) and the full check do, day by day, report by report."""
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
from history.cached_days import CachedDays, columns_of
from history.frames import SCHEMA, CandleColumns, to_table
from history.intervals import parse_interval
from history.quality import _check_all, _plain, check_columns, check_with_close, last_close
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


def test_columns_from_arrows_buffers_are_of_tables_columns_for_every_shape_of_table():
    whole = to_table(_day(random.Random(5), 40))
    nulls = pa.table({"start": [1, 2], "open": [1.0, None], "high": [2.0, 2.0], "low": [0.5, 0.5],
                      "close": [1.0, 1.0], "volume": [3, None]}, schema=SCHEMA)
    cast = pa.table({"start": [1, 2], "open": [1, 2], "high": [2, 3], "low": [1, 1], "close": [1, 2],
                     "volume": [3.0, 4.0]})
    tables = [whole, whole.slice(7, 20), whole.slice(39), whole.slice(0, 0), pa.concat_tables([whole, whole]),
              nulls, cast, whole.select(list(reversed(SCHEMA.names))).select(list(SCHEMA.names))]
    for k, t in enumerate(tables):
        got, want = columns_of(t), CandleColumns.of_table(t)
        assert _same(got, want), k
        assert [getattr(got, n).flags.writeable for n in NAMES] == [getattr(want, n).flags.writeable for n in NAMES]


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
        want.append((d, cols, _check_all("SBIN", d, cols, 60, session, prev, store.jump_pct)))
        prev = last_close(cols) or prev
    assert [h.day for h in got] == [d for d, _, _ in want] and len(got) > 50
    assert all(_same(h.columns, cols) and h.report == report for h, (_, cols, report) in zip(got, want, strict=True))
    assert any(not h.report.ok for h in got)      # the synthetic data has gaps: findings are compared too


def _spoil(rng: random.Random, day: list[Candle]) -> list[Candle]:
    """Some of every kind of defect the checks name, a few at a time."""
    day = list(day)
    for _ in range(rng.randrange(0, 4)):
        if not day:
            break
        k = rng.randrange(len(day))
        c = day[k]
        what = rng.randrange(12)
        if what == 0:
            del day[k]                                                          # a gap
        elif what == 1:
            day.insert(k, c)                                                    # a duplicate
        elif what == 2 and k + 1 < len(day):
            day[k], day[k + 1] = day[k + 1], day[k]                             # out of order
        elif what == 3:
            day[k] = Candle("X", c.start, 60, rng.choice([0.0, -1.0, float("nan"), float("inf")]), c.high,
                            c.low, c.close, c.volume)
        elif what == 4:
            day[k] = Candle("X", c.start, 60, c.open, float(rng.choice(["nan", "inf", "-inf"])), c.low, c.close,
                            c.volume)
        elif what == 5:
            day[k] = Candle("X", c.start, 60, c.open, c.high, rng.choice([0.0, float("nan"), float("inf")]),
                            c.close, c.volume)
        elif what == 6:
            day[k] = Candle("X", c.start, 60, c.open, c.high, c.low, c.close, -5)
        elif what == 7:
            day[k] = Candle("X", c.start, 60, c.open, c.low - 0.5, c.low, c.close, c.volume)   # high below low
        elif what == 8:
            day[k] = Candle("X", c.start, 60, c.high + 1, c.high, c.low, c.close, c.volume)    # open above high
        elif what == 9:
            day[k] = Candle("X", c.start, 60, c.open, c.high, c.low, c.low - 1, c.volume)      # close below low
        elif what == 10:
            day[k] = Candle("X", c.start, 60, c.open * 2, c.high * 2, c.low * 2, c.close * 2, c.volume)  # jump
        else:
            day[k] = Candle("X", c.start - 86_400, 60, c.open, c.high, c.low, c.close, c.volume)  # another day's
    return day


def test_the_quick_check_gives_the_full_checks_report_on_every_kind_of_day():
    rng = random.Random(11)
    quick = 0
    for i in range(1500):
        day = _spoil(rng, _day(rng, rng.choice([1, 2, 30, 375]), price=rng.choice([100.0, 2500.0])))
        if i % 7 == 0 and day:
            day = day[rng.randrange(len(day)):]                                 # late start
        cols = CandleColumns.of(day)
        prev = rng.choice([None, 100.0, 60.0, 0.0, float("nan")])
        session = rng.choice([SESSION, None, (SESSION[0], SESSION[0] + 3600)])
        seconds = rng.choice([60, 60, 300, 86_400])
        got = check_columns("X", DAY, cols, seconds, session, prev, 30.0)
        assert got == _check_all("X", DAY, cols, seconds, session, prev, 30.0), (i, [str(c) for c in day])
        assert check_with_close("X", DAY, cols, seconds, session, prev, 30.0) == (got, last_close(cols))
        quick += bool(len(cols)) and _plain(cols)
    assert 300 < quick < 1400                                                   # both paths were compared often


def test_the_quick_jump_test_agrees_with_the_full_check_at_the_threshold_itself():
    """The quick check looks for a jump only at the day's largest and smallest open-to-previous-close ratios;
    opens a float step either side of 30% from the close before, at the day's first candle (against the previous
    day's close) and inside it, are judged exactly as the full check judges them."""
    base = _day(random.Random(3), 6, price=100.0)
    seen = set()
    for ref in (100.0, 2500.0, 0.05):
        for factor in (1.3, 0.7):
            edge = ref * factor
            for o in (np.nextafter(edge, 0), edge, np.nextafter(edge, np.inf)):
                o = float(o)
                for k in (0, 3):
                    day = [Candle("X", c.start, 60, c.open, c.high, c.low, c.close, c.volume) for c in base]
                    prev = ref if k == 0 else 100.0
                    if k:
                        b = day[k - 1]
                        day[k - 1] = Candle("X", b.start, 60, min(b.open, ref), max(b.high, ref), min(b.low, ref),
                                            ref, b.volume)
                    c = day[k]
                    day[k] = Candle("X", c.start, 60, o, max(c.high, o), min(c.low, o), c.close, c.volume)
                    cols = CandleColumns.of(day)
                    assert _plain(cols)
                    got = check_columns("X", DAY, cols, 60, SESSION, prev, 30.0)
                    assert got == _check_all("X", DAY, cols, 60, SESSION, prev, 30.0), (ref, factor, o, k)
                    seen.add("jump" in got.kinds())
    assert seen == {True, False}

"""The synthetic day's columnar path (generator windows -> TickBatcher.dispatch_columns) against the dict path
(generate_day -> TickBatcher.dispatch): the same ticks, verdicts, counts by reason, numbering and batches, as
the workers decode them."""
from __future__ import annotations

from datetime import date
from itertools import islice
from typing import Any

import numpy as np
import pytest

from core.clock import ist_epoch
from core.config import SessionConfig
from core.types import TICK_FIELDS, TickColumns
from feeds.simulated import SimulatedWebSocket
from feeds.synthetic import SyntheticDay, default_tickers, generate_day
from pipeline.batcher import Cycle, TickBatcher
from pipeline.column_encoding import ColumnRows, batch
from pipeline.messages import decode_frame, encode_batch, encode_frame
from pipeline.tick_validator import TickValidator

DAY = date(2026, 11, 20)


def _validator(tickers: list[str]) -> TickValidator:
    return TickValidator(set(tickers), max_ahead_s=60, gap_confirm_ticks=3, max_price_move_pct=40,
                         start=ist_epoch(DAY, SessionConfig().open))


def _run(tickers: list[str], feed: Any, columns: bool, n_workers: int = 3) -> tuple[list[Cycle], TickBatcher]:
    cycles: list[Cycle] = []
    v = _validator([t for t in tickers if "SYM005" not in t])  # one symbol unknown to the validator
    b = TickBatcher({t: i % n_workers for i, t in enumerate(tickers) if "SYM007" not in t}, n_workers,
                    cycles.append, cycle_ticks=1000, max_age_s=1e9, validator=v)
    for item in feed:
        (b.dispatch_columns if columns else b.dispatch)(item)
    b.flush(final=True)
    return cycles, b


def _decoded(cycles: list[Cycle]) -> list[tuple]:
    out = []
    for c in cycles:
        frames = [None if x is None else decode_frame(encode_frame(1, 0, 0, 0.0, x)) for x in c.batches]
        out.append((c.through, c.through_pos, c.counts, c.unroutable, sorted(c.rejected), c.final,
                    [None if f is None else (f.ticks, f.positions) for f in frames]))
    return out


def _kinds(cycles: list[Cycle]) -> list[list[tuple[str, ...]]]:
    """Each decoded value's type, so an int sent as a float (or the reverse) fails the comparison."""
    return [[tuple(type(getattr(t, f)).__name__ for f in TICK_FIELDS) for t in f.ticks]
            for c in cycles for f in (decode_frame(encode_frame(1, 0, 0, 0.0, x)) for x in c.batches if x)]


def test_the_windows_are_the_day_generate_day_yields():
    tickers = default_tickers(40)
    day = SyntheticDay(tickers, DAY, 7)
    got = (w.tick(i) for w in day.windows() for i in range(len(w)))
    want = generate_day(tickers, DAY, 7)
    n = 0
    for a, b in islice(zip(got, want, strict=False), 60_000):
        assert a == b and list(a) == list(b) and [type(x) for x in a.values()] == [type(x) for x in b.values()]
        n += 1
    assert n == 60_000


def _windows_with_bad_rows(tickers: list[str]) -> list[TickColumns]:
    """Two windows of the day with rows made bad: a price out of band, non-finite and zero prices, a time going
    back, a duplicate of the row before it, a tick far ahead of the clock, ticks of symbols not traded."""
    ws = list(islice(SyntheticDay(tickers, DAY, 7).windows(), 2))
    w = ws[0]
    v = w.values
    v["ltp"][100] = v["prev_close_price"][100] * 1.9
    v["ltp"][200] = np.nan
    v["ltp"][201] = 0.0
    v["ltp"][202] = np.inf
    sym = w.symbol
    j = int(np.flatnonzero(sym == sym[300])[3])  # a later row of row 300's symbol, made its copy
    for col in v.values():
        col[j] = col[300]
    k = int(np.flatnonzero(sym == sym[400])[5])
    v["exch_feed_time"][k] = v["exch_feed_time"][400] - 30
    v["exch_feed_time"][500] += 3600
    v["exch_feed_time"][501] = 0
    return ws


@pytest.mark.parametrize(("bad", "bulk_rows"), [(False, 16384), (True, 16384), (True, 777)])
def test_columns_give_the_dict_paths_verdicts_numbering_and_batches(bad, bulk_rows, monkeypatch):
    monkeypatch.setattr("pipeline.batcher.BULK_ROWS", bulk_rows)
    tickers = default_tickers(30)
    windows = _windows_with_bad_rows(tickers) if bad else list(islice(SyntheticDay(tickers, DAY, 7).windows(), 2))
    dicts = [w.tick(i) for w in windows for i in range(len(w))]
    want, bw = _run(tickers, dicts, columns=False)
    got, bc = _run(tickers, windows, columns=True)
    assert _decoded(got) == _decoded(want)
    assert _kinds(got) == _kinds(want)
    assert bc.validator.counts == bw.validator.counts and bc.dispatched == bw.dispatched
    assert bc.validator.last == bw.validator.last and bc.validator.clock == bw.validator.clock
    if bad:
        assert set(bw.validator.counts) >= {"price out of range", "zero, negative or non-finite price",
                                            "timestamp going backwards", "duplicate", "unknown symbol",
                                            "ahead of the feed clock", "missing or non-numeric timestamp"}
    assert sum(sum(c.counts) for c in got) == bw.dispatched > 0
    assert sum(c.unroutable for c in got) > 0  # SYM007 has no worker


def test_rows_of_names_of_different_lengths_encode_as_msgspec_does():
    names = ("NSE:SBIN-EQ", "NSE:RELIANCE-EQ", "NSE:M&M-EQ", "NSE:" + "X" * 40 + "-EQ")
    n = 9
    rng = np.random.default_rng(1)
    values = {f: (rng.integers(1, 10**12 if f == "vol_traded_today" else 10**9, n)  # int64, int32 columns
                  if f in ("vol_traded_today", "last_traded_time", "exch_feed_time")
                  else rng.random(n) * 1000) for f in TICK_FIELDS if f not in ("lower_ckt", "upper_ckt", "type",
                                                                              "symbol")}
    cols = TickColumns(values, {"lower_ckt": 0, "upper_ckt": 0, "type": "sf"},
                       np.array([0, 1, 2, 3, 1, 0, 3, 2, 2]), names)
    idx = np.array([8, 0, 3, 5, 1])
    rows = ColumnRows(cols)
    body = rows.take(idx)
    pos = [7, 9, 10, 2**40, 11]
    want = decode_frame(encode_frame(1, 0, 0, 0.0, encode_batch([tuple(cols.tick(int(i)).values()) for i in idx],
                                                                  pos)))
    got = decode_frame(encode_frame(1, 0, 0, 0.0, batch([body[:1000], body[1000:]], len(idx), np.array(pos))))
    assert got == want and len(got.ticks) == 5
    assert [t.symbol for t in got.ticks] == [names[2], names[0], names[3], names[0], names[1]]
    assert [type(t.vol_traded_today) for t in got.ticks] == [int] * 5


def _socket_run(columns: bool, tickers: list[str], subscribed: list[str], start_after: int,
                drop: tuple[int, float]) -> tuple[list[dict], dict]:
    got: list[dict] = []

    def on_columns(cols: TickColumns) -> None:
        got.extend(cols.tick(i) for i in range(len(cols)))

    day = SyntheticDay(tickers, DAY, 7, window_s=120)
    head = list(islice(day.windows(), 4))  # eight minutes of the day
    src = _Head(day, head)
    ws = SimulatedWebSocket(src, on_message=lambda m: got.append(m) if "s" not in m else None,
                            on_columns=on_columns if columns else None, start_after=start_after,
                            disconnects=[drop], reconnect_delay_s=5.0)
    ws.on_connect = lambda: ws.subscribe(subscribed)
    ws.connect()
    assert ws.wait_done(60)
    stats = ws.stats()
    ws.close_connection()
    return got, stats


class _Head:
    """The first windows of a day, both ways."""

    def __init__(self, day: SyntheticDay, head: list[TickColumns]):
        self.head = head

    def __iter__(self) -> Any:
        return (w.tick(i) for w in self.head for i in range(len(w)))

    def windows(self) -> Any:
        return iter(self.head)


def test_the_socket_delivers_columns_as_it_delivers_dicts():
    """Skipped start, symbols never subscribed, a drop mid-window with its missed ticks and the resubscribe's
    snapshots: the same ticks in the same order and the same counts either way."""
    tickers = default_tickers(20)
    t0 = ist_epoch(DAY, SessionConfig().open)
    args = (tickers, tickers[:15], t0 + 50, (t0 + 200, 30.0))
    want, ws = _socket_run(False, *args)
    got, gs = _socket_run(True, *args)
    assert ws["snapshots"] > 0 and ws["missed"] > 0 and ws["filtered"] > 0 and ws["skipped"] > 0
    assert ws["reconnects"] == 1 and ws["disconnects"] == 1
    assert gs == ws
    assert got == want

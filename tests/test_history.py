"""The history layer without a server process: intervals, candles from ticks, quality checks, the cache, the
store's chunking and caching, files, the CLI's argument errors, and Fyers history through the real SDK
against the local fake of the Fyers API."""
from __future__ import annotations

import os
from datetime import date, timedelta
from datetime import time as dtime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.clock import ist_epoch
from core.config import SessionConfig
from core.types import Tick
from feeds.synthetic import generate_day
from history.cache import CandleCache
from history.cli import main as cli_main
from history.files import FileSource
from history.frames import epoch_of
from history.intervals import fyers_resolution, openalgo_chunk_days, parse_interval
from history.quality import check_day
from history.sources import HistoryError
from history.store import HistoryStore
from history.synthetic import SyntheticSource, synthetic_day
from strategies.base import Candle
from strategies.candles import CandleAggregator

DAY = date(2026, 11, 20)  # a Friday
M1 = parse_interval("1m")


def T(h: int, m: int = 0, day: date = DAY) -> int:
    return ist_epoch(day, dtime(h, m))


def bar(t: int, o: float = 100.0, h: float = 101.0, lo: float = 99.0, c: float = 100.5, v: int = 10,
        s: str = "X") -> Candle:
    return Candle(s, t, 60, o, h, lo, c, v)


def full_day(day: date = DAY, price: float = 100.0) -> list[Candle]:
    return [bar(T(9, 15, day) + 60 * i, price, price + 1, price - 1, price) for i in range(375)]


SESSION = (T(9, 15), T(15, 30))


# ---------------------------------------------------------------- intervals and timestamps

def test_intervals_parse_and_limits():
    assert parse_interval("1m").seconds == 60 and parse_interval("1h").family == "hours"
    assert parse_interval("D").seconds == 86_400 and parse_interval("30s").family == "seconds"
    for bad in ("7x", "W", "M", "0m", "7m", ""):
        with pytest.raises(ValueError, match="not allowed"):
            parse_interval(bad)
    assert openalgo_chunk_days(M1) == 60 and openalgo_chunk_days(parse_interval("D")) == 300
    assert [fyers_resolution(parse_interval(x)) for x in ("5s", "1m", "1h", "D")] == ["5S", "1", "60", "1D"]


def test_timestamps_from_files():
    t = T(9, 15)
    assert epoch_of(t) == epoch_of(str(t)) == epoch_of(float(t)) == t
    assert epoch_of("2026-11-20T09:15:00+05:30") == t == epoch_of("2026-11-20T03:45:00Z")
    with pytest.raises(ValueError, match="no UTC offset"):
        epoch_of("2026-11-20 09:15:00")
    with pytest.raises(ValueError, match="not epoch seconds"):
        epoch_of("yesterday")


# ---------------------------------------------------------------- synthetic candles = the replay's candles

def test_synthetic_candles_match_the_live_aggregator_on_the_replayed_ticks():
    """The paper broker's history of a day is what the strategies' own candle builder makes of that day's
    replayed ticks: same buckets, same OHLC; volume differs only in the first candle (the aggregator cannot
    count what traded before the first tick it saw, history counts the opening trade)."""
    agg = CandleAggregator("SBIN", 60)
    live: list[Candle] = []
    for msg in generate_day(["NSE:SBIN-EQ"], DAY, 7, SessionConfig()):
        live += agg.update(Tick.from_feed(msg))
    live += agg.flush()
    hist = list(synthetic_day("SBIN", "NSE", DAY, 60, 7))
    assert len(hist) == len(live) > 300
    strip = [(c.start, c.open, c.high, c.low, c.close) for c in hist]
    assert strip == [(c.start, c.open, c.high, c.low, c.close) for c in live]
    assert [c.volume for c in hist[1:]] == [c.volume for c in live[1:]]
    assert hist[0].volume > live[0].volume
    assert synthetic_day("SBIN", "NSE", date(2026, 11, 21), 60, 7) == ()  # a Saturday


# ---------------------------------------------------------------- quality

def test_a_clean_day_is_ok_and_each_defect_is_named():
    assert check_day("X", DAY, full_day(), SESSION, 100.0).ok
    day = full_day()
    del day[100:103]                                   # three missing minutes
    day[10] = bar(day[10].start, o=0.0)                # zero price
    day[20] = bar(day[20].start, h=98.0)               # high below low
    day[30] = bar(day[30].start, c=105.0)              # close above high
    day.insert(40, day[40])                            # duplicate
    day[50], day[51] = day[51], day[50]                # out of order
    r = check_day("X", DAY, day, SESSION, 100.0)
    assert r.kinds() == {"gap", "bad_price", "bad_range", "duplicate", "out_of_order"}
    gap = next(i for i in r.issues if i.kind == "gap")
    assert gap.count == 3 and gap.examples == ("10:55:00-10:58:00",)
    assert "gap x3" in str(r)


def test_jump_against_the_previous_close_and_a_missing_day():
    r = check_day("X", DAY, full_day(price=150.0), SESSION, prev_close=100.0)
    assert r.kinds() == {"jump"}
    assert check_day("X", DAY, [], SESSION, 100.0).kinds() == {"missing_day"}
    assert check_day("X", DAY, [], None, 100.0).ok                       # a holiday
    late = full_day()[5:]                                                 # first five minutes missing
    assert next(i for i in check_day("X", DAY, late, SESSION, None).issues if i.kind == "gap").count == 5


def test_a_bad_price_is_reported_once_and_the_jump_check_steps_over_it():
    day = full_day()
    day[5] = bar(day[5].start, o=float("nan"))                  # a missing price in a file becomes NaN
    day[6] = bar(day[6].start, o=-1.0, lo=-2.0)
    r = check_day("X", DAY, day, SESSION, 100.0)
    assert r.kinds() == {"bad_price"} and r.issues[0].count == 2
    from history.frames import CandleColumns
    from history.quality import last_close

    tail = day + [bar(day[-1].start + 60, c=float("nan"))]
    assert last_close(CandleColumns.of(tail)) == day[-1].close


def test_count_progress_writes_a_line_per_percent_off_a_terminal():
    import io

    from ops.progress import CountProgress

    out = io.StringIO()
    p = CountProgress(400, "history x", stream=out, clock=iter(range(1000)).__next__)
    for _ in range(400):
        p.advance(1, note="SBIN")
    p.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 101 and lines[-1].startswith("history x 100.0% [####################] done in")
    assert lines[0].endswith(" 1/400  SBIN") and lines[1].endswith(" 4/400  SBIN")  # the start, then 1%


# ---------------------------------------------------------------- cache and store

class CountingSource(SyntheticSource):
    def __init__(self) -> None:
        super().__init__(7)
        self.calls: list[tuple[date, date]] = []

    def chunk_days(self, interval):
        return 10

    def fetch(self, symbol, exchange, interval, first, last):
        self.calls.append((first, last))
        return super().fetch(symbol, exchange, interval, first, last)


def test_cache_round_trip_empty_marker_and_fingerprint(tmp_path):
    cache = CandleCache(tmp_path, "src")
    day = full_day()
    cache.write("X", "NSE", M1, DAY, day)
    assert cache.read("X", "NSE", M1, DAY).candles("X", 60) == day
    cache.write("X", "NSE", M1, DAY + timedelta(days=1), [])
    assert len(cache.read("X", "NSE", M1, DAY + timedelta(days=1))) == 0
    assert cache.read("X", "NSE", M1, DAY + timedelta(days=3)) is None
    assert not cache.check_fingerprint("X", "NSE", M1, "a")     # new: recorded
    assert cache.check_fingerprint("X", "NSE", M1, "a")
    assert not cache.check_fingerprint("X", "NSE", M1, "b")     # changed: the days are dropped
    assert cache.read("X", "NSE", M1, DAY) is None
    with pytest.raises(ValueError):
        cache.folder("../x", "NSE", M1)


def test_store_fetches_missing_runs_in_chunks_once_and_never_caches_today(tmp_path):
    src = CountingSource()
    store = HistoryStore(src, tmp_path, today=date(2026, 11, 30))
    first, last = date(2026, 11, 2), date(2026, 11, 30)
    assert store.prefetch("SBIN", "NSE", M1, first, last) == 3          # 28 cacheable days in runs of <= 10
    assert src.calls == [(date(2026, 11, 2), date(2026, 11, 11)), (date(2026, 11, 12), date(2026, 11, 21)),
                         (date(2026, 11, 22), date(2026, 11, 29))]
    src.calls.clear()
    days = list(store.days("SBIN", "NSE", M1, first, last))
    assert src.calls == [(last, last)]                                  # only today, which is never cached
    trading = [d for d in (first + timedelta(days=i) for i in range(29)) if store.calendar.is_trading_day(d)]
    assert [d.day for d in days] == trading and len(trading) == 19      # weekdays less two NSE holidays
    assert all(len(d.candles) > 300 for d in days)
    assert days[-4].candles == list(synthetic_day("SBIN", "NSE", days[-4].day, 60, 7))
    src.calls.clear()
    store.prefetch("SBIN", "NSE", M1, date(2026, 10, 30), last)        # only the days not asked before
    assert src.calls == [(date(2026, 10, 30), date(2026, 11, 1))]


# ---------------------------------------------------------------- files

def _rows(day: date = DAY) -> list[dict]:
    return [{"timestamp": c.start, "open": c.open, "high": c.high, "low": c.low, "close": c.close,
             "volume": c.volume, "oi": 0} for c in synthetic_day("SBIN", "NSE", day, 60, 7)]


def test_csv_with_iso_offsets_and_parquet_with_epochs_read_the_same(tmp_path):
    rows = _rows() + _rows(DAY + timedelta(days=3))
    csv_dir, pq_dir = tmp_path / "csv", tmp_path / "pq"
    csv_dir.mkdir()
    pq_dir.mkdir()
    from core.clock import to_ist
    lines = ["timestamp,open,high,low,close,volume,oi"] + [
        f"{to_ist(r['timestamp']).isoformat()},{r['open']},{r['high']},{r['low']},{r['close']},{r['volume']},0"
        for r in rows]
    (csv_dir / "SBIN.csv").write_text("\n".join(lines) + "\n")
    pq.write_table(pa.Table.from_pylist(rows), pq_dir / "SBIN.parquet")
    want = list(synthetic_day("SBIN", "NSE", DAY, 60, 7))
    for folder in (csv_dir, pq_dir):
        store = HistoryStore(FileSource(folder), tmp_path / "cache", today=date(2026, 12, 1))
        days = list(store.days("SBIN", "NSE", M1, DAY, DAY + timedelta(days=3)))
        assert [d.day for d in days] == [DAY, DAY + timedelta(days=3)]
        assert days[0].candles == want and days[0].report.ok


def test_an_edited_file_replaces_its_cached_days_and_bad_files_are_named(tmp_path):
    rows = _rows()
    rows[10], rows[11] = rows[11], rows[10]
    path = tmp_path / "SBIN.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    src = FileSource(tmp_path)
    store = HistoryStore(src, tmp_path / "cache", today=date(2026, 12, 1))
    assert next(store.days("SBIN", "NSE", M1, DAY, DAY)).report.kinds() == {"out_of_order"}
    assert src.requests == 1
    list(store.days("SBIN", "NSE", M1, DAY, DAY))
    assert src.requests == 1                                           # cached
    pq.write_table(pa.Table.from_pylist(_rows()), path)
    os.utime(path, ns=(1, 1))
    assert next(store.days("SBIN", "NSE", M1, DAY, DAY)).report.ok     # re-read after the edit
    assert src.requests == 2
    (tmp_path / "NAIVE.csv").write_text("timestamp,open,high,low,close,volume\n2026-11-20 09:15:00,1,1,1,1,1\n")
    with pytest.raises(HistoryError, match="row 1: .*no UTC offset"):
        src.fetch("NAIVE", "NSE", M1, DAY, DAY)
    (tmp_path / "NOVOL.csv").write_text("timestamp,open,high,low,close\n1795146300,1,1,1,1\n")
    with pytest.raises(HistoryError, match="volume"):
        src.fetch("NOVOL", "NSE", M1, DAY, DAY)
    with pytest.raises(HistoryError, match="no .*MISSING.csv"):
        src.fetch("MISSING", "NSE", M1, DAY, DAY)


# ---------------------------------------------------------------- the CLI

@pytest.mark.parametrize("args, says", [
    (["fetch", "--from", "2026-13-01", "--to", "2026-11-20"], "--from: '2026-13-01' is not a date"),
    (["fetch", "--from", "2026-11-20", "--to", "2026-11-01"], "is after --to"),
    (["fetch", "--from", "2026-11-01", "--to", "2026-11-20", "--interval", "7x"], "--interval"),
    (["fetch", "--from", "2026-11-01", "--to", "2026-11-20", "--source", "yahoo"], "--source 'yahoo'"),
    (["fetch", "--from", "2026-11-01", "--to", "2026-11-20", "--source", "files"], "needs --data"),
    (["fetch", "--to", "2026-11-20"], "--from"),
    (["pull"], "invalid choice"),
])
def test_cli_refuses_bad_arguments_with_exit_2(args, says, capsys):
    assert cli_main(args) == 2
    assert says in capsys.readouterr().err


def test_cli_fetches_synthetic_into_the_cache_then_asks_nothing(tmp_path, capsys):
    args = ["fetch", "--symbols", "SBIN,INFY", "--from", "2026-11-16", "--to", "2026-11-20", "--source",
            "synthetic", "--cache", str(tmp_path)]
    assert cli_main(args) == 0
    out = capsys.readouterr().out
    assert "2 symbol(s)" in out and "10 day(s)" in out and "10 request(s)" not in out
    assert len(list(tmp_path.rglob("*.parquet"))) == 10
    assert cli_main(args) == 0
    assert "0 request(s) made" in capsys.readouterr().out


# ---------------------------------------------------------------- OpenAlgo retries and splits (client faked)

class SlowClient:
    """The official client's surface: a 429 first, then a timeout for any range over two days."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def intervals(self):
        return {"status": "success", "data": {"minutes": ["1m"], "days": ["D"]}}

    def history(self, *, symbol, exchange, interval, start_date, end_date):
        import httpx
        import pandas as pd

        self.asked.append((start_date, end_date))
        if len(self.asked) == 1:
            return {"status": "error", "message": "HTTP 429: slow down", "code": 429, "error_type": "http_error"}
        if (date.fromisoformat(end_date) - date.fromisoformat(start_date)).days > 1:
            raise httpx.ReadTimeout("timed out")
        rows = [c for d in (date.fromisoformat(start_date), date.fromisoformat(end_date))
                for c in synthetic_day(symbol, exchange, d, 60, 7)]
        rows = list(dict.fromkeys(rows))
        df = pd.DataFrame({"timestamp": [c.start for c in rows], "open": [c.open for c in rows],
                           "high": [c.high for c in rows], "low": [c.low for c in rows],
                           "close": [c.close for c in rows], "volume": [c.volume for c in rows], "oi": 0})
        df["timestamp"] = pd.to_datetime(df["timestamp"], unit="s").dt.tz_localize("UTC").dt.tz_convert("Asia/Kolkata")
        return df.set_index("timestamp")


def test_openalgo_source_retries_a_429_and_halves_a_range_that_times_out():
    from history.openalgo_source import OpenAlgoSource

    client, pauses = SlowClient(), []
    src = OpenAlgoSource("http://x", "k", client=client, sleep=pauses.append, per_s=100)
    src.check_interval(M1)
    with pytest.raises(ValueError, match="offers 1m, D"):
        src.check_interval(parse_interval("5m"))
    first = date(2026, 11, 16)
    got = src.fetch("SBIN", "NSE", M1, first, DAY)
    assert got == [c for i in range(5) for c in synthetic_day("SBIN", "NSE", first + timedelta(days=i), 60, 7)]
    assert pauses == [1.0] and client.asked[:3] == [("2026-11-16", "2026-11-20")] * 2 + [("2026-11-16", "2026-11-18")]


# ---------------------------------------------------------------- Fyers, through the SDK, against the fake

def test_fyers_history_in_chunks_of_at_most_100_days_through_the_sdk(tmp_path):
    from feeds.fake_fyers_api import FakeFyersApi
    from history.fyers_source import FyersSource

    def one_a_day(symbol, exchange, day, seconds):  # cheap candles: the chunking is under test here
        return [Candle(symbol, ist_epoch(day, dtime(9, 15)), seconds, 10.0, 11.0, 9.0, 10.5, day.day)]

    # The fake's limit counts in a second that only the source's pauses move: on the wall clock a loaded machine
    # spaced the three requests more than a second apart, none was refused, and the test failed.
    now = [0.0]
    api = FakeFyersApi("APPID-100", "secret", history_per_s=1, candles=one_a_day, clock=lambda: now[0]).start()
    try:
        token = api.new_token()
        pauses: list[float] = []

        def backoff(s: float) -> None:  # the source's own pause, taken on the fake's clock
            pauses.append(s)
            now[0] += s

        src = FyersSource("APPID-100", token, data_url=api.data_base, log_dir=tmp_path / "logs", per_s=100,
                          sleep=backoff)
        store = HistoryStore(src, tmp_path / "cache", today=date(2026, 12, 1))
        first, last = date(2026, 5, 1), date(2026, 11, 20)           # 204 days: three requests
        assert store.prefetch("SBIN", "NSE", M1, first, last) == 3
        hist = [r[1] for r in api.requests if r[1].startswith("/data/history")]
        assert "range_from=2026-05-01&range_to=2026-08-08" in hist[0]  # 100 days, range_to included
        # each request after the first within the fake's second: refused (429), waited a second, retried
        assert len(hist) == 5 and pauses == [1.0, 1.0]
        days = list(store.days("SBIN", "NSE", M1, first, last))
        assert days[-1].day == last and days[-1].candles == one_a_day("SBIN", "NSE", last, 60)
        assert len(hist) == len([r for r in api.requests if r[1].startswith("/data/history")])  # all cached
        bad = FyersSource("APPID-100", "not-a-token", data_url=api.data_base, log_dir=tmp_path / "logs")
        with pytest.raises(HistoryError, match="code -16"):
            bad.fetch("SBIN", "NSE", M1, DAY, DAY)
    finally:
        api.close()


def test_fake_fyers_serves_the_synthetic_day(tmp_path):
    from feeds.fake_fyers_api import FakeFyersApi
    from history.fyers_source import FyersSource

    api = FakeFyersApi("APPID-100", "secret").start()
    try:
        src = FyersSource("APPID-100", api.new_token(), data_url=api.data_base, log_dir=tmp_path)
        assert src.fetch("SBIN", "NSE", M1, DAY, DAY) == list(synthetic_day("SBIN", "NSE", DAY, 60, 7))
        assert src.fetch("SBIN", "NSE", M1, DAY + timedelta(days=1), DAY + timedelta(days=2)) == []  # weekend
    finally:
        api.close()


def test_cli_fetches_from_fyers_with_the_env_credentials(tmp_path, monkeypatch, capsys):
    from feeds.fake_fyers_api import FakeFyersApi

    api = FakeFyersApi("APPID-100", "secret").start()
    try:
        monkeypatch.setenv("FYERS_APP_ID", "APPID-100")
        monkeypatch.setenv("FYERS_ACCESS_TOKEN", api.new_token())
        monkeypatch.setenv("FYERS_DATA_URL", api.data_base)
        args = ["fetch", "--symbols", "SBIN", "--from", "2026-11-19", "--to", "2026-11-20", "--source", "fyers",
                "--cache", str(tmp_path)]
        assert cli_main(args) == 0
        assert "2 day(s), 750 candles" in capsys.readouterr().out
        monkeypatch.setenv("FYERS_DATA_URL", "http://example.com/data")
        assert cli_main(args) == 2 and "not allowed" in capsys.readouterr().err
    finally:
        api.close()

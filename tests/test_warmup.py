"""Warm-up from history (pipeline/warmup.py, Strategy.warm_up): what a strategy is fed before its first tick, and
that a strategy warmed at a restart mid-day is where an uninterrupted one is."""
from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date, timedelta
from datetime import time as dtime

import pytest

from core.clock import ist_epoch
from core.config import SessionConfig, load_config
from core.types import Tick
from history.frames import CandleColumns
from history.quality import DayReport
from history.store import HistoryDay
from history.synthetic import SyntheticSource, synthetic_day
from pipeline.warmup import Need, earlier_candles, load, report, resample
from strategies.base import Candle
from strategies.candles import CandleAggregator
from strategies.ma_crossover import MovingAverageCrossover
from strategies.rsi_reversion import RsiReversion

DAY = date(2026, 11, 20)
SESSION = SessionConfig()
OPEN = ist_epoch(DAY, SESSION.open)


def minutes(start: int, closes: list[float]) -> list[Candle]:
    return [Candle("LT", start + 60 * i, 60, c, c + 1, c - 1, c, 10) for i, c in enumerate(closes)]


def test_resample_buckets_as_the_aggregator_and_keeps_only_buckets_ended_by_now():
    ones = minutes(OPEN, [100 + i for i in range(12)])
    five = resample(ones, 300, now=OPEN + 660)  # 09:26: the 09:25 bucket has not ended
    assert [c.start for c in five] == [OPEN, OPEN + 300]
    a = five[0]
    assert (a.open, a.high, a.low, a.close, a.volume, a.seconds) == (100, 105, 99, 104, 50, 300)
    assert resample(ones, 60, now=OPEN + 120) == ones[:2]


@pytest.fixture(scope="module")
def cfg():
    return load_config()


@pytest.fixture(scope="module")
def history(cfg, tmp_path_factory):
    """Synthetic history (the replay's own data), cached in a folder of this module's."""
    root = tmp_path_factory.mktemp("history")
    source = SyntheticSource(cfg.replay.seed, cfg.session)

    def get(needs: list[Need], now: int) -> dict[str, list[Candle]]:
        return load(cfg, source, DAY, now, needs, cache_root=str(root))
    return get


def test_an_ma_crossover_fed_earlier_days_is_ready_at_the_open(history):
    need = Need("LT", "mac", 60, MovingAverageCrossover("LT", "mac", {}, SESSION).warmup_candles)
    got = history([need], ist_epoch(DAY, SESSION.pre_open))["LT"]
    assert need.candles == 22 and len(got) == 22
    assert all(c.start < OPEN and ist_epoch(DAY - timedelta(days=7), SESSION.open) < c.start for c in got)
    assert [c.start for c in got] == sorted(c.start for c in got)
    warm = MovingAverageCrossover("LT", "mac", {}, SESSION)
    warm.warm_up(got, ist_epoch(DAY, SESSION.pre_open))
    assert warm._slow.ready and warm._fast.ready and warm._atr.ready and warm._last_sign != 0
    cold = MovingAverageCrossover("LT", "mac", {}, SESSION)
    assert not cold._slow.ready


def test_a_strategy_warmed_at_a_restart_mid_day_is_where_an_uninterrupted_one_is(history):
    """Uninterrupted: warmed at the pre-open, then the day's candles as they close. Restarted at 11:00: warmed
    with the earlier days and the day's candles up to 11:00. The indicators and what the strategy remembers
    are the same, bit for bit."""
    restart = ist_epoch(DAY, dtime(11, 0))
    for cls, need_n in ((MovingAverageCrossover, 22), (RsiReversion, 16)):
        n = cls("LT", "s", {}, SESSION).warmup_candles
        assert n == need_n
        need = Need("LT", "s", 60, n)
        early = history([need], ist_epoch(DAY, SESSION.pre_open))["LT"]
        late = history([need], restart)["LT"]
        today = late[len(early):]
        assert late[:len(early)] == early and today and today[-1].start + 60 == restart
        a = cls("LT", "s", {}, SESSION)
        a.warm_up(early, ist_epoch(DAY, SESSION.pre_open))
        for c in today:
            a.on_candle(c)
        b = cls("LT", "s", {}, SESSION)
        b.warm_up(late, restart)
        sa, sb = a.state_dict(), b.state_dict()
        assert sa["indicators"] == sb["indicators"] and sa["extra"] == sb["extra"]
        assert sb["day"] == DAY.isoformat() and sb["position"] is None


def test_history_candles_are_the_candles_the_replayed_ticks_make(history, cfg):
    """The warm-up of a synthetic replay is the replay's own data: 5-minute candles from history equal the
    aggregator's from the replayed ticks (volume aside: history counts the opening trade)."""
    from feeds.synthetic import day_columns
    from history.synthetic import ticker_of

    now = ist_epoch(DAY, dtime(10, 0))
    got = history([Need("SBIN", "x", 300, 5)], now)["SBIN"]
    today = [c for c in got if c.start >= OPEN]
    agg = CandleAggregator("SBIN", 300)
    built: list[Candle] = []
    for part in day_columns([ticker_of("SBIN", cfg.exchange)], DAY, cfg.replay.seed, cfg.session):
        for t, p, v in zip(part["exch_feed_time"], part["ltp"], part["vol_traded_today"], strict=True):
            if OPEN <= t < now:
                built += agg.update(Tick(symbol="NSE:SBIN-EQ", ltp=float(p), exch_feed_time=int(t),
                                         vol_traded_today=int(v)))
    key = [(c.start, c.open, c.high, c.low, c.close) for c in today]
    # the aggregator closes a candle on the next bucket's first tick: its 09:55 candle is still open at 10:00
    assert len(key) == 9 and key[:-1] == [(c.start, c.open, c.high, c.low, c.close) for c in built]


def test_candles_shorter_than_a_minute_get_no_warm_up(history):
    assert history([Need("LT", "s", 15, 10)], OPEN + 3600) == {}


def test_a_strategy_without_enough_history_is_named_with_when_it_becomes_ready(caplog):
    caplog.set_level(logging.INFO, "pipeline.warmup")
    needs = [Need("LT", "mac", 60, 22), Need("ITC", "mac", 60, 22)]
    report(needs, {"ITC": minutes(OPEN - 3600, [1.0] * 22)}, DAY, ist_epoch(DAY, SESSION.pre_open), OPEN,
           "the replayed file x.csv has no history of earlier days")
    text = caplog.text
    assert ("LT: strategy mac starts cold (the replayed file x.csv has no history of earlier days): 0 of the 22 "
            "candles of 60 s it needs; ready at about 09:37 IST") in text
    assert "ITC" not in text and "1 of 2 strategies start warm" in text


def test_history_that_fails_is_a_cold_start_not_a_failed_start(cfg, caplog, tmp_path):
    class Down:
        key, requests = "down", 0

        def check_interval(self, interval):
            return None

        def chunk_days(self, interval):
            return 30

        def fingerprint(self, symbol, exchange):
            return None

        def fetch(self, *a):
            self.requests += 1
            raise ConnectionError("refused")

    down = Down()
    needs = [Need(s, "mac", 60, 22) for s in ("LT", "ITC", "WIPRO", "MARUTI", "SBIN")]
    caplog.set_level(logging.WARNING, "pipeline.warmup")
    assert load(cfg, down, DAY, OPEN, needs, cache_root=str(tmp_path)) == {}
    assert down.requests == 3, "a source that is down is not asked for every symbol"
    assert "LT: no history for strategy mac (refused)" in caplog.text
    assert "SBIN: no history for strategy mac (3 symbols in a row failed before it)" in caplog.text


def test_a_recording_keeps_its_warm_up_candles_and_its_replay_reads_them_back(tmp_path):
    from pipeline.warmup import load_saved, save, saved_path

    rec = tmp_path / "day.csv.gz"
    got = {"LT": minutes(OPEN - 3600, [100.25, 101.5, 99.75]), "SBIN": minutes(OPEN - 3600, [500.0])}
    save(rec, got, OPEN - 900, DAY)
    assert saved_path(rec).name == "day.csv.gz.warmup.json"
    wanted = [Need("LT", "mac", 60, 22), Need("SBIN", "five", 300, 10), Need("ITC", "mac", 60, 22)]
    back, now = load_saved(rec, DAY, wanted)
    assert now == OPEN - 900
    assert back == {"LT": got["LT"]}  # SBIN's strategy now wants 5-minute candles: not these; ITC has none
    with pytest.raises(ValueError, match="not 2026-11-21"):
        load_saved(rec, DAY + timedelta(days=1), wanted)
    saved_path(rec).write_text("{not json")
    with pytest.raises(ValueError, match="not a warm-up file"):
        load_saved(rec, DAY, wanted)
    with pytest.raises(FileNotFoundError):
        load_saved(tmp_path / "other.csv", DAY, wanted)


def test_check_forecasts_which_strategies_start_cold_and_when_they_are_ready(tmp_path):
    """`driver.py --check`'s warm-up lines, for the replayed day: synthetic history warms the MA crossovers of
    60 s; one of 30 s candles gets none (history has 1-minute candles) and is ready 22 half-minutes after the open."""
    import yaml

    from core.config import load_secrets
    from driver import _warmup_forecast, build_parser
    from tests.daemon_harness import short_day_config

    path = short_day_config(tmp_path)
    doc = yaml.safe_load(path.read_text())
    doc["strategies"]["fast_mac"] = {"kind": "ma_crossover", "params": {"candle_seconds": 30}}
    doc["symbols"][-1] = {"symbol": "MARUTI", "strategy": "fast_mac"}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))  # its history cache: data/history beside it
    secrets, _ = load_secrets(tmp_path / "none.env", {"LIVE_DATA": "false", "APP_KEY": "k" * 32})
    lines = _warmup_forecast(load_config(path), secrets, build_parser().parse_args(["--date", "2026-11-20"]))
    assert lines == [
        "warm-up from history for 2026-11-20 (replay of synthetic): 3 of 4 strategies would start warm",
        "MARUTI: strategy fast_mac starts cold (history had too few candles): 0 of the 22 candles of 30 s it needs; "
        "ready at about 09:26 IST"]


def test_synthetic_history_of_another_session_is_cached_apart():
    """A short test session's synthetic days are other data than the NSE day's: one must never be read for the
    other from the project's cache."""
    from core.config import SessionConfig as S

    assert SyntheticSource(7, S()).key == "synthetic-seed7"  # the caches already written stay valid
    short = SyntheticSource(7, S(open=dtime(9, 15), entry_cutoff=dtime(10, 30), square_off=dtime(10, 40),
                                 close=dtime(10, 45)))
    assert short.key == "synthetic-seed7-0915-1045"


def test_an_earlier_days_share_is_the_last_candles_of_its_whole_session_resampled():
    """earlier_candles builds only the last buckets of a day in time order: the same candles as resampling the
    whole session and keeping the last ones (buckets not ended by the close left out), and out of order the
    whole session is resampled as it comes."""
    day = date(2025, 3, 3)
    cols = synthetic_day("LT", "NSE", day, 60, 7, SESSION)
    lo, hi = ist_epoch(day, SESSION.open), ist_epoch(day, SESSION.close)
    shuffled = list(cols)
    shuffled[100], shuffled[101] = shuffled[101], shuffled[100]
    # off the minute grid (a source stamping candles at :30): each is not its own bucket
    offset = [replace(c, start=c.start + 30) for c in cols]
    for candles in (list(cols), shuffled, offset):
        hd = HistoryDay("LT", day, 60, CandleColumns.of(candles), DayReport("LT", day, len(candles)))
        for seconds, n in ((60, 22), (300, 30), (900, 5), (3600, 3), (60, 1000)):
            need = Need("LT", "x", seconds, n)
            whole = resample([c for c in candles if lo <= c.start < hi], seconds, hi)[-n:]
            assert earlier_candles(hd, need, SESSION) == whole and whole, (seconds, n)
    # 60-minute buckets fall on IST half hours (as CandleAggregator's): with a 15:20 close the 14:30 one has not
    # ended, so the last is 13:30's
    hd = HistoryDay("LT", day, 60, CandleColumns.of(list(cols)), DayReport("LT", day, len(cols)))
    early_close = SessionConfig(close=dtime(15, 20))
    got = earlier_candles(hd, Need("LT", "x", 3600, 2), early_close)
    assert [c.start for c in got] == [ist_epoch(day, dtime(12, 30)), ist_epoch(day, dtime(13, 30))]
    assert earlier_candles(hd, Need("LT", "x", 3600, 1), SESSION)[0].start == ist_epoch(day, dtime(14, 30))

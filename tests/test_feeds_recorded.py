"""The replay file format (CSV / JSON lines, optionally gzip) and the live-tick recorder."""
from __future__ import annotations

import gzip
import itertools
import json
import logging
import threading
from datetime import date

import pytest

from core.types import TICK_FIELDS
from feeds.recorded import TickWriter, part_path, read_ticks, recording_parts, write_ticks
from feeds.recorder import TickRecorder
from feeds.synthetic import generate_day
from tests.conftest import wait_for

TICKERS = ["NSE:SBIN-EQ", "NSE:INFY-EQ"]


@pytest.fixture(scope="module")
def ticks():
    return list(itertools.islice(generate_day(TICKERS, date(2024, 3, 5), seed=5), 3000))


@pytest.mark.parametrize("name", ["day.csv", "day.csv.gz", "day.jsonl", "day.jsonl.gz"])
def test_round_trip_keeps_values_types_and_key_order(tmp_path, ticks, name):
    path = tmp_path / name
    assert write_ticks(path, ticks) == len(ticks)
    reader = read_ticks(path)
    back = list(reader)
    assert back == ticks
    assert all(tuple(t) == TICK_FIELDS for t in back)
    assert all(type(a[k]) is type(b[k]) for a, b in zip(back[:200], ticks[:200], strict=False) for k in a)
    assert reader.malformed == 0 and reader.ticks == len(ticks)


@pytest.mark.parametrize("name", ["t.csv", "t.jsonl.gz"])
def test_absent_keys_stay_absent(tmp_path, ticks, name):
    t = dict(ticks[0])
    del t["ask_price"], t["ask_size"]
    write_ticks(tmp_path / name, [t])
    (back,) = list(read_ticks(tmp_path / name))
    assert back == t and "ask_price" not in back


def test_start_after_skips_earlier_ticks(tmp_path, ticks):
    write_ticks(tmp_path / "d.csv.gz", ticks)
    cut = ticks[1500]["exch_feed_time"]
    reader = read_ticks(tmp_path / "d.csv.gz", start_after=cut)
    assert list(reader) == [t for t in ticks if t["exch_feed_time"] > cut]
    assert reader.skipped == sum(t["exch_feed_time"] <= cut for t in ticks)


def test_malformed_csv_lines_are_counted_and_skipped_with_their_line_number(tmp_path, ticks, caplog):
    path = tmp_path / "bad.csv"
    write_ticks(path, ticks[:3])
    good = path.read_text().splitlines()
    lines = [good[0], good[1],
             "1,2,3",                                   # line 3: wrong column count
             good[2].replace(str(ticks[1]["ltp"]), "abc", 1),  # line 4: not a number
             good[2].replace(str(ticks[1]["ltp"]), "nan", 1),  # line 5: not finite
             good[2].replace("NSE:INFY-EQ", "").replace("NSE:SBIN-EQ", ""),  # line 6: no symbol
             good[3]]
    path.write_text("\n".join(lines) + "\n" + good[2][:40])  # line 8: cut off, no newline
    with caplog.at_level(logging.WARNING, logger="feeds.recorded"):
        reader = read_ticks(path)
        back = list(reader)
    assert back == [ticks[0], ticks[2]]
    assert reader.malformed == 5
    text = caplog.text
    for n in (3, 4, 5, 6, 8):
        assert f"bad.csv line {n}:" in text
    assert "incomplete" in text and "skipped 5 malformed" in text


def test_malformed_json_lines_are_counted_and_skipped(tmp_path, ticks, caplog):
    path = tmp_path / "bad.jsonl"
    ok = json.dumps(ticks[0])
    bad = ["{not json", "[1, 2]", json.dumps(dict(ticks[0], ltp="812.5")),
           json.dumps(dict(ticks[0], vol_traded_today=1.5)), json.dumps(dict(ticks[0], symbol="")),
           ok.replace(str(ticks[0]["ltp"]), "NaN", 1)]
    path.write_text("\n".join([ok, *bad, "", ok]) + "\n" + ok[:30])
    with caplog.at_level(logging.WARNING, logger="feeds.recorded"):
        reader = read_ticks(path)
        back = list(reader)
    assert back == [ticks[0], ticks[0]]
    assert reader.malformed == 7
    assert "bad.jsonl line 2:" in caplog.text and "bad.jsonl line 10:" in caplog.text


def test_integral_json_numbers_are_normalised_to_sdk_types(tmp_path, ticks):
    t = dict(ticks[0], ltp=812, vol_traded_today=1000.0)
    (tmp_path / "n.jsonl").write_text(json.dumps(t) + "\n")
    (back,) = list(read_ticks(tmp_path / "n.jsonl"))
    assert type(back["ltp"]) is float and type(back["vol_traded_today"]) is int


def test_truncated_gzip_yields_what_is_there_and_says_so(tmp_path, ticks, caplog):
    path = tmp_path / "cut.csv.gz"
    write_ticks(path, ticks)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING, logger="feeds.recorded"):
        reader = read_ticks(path)
        back = list(reader)
    assert 0 < len(back) < len(ticks) and back == ticks[: len(back)]
    assert reader.truncated == [path] and "truncated or corrupt" in caplog.text


def test_unusable_files_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown tick file type"):
        read_ticks(tmp_path / "x.parquet")
    with pytest.raises(FileNotFoundError, match="no such tick file"):
        read_ticks(tmp_path / "missing.csv")
    (tmp_path / "h.csv").write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ValueError, match="not a tick CSV header"):
        list(read_ticks(tmp_path / "h.csv"))


def test_a_line_the_csv_module_cannot_parse_is_one_bad_line_and_the_read_goes_on(tmp_path, ticks):
    write_ticks(tmp_path / "t.csv", ticks[:50])
    lines = (tmp_path / "t.csv").read_text().splitlines()
    lines[10] = lines[10][:15] + "\r" + lines[10][15:]  # a stray CR: csv.Error for that line only
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    reader = read_ticks(tmp_path / "t.csv", log_bad=False)
    assert list(reader) == ticks[:9] + ticks[10:50]
    assert reader.malformed == 1 and reader.first_bad[1] == 11 and "not a CSV row" in reader.first_bad[2]
    (tmp_path / "b.csv").write_text("\n" + "\n".join(lines) + "\n")  # a blank first line is no header
    with pytest.raises(ValueError, match="line 1: not a tick CSV header"):
        list(read_ticks(tmp_path / "b.csv"))


def test_writer_rejects_a_non_finite_tick_without_stopping(tmp_path, ticks):
    with TickWriter(tmp_path / "w.jsonl") as w:
        w.write_many([ticks[0], dict(ticks[1], ltp=float("nan")), ticks[2]])
        assert w.rejected == 1
    assert list(read_ticks(tmp_path / "w.jsonl")) == [ticks[0], ticks[2]]


def test_recorder_writes_from_several_threads_and_close_flushes(tmp_path, ticks):
    rec = TickRecorder(tmp_path / "live.csv.gz", batch_size=100, flush_interval_s=0.05)
    per_thread = [ticks[i::4] for i in range(4)]

    def feed(part):
        for i in range(0, len(part), 7):
            rec.record(part[i])
            rec.record_many(part[i + 1:i + 7])
    threads = [threading.Thread(target=feed, args=(p,)) for p in per_thread]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rec.close()
    assert rec.written == len(ticks) and rec.dropped == 0
    back = list(read_ticks(tmp_path / "live.csv.gz"))
    key = lambda t: (t["exch_feed_time"], t["symbol"], t["vol_traded_today"], t["tot_buy_qty"])  # noqa: E731
    assert sorted(back, key=key) == sorted(ticks, key=key)
    for part in per_thread:  # each thread's ticks keep their order
        mine = [t for t in back if any(t is p or t == p for p in part[:50])][:50]
        assert mine == part[:50]


def test_recorder_flushes_in_the_background(tmp_path, ticks):
    rec = TickRecorder(tmp_path / "live.csv", flush_interval_s=0.05)
    try:
        rec.record_many(ticks[:500])
        wait_for(lambda: len(list(read_ticks(tmp_path / "live.csv"))) == 500, timeout=5, what="flushed ticks")
    finally:
        rec.close()


def test_a_restarted_recording_continues_in_a_part_file(tmp_path, ticks):
    base = tmp_path / "2024-03-05.csv.gz"
    with TickRecorder(base) as r1:
        r1.record_many(ticks[:1000])
    with TickRecorder(base) as r2:
        r2.record_many(ticks[1000:2000])
    assert r2.path == part_path(base, 2)
    assert recording_parts(base) == [base, part_path(base, 2)]
    assert list(read_ticks(base)) == ticks[:2000]
    assert list(read_ticks(base, parts=False)) == ticks[:1000]


def test_a_recording_cut_by_a_crash_is_readable_up_to_the_last_flush(tmp_path, ticks):
    path = tmp_path / "crash.csv.gz"
    w = TickWriter(path)
    w.write_many(ticks[:1000])
    w.flush()
    w.write_many(ticks[1000:1100])
    # no close(): the process died; only what was flushed is on disk
    data = path.read_bytes()
    back = list(read_ticks(path))
    assert back == ticks[:1000]
    w.close()
    assert gzip.decompress(path.read_bytes()).count(b"\n") == 1101 and len(data) > 0

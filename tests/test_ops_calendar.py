"""The market calendar: shipped file, OpenAlgo answers (parsed as pure data and through the real paper broker)."""
from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime
from datetime import time as dtime

import pytest

from core.clock import ist_epoch
from core.config import SessionConfig
from core.session import SessionTimes
from gateway.openalgo import OpenAlgoGateway
from gateway.results import Ok, Unavailable
from ops.calendar import (
    DEFAULT_CALENDAR_PATH,
    CalendarError,
    MarketCalendar,
    load_calendar_file,
    parse_holidays,
    parse_timings,
)
from tests.conftest import free_port
from tests.paper_fixtures import broker, broker_proc  # noqa: F401 - fixtures

SES = SessionConfig()
NORMAL = (dtime(9, 15), dtime(15, 30))


def ms(day: date, h: int, m: int) -> int:
    return ist_epoch(day, dtime(h, m)) * 1000


def test_weekend_holiday_and_normal_day_from_the_shipped_file():
    cal = MarketCalendar(SES)
    sat = date(2026, 3, 7)
    assert not cal.is_trading_day(sat)
    assert cal.check_day(sat) == ("2026-03-07 (Saturday) is not a trading day on NSE: the exchange is closed on "
                                  "Saturdays [source: weekday rule]")
    holi = date(2026, 3, 3)
    assert not cal.is_trading_day(holi)
    msg = cal.check_day(holi)
    assert msg.startswith("2026-03-03 (Tuesday) is not a trading day on NSE: Holi") and "calendar file" in msg
    assert cal.check_day(date(2026, 1, 15)).count("Municipal Corporation Election") == 1
    mon = date(2026, 3, 2)
    assert cal.is_trading_day(mon) and cal.check_day(mon) is None
    assert cal.hours(mon) == NORMAL
    assert cal.session_times(mon) == SessionTimes.for_day(SES, mon)
    assert cal.session_times(holi) is None and cal.hours(holi) is None
    assert cal.next_trading_day(date(2026, 3, 27)) == date(2026, 3, 30)  # Friday -> Monday
    assert cal.next_trading_day(date(2026, 3, 30)) == date(2026, 4, 1)   # 31 March is Mahavir Jayanti


def test_every_shipped_date_is_a_weekday_and_2026_is_complete():
    entries, covered = load_calendar_file()
    assert covered == {2025: True, 2026: True, 2027: False}
    for day, items in entries.items():
        for e in items:
            if e.closed:
                assert day.weekday() < 5, f"{day} {e.description} falls on a weekend"
    closed_2026 = sorted(d for d, items in entries.items() if d.year == 2026 and any(e.closed for e in items))
    assert len(closed_2026) == 16  # 15 from NSE/CMTR/71775 plus 15 January (NSE/CMTR/72260)
    doc = json.loads(DEFAULT_CALENDAR_PATH.read_text())
    assert "NSE" in doc["years"]["2027"]["source"] and "PROVISIONAL" in doc["years"]["2027"]["source"]


def test_special_sessions_in_the_file():
    cal = MarketCalendar(SES)
    muhurat_2025 = date(2025, 10, 21)  # a Tuesday holiday with a one-hour session
    info = cal.day_info(muhurat_2025)
    assert info.trading and info.special and cal.hours(muhurat_2025) == (dtime(13, 45), dtime(14, 45))
    st = cal.session_times(muhurat_2025)
    assert st.open == ist_epoch(muhurat_2025, dtime(13, 45)) and st.close == ist_epoch(muhurat_2025, dtime(14, 45))
    assert st.entry_cutoff == ist_epoch(muhurat_2025, dtime(14, 15))   # 30 min before the close, as configured
    assert st.square_off == ist_epoch(muhurat_2025, dtime(14, 25))
    assert st.pre_open == ist_epoch(muhurat_2025, dtime(13, 30))
    # 2026's Muhurat timings are not published: closed, with a message saying what to do
    msg = MarketCalendar(SES).check_day(date(2026, 11, 8))
    assert "Sunday" in msg and "Muhurat" in msg and "timings are not in nse_holidays.json" in msg


def test_year_without_a_list_is_weekdays_only(caplog):
    cal = MarketCalendar(SES)
    with caplog.at_level(logging.WARNING, logger="ops.calendar"):
        assert cal.is_trading_day(date(2031, 1, 6))
    assert "no holiday list for 2031" in caplog.text
    assert "provisional" in cal.describe(date(2027, 1, 27))


def test_parse_timings_shapes():
    d = date(2026, 11, 8)
    rows = [{"exchange": "NSE", "start_time": ms(d, 18, 0), "end_time": ms(d, 19, 0)},
            {"exchange": "MCX", "start_time": ms(d, 18, 0), "end_time": ms(d, 23, 55)}]
    assert parse_timings(rows, "NSE", NORMAL) == (dtime(18, 0), dtime(19, 0))
    assert parse_timings(rows[1:], "NSE", NORMAL) is None
    assert parse_timings([], "NSE", NORMAL) is None
    # an OpenAlgo host on UTC builds ordinary days from UTC midnight: 09:15 "local" arrives as 14:45 IST
    utc_mid = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp() * 1000)
    quirky = [{"exchange": "NSE", "start_time": utc_mid + 33_300_000, "end_time": utc_mid + 55_800_000}]
    assert parse_timings(quirky, "NSE", NORMAL) == NORMAL
    assert parse_timings([{"exchange": "NSE", "start_time": "x"}], "NSE", NORMAL) is None


def test_parse_holidays_shapes():
    rows = [
        {"date": "2026-03-03", "description": "Holi", "holiday_type": "TRADING_HOLIDAY",
         "closed_exchanges": ["NSE", "BSE", "NFO"], "open_exchanges": [
             {"exchange": "MCX", "start_time": ms(date(2026, 3, 3), 17, 0), "end_time": ms(date(2026, 3, 3), 23, 55)}]},
        {"date": "2026-02-19", "description": "Shivaji Jayanti", "holiday_type": "SETTLEMENT_HOLIDAY",
         "closed_exchanges": [], "open_exchanges": []},
        {"date": "2026-11-08", "description": "Diwali Laxmi Pujan", "holiday_type": "SPECIAL_SESSION",
         "closed_exchanges": [], "open_exchanges": [
             {"exchange": "NSE", "start_time": ms(date(2026, 11, 8), 18, 0),
              "end_time": ms(date(2026, 11, 8), 19, 0)}]},
        {"date": "not a date"},
    ]
    out = parse_holidays(rows, "NSE")
    assert set(out) == {date(2026, 3, 3), date(2026, 11, 8)}
    assert out[date(2026, 3, 3)].closed and out[date(2026, 3, 3)].description == "Holi"
    sp = out[date(2026, 11, 8)]
    assert sp.special and (sp.start, sp.end) == (dtime(18, 0), dtime(19, 0))


class _FakeGateway:
    """In-process stand-in for unit-testing the calendar's decisions (answers in OpenAlgo's shapes)."""

    def __init__(self, holidays=None, timings=None, fail=None):
        self.h, self.t, self.fail, self.calls = holidays or {}, timings or {}, fail, 0

    def holidays(self, year):
        self.calls += 1
        return self.fail or Ok(self.h.get(year, []))

    def timings(self, day):
        self.calls += 1
        return self.fail or Ok(self.t.get(day, [{"exchange": "NSE", "start_time": ms(date.fromisoformat(day), 9, 15),
                                                 "end_time": ms(date.fromisoformat(day), 15, 30)}]))


def test_special_session_from_openalgo_answers():
    sun = date(2026, 11, 8)
    sp_row = {"date": sun.isoformat(), "description": "Diwali Laxmi Pujan", "holiday_type": "SPECIAL_SESSION",
              "closed_exchanges": [], "open_exchanges": [
                  {"exchange": "NSE", "start_time": ms(sun, 18, 0), "end_time": ms(sun, 19, 0)}]}
    cal = MarketCalendar(SES, gateway=_FakeGateway(holidays={2026: [sp_row]}))
    info = cal.day_info(sun)
    assert info.trading and info.special and info.source == "openalgo"
    st = cal.session_times(sun)
    assert (st.open, st.entry_cutoff, st.square_off, st.close) == (
        ist_epoch(sun, dtime(18, 0)), ist_epoch(sun, dtime(18, 30)), ist_epoch(sun, dtime(18, 40)),
        ist_epoch(sun, dtime(19, 0)))
    assert "special session (Diwali Laxmi Pujan) 18:00-19:00 IST" in cal.describe(sun)
    # a weekday whose timings answer is a short special session
    wd = date(2026, 6, 1)
    short = [{"exchange": "NSE", "start_time": ms(wd, 9, 15), "end_time": ms(wd, 13, 0)}]
    cal2 = MarketCalendar(SES, gateway=_FakeGateway(timings={wd.isoformat(): short}))
    assert cal2.hours(wd) == (dtime(9, 15), dtime(13, 0)) and cal2.day_info(wd).special
    # a weekday OpenAlgo reports closed (no NSE row), with the reason from its holiday list
    cal3 = MarketCalendar(SES, gateway=_FakeGateway(
        holidays={2026: [{"date": "2026-06-02", "description": "Sudden closure", "holiday_type": "TRADING_HOLIDAY",
                          "closed_exchanges": ["NSE"], "open_exchanges": []}]},
        timings={"2026-06-03": []}))
    assert "Sudden closure" in cal3.check_day(date(2026, 6, 2))
    assert "lists no NSE session" in cal3.check_day(date(2026, 6, 3))


def test_a_holiday_either_source_knows_wins_a_disagreement_and_it_is_logged(caplog):
    cal = MarketCalendar(SES, gateway=_FakeGateway())  # knows no holidays: says Holi is a normal day
    with caplog.at_level(logging.WARNING, logger="ops.calendar"):
        assert not cal.is_trading_day(date(2026, 3, 3))
        assert "Holi" in cal.check_day(date(2026, 3, 3))
    assert "disagree about 2026-03-03" in caplog.text and "closed, Holi" in caplog.text


def test_unreachable_gateway_falls_back_to_the_file_once(caplog):
    fake = _FakeGateway(fail=Unavailable("connection refused"))
    cal = MarketCalendar(SES, gateway=fake)
    with caplog.at_level(logging.WARNING, logger="ops.calendar"):
        assert not cal.is_trading_day(date(2026, 3, 3))
        assert cal.is_trading_day(date(2026, 3, 4))
    assert fake.calls == 1 and "unavailable (connection refused)" in caplog.text


def test_real_gateway_unreachable_server():
    gw = OpenAlgoGateway(f"http://127.0.0.1:{free_port()}", "k" * 32, timeout_s=1)
    cal = MarketCalendar(SES, gateway=gw)
    assert not cal.is_trading_day(date(2026, 3, 3)) and cal.day_info(date(2026, 3, 3)).source == "calendar file"


def test_real_paper_broker_answers(broker):
    cal = MarketCalendar(SES, gateway=broker.gateway())
    mon = date(2026, 11, 23)
    info = cal.day_info(mon)
    assert info.trading and info.source == "openalgo" and cal.hours(mon) == NORMAL
    sat = date(2026, 11, 21)  # the paper broker answers a weekend with only a CRYPTO row
    assert not cal.is_trading_day(sat) and "Saturday" in cal.check_day(sat)


def test_broken_calendar_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "cal.json"
    bad.write_text("{not json")
    with pytest.raises(CalendarError, match="not a valid market calendar"):
        MarketCalendar(SES, path=bad)
    bad.write_text(json.dumps({"years": {"2026": {"special_sessions": [{"date": "2026-11-08", "start": "6pm"}]}}}))
    with pytest.raises(CalendarError, match="not a time HH:MM"):
        MarketCalendar(SES, path=bad)
    with pytest.raises(CalendarError, match="cannot read"):
        MarketCalendar(SES, path=tmp_path / "missing.json")

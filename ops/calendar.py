"""Which days NSE trades and when: holidays, weekends and special sessions (Muhurat trading).

Sources, in order: OpenAlgo's market/holidays and market/timings (when a gateway is given and answers),
then the calendar shipped in ops/nse_holidays.json. Weekends are always closed unless a source names a
special session on that day. When OpenAlgo and the shipped file disagree the OpenAlgo answer is used and
the disagreement is logged, because either list can be out of date.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

from core.clock import IST
from core.config import SessionConfig
from core.session import SessionTimes

log = logging.getLogger(__name__)

DEFAULT_CALENDAR_PATH = Path(__file__).resolve().parent / "nse_holidays.json"
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class CalendarError(Exception):
    """The shipped calendar file is missing or malformed; the message names the file and the problem."""


@dataclass(frozen=True)
class CalendarEntry:
    """One dated line of a holiday list: a closed day, or a special session (times None when unpublished)."""

    day: date
    description: str
    closed: bool
    start: dtime | None = None
    end: dtime | None = None

    @property
    def special(self) -> bool:
        return not self.closed


@dataclass(frozen=True)
class DayInfo:
    """The answer for one day: trading or not, the session hours (IST) and why."""

    day: date
    trading: bool
    open: dtime | None
    close: dtime | None
    special: bool
    reason: str | None   # why the market is closed, or the special session's name
    source: str          # "openalgo", "calendar file" or "weekday rule"
    note: str | None = None


# ----------------------------------------------------------------------------- pure parsers

def _ms_to_ist_time(ms: Any) -> dtime:
    return datetime.fromtimestamp(float(ms) / 1000.0, IST).time().replace(tzinfo=None)


def _ms_to_utc_time(ms: Any) -> dtime:
    return datetime.fromtimestamp(float(ms) / 1000.0, UTC).time().replace(tzinfo=None)


def parse_holidays(rows: Iterable[Mapping[str, Any]], exchange: str = "NSE") -> dict[date, CalendarEntry]:
    """OpenAlgo market/holidays `data` rows -> entries that concern `exchange`.

    TRADING_HOLIDAY with the exchange in closed_exchanges closes it; an open_exchanges row for it with
    times is a special session; SETTLEMENT_HOLIDAY (trading as normal) and rows about other exchanges
    are left out. Malformed rows are skipped with a warning rather than failing start-up.
    """
    out: dict[date, CalendarEntry] = {}
    for row in rows:
        try:
            day = date.fromisoformat(str(row["date"]))
        except (KeyError, TypeError, ValueError):
            log.warning("OpenAlgo holiday row without a valid date ignored: %r", row)
            continue
        desc = str(row.get("description") or "holiday")
        kind = str(row.get("holiday_type") or "TRADING_HOLIDAY").upper()
        closed = {str(x).upper() for x in (row.get("closed_exchanges") or [])}
        session = None
        for ex in row.get("open_exchanges") or []:
            if isinstance(ex, Mapping) and str(ex.get("exchange", "")).upper() == exchange:
                try:
                    session = (_ms_to_ist_time(ex["start_time"]), _ms_to_ist_time(ex["end_time"]))
                except (KeyError, TypeError, ValueError, OverflowError):
                    log.warning("OpenAlgo special session for %s on %s has no usable times: %r", exchange, day, ex)
        if session is not None:
            out[day] = CalendarEntry(day, desc, False, *session)
        elif exchange in closed and kind != "SETTLEMENT_HOLIDAY":
            out[day] = CalendarEntry(day, desc, True)
        elif kind == "SPECIAL_SESSION" and not closed:
            log.warning("OpenAlgo lists a special session on %s (%s) without %s times", day, desc, exchange)
    return out


def parse_timings(rows: Iterable[Mapping[str, Any]], exchange: str = "NSE",
                  normal: tuple[dtime, dtime] | None = None) -> tuple[dtime, dtime] | None:
    """OpenAlgo market/timings `data` rows -> the exchange's (open, close) in IST, or None when closed.

    OpenAlgo builds ordinary days' epochs from its host's local midnight, so a server on UTC reports
    09:15 as 14:45 IST; a row that reads as exactly the `normal` hours in UTC is taken as a normal day.
    """
    for row in rows:
        if not isinstance(row, Mapping) or str(row.get("exchange", "")).upper() != exchange:
            continue
        try:
            start, end = _ms_to_ist_time(row["start_time"]), _ms_to_ist_time(row["end_time"])
            if normal is not None and (start, end) != normal \
                    and (_ms_to_utc_time(row["start_time"]), _ms_to_utc_time(row["end_time"])) == normal:
                return normal
        except (KeyError, TypeError, ValueError, OverflowError):
            log.warning("OpenAlgo timings row for %s has no usable times: %r", exchange, row)
            continue
        return start, end
    return None


def _parse_hhmm(value: Any, where: str) -> dtime | None:
    if value is None:
        return None
    try:
        hh, mm = str(value).split(":")
        return dtime(int(hh), int(mm))
    except ValueError:
        raise CalendarError(f"{where}: {value!r} is not a time HH:MM") from None


def load_calendar_file(path: Path = DEFAULT_CALENDAR_PATH) -> tuple[dict[date, list[CalendarEntry]], dict[int, bool]]:
    """The shipped calendar: entries by day, and for each covered year whether its list is verified."""
    try:
        doc = json.loads(path.read_text())
        years = doc["years"]
        if not isinstance(years, dict):
            raise TypeError("'years' is not a mapping")
    except OSError as e:
        raise CalendarError(f"{path}: cannot read the market calendar ({e.strerror or e})") from None
    except (ValueError, KeyError, TypeError) as e:
        raise CalendarError(f"{path}: not a valid market calendar ({e})") from None
    entries: dict[date, list[CalendarEntry]] = {}
    covered: dict[int, bool] = {}
    for year, body in years.items():
        where = f"{path.name} years.{year}"
        try:
            covered[int(year)] = bool(body.get("verified", False))
            for h in body.get("holidays", []):
                d = date.fromisoformat(h["date"])
                entries.setdefault(d, []).append(CalendarEntry(d, str(h.get("description") or "holiday"), True))
            for s in body.get("special_sessions", []):
                d = date.fromisoformat(s["date"])
                entries.setdefault(d, []).append(CalendarEntry(
                    d, str(s.get("description") or "special session"), False,
                    _parse_hhmm(s.get("start"), f"{where} {d} start"), _parse_hhmm(s.get("end"), f"{where} {d} end")))
        except CalendarError:
            raise
        except (AttributeError, KeyError, TypeError, ValueError) as e:
            raise CalendarError(f"{where}: malformed entry ({e})") from None
    return entries, covered


# ----------------------------------------------------------------------------- the calendar

class MarketCalendar:
    """is_trading_day / hours / session_times / check_day for one exchange; answers are cached per day."""

    def __init__(self, session: SessionConfig, gateway: Any | None = None, exchange: str = "NSE",
                 path: Path = DEFAULT_CALENDAR_PATH):
        self.session = session
        self.gateway = gateway
        self.exchange = exchange
        self.path = path
        self.normal = (session.open, session.close)
        self._file, self._covered = load_calendar_file(path)
        self._oa_years: dict[int, dict[date, CalendarEntry] | None] = {}
        self._oa_timings: dict[date, tuple[bool, tuple[dtime, dtime] | None]] = {}
        self._days: dict[date, DayInfo] = {}
        self._gateway_down = False

    # ---------------------------------------------------------------- public answers
    def day_info(self, day: date) -> DayInfo:
        info = self._days.get(day)
        if info is None:
            info = self._days[day] = self._decide(day)
        return info

    def is_trading_day(self, day: date) -> bool:
        return self.day_info(day).trading

    def hours(self, day: date) -> tuple[dtime, dtime] | None:
        """(open, close) IST for a trading day, else None."""
        info = self.day_info(day)
        return (info.open, info.close) if info.trading and info.open and info.close else None

    def session_times(self, day: date) -> SessionTimes | None:
        """The day's boundaries as epochs; a special session keeps the configured gaps before its close
        (entry cutoff, square-off) and before its open (pre-open), clamped inside the session."""
        hrs = self.hours(day)
        if hrs is None:
            return None
        cfg = self.session
        if hrs == self.normal:
            return SessionTimes.for_day(cfg, day)
        start = IST.localize(datetime.combine(day, hrs[0]))
        end = IST.localize(datetime.combine(day, hrs[1]))

        def gap(a: dtime, b: dtime) -> timedelta:
            return datetime.combine(day, b) - datetime.combine(day, a)

        def clamp(t: datetime) -> int:
            return int(min(max(t, start), end).timestamp())

        return SessionTimes(day, int((start - gap(cfg.pre_open, cfg.open)).timestamp()), int(start.timestamp()),
                            clamp(end - gap(cfg.entry_cutoff, cfg.close)), clamp(end - gap(cfg.square_off, cfg.close)),
                            int(end.timestamp()))

    def check_day(self, day: date) -> str | None:
        """None on a trading day; otherwise the sentence to show the operator."""
        info = self.day_info(day)
        if info.trading:
            return None
        text = f"{day.isoformat()} ({_WEEKDAYS[day.weekday()]}) is not a trading day on {self.exchange}: {info.reason}"
        return text + f" [source: {info.source}]"

    def describe(self, day: date) -> str:
        """One line for the start-up log, trading or not."""
        info = self.day_info(day)
        if not info.trading:
            return self.check_day(day) or ""
        kind = f"special session ({info.reason})" if info.special else "normal session"
        text = (f"{day.isoformat()} ({_WEEKDAYS[day.weekday()]}): {self.exchange} {kind} "
                f"{info.open:%H:%M}-{info.close:%H:%M} IST [source: {info.source}]")
        return text + (f"; {info.note}" if info.note else "")

    def next_trading_day(self, day: date, limit_days: int = 30) -> date | None:
        """The first trading day after `day` (None if none within limit_days)."""
        for i in range(1, limit_days + 1):
            d = day + timedelta(days=i)
            if self.is_trading_day(d):
                return d
        return None

    # ---------------------------------------------------------------- deciding
    def _decide(self, day: date) -> DayInfo:
        from_file = self._from_file(day)
        from_oa = self._from_openalgo(day)
        if from_oa is None:
            if from_file.note:
                log.warning("market calendar: %s", from_file.note)
            return from_file
        if day.year in self._covered and (from_oa.trading != from_file.trading or
                                          (from_oa.trading and (from_oa.open, from_oa.close) !=
                                           (from_file.open, from_file.close))):
            log.warning("market calendar: OpenAlgo and %s disagree about %s (OpenAlgo: %s; file: %s) -- check NSE's "
                        "circular and correct whichever is wrong", self.path.name, day, _summary(from_oa),
                        _summary(from_file))
            if not from_file.trading and not from_file.special:
                return from_file  # a holiday either source knows of is a holiday: never trade into a closed market
        return from_oa

    def _from_file(self, day: date) -> DayInfo:
        entries = self._file.get(day, [])
        special = next((e for e in entries if e.special), None)
        holiday = next((e for e in entries if e.closed), None)
        src = "calendar file"
        if special is not None:
            if special.start is not None and special.end is not None:
                return DayInfo(day, True, special.start, special.end, True, special.description, src)
            why = (f"{special.description}: its timings are not in {self.path.name} yet -- add them from NSE's "
                   "circular to trade it")
            if holiday is not None:
                why = f"{holiday.description} (trading holiday); {why}"
            return DayInfo(day, False, None, None, True, why, src)
        if day.weekday() >= 5:
            return DayInfo(day, False, None, None, False, f"the exchange is closed on {_WEEKDAYS[day.weekday()]}s",
                           "weekday rule")
        if holiday is not None:
            return DayInfo(day, False, None, None, False, f"{holiday.description} (trading holiday)", src)
        note = None
        if day.year not in self._covered:
            note = (f"{self.path.name} has no holiday list for {day.year}: only weekends are known to be closed "
                    "-- add NSE's list for that year")
            src = "weekday rule"
        elif not self._covered[day.year]:
            note = f"{self.path.name}'s list for {day.year} is provisional -- check it against NSE's circular"
        return DayInfo(day, True, *self.normal, False, None, src, note)

    def _from_openalgo(self, day: date) -> DayInfo | None:
        if self.gateway is None or self._gateway_down:
            return None
        entries = self._oa_holidays(day.year)
        entry = entries.get(day) if entries else None
        src = "openalgo"
        if entry is not None and entry.special and entry.start and entry.end:
            return DayInfo(day, True, entry.start, entry.end, True, entry.description, src)
        if entry is not None and entry.closed:
            return DayInfo(day, False, None, None, False, f"{entry.description} (trading holiday)", src)
        if day.weekday() >= 5:
            if entries is None:
                return None
            return DayInfo(day, False, None, None, False, f"the exchange is closed on {_WEEKDAYS[day.weekday()]}s",
                           "weekday rule")
        answered, hrs = self._oa_timings_for(day)
        if not answered:
            if entries is None:
                return None
            return DayInfo(day, True, *self.normal, False, None, src)
        if hrs is None:
            return DayInfo(day, False, None, None, False,
                           f"OpenAlgo's market/timings lists no {self.exchange} session for this day", src)
        special = hrs != self.normal
        return DayInfo(day, True, hrs[0], hrs[1], special, "special session (OpenAlgo market/timings)"
                       if special else None, src)

    def _oa_holidays(self, year: int) -> dict[date, CalendarEntry] | None:
        if year not in self._oa_years:
            gw = self.gateway
            res = None if gw is None else self._call(lambda: gw.holidays(year), f"market/holidays {year}")
            self._oa_years[year] = None if res is None else parse_holidays(res, self.exchange)
        return self._oa_years[year]

    def _oa_timings_for(self, day: date) -> tuple[bool, tuple[dtime, dtime] | None]:
        if day not in self._oa_timings:
            gw = self.gateway
            res = None if gw is None else self._call(lambda: gw.timings(day.isoformat()), f"market/timings {day}")
            self._oa_timings[day] = (False, None) if res is None else \
                (True, parse_timings(res, self.exchange, self.normal))
        return self._oa_timings[day]

    def _call(self, fn: Any, what: str) -> list | None:
        if self._gateway_down:
            return None
        try:
            res = fn()
        except Exception as e:  # noqa: BLE001 - the calendar falls back to the shipped file
            log.warning("market calendar: OpenAlgo %s failed (%s); using %s", what, e, self.path.name)
            self._gateway_down = True
            return None
        if not getattr(res, "ok", False):
            why = getattr(res, "message", None) or getattr(res, "reason", None) or getattr(res, "kind", res)
            log.warning("market calendar: OpenAlgo %s unavailable (%s); using %s", what, why, self.path.name)
            if getattr(res, "kind", "") in ("unavailable", "unknown"):
                self._gateway_down = True  # one unreachable server is enough; do not wait on it per day
            return None
        value = getattr(res, "value", None)
        return list(value) if isinstance(value, (list, tuple)) else None


def _summary(info: DayInfo) -> str:
    if not info.trading:
        return f"closed, {info.reason}"
    return f"open {info.open:%H:%M}-{info.close:%H:%M}" + (" (special)" if info.special else "")

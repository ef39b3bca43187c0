"""IST session rules the sandbox applies: MIS square-off times, the MIS-blocked window, exchange timings."""
from __future__ import annotations

from datetime import date, timedelta
from datetime import time as dtime

from core.clock import ist_epoch, to_ist

# OpenAlgo sandbox square-off times (IST) per exchange.
SQUARE_OFF_TIMES: dict[str, dtime] = {
    "NSE": dtime(15, 15), "BSE": dtime(15, 15), "NFO": dtime(15, 15), "BFO": dtime(15, 15),
    "CDS": dtime(16, 45), "BCD": dtime(16, 45), "MCX": dtime(23, 30), "NCDEX": dtime(17, 0),
}
MIS_RESUME = dtime(9, 0)
CAS_START = date(2026, 8, 3)  # SEBI closing auction: NFO/BFO trade to 15:40 from this day


def square_off_groups() -> dict[str, tuple[str, ...]]:
    """"HH:MM" -> the exchanges squared off at that time."""
    groups: dict[str, list[str]] = {}
    for exch, at in SQUARE_OFF_TIMES.items():
        groups.setdefault(at.strftime("%H:%M"), []).append(exch)
    return {k: tuple(v) for k, v in groups.items()}


IST_OFFSET_S = 19_800  # +05:30, with no DST since 1945: an IST day is epoch seconds shifted, 86,400 long


def latest_boundary(t: float, at: dtime) -> float:
    """Epoch of the most recent `at` IST at or before `t`. Arithmetic on the fixed offset: every request asks
    (a placement's session, the wall clock's square-off check), and pytz's localize cost ~30 us a call."""
    midnight = (t + IST_OFFSET_S) // 86_400 * 86_400 - IST_OFFSET_S
    b = midnight + at.hour * 3600 + at.minute * 60 + at.second
    if b > t:
        b -= 86_400
    return float(int(b))


def mis_blocked(t: float, exchange: str) -> dtime | None:
    """The square-off time if new MIS exposure is refused at `t` (between square-off and 09:00), else None."""
    at = SQUARE_OFF_TIMES.get(exchange)
    if at is None:
        return None
    now = to_ist(t).time()
    return at if (now >= at or now < MIS_RESUME) else None


def _ms(day: date, at: dtime) -> int:
    return ist_epoch(day, at) * 1000


def timings(day: date) -> list[dict]:
    """Session rows for `day` (epoch ms). Weekends: only CRYPTO, like OpenAlgo's current calendar."""
    end_of_day = _ms(day + timedelta(days=1), dtime(0, 0)) - 1
    rows = [{"exchange": "CRYPTO", "start_time": _ms(day, dtime(0, 0)), "end_time": end_of_day}]
    if day.weekday() >= 5:
        return rows
    fo_close = dtime(15, 40) if day >= CAS_START else dtime(15, 30)
    sessions = [("NSE", dtime(9, 15), dtime(15, 30)), ("BSE", dtime(9, 15), dtime(15, 30)),
                ("NFO", dtime(9, 15), fo_close), ("BFO", dtime(9, 15), fo_close),
                ("CDS", dtime(9, 0), dtime(17, 0)), ("BCD", dtime(9, 0), dtime(17, 0)),
                ("MCX", dtime(9, 0), dtime(23, 55)), ("NCO", dtime(9, 0), dtime(23, 55))]
    return [{"exchange": e, "start_time": _ms(day, a), "end_time": _ms(day, b)} for e, a, b in sessions] + rows

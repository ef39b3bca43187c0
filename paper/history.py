"""OpenAlgo's /api/v1/history and /api/v1/intervals, answered from the seeded synthetic generator.

Why: the history layer (sources, chunking, rate limits, the cache) is then tested against a real server
offline. Shapes as OpenAlgo sends them: rows of epoch-second `timestamp`, open, high, low, close, volume and
`oi` (0); intervals grouped by seconds/minutes/hours/days/weeks/months. Only finished candles are served: a
candle ending after the broker's clock (a replay's current time) is not history yet.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from history.intervals import parse_interval
from history.synthetic import DEFAULT_SEED, synthetic_day
from paper.errors import ApiError

OFFERED: dict[str, list[str]] = {
    "seconds": ["5s", "10s", "15s", "30s"], "minutes": ["1m", "2m", "3m", "5m", "10m", "15m", "20m", "30m"],
    "hours": ["1h"], "days": ["D"], "weeks": [], "months": []}
MAX_DAYS = 366
_OFFERED = {name for names in OFFERED.values() for name in names}


def _day(text: str, field: str) -> date:
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise ApiError(400, {"status": "error", "message": f"Invalid {field} format. Use YYYY-MM-DD"}) from None


class PaperHistory:
    def __init__(self, seed: int = DEFAULT_SEED):
        self.seed = seed

    def intervals(self) -> dict[str, Any]:
        return {"status": "success", "data": {k: list(v) for k, v in OFFERED.items()}}

    def history(self, d: dict[str, Any], now: float) -> dict[str, Any]:
        if d["interval"] not in _OFFERED:
            raise ApiError(400, {"status": "error", "message": f"Interval '{d['interval']}' is not supported by "
                                 f"the broker. Supported: {', '.join(sorted(_OFFERED))}"})
        first, last = _day(d["start_date"], "start_date"), _day(d["end_date"], "end_date")
        if first > last:
            raise ApiError(400, {"status": "error", "message": "start_date must not be after end_date"})
        if (last - first).days >= MAX_DAYS:  # each day is generated: a decade would hold a thread for minutes
            raise ApiError(400, {"status": "error", "message": f"At most {MAX_DAYS} days per request"})
        seconds = parse_interval(d["interval"]).seconds
        rows: list[dict[str, Any]] = []
        for n in range(first.toordinal(), last.toordinal() + 1):
            for c in synthetic_day(d["symbol"], d["exchange"], date.fromordinal(n), seconds, self.seed):
                if c.start + c.seconds > now:
                    break
                rows.append({"timestamp": c.start, "open": c.open, "high": c.high, "low": c.low, "close": c.close,
                             "volume": c.volume, "oi": 0})
        return {"status": "success", "data": rows}

"""Which listed expiry to trade, from the dates /api/v1/expiry returns; never from a weekday.

NSE has moved the weekly expiry day more than once, so the list is the only truth. With the list in date order
and today's contracts kept until the roll:
- nearest_weekly: the first listed expiry (for an index with monthly contracts only, that is its monthly);
- next_weekly: the second;
- monthly: the last listed expiry in the month of the first (the monthly contract is the last of its month).
The roll: on an expiry's own day, from `roll_after` (IST) on, that expiry is skipped and the choice is made
from the rest, so "nearest" becomes next week's and "monthly" next month's when today was the monthly. From the
close (15:30) today's contracts have expired and are skipped with or without a roll time.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as dtime
from typing import Any

from options.spec import MARKET_CLOSE, ExpiryChoice


class ExpiryDataError(ValueError):
    """The expiry response is an error or lists something that is not a DD-MMM-YY date."""


@dataclass(frozen=True)
class ExpiryPick:
    expiry: date
    rolled: bool            # today's expiry was skipped for the roll
    why: str

    @property
    def code(self) -> str:
        """DDMMMYY, as optionchain's and optionsymbol's expiry_date: 24NOV26."""
        return self.expiry.strftime("%d%b%y").upper()


@dataclass(frozen=True)
class NoExpiry:
    """No listed expiry fits the choice: nothing is traded, and `reason` says why."""

    reason: str


def parse_expiry_list(body: Mapping[str, Any]) -> list[date]:
    """The dates of a successful /api/v1/expiry answer ("data": ["24-NOV-26", ...]), ascending."""
    if body.get("status") != "success":
        raise ExpiryDataError(f"expiry: {body.get('status')!r} answer: {body.get('message')!r}")
    data = body.get("data")
    if not isinstance(data, list):
        raise ExpiryDataError(f"expiry: data {data!r} is not a list")
    out: set[date] = set()
    for i, label in enumerate(data):
        try:
            out.add(datetime.strptime(str(label), "%d-%b-%y").date())
        except ValueError:
            raise ExpiryDataError(f"expiry: data[{i}] {label!r} is not a DD-MMM-YY date") from None
    return sorted(out)


def rolled_past(expiry: date, today: date, now: dtime, roll_after: dtime | None) -> bool:
    """True when `expiry` is not to be traded at `today` `now`: it is before today, or it is today and the roll
    time (or the close) has come. A position manager asks the same question of a contract it holds."""
    if expiry != today:
        return expiry < today
    return now >= MARKET_CLOSE or (roll_after is not None and now >= roll_after)


def choose_expiry(listed: Sequence[date], choice: ExpiryChoice, today: date, now: dtime,
                  roll_after: dtime | None) -> ExpiryPick | NoExpiry:
    """The expiry `choice` names among `listed` at IST `today` `now`, or NoExpiry naming what is missing."""
    dates = sorted(set(listed))
    rolled = today in dates and rolled_past(today, today, now, roll_after) and now < MARKET_CLOSE
    live = [d for d in dates if not rolled_past(d, today, now, roll_after)]
    after = f" after skipping today's {today.isoformat()} (roll_after {roll_after:%H:%M})" if rolled else ""
    if not live:
        return NoExpiry(f"no expiry on or after {today.isoformat()} is listed{after}: the broker's list is "
                        f"{', '.join(d.isoformat() for d in dates) or 'empty'}")
    first = live[0]
    if choice is ExpiryChoice.NEAREST_WEEKLY:
        return ExpiryPick(first, rolled, f"nearest listed expiry{after}")
    if choice is ExpiryChoice.NEXT_WEEKLY:
        if len(live) < 2:
            return NoExpiry(f"next_weekly needs two listed expiries{after}; only {first.isoformat()} is listed")
        return ExpiryPick(live[1], rolled, f"second listed expiry{after}")
    month = [d for d in live if (d.year, d.month) == (first.year, first.month)]
    return ExpiryPick(month[-1], rolled, f"last listed expiry of {first:%b %Y}{after}")

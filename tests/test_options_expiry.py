"""Expiry choice from the list /api/v1/expiry returns, and the roll on expiry day."""
from __future__ import annotations

from datetime import date
from datetime import time as dtime

import pytest

from options.expiry import ExpiryDataError, ExpiryPick, NoExpiry, choose_expiry, parse_expiry_list, rolled_past
from options.spec import ExpiryChoice

NEAREST, NEXT, MONTHLY = ExpiryChoice.NEAREST_WEEKLY, ExpiryChoice.NEXT_WEEKLY, ExpiryChoice.MONTHLY

# NIFTY as the paper broker's calendar lists it: weekly Tuesdays, except 09 Nov (Monday: the 10th is a holiday)
# and the monthly 23 Nov (Monday: the 24th is a holiday); the monthly is the last of its month
LISTED = [date(2026, 11, 3), date(2026, 11, 9), date(2026, 11, 17), date(2026, 11, 23), date(2026, 12, 1),
          date(2026, 12, 8), date(2026, 12, 15), date(2026, 12, 22), date(2026, 12, 29), date(2027, 1, 5),
          date(2027, 1, 12)]
ROLL = dtime(14, 30)


def pick(choice: ExpiryChoice, today: date, now: dtime, roll_after: dtime | None = ROLL,
         listed: list[date] = LISTED) -> ExpiryPick:
    p = choose_expiry(listed, choice, today, now, roll_after)
    assert isinstance(p, ExpiryPick), p
    return p


def test_parse_reads_openalgos_labels_in_date_order():
    body = {"status": "success", "message": "Found 3 expiry dates for NIFTY options in NFO",
            "data": ["01-DEC-26", "23-NOV-26", "17-NOV-26", "23-NOV-26"]}
    assert parse_expiry_list(body) == [date(2026, 11, 17), date(2026, 11, 23), date(2026, 12, 1)]
    with pytest.raises(ExpiryDataError, match=r"data\[1\] '2026-11-23' is not a DD-MMM-YY date"):
        parse_expiry_list({"status": "success", "data": ["23-NOV-26", "2026-11-23"]})
    with pytest.raises(ExpiryDataError, match="'error' answer"):
        parse_expiry_list({"status": "error", "message": "Symbol parameter is required and cannot be empty"})


def test_a_mid_week_day_takes_the_list_as_it_is():
    wed = date(2026, 11, 18)
    assert pick(NEAREST, wed, dtime(10)).expiry == date(2026, 11, 23)     # a Monday, from the list
    assert pick(NEXT, wed, dtime(10)).expiry == date(2026, 12, 1)
    assert pick(MONTHLY, wed, dtime(10)).expiry == date(2026, 11, 23)     # last listed in November
    assert pick(NEAREST, wed, dtime(10)).code == "23NOV26" and not pick(NEAREST, wed, dtime(10)).rolled
    # on the holiday after a Monday expiry, the next listed one
    assert pick(NEAREST, date(2026, 11, 10), dtime(10)).expiry == date(2026, 11, 17)
    assert pick(MONTHLY, date(2026, 12, 2), dtime(10)).expiry == date(2026, 12, 29)


def test_expiry_day_keeps_todays_contract_until_roll_after_then_rolls():
    day = date(2026, 11, 23)                                               # the November monthly
    assert pick(NEAREST, day, dtime(14, 29)).expiry == day
    assert pick(MONTHLY, day, dtime(14, 29)).expiry == day
    rolled = pick(NEAREST, day, ROLL)
    assert (rolled.expiry, rolled.rolled) == (date(2026, 12, 1), True)
    assert "after skipping today's 2026-11-23 (roll_after 14:30)" in rolled.why
    assert pick(NEXT, day, ROLL).expiry == date(2026, 12, 8)
    assert pick(MONTHLY, day, ROLL).expiry == date(2026, 12, 29)           # next month's monthly
    weekly_day = date(2026, 12, 8)
    assert pick(NEAREST, weekly_day, dtime(9, 15), roll_after=dtime(9, 15)).expiry == date(2026, 12, 15)
    assert pick(MONTHLY, weekly_day, dtime(15, 0)).expiry == date(2026, 12, 29)


def test_without_a_roll_time_todays_contract_trades_until_the_close():
    day = date(2026, 11, 17)
    assert pick(NEAREST, day, dtime(15, 29), roll_after=None).expiry == day
    closed = pick(NEAREST, day, dtime(15, 30), roll_after=None)
    assert (closed.expiry, closed.rolled) == (date(2026, 11, 23), False)    # expired, not a roll
    assert rolled_past(day, day, dtime(15, 0), None) is False
    assert rolled_past(day, day, dtime(15, 0), dtime(15, 0)) is True
    assert rolled_past(date(2026, 11, 9), day, dtime(9, 15), None) is True  # before today
    assert rolled_past(date(2026, 11, 23), day, dtime(15, 30), ROLL) is False


def test_nothing_fitting_is_no_expiry_with_the_reason():
    last = choose_expiry(LISTED, NEXT, date(2027, 1, 12), ROLL, ROLL)
    assert isinstance(last, NoExpiry)
    assert last.reason == "no expiry on or after 2027-01-12 is listed after skipping today's 2027-01-12 " \
                          "(roll_after 14:30): the broker's list is " + ", ".join(d.isoformat() for d in LISTED)
    one = choose_expiry(LISTED, NEXT, date(2027, 1, 6), dtime(10), ROLL)
    assert isinstance(one, NoExpiry) and one.reason == "next_weekly needs two listed expiries; only 2027-01-12 " \
                                                      "is listed"
    empty = choose_expiry([], NEAREST, date(2026, 11, 18), dtime(10), None)
    assert isinstance(empty, NoExpiry) and empty.reason.endswith("the broker's list is empty")

"""When a held option is looked at and what closes it: check points on a fixed grid, stop and target on the
premium from the entry's fill, the expiry roll, and the live poller handing readings to the trading thread."""
from __future__ import annotations

import time
from datetime import date, datetime
from datetime import time as dtime

from options.contract import parse_option_symbol
from options.exits import ExitLevels
from options.premium import (
    EXPIRY_ROLL,
    PREMIUM_STOP,
    PREMIUM_TARGET,
    PremiumPoller,
    exit_reason,
    expiry_rolled,
    levels,
    next_check,
)
from options.spec import OptionsSpec, PremiumLevel


def test_check_points_lie_on_a_fixed_grid_whenever_the_trade_was_booked():
    assert next_check(1000) == 1005 and next_check(1001) == 1005 and next_check(1004.9) == 1005
    assert next_check(1005) == 1010 and next_check(1000, 30) == 1020


def test_stop_and_target_from_the_entry_fill():
    spec = OptionsSpec(stop=PremiumLevel(20, True), target=PremiumLevel(30, True))
    lv = levels(spec, 100.0, 0.05)
    assert lv == ExitLevels(80.0, 130.0)
    assert levels(OptionsSpec(), 100.0, 0.05) == ExitLevels(None, None)
    # 20% below 74.85 is 59.88, rounded up to the tick (the loss never exceeds what was configured)
    assert levels(spec, 74.85, None).stop == 59.9
    assert exit_reason(80.0, lv) == PREMIUM_STOP and exit_reason(79.95, lv) == PREMIUM_STOP
    assert exit_reason(130.0, lv) == PREMIUM_TARGET and exit_reason(80.05, lv) is None
    assert exit_reason(0.0, lv) is None  # no price is no reading
    absolute = levels(OptionsSpec(stop=PremiumLevel(15, False)), 12.0, 0.05)
    assert absolute.stop is None  # a stop at or below zero cannot trigger: the whole premium is the risk


def test_a_held_contract_rolls_on_its_expiry_day_from_roll_after_or_the_close():
    c = parse_option_symbol("NIFTY23NOV2626000CE")
    assert c is not None and c.expiry == date(2026, 11, 23)
    day = date(2026, 11, 23)
    assert not expiry_rolled(c.expiry, datetime.combine(day, dtime(13, 59)), dtime(14, 0))
    assert expiry_rolled(c.expiry, datetime.combine(day, dtime(14, 0)), dtime(14, 0))
    assert not expiry_rolled(c.expiry, datetime.combine(day, dtime(15, 0)), None)
    assert expiry_rolled(c.expiry, datetime.combine(day, dtime(15, 30)), None)
    assert not expiry_rolled(c.expiry, datetime.combine(date(2026, 11, 20), dtime(15, 0)), dtime(9, 30))
    assert EXPIRY_ROLL == "expiry_roll"


def test_the_live_poller_reads_each_held_contract_off_the_trading_thread():
    held = frozenset({"NIFTY23NOV2626000CE", "NIFTY23NOV2626000PE"})
    calls: list[str] = []

    def quote(symbol: str) -> float | None:
        calls.append(symbol)
        if symbol.endswith("PE"):
            raise ConnectionError("refused")  # a failed read is skipped, the next cycle tries again
        return 101.5

    p = PremiumPoller(quote, lambda: held, lambda: 1234.0, every_s=0.01)
    p.start()
    try:
        deadline = time.monotonic() + 5
        seen = []
        while not seen and time.monotonic() < deadline:
            seen = p.take()
            time.sleep(0.01)
    finally:
        p.stop()
    assert seen and all(s.symbol == "NIFTY23NOV2626000CE" and s.ltp == 101.5 and s.time == 1234.0 for s in seen)
    assert "NIFTY23NOV2626000PE" in calls

"""Backtest metrics against numbers worked out by hand (the arithmetic is in the comments), and their edge cases.

The trades are db.TradeLog rows, as the ledger writes them; nothing here touches a database.
"""
from __future__ import annotations

import json
import math
from datetime import date, time
from decimal import Decimal

import pytest

from backtest import metrics as m
from core.clock import ist_epoch
from core.costs import CHARGE_NAMES
from db import TradeLog

D = Decimal
START = D(100_000)
SESSION = m.session_length_s(time(9, 15), time(15, 30))   # 6 h 15 min = 22,500 s
DAYS = [date(2025, 1, 6), date(2025, 1, 7), date(2025, 1, 8), date(2025, 1, 9), date(2025, 2, 3)]


def row(tid: int, symbol: str, strategy: str, day: date, entry: time, exit_: time, gross: str,
        charges: tuple[int, int, int, int, int, int]) -> TradeLog:
    """A trade_log row: costs = the six charges (brokerage, stt, exchange_txn, sebi, stamp_duty, gst);
    net = gross - costs, as the ledger books it."""
    ch = dict(zip(CHARGE_NAMES, (D(c) for c in charges), strict=True))
    costs = sum(ch.values(), D(0))
    return TradeLog(trade_id=tid, trade_date=day, symbol=symbol, strategy=strategy, side="long", trade_type="full",
                    quantity=10, entry_time=ist_epoch(day, entry), exit_time=ist_epoch(day, exit_),
                    gross_pnl=D(gross), costs=costs, net_pnl=D(gross) - costs, **ch)


# Five positions over five trading days, each held one hour (net P&L = gross - charges):
#   T1 SBIN orb  2025-01-06 09:30-10:30  2,100 - 100 = +2,000
#   T2 INFY mac  2025-01-07 09:30-10:30   -950 -  50 = -1,000
#   (2025-01-08: no trade)
#   T3 SBIN mac  2025-01-09 10:00-11:00  two exits: 530 - 30 = +500 at 10:30, 1,040 - 40 = +1,000 at 11:00 -> +1,500
#   T4 INFY orb  2025-02-03 09:30-10:30 -2,900 - 100 = -3,000
#   T5 SBIN orb  2025-02-03 11:00-12:00     60 -  60 =      0 (breakeven)
ROWS = [
    row(1, "SBIN", "orb", DAYS[0], time(9, 30), time(10, 30), "2100", (40, 25, 20, 1, 3, 11)),
    row(2, "INFY", "mac", DAYS[1], time(9, 30), time(10, 30), "-950", (20, 15, 8, 1, 2, 4)),
    row(3, "SBIN", "mac", DAYS[3], time(10, 0), time(10, 30), "530", (10, 10, 5, 0, 1, 4)),
    row(3, "SBIN", "mac", DAYS[3], time(10, 0), time(11, 0), "1040", (20, 10, 5, 1, 0, 4)),
    row(4, "INFY", "orb", DAYS[4], time(9, 30), time(10, 30), "-2900", (40, 30, 15, 1, 4, 10)),
    row(5, "SBIN", "orb", DAYS[4], time(11, 0), time(12, 0), "60", (20, 20, 10, 1, 2, 7)),
]


def summary(rows=ROWS, days=DAYS, rf=0.0):
    eq = m.daily_equity(START, rows, days)
    return m.summarize(rows, eq, START, risk_free_rate=rf, session_seconds=SESSION)


def test_daily_equity_books_each_days_net_pnl_and_repeats_a_quiet_day():
    # 100,000 +2,000 = 102,000; -1,000 = 101,000; no trade = 101,000; +500 +1,000 = 102,500; -3,000 +0 = 99,500
    assert m.daily_equity(START, ROWS, DAYS) == [
        (DAYS[0], D(102_000)), (DAYS[1], D(101_000)), (DAYS[2], D(101_000)), (DAYS[3], D(102_500)),
        (DAYS[4], D(99_500))]
    with pytest.raises(ValueError, match="2025-02-03"):
        m.daily_equity(START, ROWS, DAYS[:4])


def test_trade_figures_count_positions_on_net_pnl():
    t = summary().trades
    # positions by trade_id: +2,000, -1,000, +1,500 (2 exits), -3,000, 0 -> 5 positions, 6 exits
    assert (t.positions, t.exits, t.wins, t.losses) == (5, 6, 2, 2)
    assert t.win_rate == 0.4                                # 2 wins / 5 positions (the breakeven one counts)
    assert t.profit_factor == 0.875                         # won 2,000 + 1,500 = 3,500 / lost 1,000 + 3,000
    assert t.expectancy == D("-100.00")                     # net -500 / 5
    assert t.average_win == D("1750.00")                    # 3,500 / 2
    assert t.average_loss == D("-2000.00")                  # -4,000 / 2
    assert t.gross_pnl == D(-120)                           # 2,100 - 950 + 530 + 1,040 - 2,900 + 60
    assert t.costs == D(380)                                # 100 + 50 + 30 + 40 + 100 + 60
    assert t.net_pnl == D(-500)


def test_charges_by_component_sum_the_rows_charge_columns():
    s = summary()
    assert s.charges == {"brokerage": D(150),      # 40 + 20 + 10 + 20 + 40 + 20
                         "stt": D(110),            # 25 + 15 + 10 + 10 + 30 + 20
                         "exchange_txn": D(63),    # 20 + 8 + 5 + 5 + 15 + 10
                         "sebi": D(5),             # 1 + 1 + 0 + 1 + 1 + 1
                         "stamp_duty": D(12),      # 3 + 2 + 1 + 0 + 4 + 2
                         "gst": D(40)}             # 11 + 4 + 4 + 4 + 10 + 7
    assert sum(s.charges.values(), D(0)) == s.trades.costs


def test_per_symbol_and_per_strategy_tables():
    s = summary()
    sbin, infy = s.by_symbol["SBIN"], s.by_symbol["INFY"]
    assert list(s.by_symbol) == ["INFY", "SBIN"] and list(s.by_strategy) == ["mac", "orb"]
    # SBIN: +2,000, +1,500, 0 -> no loss, so no profit factor; expectancy 3,500 / 3 = 1,166.666... -> 1,166.67
    assert (sbin.positions, sbin.wins, sbin.losses, sbin.net_pnl) == (3, 2, 0, D(3500))
    assert sbin.win_rate == 2 / 3 and sbin.profit_factor is None and sbin.average_loss is None
    assert sbin.expectancy == D("1166.67")
    # INFY: -1,000, -3,000 -> profit factor 0 / 4,000 = 0; no win, so no average win
    assert (infy.positions, infy.win_rate, infy.profit_factor, infy.average_win) == (2, 0.0, 0.0, None)
    assert (infy.expectancy, infy.average_loss, infy.costs) == (D("-2000.00"), D("-2000.00"), D(150))
    mac, orb = s.by_strategy["mac"], s.by_strategy["orb"]
    # mac: -1,000, +1,500 -> pf 1,500 / 1,000 = 1.5, expectancy 500 / 2 = 250
    assert (mac.positions, mac.exits, mac.profit_factor, mac.expectancy, mac.win_rate) == (2, 3, 1.5, D(250), 0.5)
    # orb: +2,000, -3,000, 0 -> pf 2,000 / 3,000, expectancy -1,000 / 3 = -333.333... -> -333.33
    assert orb.profit_factor == pytest.approx(2 / 3, abs=1e-15) and orb.expectancy == D("-333.33")


def test_return_drawdown_exposure_and_rates_of_the_run():
    s = summary()
    assert (s.first_day, s.last_day, s.trading_days) == (DAYS[0], DAYS[-1], 5)
    assert (s.ending_capital, s.net_pnl, s.total_return) == (D(99_500), D(-500), -0.005)  # 99,500 / 100,000 - 1
    # 5 trading days = 5/252 of a year: CAGR = 0.995 ** (252 / 5) - 1 = 0.995 ** 50.4 - 1
    assert s.cagr == pytest.approx(0.995 ** 50.4 - 1, rel=1e-12)
    # closes 102,000 101,000 101,000 102,500 99,500: the deepest fall is 102,500 -> 99,500 = 3,000 = 2.9268% of
    # the peak, one close below it, not recovered; the longest stretch below a peak is 2 closes (101,000 twice)
    dd = s.drawdown
    assert (dd.amount, dd.days, dd.longest_days) == (D(3000), 1, 2)
    assert dd.pct == pytest.approx(3000 / 102_500, rel=1e-15)
    assert (dd.peak_date, dd.trough_date, dd.recovery_date) == (DAYS[3], DAYS[4], None)
    assert s.calmar == pytest.approx((0.995 ** 50.4 - 1) / (3000 / 102_500), rel=1e-12)
    # 5 positions x 3,600 s in the market / (5 days x 22,500 s of session) = 18,000 / 112,500 = 0.16
    assert s.exposure == pytest.approx(0.16, abs=1e-15)
    assert s.trades_per_day == 1.0                          # 5 positions / 5 days
    # January ends at 102,500: +2.5% on 100,000; February ends at 99,500: -3,000 / 102,500
    assert s.monthly_returns == {"2025-01": 0.025, "2025-02": pytest.approx(-3000 / 102_500, rel=1e-15)}


# A series whose daily returns are round: 100 -> 101 (+1%) -> 99.99 (-1%) -> 101.9898 (+2%) -> 101.9898 (0%)
ROUND = [(date(2025, 3, 3), D("101")), (date(2025, 3, 4), D("99.99")), (date(2025, 3, 5), D("101.9898")),
         (date(2025, 3, 6), D("101.9898"))]


def test_daily_returns_are_close_to_close_from_the_start():
    assert m.daily_returns(D(100), ROUND) == [0.01, -0.01, 0.02, 0.0]


def test_sharpe_sortino_and_volatility_without_a_risk_free_rate():
    vol, sharpe, sortino = m.ratios([0.01, -0.01, 0.02, 0.0], 0.0)
    # mean = 0.02 / 4 = 0.005; deviations 0.005, -0.015, 0.015, -0.005; squares sum to 0.0005;
    # sample variance 0.0005 / 3; Sharpe = 0.005 / sqrt(0.0005 / 3) * sqrt(252) = sqrt(0.15 * 252) = sqrt(37.8)
    assert sharpe == pytest.approx(math.sqrt(37.8), rel=1e-12)            # 6.1482
    assert vol == pytest.approx(math.sqrt(0.0005 / 3 * 252), rel=1e-12)   # sqrt(0.042) = 0.2049
    # downside: only -0.01 -> sqrt(0.0001 / 4) = 0.005; Sortino = 0.005 / 0.005 * sqrt(252)
    assert sortino == pytest.approx(math.sqrt(252), rel=1e-12)            # 15.8745


def test_sharpe_and_sortino_subtract_the_daily_risk_free_rate():
    _, sharpe, sortino = m.ratios([0.01, -0.01, 0.02, 0.0], 0.0504)
    # 5.04% a year / 252 = 0.0002 a day; excess 0.0098, -0.0102, 0.0198, -0.0002: mean 0.0048, same deviation
    # Sharpe = 0.0048 / sqrt(0.0005 / 3) * sqrt(252) = 0.0048 * sqrt(6,000 * 252) = 0.0048 * sqrt(1,512,000)
    assert sharpe == pytest.approx(0.0048 * math.sqrt(1_512_000), rel=1e-9)   # 5.9022
    # downside sqrt((0.0102^2 + 0.0002^2) / 4) = sqrt(0.00010408 / 4) = sqrt(0.00002602)
    assert sortino == pytest.approx(0.0048 / math.sqrt(0.00002602) * math.sqrt(252), rel=1e-9)   # 14.9378


def test_a_summary_of_the_round_series_agrees_with_its_parts():
    s = m.summarize([], ROUND, D(100), risk_free_rate=0.0, session_seconds=SESSION)
    assert s.sharpe == pytest.approx(math.sqrt(37.8), rel=1e-12)
    # 4 days: CAGR = 1.019898 ** (252 / 4) - 1 = 1.019898 ** 63 - 1
    assert s.cagr == pytest.approx(1.019898 ** 63 - 1, rel=1e-12)
    # peak 101 on day 1, 99.99 on day 2 (1.01 = 1% down), back above on day 3
    dd = s.drawdown
    assert (dd.amount, dd.days, dd.peak_date, dd.trough_date, dd.recovery_date) == (
        D("1.01"), 1, date(2025, 3, 3), date(2025, 3, 4), date(2025, 3, 5))
    assert dd.pct == pytest.approx(0.01, rel=1e-15)
    assert s.calmar == pytest.approx((1.019898 ** 63 - 1) / 0.01, rel=1e-12)


def _days(n: int) -> list[date]:
    return [date(2025, 4, d) for d in range(1, n + 1)]


def test_the_deepest_drawdown_is_by_percent_and_its_duration_counts_closes_below_its_peak():
    closes = [D(x) for x in ("110", "99", "104.5", "100", "110", "88", "90")]
    # first fall: 110 -> 99 = 10%, three closes below 110 (99, 104.5, 100), regained on day 5 (110 = the peak);
    # second: 110 (day 5) -> 88 = 22 = 20%, two closes below (88, 90), not regained
    dd = m.drawdown(D(100), list(zip(_days(7), closes, strict=True)))
    assert (dd.amount, dd.pct, dd.days, dd.longest_days) == (D(22), 0.2, 2, 3)
    assert (dd.peak_date, dd.trough_date, dd.recovery_date) == (date(2025, 4, 5), date(2025, 4, 6), None)
    closes.append(D("110.01"))                 # day 8 above the peak: the 20% drawdown is over, still 2 closes
    dd = m.drawdown(D(100), list(zip(_days(8), closes, strict=True)))
    assert (dd.days, dd.recovery_date) == (2, date(2025, 4, 8))


def test_a_drawdown_from_the_starting_capital_has_no_peak_date():
    # 100 (start) -> 95 -> 90: 10 = 10%, two closes below the start
    dd = m.drawdown(D(100), list(zip(_days(2), [D(95), D(90)], strict=True)))
    assert (dd.amount, dd.pct, dd.days, dd.peak_date, dd.trough_date) == (D(10), 0.1, 2, None, date(2025, 4, 2))


def test_exposure_counts_overlapping_positions_once():
    def pos(day: date, a: time, b: time) -> m.Position:
        return m.Position(1, "X", "s", ist_epoch(day, a), ist_epoch(day, b), 1, D(0), D(0), D(0))
    d1, d2 = date(2025, 4, 1), date(2025, 4, 2)
    ps = [pos(d1, time(9, 30), time(10, 30)), pos(d1, time(10, 0), time(11, 0)),    # together 09:30-11:00: 5,400 s
          pos(d1, time(10, 15), time(10, 45)),                                      # inside them: adds nothing
          pos(d1, time(14, 0), time(14, 30)),                                       # 1,800 s
          pos(d2, time(10, 0), time(12, 30))]                                       # 9,000 s
    # (5,400 + 1,800 + 9,000) / (2 days x 22,500 s) = 16,200 / 45,000 = 0.36
    assert m.exposure(ps, 2, SESSION) == pytest.approx(0.36, abs=1e-15)
    assert m.exposure(ps, 0, SESSION) is None


def test_no_trades_and_flat_equity_give_none_for_what_is_undefined():
    flat = [(d, START) for d in DAYS]
    s = m.summarize([], flat, START, risk_free_rate=0.065, session_seconds=SESSION)
    t = s.trades
    assert (t.positions, t.win_rate, t.profit_factor, t.expectancy, t.average_win, t.average_loss) == (
        0, None, None, None, None, None)
    assert (s.total_return, s.cagr, s.exposure, s.trades_per_day) == (0.0, 0.0, 0.0, 0.0)
    # zero volatility: no Sharpe; every day is below the risk-free rate, so Sortino is defined and negative
    assert s.sharpe is None and s.volatility == 0.0
    assert s.sortino is not None and s.sortino < 0
    assert (s.drawdown.pct, s.drawdown.days, s.calmar) == (0.0, 0, None)
    assert s.charges == {n: D(0) for n in CHARGE_NAMES}
    s0 = m.summarize([], flat, START, risk_free_rate=0.0, session_seconds=SESSION)
    assert (s0.sharpe, s0.sortino) == (None, None)        # no excess return at all: no downside either


def test_an_empty_run_and_a_one_day_run():
    s = m.summarize([], [], START, risk_free_rate=0.065, session_seconds=SESSION)
    assert (s.trading_days, s.first_day, s.cagr, s.exposure, s.trades_per_day, s.sharpe) == (
        0, None, None, None, None, None)
    assert (s.ending_capital, s.total_return, s.monthly_returns) == (START, 0.0, {})
    one = m.summarize(ROWS[:1], [(DAYS[0], D(102_000))], START, risk_free_rate=0.0, session_seconds=SESSION)
    assert (one.sharpe, one.sortino, one.volatility) == (None, None, None)   # one return has no deviation
    assert one.cagr == pytest.approx(1.02 ** 252 - 1, rel=1e-12)


def test_winners_only_have_no_profit_factor_and_ruin_has_cagr_minus_one():
    s = summary(rows=[ROWS[0], ROWS[2], ROWS[3]])
    assert (s.trades.profit_factor, s.trades.average_loss, s.trades.win_rate) == (None, None, 1.0)
    ruined = m.summarize([], [(DAYS[0], D(-5)), (DAYS[1], D(0))], START, risk_free_rate=0.0,
                         session_seconds=SESSION)
    assert ruined.cagr == -1.0
    assert m.daily_returns(START, [(DAYS[0], D(-5)), (DAYS[1], D(0))]) == [-1.00005]   # none after equity <= 0
    # January: 100,000 -> -5 = -100.005%; February's close (5 more lost) has no return on nothing
    assert m.monthly_returns(START, [(DAYS[0], D(-5)), (DAYS[4], D(-10))]) == {"2025-01": -1.00005}
    # one day x20: 20 ** 252 overflows a float, so no CAGR rather than an exception
    assert m.cagr(START, START * 20, 1) is None


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="starting capital"):
        m.summarize([], [], D(0), risk_free_rate=0.0, session_seconds=SESSION)
    with pytest.raises(ValueError, match="ascending"):
        m.summarize([], [(DAYS[1], START), (DAYS[0], START)], START, risk_free_rate=0.0, session_seconds=SESSION)
    with pytest.raises(ValueError, match="ascending"):
        m.summarize([], [(DAYS[0], START), (DAYS[0], START)], START, risk_free_rate=0.0, session_seconds=SESSION)


def test_summary_json_is_strict_and_reads_back_to_the_same_summary():
    for s in (summary(rf=0.065), m.summarize([], [], START, risk_free_rate=0.065, session_seconds=SESSION)):
        text = json.dumps(s.to_dict(), allow_nan=False)
        back = m.Summary.from_dict(json.loads(text))
        assert back == s
    d = summary().to_dict()
    assert d["trades"]["expectancy"] == -100.0 and d["drawdown"]["peak_date"] == "2025-01-09"
    assert d["charges"]["exchange_txn"] == 63.0


def test_rows_read_back_from_the_ledger_agree_with_the_day_report(sqlite_url):
    """trade_log rows as the database returns them (Decimal columns); the figures the one-day report also
    computes (ops.report.build_summary, a separate implementation) agree."""
    from sqlalchemy import select

    from ops.report import build_summary
    from tests.test_ops_status import DAY, PREV, build_db

    def go(s):
        rows = list(s.scalars(select(TradeLog).order_by(TradeLog.id)))
        eq = m.daily_equity(D(1_000_000), rows, [PREV, DAY])
        day_rows = [{c.name: getattr(r, c.name) for c in TradeLog.__table__.columns} for r in rows
                    if r.trade_date == DAY]
        return (m.summarize(rows, eq, D(1_000_000), risk_free_rate=0.065, session_seconds=SESSION), eq,
                build_summary(DAY, day_rows, D(1_005_000), None))

    s, eq, day = build_db(sqlite_url).transaction("read", go)
    # PREV: +5,000 -> 1,005,000; DAY: 960 - 270.5 + 500 - 900 + 10 = +299.5 -> 1,005,299.5
    assert eq == [(PREV, D(1_005_000)), (DAY, D("1005299.5"))]
    assert s.ending_capital == day["ending_capital"] == D("1005299.5")
    assert s.charges["brokerage"] == day["charges"]["brokerage"] == D(175)   # PREV's row has no charges
    assert s.trades.costs == day["costs"] == D(180)
    # positions: 99 +5,000; 1 +960; 2 = -270.5 - 900 = -1,170.5 (two exits); 3 +500; 4 +10
    t = s.trades
    assert (t.positions, t.exits, t.wins, t.losses, t.win_rate) == (5, 6, 4, 1, 0.8)
    assert t.profit_factor == pytest.approx(6470 / 1170.5, rel=1e-15)   # (5,000 + 960 + 500 + 10) / 1,170.5
    assert t.expectancy == D("1059.90")                                 # 5,299.5 / 5
    assert s.by_symbol["INFY"].exits == 2 and s.by_symbol["INFY"].net_pnl == D("-1170.5")

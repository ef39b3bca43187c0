"""Index signals traded as options by the whole daemon: driver.py, a worker, the TradeManager and a real paper broker
process on a replayed index day (the synthetic feed's NIFTY). CE for a long view, PE for a short one, bought in
whole lots on NFO, charged at the option rates, flat by the square-off, and the same day replayed twice trades
identically; signals_only records the contract it would have bought and why."""
from __future__ import annotations

import secrets
from datetime import date
from decimal import Decimal
from pathlib import Path

from core.costs import DEFAULT_RATES, CostTable
from gateway.results import Ok
from tests.daemon_harness import DAY, rows, run_daemon, short_day_config
from tests.paper_fixtures import Broker
from tests.test_daemon_replay import SESSION_EPOCH

NIFTY = {"symbol": "NIFTY", "fyers": "NSE:NIFTY50-INDEX", "exchange": "NSE_INDEX", "strategy": "mac",
         "instrument": "options", "options": {"expiry": "nearest_weekly", "offset": "ATM", "lots": 2, "stop": "20%",
                                              "target": "30%", "check_every_s": 5}}


def options_day(d: Path, **overrides) -> Path:
    return short_day_config(d, symbols=[NIFTY], **overrides)


def orders(db_url: str) -> list[tuple]:
    return rows(db_url, "SELECT symbol, exchange, side, purpose, quantity, status, filled_quantity, average_price, "
                        "decision_time FROM orders ORDER BY id")


def trades(db_url: str) -> list[tuple]:
    return rows(db_url, "SELECT symbol, side, quantity, entry_time, entry_price, exit_time, exit_price, gross_pnl, "
                        "costs, net_pnl, exit_reason FROM trade_log ORDER BY id")


def run_paper(d: Path) -> tuple[str, Broker]:
    d.mkdir(parents=True, exist_ok=True)
    b = Broker(d / "broker.sqlite", secrets.token_hex(16), args=["--order-rate", "10"],
               log_file=d / "broker.log").start()
    run = run_daemon(options_day(d), f"sqlite:///{d / 'd.sqlite'}", {"HOST_SERVER": b.url, "APP_KEY": b.key})
    assert run.returncode == 0, run.output[-3000:]
    assert "Traceback" not in run.output
    return run.db_url, b


def test_an_index_day_is_traded_as_calls_and_puts_booked_with_premium_and_charges(tmp_path):
    db_url, b = run_paper(tmp_path)
    try:
        o = orders(db_url)
        entries = [r for r in o if r[3] == "entry"]
        assert entries and all(r[1] == "NFO" and r[2] == "BUY" and r[5] == "EXECUTED" for r in entries), o
        kinds = {r[0][-2:] for r in entries}
        assert kinds == {"CE", "PE"}, o  # the synthetic day's crossings go both ways
        assert all(r[0].startswith("NIFTY23NOV26") for r in o)  # the nearest weekly on 2026-11-20
        lot = entries[0][4] // 2
        assert all(r[4] == 2 * lot for r in o)  # two whole lots in, the same out
        # every contract bought was sold: at its premium stop or target, by the index's exit signal or at the
        # square-off, on NFO
        exits = [r for r in o if r[3] != "entry"]
        assert all(r[1] == "NFO" and r[2] == "SELL" and r[5] == "EXECUTED" for r in exits)
        assert sorted(r[0] for r in exits) == sorted(r[0] for r in entries)
        assert rows(db_url, "SELECT COUNT(*) FROM active_trades")[0][0] == 0
        assert rows(db_url, "SELECT COUNT(*) FROM trade_log WHERE exit_time > :t", t=SESSION_EPOCH["10:40"])[0][0] == 0
        # the books: premium paid and received, each order charged at the option rates of the day
        table, day = CostTable(DEFAULT_RATES), date.fromisoformat(DAY)
        t = trades(db_url)
        assert len(t) == len(entries)
        reasons = {r[10] for r in t}
        assert reasons & {"premium_stop", "premium_target"} and reasons <= {
            "premium_stop", "premium_target", "signal", "square_off", "end_of_day"}, reasons
        for sym, side, qty, _et, entry, _xt, exit_, gross, costs, _net, _why in t:
            assert side == "long"
            assert Decimal(str(gross)).quantize(Decimal("0.01")) == ((Decimal(str(exit_)) - Decimal(str(entry)))
                                                                     * qty).quantize(Decimal("0.01"))
            owed = (table.order(True, Decimal(str(entry)), qty, day, option=True)
                    + table.order(False, Decimal(str(exit_)), qty, day, option=True))
            assert Decimal(str(costs)).quantize(Decimal("0.01")) == owed.total, sym
            assert owed.stt > 0 and owed.stt == table.order(False, Decimal(str(exit_)), qty, day, option=True).stt
        (start, capital), = rows(db_url, "SELECT starting_capital, capital FROM capital_log ORDER BY id DESC LIMIT 1")
        net_sum = sum(Decimal(str(r[9])) for r in t)
        assert (Decimal(str(capital)) - Decimal(str(start))).quantize(Decimal("0.01")) == net_sum.quantize(
            Decimal("0.01"))
        # the broker agrees: flat, and exactly our orders
        gw = b.gateway()
        book, ob = gw.positionbook(), gw.orderbook()
        assert isinstance(book, Ok) and isinstance(ob, Ok)
        assert [p for p in book.value if p.quantity] == []
        ours = [r[0] for r in rows(db_url, "SELECT broker_order_id FROM orders WHERE broker_order_id IS NOT NULL")]
        assert sorted(x.orderid for x in ob.value) == sorted(ours)
        # paper mode records the contract and why on the entry's signal
        notes = [n for (n,) in rows(db_url, "SELECT outcome_note FROM stock_signals WHERE type = 'entry'")]
        assert notes and all("NIFTY23NOV26" in n and "strike ATM" in n and "expiry 2026-11-23" in n for n in notes)
    finally:
        b.stop()


def test_the_same_index_day_replayed_twice_trades_the_same_options(tmp_path):
    results = []
    for i in range(2):
        db_url, b = run_paper(tmp_path / f"run{i}")
        b.stop()
        results.append((orders(db_url), trades(db_url)))
    assert results[0][0] and results[0] == results[1]


def test_signals_only_records_the_contract_it_would_have_bought_and_why(tmp_path):
    b = Broker(tmp_path / "broker.sqlite", secrets.token_hex(16), log_file=tmp_path / "broker.log").start()
    try:  # a replay prices the contracts at the paper broker (quotes and clock from the replay), sends it nothing
        run = run_daemon(options_day(tmp_path, mode="signals_only"), f"sqlite:///{tmp_path / 'd.sqlite'}",
                         {"HOST_SERVER": b.url, "APP_KEY": b.key})
        assert run.returncode == 0, run.output[-3000:]
        ob = b.gateway().orderbook()
        assert isinstance(ob, Ok) and ob.value == []
    finally:
        b.stop()
    o = rows(run.db_url, "SELECT symbol, exchange, quantity, failure_tag, failure_reason FROM orders "
                         "WHERE purpose = 'entry'")
    assert o and all(r[3] == "SIGNALS_ONLY" and r[1] == "NFO" and r[0].startswith("NIFTY23NOV26") for r in o), o
    assert {r[0][-2:] for r in o} == {"CE", "PE"}
    assert all("strike ATM" in r[4] and "2 lot(s)" in r[4] for r in o)
    notes = rows(run.db_url, "SELECT outcome, outcome_note FROM stock_signals WHERE type = 'entry'")
    assert notes and all(outcome == "executed" and n.startswith("signals_only: NIFTY23NOV26") and "expiry 2026-11-23"
                         in n for outcome, n in notes), notes


def test_an_entry_above_the_freeze_quantity_goes_as_child_orders_each_recorded_and_booked(tmp_path):
    d = tmp_path
    b = Broker(d / "broker.sqlite", secrets.token_hex(16), args=["--order-rate", "10"],
               log_file=d / "broker.log").start()
    try:
        big = {**NIFTY, "options": {**NIFTY["options"], "lots": 30}}  # NIFTY: lot 65, freeze 1800 = 27 lots
        run = run_daemon(short_day_config(d, symbols=[big]), f"sqlite:///{d / 'd.sqlite'}",
                         {"HOST_SERVER": b.url, "APP_KEY": b.key})
        assert run.returncode == 0, run.output[-3000:]
        o = orders(run.db_url)
        entries = [r for r in o if r[3] == "entry"]
        assert entries, o
        by_time: dict[int, list[int]] = {}
        for r in entries:
            by_time.setdefault(r[8], []).append(r[4])
        assert all(sorted(q) == [195, 1755] for q in by_time.values()), by_time  # 27 lots + 3 lots
        assert all(r[5] == "EXECUTED" for r in o) and all(r[4] <= 1800 for r in o)
        assert rows(run.db_url, "SELECT COUNT(*) FROM active_trades")[0][0] == 0
        assert len(trades(run.db_url)) == len(entries)  # each child is its own trade, each sold
        # one outcome per signal, written once both children were final
        notes = [n for (n,) in rows(run.db_url, "SELECT outcome_note FROM stock_signals WHERE type = 'entry'")]
        assert len(notes) == len(by_time) and all("2 order(s)" in n for n in notes), notes
    finally:
        b.stop()

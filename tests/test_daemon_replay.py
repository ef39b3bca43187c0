"""The whole daemon on a replayed day: driver, eight workers, strategies, TradeManager and a real paper
broker process. Checks the acceptance rules of the tick-pipeline and trade-execution issues."""
from __future__ import annotations

import secrets
from collections import defaultdict
from datetime import date
from datetime import time as dtime
from decimal import Decimal

import pytest

from core.clock import ist_epoch
from core.costs import DEFAULT_RATES, CostTable
from gateway.openalgo import OpenAlgoGateway
from gateway.results import Ok
from tests.daemon_harness import DAY, rows, run_daemon, short_day_config
from tests.paper_fixtures import Broker


def session_epoch(hm: str) -> int:
    """Epoch seconds of HH:MM IST on the replayed day."""
    return int(ist_epoch(date.fromisoformat(DAY), dtime(int(hm[:2]), int(hm[3:]))))


# the short day (daemon_harness.short_day_config): open, entry cut-off, square-off, close
SESSION_EPOCH = {hm: session_epoch(hm) for hm in ("09:15", "10:30", "10:40", "10:45")}


@pytest.fixture
def paper(tmp_path):
    b = Broker(tmp_path / "broker.sqlite", secrets.token_hex(16), args=["--order-rate", "10"],
               log_file=tmp_path / "broker.log").start()
    yield b
    b.stop()


def env_for(b: Broker) -> dict[str, str]:
    return {"HOST_SERVER": b.url, "APP_KEY": b.key}


def trades(db_url: str) -> list[tuple]:
    return rows(db_url, "SELECT symbol, side, trade_type, quantity, entry_time, entry_price, exit_time, exit_price, "
                        "net_pnl, exit_reason FROM trade_log ORDER BY exit_time, symbol, trade_id, id")


def check_books(db_url: str, b: Broker) -> None:
    """Every rupee accounted for, and the database agreeing with the broker's own books."""
    # every signal has an outcome
    assert rows(db_url, "SELECT COUNT(*) FROM stock_signals WHERE outcome IS NULL")[0][0] == 0
    # every EXECUTED order carries the broker's fill: fills add up to the order's filled quantity
    bad = rows(db_url, "SELECT o.id, o.quantity, o.filled_quantity, COALESCE(SUM(f.quantity), 0) FROM orders o "
                       "LEFT JOIN fills f ON f.order_id = o.id WHERE o.status = 'EXECUTED' "
                       "GROUP BY o.id, o.quantity, o.filled_quantity "
                       "HAVING o.filled_quantity != o.quantity OR COALESCE(SUM(f.quantity), 0) != o.quantity")
    assert bad == []
    # final capital = starting capital + realized P&L net of costs
    (start, capital), = rows(db_url, "SELECT starting_capital, capital FROM capital_log ORDER BY id DESC LIMIT 1")
    net = rows(db_url, "SELECT COALESCE(SUM(net_pnl), 0) FROM trade_log")[0][0]
    cent = Decimal("0.01")
    assert Decimal(str(capital)).quantize(cent) == (Decimal(str(start)) + Decimal(str(net))).quantize(cent)
    # every closed trade paid exactly its orders' charges: per order, however many fills it took
    table, day = CostTable(DEFAULT_RATES), date.fromisoformat(DAY)
    owed: defaultdict = defaultdict(Decimal)
    for tid, side, qty, avg in rows(db_url, "SELECT trade_id, side, filled_quantity, average_price FROM orders "
                                            "WHERE filled_quantity > 0 AND trade_id IS NOT NULL"):
        owed[tid] += table.order(side == "BUY", Decimal(str(avg)), qty, day).total
    paid: defaultdict = defaultdict(Decimal)
    for tid, costs in rows(db_url, "SELECT trade_id, costs FROM trade_log WHERE trade_id NOT IN "
                                   "(SELECT trade_id FROM active_trades)"):
        paid[tid] += Decimal(str(costs)).quantize(Decimal("0.01"))
    assert paid == {tid: owed[tid] for tid in paid}
    # the database's open positions equal the broker's positionbook
    gw = OpenAlgoGateway(b.url, b.key)
    book = gw.positionbook()
    assert isinstance(book, Ok)
    broker_open = {(p.symbol, p.quantity) for p in book.value if p.quantity}
    db_open = {(s, q if side == "long" else -q) for s, side, q in
               rows(db_url, "SELECT symbol, side, remaining_quantity FROM active_trades")}
    assert broker_open == db_open
    # the broker got exactly the orders we recorded as sent: no duplicate for any signal
    ob = gw.orderbook()
    assert isinstance(ob, Ok)
    ours = [r[0] for r in rows(db_url, "SELECT broker_order_id FROM orders WHERE broker_order_id IS NOT NULL")]
    assert len(ours) == len(set(ours))
    assert sorted(o.orderid for o in ob.value) == sorted(ours)
    assert rows(db_url, "SELECT client_order_id, COUNT(*) FROM orders GROUP BY client_order_id "
                        "HAVING COUNT(*) > 1") == []
    # no symbol entered twice at once
    spans = defaultdict(list)
    for _tid, sym, entry, exit_ in rows(db_url, "SELECT trade_id, symbol, MIN(entry_time), MAX(exit_time) "
                                                "FROM trade_log "
                                                "WHERE trade_id NOT IN (SELECT trade_id FROM active_trades) "
                                                "GROUP BY trade_id, symbol"):
        spans[sym].append((entry, exit_))
    for sym, s in spans.items():
        s.sort()
        assert all(b_[0] >= a[1] for a, b_ in zip(s, s[1:], strict=False)), f"{sym} overlapping trades {s}"


def check_session_rules(db_url: str, start: str = "09:15") -> None:
    """The short day's session rules: no entry after the cut-off, nothing outside the session (which begins at
    `start`, a replay's --start), every trade closed by the square-off time and nothing left open."""
    late = rows(db_url, "SELECT COUNT(*) FROM orders WHERE purpose = 'entry' AND status != 'FAILED' "
                        "AND decision_time >= :t", t=SESSION_EPOCH["10:30"])
    assert late[0][0] == 0, "an entry order went out at or after the entry cut-off"
    assert rows(db_url, "SELECT COUNT(*) FROM orders WHERE status != 'FAILED' AND "
                        "(decision_time < :o OR decision_time > :c)", o=session_epoch(start),
                c=SESSION_EPOCH["10:45"])[0][0] == 0, "an order went out outside the session"
    assert rows(db_url, "SELECT COUNT(*) FROM trade_log WHERE exit_time > :t", t=SESSION_EPOCH["10:40"])[0][0] == 0
    assert rows(db_url, "SELECT COUNT(*) FROM active_trades")[0][0] == 0


def test_replayed_day_trades_and_every_rupee_is_accounted_for(tmp_path, paper):
    cfg = short_day_config(tmp_path)
    token = "eyJfyers." + secrets.token_hex(12) + ".sig"
    run = run_daemon(cfg, f"sqlite:///{tmp_path / 'd.sqlite'}", {**env_for(paper), "FYERS_ACCESS_TOKEN": token})
    assert run.returncode == 0, run.output[-3000:]
    assert "Traceback" not in run.output
    t = trades(run.db_url)
    assert len(t) >= 4, "the short day should produce trades"
    check_books(run.db_url, paper)
    # flat at the end, and nothing traded outside the session
    assert rows(run.db_url, "SELECT COUNT(*) FROM active_trades")[0][0] == 0
    assert "replay finished: closing the session" in run.output
    # secrets never reach the output, the logs, the database or the reports
    files = [p for p in tmp_path.rglob("*") if p.is_file() and "broker" not in p.name]
    assert any(p.suffix == ".log" for p in files) and any(p.name == "d.sqlite" for p in files)
    for secret in (paper.key, token):
        assert secret not in run.output
        for p in files:
            assert secret.encode() not in p.read_bytes(), f"secret found in {p}"
    # session rules: no entry after the cut-off, nothing outside the session, flat by the square-off time
    check_session_rules(run.db_url)


def test_same_day_replayed_twice_trades_identically(tmp_path):
    results = []
    for i in range(2):
        d = tmp_path / f"run{i}"
        d.mkdir()
        b = Broker(d / "broker.sqlite", secrets.token_hex(16), args=["--order-rate", "10"]).start()
        try:
            run = run_daemon(short_day_config(d), f"sqlite:///{d / 'd.sqlite'}", env_for(b))
            assert run.returncode == 0, run.output[-3000:]
            results.append(trades(run.db_url))
        finally:
            b.stop()
    assert results[0] and results[0] == results[1]


def test_global_loss_cap_halts_entries_but_not_exits(tmp_path, paper):
    cfg = short_day_config(tmp_path, risk={"global_max_loss_pct": -0.01, "risk_per_trade": 0.02})
    run = run_daemon(cfg, f"sqlite:///{tmp_path / 'd.sqlite'}", env_for(paper))
    assert run.returncode == 0, run.output[-3000:]
    assert "global loss cap breached" in run.output and "the strategies of flat symbols stop" in run.output
    # the halt's flatten is the first order without a signal; no entry was sent after it (an entry signalled
    # before the workers heard of the halt is refused as halted)
    halt_at = rows(run.db_url, "SELECT MIN(decision_time) FROM orders WHERE signal_id IS NULL")[0][0]
    assert halt_at is not None
    assert rows(run.db_url, "SELECT COUNT(*) FROM orders WHERE purpose = 'entry' AND broker_order_id IS NOT NULL "
                            "AND decision_time > :t", t=halt_at)[0][0] == 0
    # exits after the halt still went out and filled: the day ends flat
    assert rows(run.db_url, "SELECT COUNT(*) FROM active_trades")[0][0] == 0
    check_books(run.db_url, paper)


def test_signals_only_records_orders_it_would_send_without_a_broker(tmp_path):
    cfg = short_day_config(tmp_path, mode="signals_only")
    run = run_daemon(cfg, f"sqlite:///{tmp_path / 'd.sqlite'}", {"HOST_SERVER": "http://127.0.0.1:9"})
    assert run.returncode == 0, run.output[-3000:]
    tags = dict(rows(run.db_url, "SELECT failure_tag, COUNT(*) FROM orders GROUP BY failure_tag"))
    assert tags.get("SIGNALS_ONLY", 0) > 0
    assert rows(run.db_url, "SELECT COUNT(*) FROM orders WHERE broker_order_id IS NOT NULL")[0][0] == 0
    assert rows(run.db_url, "SELECT COUNT(*) FROM stock_signals WHERE outcome IS NULL")[0][0] == 0


@pytest.mark.parametrize("faults", [
    ["--reject-rate", "0.1", "--error500-rate", "0.1", "--lost-response-rate", "0.1", "--timeout-rate", "0.1",
     "--timeout-sleep-s", "2.5", "--seed", "3"],
    ["--timeout-rate", "0.2", "--timeout-placed", "--timeout-sleep-s", "2.5", "--seed", "4"],
    ["--open-delay-s", "0.5", "--partial-fills", "3", "--partial-fill-span-s", "0.6", "--seed", "5"],
], ids=["rejections-500s-lost-responses-timeouts", "timeouts-after-placing", "delayed-and-partial-fills"])
def test_broker_faults_leave_no_duplicate_and_no_unknown_position(tmp_path, faults):
    b = Broker(tmp_path / "broker.sqlite", secrets.token_hex(16), args=["--order-rate", "10", *faults],
               log_file=tmp_path / "broker.log").start()
    try:
        cfg = short_day_config(tmp_path, orders={"request_timeout_s": 1.5, "poll_interval_s": 0.2})
        run = run_daemon(cfg, f"sqlite:///{tmp_path / 'd.sqlite'}", env_for(b), timeout=300)
        assert run.returncode == 0, run.output[-3000:]
        assert "Traceback" not in run.output
        check_books(run.db_url, b)
        tags = dict(rows(run.db_url, "SELECT COALESCE(failure_tag, status), COUNT(*) FROM orders GROUP BY 1"))
        assert tags.get("EXECUTED", 0) > 0, tags
        if "--error500-rate" in faults:  # the faults really happened, and ended in known states
            assert any(t.startswith("BROKER_") for t in tags), tags
    finally:
        b.stop()


def test_an_exit_with_no_position_is_recorded_as_ignored(tmp_path):
    """The outcome of a signal decided without any order is written in the same unit as the signal."""
    import db as dbm
    from core.config import Secrets, load_config
    from core.enums import PositionSide, SignalType
    from core.types import Signal
    from trade_manager import TradeManager

    cfg = load_config(short_day_config(tmp_path, mode="signals_only"))
    url = f"sqlite:///{tmp_path / 'u.sqlite'}"
    h = dbm.DBHandler(dbm.initialize_database(url))
    sec = Secrets(app_key=None, host_server="http://127.0.0.1:9", live_data=False, database_url=url,
                  fyers_app_id=None, fyers_access_token=None)
    tm = TradeManager(cfg, sec, h, None, clock=None, replay=True, day=date.fromisoformat(DAY))
    tm.rm.load()
    told = []
    tm.set_notify(lambda sym, ctl: told.append(ctl))
    tm.process_signal(Signal(symbol="LT", time=SESSION_EPOCH["09:15"] + 600, price=1400.0, type=SignalType.EXIT,
                             current_position=PositionSide.SHORT, strategy="mac"))
    assert rows(url, "SELECT outcome, outcome_note FROM stock_signals") == [("ignored", "no position")]
    assert [o.status for o in told] == ["ignored"]

"""Any sequence of broker answers leaves the ledger consistent (issue 14): the real TradeManager, RiskManager
and Ledger on a real SQLite database, the broker an in-process fake whose answers the test orders.

After every event: capital = start + realized gross - charges (trade_log and capital_log agree), no quantity
is negative, each order's Fill rows add up to its filled quantity and no cumulative reading is applied twice,
and the open position is the entry's fills less the exits' fills."""
from __future__ import annotations

import tempfile
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import db
from core.enums import SignalType, TradingState
from execution.broker_io import Placed, StatusSeen
from gateway.results import Accepted, Ok
from tests.db_rows import select_rows
from tests.fake_broker import info, paper_trade_manager, signal

# a broker's fills of one order: (quantity share in thousandths, price offset in paise)
FILLS = st.lists(st.tuples(st.integers(1, 1000), st.integers(-300, 300)), min_size=0, max_size=4)
# how the readings of those fills reach the daemon: 0 as they are, 1 repeated, 2 a stale earlier one after it
ECHOES = st.lists(st.integers(0, 2), min_size=8, max_size=8)


def readings(qty: int, fills: list[tuple[int, int]], echoes: list[int], base: float) -> list[tuple[int, float]]:
    """Cumulative (filled, average price) readings as a broker reports them, with repeats and stale ones."""
    out: list[tuple[int, float]] = []
    done, value = 0, Decimal(0)
    for i, (share, paise) in enumerate(fills):
        q = min(qty - done, max(1, qty * share // 1000))
        if q <= 0:
            break
        done += q
        value += q * (Decimal(str(base)) + Decimal(paise) / 100)
        out.append((done, float((value / done).quantize(Decimal("0.01")))))
        echo = echoes[i % len(echoes)]
        if echo == 1:
            out.append(out[-1])
        elif echo == 2 and len(out) > 1:
            out.append(out[-2])
    return out


def check_books(tm, h: db.DBHandler) -> None:
    ledger = tm.ledger
    exits = select_rows(h, db.TradeLog)
    gross = sum((r.gross_pnl for r in exits), Decimal(0))
    costs = sum((r.costs for r in exits), Decimal(0))
    net = sum((r.net_pnl for r in exits), Decimal(0))
    assert ledger.capital == ledger.start_capital + gross - costs == ledger.start_capital + net
    last = max(select_rows(h, db.CapitalLog), key=lambda r: r.id)
    assert last.capital == ledger.capital
    assert ledger.reserved.keys() == {p.order_id for p in tm.pending.values() if p.purpose.value == "entry"}
    for oid, filled in h.execute_sql("SELECT id, filled_quantity FROM orders"):
        cums = [r[0] for r in h.execute_sql("SELECT cumulative_quantity FROM fills WHERE order_id = :o ORDER BY id",
                                            {"o": oid})]
        assert cums == sorted(set(cums)), "a fill applied twice or out of order"
        total = h.execute_sql("SELECT COALESCE(SUM(quantity), 0) FROM fills WHERE order_id = :o", {"o": oid})[0][0]
        assert total == filled == (cums[-1] if cums else 0)
    rows = {r[0]: r[1] for r in h.execute_sql("SELECT trade_id, remaining_quantity FROM active_trades")}
    assert rows == {t.trade_id: t.remaining for t in ledger.trades.values()}
    for t in ledger.trades.values():
        assert t.remaining > 0
        entry = h.execute_sql("SELECT filled_quantity FROM orders WHERE purpose = 'entry' AND trade_id = :t",
                              {"t": t.trade_id})[0][0]
        out = h.execute_sql("SELECT COALESCE(SUM(quantity), 0) FROM trade_log WHERE trade_id = :t",
                            {"t": t.trade_id})[0][0]
        assert t.remaining == entry - out == t.quantity - out


def drive(tm, h, order_id: int, broker_id: str, qty: int, seen: list[tuple[int, float]], cancel: bool) -> None:
    """The broker's answers to one order: the acknowledgement, the readings, then its final status."""
    tm.io.events.put(Placed(order_id, Accepted(broker_id)))
    tm.poll()
    check_books(tm, h)
    for filled, avg in seen:
        tm.io.events.put(StatusSeen(order_id, Ok(info(broker_id, "open", filled, avg, quantity=qty), {})))
        tm.poll()
        check_books(tm, h)
    top = max([f for f, _ in seen], default=0)
    last_avg = next((a for f, a in reversed(seen) if f == top), 0.0)
    status = "cancelled" if cancel or top < qty else "complete"
    tm.io.events.put(StatusSeen(order_id, Ok(info(broker_id, status, top, last_avg, quantity=qty), {})))
    tm.poll()
    check_books(tm, h)
    assert order_id not in tm.pending


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])  # shrinking a daemon run takes minutes
@given(entry_fills=FILLS, exit_fills=FILLS, echoes=ECHOES, cancel_entry=st.booleans(), cancel_exit=st.booleans())
def test_any_broker_answers_leave_the_books_consistent(entry_fills, exit_fills, echoes, cancel_entry, cancel_exit):
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        url = f"sqlite:///{tmp / 'p.sqlite'}"
        tm = paper_trade_manager(tmp, url)
        h = tm.db
        try:
            tm.rm.set_state(TradingState.ACTIVE, "test")
            tm.process_signal(signal(SignalType.ENTRY))
            (p,) = tm.pending.values()
            drive(tm, h, p.order_id, "E1", p.quantity, readings(p.quantity, entry_fills, echoes, 600.0), cancel_entry)
            trade = tm.ledger.trade_for("SBIN")
            if trade is None:
                assert not entry_fills and tm.ledger.capital == tm.ledger.start_capital
                return
            tm.process_signal(signal(SignalType.EXIT, minute=5))
            (x,) = tm.pending.values()
            assert x.quantity == trade.remaining
            drive(tm, h, x.order_id, "X1", x.quantity, readings(x.quantity, exit_fills, echoes[::-1], 601.0),
                  cancel_exit)
            if tm.ledger.trade_for("SBIN") is None:  # closed: every charge of both orders is in the capital
                entry_fill = h.execute_sql("SELECT filled_quantity FROM orders WHERE id = :o",
                                           {"o": p.order_id})[0][0]
                assert h.execute_sql("SELECT SUM(quantity) FROM trade_log")[0][0] == entry_fill
        finally:
            tm.stop()
            db.dispose_engines()

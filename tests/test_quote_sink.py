"""The worker's QuoteSink against a real paper broker: a batch the broker refuses as malformed is dropped and
counted, never retried (retrying held the worker's watermark, so the replay froze); a tick with a NaN side
value still gives a sendable quote."""
from __future__ import annotations

import math

from core.types import Tick
from tests.paper_fixtures import ORDER, T, broker, broker_proc, status  # noqa: F401 - fixtures
from worker import QuoteSink


def tick(ltp: float, **kw: float) -> Tick:
    return Tick(**{"symbol": "NSE:SBIN-EQ", "ltp": ltp, "bid_price": ltp - 0.5, "ask_price": ltp + 0.5, **kw})


def test_a_batch_refused_as_malformed_is_dropped_counted_and_never_holds_the_watermark(broker):
    sink = QuoteSink(broker.url, broker.key, "NSE")
    sink.rows.append(["SBIN", "NSE", int(T(10)), math.nan, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0])  # cannot be JSON
    sink.first_pending = (T(10), 7)
    sink.flush(force=True)
    assert sink.rows == [] and sink.refused == 1 and sink.refused_batches == 1
    assert sink.cap() == (math.inf, math.inf)  # nothing left to wait for
    sink.add("SBIN", tick(500.0), T(10), 8)
    sink.flush(force=True)
    assert sink.rows == [] and sink.failures == 0 and sink.cap() == (math.inf, math.inf)
    buy = broker.post("placeorder", ORDER).json()
    assert status(broker, buy["orderid"])["average_price"] == 500.5


def test_nan_or_negative_side_values_are_sent_as_none(broker):
    sink = QuoteSink(broker.url, broker.key, "NSE")
    sink.add("SBIN", tick(500.0, bid_price=math.nan, ask_price=-1.0, high_price=math.inf), T(10), 1)
    sink.flush(force=True)
    assert sink.rows == [] and sink.refused == 0 and sink.failures == 0
    buy = broker.post("placeorder", ORDER).json()
    assert status(broker, buy["orderid"])["average_price"] == 500.0  # no ask: the LTP


def test_an_index_goes_to_the_broker_under_its_own_exchange(broker):
    sink = QuoteSink(broker.url, broker.key, "NSE", {"NIFTY": "NSE_INDEX"})
    sink.add("NIFTY", Tick(symbol="NSE:NIFTY50-INDEX", ltp=26012.35), T(10), 1)
    sink.add("SBIN", tick(500.0), T(10), 2)
    assert [r[:2] for r in sink.rows] == [["NIFTY", "NSE_INDEX"], ["SBIN", "NSE"]]
    sink.flush(force=True)
    assert sink.rows == [] and sink.refused == 0
    broker.admin().set_clock(T(10))
    chain = broker.post("optionchain", {"underlying": "NIFTY", "exchange": "NSE_INDEX", "expiry_date": "23NOV26",
                                        "strike_count": 1}).json()
    assert chain["status"] == "success" and chain["underlying_ltp"] == 26012.35

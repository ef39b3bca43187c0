"""A Signal has one definition and three forms, each mapped once (core.types.Signal): the StockSignals row,
a strategy's JSON-safe saved state, and the msgpack wire from a worker to the driver. Any signal comes back
from each exactly (same values, ints still ints), as far as the form keeps it: the row does not keep forced,
origin or extra."""
from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from core.enums import PositionSide, SignalType
from core.types import Signal
from db import StockSignal, initialize_database, setup
from pipeline import messages as m

T0 = 1_795_140_900  # 2026-11-20 09:15 IST

texts = st.text(min_size=1, max_size=24)
prices = st.one_of(st.integers(1, 10**6), st.floats(0.01, 1e6, allow_nan=False, allow_infinity=False))
maybe_prices = st.none() | prices
numbers = st.one_of(st.integers(-10**9, 10**9), st.floats(allow_nan=False, allow_infinity=False))
EXAMPLES = settings(max_examples=200, deadline=None, derandomize=True)  # the first row builds SQLAlchemy's mappers


@st.composite
def signals(draw: st.DrawFn, row_safe: bool = False) -> Signal:
    """Any signal a strategy, the worker or the TradeManager can make; row_safe: only what the row keeps,
    with the numbers its columns hold (time a whole second, prices floats)."""
    time = draw(st.integers(T0, T0 + 86_400) if row_safe else
                st.integers(T0, T0 + 86_400) | st.floats(T0, T0 + 86_400, allow_nan=False))
    sig = Signal(
        symbol=draw(texts), time=time, price=draw(prices), type=draw(st.sampled_from(SignalType)),
        current_position=draw(st.sampled_from(PositionSide)), strategy=draw(texts),
        stop_loss=draw(maybe_prices), take_profit_price=draw(maybe_prices), position_size=draw(st.integers(0, 10**6)),
        close_fraction=draw(st.floats(0.01, 1.0) | st.just(1)), note=draw(st.text(max_size=80)),
        attempt_count=draw(st.integers(1, 50)))
    if row_safe:
        return sig.replace(price=float(sig.price))
    return sig.replace(forced=draw(st.booleans()), origin_id=draw(st.none() | texts),
                       origin_type=draw(st.none() | st.sampled_from(SignalType)),
                       extra=draw(st.dictionaries(texts, numbers, max_size=3)))


@EXAMPLES
@given(signals())
def test_a_signal_comes_back_exactly_from_its_saved_state_even_through_json(sig):
    state = sig.to_state()
    assert json.loads(json.dumps(state)) == state  # JSON-safe: enums as their values, nothing else
    for back in (Signal.from_state(state), Signal.from_state(json.loads(json.dumps(state)))):
        assert repr(back) == repr(sig) and back.signal_id == sig.signal_id


@EXAMPLES
@given(signals(), st.floats(0, 1e4, allow_nan=False), st.booleans(), st.integers(0, 2**40))
def test_a_signal_comes_back_exactly_from_its_event_pipe(sig, latency_ms, held, pos):
    ev = m.SignalRaised(3, sig, latency_ms, held, pos)
    back = m.decode_event(m.encode_event(ev))
    assert repr(back) == repr(ev) and back.signal.signal_id == sig.signal_id


@EXAMPLES
@given(signals(row_safe=True))
def test_a_signal_comes_back_from_its_row(sig):
    row = StockSignal(**sig.to_row())
    assert row.signal_id == sig.signal_id
    assert Signal.from_row(row) == sig


@EXAMPLES
@given(signals())
def test_the_row_keeps_what_the_reconciler_needs_and_nothing_of_forced_origin_or_extra(sig):
    back = Signal.from_row(StockSignal(**sig.to_row()))
    assert back == sig.replace(time=int(sig.time), price=float(sig.price), forced=False, origin_id=None,
                               origin_type=None, extra={})


@settings(max_examples=30, deadline=None, derandomize=True)
@given(st.lists(signals(row_safe=True), min_size=1, max_size=5))
def test_a_signal_comes_back_from_its_row_in_the_database(tmp_path_factory, sigs):
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'signals.sqlite'}"
    initialize_database(url)
    _, session = setup(url)
    with session.begin() as s:
        s.add_all(StockSignal(**sig.to_row()) for sig in sigs)
    with session() as s:
        back = [Signal.from_row(r) for r in s.scalars(select(StockSignal).order_by(StockSignal.id))]
    assert back == sigs


def test_a_rewritten_signal_is_answered_under_the_id_and_type_the_worker_emitted():
    entry = Signal(symbol="SBIN", time=T0, price=600, type=SignalType.ENTRY, current_position=PositionSide.LONG,
                   strategy="orb")
    assert (entry.emitted_id, entry.emitted_type) == (entry.signal_id, SignalType.ENTRY)
    forced = entry.replace(type=SignalType.EXIT, forced=True, origin_id=entry.signal_id, origin_type=entry.type)
    assert forced.signal_id != entry.signal_id
    assert (forced.emitted_id, forced.emitted_type) == (entry.signal_id, SignalType.ENTRY)


@pytest.mark.parametrize("change", [{"type": "buy"}, {"price": "600"}, {"extra": {"atr": "wide"}}, {"time": None}])
def test_saved_state_that_is_no_signal_is_refused_as_a_value_error(change):
    """A strategy's load_state lets a ValueError through, and the worker starts that strategy fresh."""
    state = Signal(symbol="SBIN", time=T0, price=600.5, type=SignalType.ENTRY, current_position=PositionSide.LONG,
                   strategy="orb").to_state()
    with pytest.raises(ValueError):
        Signal.from_state({**state, **change})
    with pytest.raises(msgspec.ValidationError):
        Signal.from_state({k: v for k, v in state.items() if k != "symbol"})


def test_a_signal_is_frozen():
    sig = Signal(symbol="SBIN", time=T0, price=600.5, type=SignalType.ENTRY, current_position=PositionSide.LONG,
                 strategy="orb")
    with pytest.raises(AttributeError):
        sig.price = 601.0
    assert sig.replace(price=601.0).price == 601.0 and sig.price == 600.5


def test_checked_passes_what_the_wire_carries_and_names_what_it_cannot() -> None:
    """A strategy's signal is checked in the worker (inside its containment) before it is sent: an ATR not yet
    known (None) travels; a Decimal price or a numpy integer would stop the driver's loop, so they are refused
    there, naming the symbol and strategy."""
    from decimal import Decimal

    import numpy as np

    ok = Signal(symbol="SBIN", time=1_763_609_400, price=601.5, type=SignalType.ENTRY,
                current_position=PositionSide.LONG, strategy="rules", stop_loss=600.0, extra={"atr": None})
    assert ok.checked() == ok and isinstance(ok.checked().time, int)
    for bad in (msgspec.structs.replace(ok, price=Decimal("601.5")),
                msgspec.structs.replace(ok, position_size=np.int64(5)),
                msgspec.structs.replace(ok, stop_loss="600")):
        with pytest.raises(ValueError, match="SBIN: the signal from strategy 'rules' cannot be sent"):
            bad.checked()

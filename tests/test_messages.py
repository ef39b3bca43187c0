"""The inter-process messages (pipeline.messages): every type comes back equal from the way it travels
(pickled by multiprocessing, msgpack on the event pipes, or encoded in a tick frame), and a malformed tick
frame or event is refused with a clear error rather than half read."""
from __future__ import annotations

import math
import pickle

import msgspec
import pytest

from core.enums import PositionSide, SignalType
from core.types import TICK_FIELDS, Signal, Tick, tick_values
from pipeline import messages as m

T0 = 1_795_140_900  # 2026-11-20 09:15 IST
FYERS = {"ltp": 264.15, "vol_traded_today": 6060, "last_traded_time": T0, "exch_feed_time": T0, "bid_size": 511,
         "ask_size": 476, "bid_price": 264.15, "ask_price": 264.2, "last_traded_qty": 64, "tot_buy_qty": 1693550,
         "tot_sell_qty": 4477656, "avg_trade_price": 264.15, "low_price": 264.15, "high_price": 264.15,
         "lower_ckt": 0, "upper_ckt": 0, "open_price": 264.15, "prev_close_price": 264.55, "type": "sf",
         "symbol": "NSE:SBIN-EQ", "ch": -0.4, "chp": -0.1512}
SIG = Signal(symbol="SBIN", time=T0, price=264.15, type=SignalType.ENTRY, current_position=PositionSide.LONG,
             strategy="orb", stop_loss=262.0, note="break")
PAYLOADS = [m.Outcome("orb:SBIN:1:entry:long", "SBIN", "entry", "executed", incomplete={"a": 1}),
            m.ForceExit("SBIN", "square_off"), m.Watch("SBIN", True), m.CapTriggers("SBIN", "long", 250.0, None, T0),
            m.DayHalted("SBIN", "risk: daily loss limit reached (loss 25000.00 >= 25000)")]

EVERY_MESSAGE = [
    *(m.ApplyFeedback(i + 1, p) for i, p in enumerate(PAYLOADS)),
    m.UseTickPipe(b"\x80pickled pipe"), m.StopWorker(),
    m.WorkerReady(3, 4242), m.SignalRaised(3, SIG, 1.25, True, 17), m.MarksTaken(3, m.Marks(T0, {"SBIN": 264.1}), 18),
    m.WatermarkReached(3, 9, T0, 18, math.inf, math.inf, m.WorkerProgress(100, 1, 2, 1, 40)),
    m.CheckpointTaken(3, 9, {"handler": {"last_ts": {"SBIN": T0}}, "ctl_seq": 4, "marker": [9, T0, 18]}),
    m.StrategyTurnedOff(3, m.StrategyDisabled("SBIN", "orb", "ZeroDivisionError in run: boom", T0)),
    m.WorkerStopped(3, {"ticks": 100, "bad_ticks": 1}),
    m.FeedStarted(77), m.FeedFailed("Fyers data socket: no token"),
    m.CycleDelivered(5, T0, 300, (0, 2), 120, 1, 2, T0 + 1, False, 0, (("ahead of the clock", 3),)),
    m.TicksResent(2, 480),
    m.SetLowWatermark(float(T0)), m.ForgetThrough(2, 5), m.MarkWorkerDown(2), m.ReplaceTickPipe(2, None), m.StopFeed(),
    *PAYLOADS, m.Marks(T0, {"SBIN": 264.1}), m.StrategyDisabled("SBIN", "orb", "boom", T0),
]


WORKER_EVENTS = set(m.WorkerEvent.__args__)


@pytest.mark.parametrize("msg", EVERY_MESSAGE, ids=lambda msg: type(msg).__name__)
def test_every_message_comes_back_equal_and_of_its_own_type(msg):
    if type(msg) in WORKER_EVENTS:  # the event pipes carry msgpack
        back = m.decode_event(m.encode_event(msg))
        assert repr(back) == repr(msg)  # ints stay ints, floats floats
    else:
        back = pickle.loads(pickle.dumps(msg, pickle.HIGHEST_PROTOCOL))
    assert type(back) is type(msg) and back == msg


def test_a_checkpoint_state_the_wire_cannot_carry_is_refused_where_it_is_made():
    with pytest.raises(TypeError):
        m.encode_event(m.CheckpointTaken(3, 9, {"handler": {"opened": object()}}))
    # one array type: a tuple in a checkpoint comes back a list (the handler's restore rebuilds its tuples)
    back = m.decode_event(m.encode_event(m.CheckpointTaken(3, 9, {"marker": (9, T0, 18)})))
    assert back.state == {"marker": [9, T0, 18]}


@pytest.mark.parametrize("buf", [b"", b"\x01", m.encode_event(m.WorkerReady(1, 2))[:-1],
                                 msgspec.msgpack.encode(m.ForceExit("SBIN", "x"))])
def test_bytes_that_are_no_worker_event_are_refused_with_a_clear_error(buf):
    with pytest.raises(m.MessageError, match="no worker event"):
        m.decode_event(buf)


def test_every_message_type_of_the_module_is_covered():
    """A new message type cannot be added without a round trip here."""
    structs = {v for v in vars(m).values()
               if isinstance(v, type) and issubclass(v, msgspec.Struct) and v.__module__ == m.__name__}
    assert structs - {m.TickFrame} == {type(x) for x in EVERY_MESSAGE}


def test_a_frame_comes_back_with_its_marker_ticks_and_positions():
    ticks = [Tick.from_feed(FYERS), Tick.from_feed({"symbol": "NSE:LT-EQ", "ltp": 3500, "exch_feed_time": T0 + 1})]
    buf = m.encode_frame(7, T0, 42, 1.5, m.encode_batch(ticks, [41, 42]))
    f = m.decode_frame(buf)
    assert (f.seq, f.through_ts, f.through_pos, f.t_wall) == (7, T0, 42, 1.5)
    assert f.ticks == ticks and f.positions == [41, 42]
    assert type(f.ticks[1].ltp) is int  # an int price stays an int: the worker computes exactly as the feed sent
    marker = m.decode_frame(m.encode_frame(8, m.END_OF_FEED, m.END_OF_FEED, 0.0, None))
    assert (marker.seq, marker.through_ts, marker.ticks) == (8, m.END_OF_FEED, [])


def test_a_tick_record_keeps_every_field_of_the_fyers_dict_in_its_order():
    t = Tick.from_feed(FYERS)
    assert msgspec.structs.asdict(t) == FYERS and Tick.__struct_fields__ == TICK_FIELDS
    assert t.time() == T0 and Tick(last_traded_time=T0 - 1).time() == T0 - 1


def test_a_field_of_the_wrong_kind_becomes_none_at_the_feed_edge_and_the_batch_still_crosses():
    t = Tick.from_feed({**FYERS, "bid_price": "n/a", "ask_size": True, "tot_buy_qty": 2**70, "type": 5,
                        "junk": object()})
    assert (t.bid_price, t.ask_size, t.tot_buy_qty, t.type) == (None, None, None, None)
    assert t.ltp == FYERS["ltp"] and t.symbol == FYERS["symbol"]
    nan = Tick.from_feed({**FYERS, "ch": math.nan})
    f = m.decode_frame(m.encode_frame(1, T0, 2, 0.0, m.encode_batch([t, nan], [1, 2])))
    assert f.ticks[0] == t and math.isnan(f.ticks[1].ch)


def test_the_feed_sends_tick_values_and_the_worker_gets_the_records_from_feed_would_make():
    """The feed's batch holds each tick's values as they came (core.types.tick_values); the worker's records
    equal Tick.from_feed's, an odd field included (None), and a value msgpack cannot carry at all (an int
    past 64 bits, an object) makes the batch go as records with that value None."""
    odd = {**FYERS, "bid_price": "n/a", "ask_size": True, "type": 5, "junk": object()}
    short = {"symbol": "NSE:LT-EQ", "ltp": 3500, "exch_feed_time": T0 + 1}
    for batch in ([FYERS, short], [FYERS, odd, short], [odd, {**FYERS, "open_price": object()}, FYERS]):
        f = m.decode_frame(m.encode_frame(1, T0, 2, 0.0, m.encode_batch([tick_values(t) for t in batch],
                                                                        list(range(len(batch))))))
        assert f.ticks == [Tick.from_feed(t) for t in batch] and f.positions == list(range(len(batch)))
        assert all(type(t) is Tick for t in f.ticks)
    big = m.decode_frame(m.encode_frame(1, T0, 2, 0.0, m.encode_batch([tick_values({**FYERS, "tot_buy_qty": 2**70})],
                                                                      [1])))
    assert big.ticks == [Tick.from_feed({**FYERS, "tot_buy_qty": None})]


@pytest.mark.parametrize("buf, says", [
    (b"", "shorter than its 32-byte header"),
    (m.FRAME.pack(1, T0, 2, 0.0)[:20], "shorter than its 32-byte header"),
    (m.FRAME.pack(3, T0, 2, 0.0) + pickle.dumps(([FYERS], [1])), "frame 3: its batch is not a list of tick records"),
    (m.FRAME.pack(4, T0, 2, 0.0) + msgspec.msgpack.encode(([["not", "a", "tick"]], [1])), "frame 4: its batch"),
    (m.FRAME.pack(5, T0, 2, 0.0) + msgspec.msgpack.encode(([Tick.from_feed(FYERS)], [1, 2])),
     "frame 5: 1 ticks but 2 positions"),
    (m.encode_frame(6, T0, 2, 0.0, m.encode_batch([Tick.from_feed(FYERS)], [1]))[:-3], "frame 6: its batch"),
    (m.FRAME.pack(7, T0, 2, 0.0) + msgspec.msgpack.encode(([[None] * 21 + ["x"]], [1])), "frame 7: its batch"),
    (m.FRAME.pack(8, T0, 2, 0.0) + msgspec.msgpack.encode(([tick_values({**FYERS, "ltp": "x"})], [1])),
     "frame 8: its batch"),
])
def test_a_malformed_frame_is_refused_with_a_clear_error(buf, says):
    with pytest.raises(m.MessageError, match=says):
        m.decode_frame(buf)


def test_a_message_is_frozen_and_changed_only_into_a_new_one():
    done = PAYLOADS[0]
    with pytest.raises(AttributeError):
        done.status = "failed"
    forced = msgspec.structs.replace(done, force_exit=True)
    assert forced.force_exit and not done.force_exit and forced.incomplete == done.incomplete

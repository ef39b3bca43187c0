"""The feed process's routing half: TickBatcher cycles, DataDispatcher frames into real OS pipes (one per
worker, as the workers read them), restart retention, and the waits that keep memory flat."""
from __future__ import annotations

import multiprocessing as mp
import threading

import msgspec

from pipeline.batcher import TickBatcher
from pipeline.dispatcher import DataDispatcher
from pipeline.messages import (
    END_OF_FEED,
    CycleDelivered,
    ForgetThrough,
    ReplaceTickPipe,
    SetLowWatermark,
    TicksResent,
    decode_frame,
)
from tests.conftest import wait_for


class Worker:
    """The reading end of a worker's tick pipe, decoded as worker.py decodes it; each tick record is shown as
    the dict of the fields it has, to compare with the Fyers dict it came from."""

    def __init__(self) -> None:
        self.r, self.w = mp.Pipe(duplex=False)

    def frames(self) -> list[tuple[int, int, list[dict]]]:
        out = []
        while self.r.poll():
            f = decode_frame(self.r.recv_bytes())
            out.append((f.seq, f.through_ts, [as_dict(t) for t in f.ticks]))
        return out


def as_dict(t: msgspec.Struct) -> dict:
    return {k: v for k, v in msgspec.structs.asdict(t).items() if v is not None}


def tick(sym: str, ts: int, ltp: float = 100.0) -> dict:
    return {"symbol": sym, "ltp": ltp, "exch_feed_time": ts, "type": "sf"}


def make(n: int = 2, cycle_ticks: int = 4096, max_delay_s: float = 0.002, first_pos: int = 0, **kw
         ) -> tuple[DataDispatcher, TickBatcher, list[Worker], list[tuple]]:
    """Both halves wired as the feed process wires them; `reports` is what the driver would hear."""
    ws = [Worker() for _ in range(n)]
    reports: list = []
    d = DataDispatcher([w.w for w in ws], reports.append, **kw)
    b = TickBatcher({"NSE:A-EQ": 0, "NSE:B-EQ": 1, "NSE:C-EQ": 0}, n, d.deliver, cycle_ticks=cycle_ticks,
                    max_delay_s=max_delay_s, first_pos=first_pos)
    return d, b, ws, reports


def delivered(reports: list) -> dict[str, int]:
    rows = [r for r in reports if isinstance(r, CycleDelivered)]
    return {"ticks": sum(r.ticks for r in rows), "unroutable": sum(r.unroutable for r in rows),
            "not_ticks": sum(r.not_ticks for r in rows), "dropped": rows[-1].dropped if rows else 0}


def test_each_worker_gets_one_frame_per_cycle_with_its_ticks_in_order_behind_the_marker():
    d, b, ws, reports = make(cycle_ticks=4)
    feed = [tick("NSE:A-EQ", 10), tick("NSE:B-EQ", 10), tick("NSE:C-EQ", 11), tick("NSE:A-EQ", 12)]
    for t in feed:
        b.dispatch(t)
    # everything before the latest second is out; the latest second may still get more ticks
    assert ws[0].frames() == [(1, 11, [feed[0], feed[2], feed[3]])]
    assert ws[1].frames() == [(1, 11, [feed[1]])]
    b.dispatch(tick("NSE:B-EQ", 12))
    b.flush(final=True)
    assert ws[0].frames() == [(2, END_OF_FEED, [])]  # a marker alone: nothing for worker 0 this cycle
    assert ws[1].frames() == [(2, END_OF_FEED, [tick("NSE:B-EQ", 12)])]
    assert delivered(reports) == {"ticks": 5, "unroutable": 0, "not_ticks": 0, "dropped": 0}
    assert reports[-1].final is True  # the driver hears that the last cycle went out
    # and which workers were sent what, so it can tell a worker with nothing new is caught up
    assert [(r.seq, r.through_ts, r.through_pos, r.sent) for r in reports] == [
        (1, 11, 4, (0, 1)), (2, END_OF_FEED, END_OF_FEED, (0, 1))]


def test_control_messages_junk_and_unknown_symbols_are_counted_not_routed():
    d, b, ws, reports = make(cycle_ticks=100)
    b.dispatch({"type": "cn", "code": 200, "message": "Authentication done", "s": "ok"})
    b.dispatch("not a dict")
    b.dispatch(tick("NSE:ZZZ-EQ", 10))
    b.dispatch({"ltp": 1.0})  # no symbol at all
    b.flush(final=True)
    assert ws[0].frames() == ws[1].frames() == [(1, END_OF_FEED, [])]
    assert delivered(reports) == {"ticks": 0, "unroutable": 2, "not_ticks": 2, "dropped": 0}


def test_a_dead_workers_pipe_refuses_at_once_and_its_restart_gets_everything_since_its_checkpoint():
    d, b, ws, reports = make(cycle_ticks=2)
    b.dispatch(tick("NSE:A-EQ", 10))
    b.dispatch(tick("NSE:B-EQ", 10))          # cycle 1
    d.command(ForgetThrough(0, 1))         # worker 0 saved its state as of frame 1
    ws[0].r.close()                           # worker 0 dies: nobody reads its pipe any more
    b.dispatch(tick("NSE:A-EQ", 11))
    b.dispatch(tick("NSE:C-EQ", 12))          # cycle 2: the write fails, the frame is kept
    b.dispatch(tick("NSE:B-EQ", 13))
    b.dispatch(tick("NSE:B-EQ", 13))          # cycle 3
    assert d.up == [False, True]
    fresh = Worker()                          # the restarted worker's pipe, as the driver hands it over
    d.command(ReplaceTickPipe(0, fresh.w))
    assert reports[-1] == TicksResent(0, 2)
    assert fresh.frames() == [(2, 11, [tick("NSE:A-EQ", 11), tick("NSE:C-EQ", 12)]), (3, 12, [])]
    b.dispatch(tick("NSE:A-EQ", 14))
    b.flush(final=True)
    assert fresh.frames() == [(4, END_OF_FEED, [tick("NSE:A-EQ", 14)])]  # and on from there, in order


def test_what_cannot_be_kept_for_a_restart_is_counted_as_dropped():
    d, b, ws, reports = make(cycle_ticks=2, retain_limit_ticks=3)
    for ts in range(10, 14):
        b.dispatch(tick("NSE:A-EQ", ts))
    assert d.retained_ticks[0] <= 3
    assert delivered(reports)["dropped"] == 4 - d.retained_ticks[0] > 0


def test_the_flusher_sends_a_partial_cycle_once_the_feed_pauses():
    d, b, ws, _ = make(cycle_ticks=10_000, max_delay_s=0.002)
    b.start_flusher()
    try:
        b.dispatch(tick("NSE:B-EQ", 10))
        got: list = []
        wait_for(lambda: got.extend(ws[1].frames()) or got, timeout=5, what="a paused feed's ticks to be flushed")
        assert got[0][2] == [tick("NSE:B-EQ", 10)] and ws[0].frames()
    finally:
        b.stop()


def test_the_feed_waits_while_trading_decisions_trail_it_by_more_than_max_lead():
    d, b, ws, _ = make(cycle_ticks=1, max_lead_s=60.0)
    d.command(SetLowWatermark(1000.0))
    b.dispatch(tick("NSE:A-EQ", 1060))  # 60 s ahead of the decisions: allowed
    t = threading.Thread(target=b.dispatch, args=(tick("NSE:A-EQ", 1061),), daemon=True)
    t.start()
    t.join(0.2)
    assert t.is_alive()  # 61 s ahead: the feed waits (its ticks would pile up behind held symbols)
    d.command(SetLowWatermark(1001.0))
    t.join(5)
    assert not t.is_alive()
    assert [f[1] for f in ws[0].frames()] == [1059, 1060]


def test_stopping_lets_a_waiting_feed_go():
    d, b, ws, _ = make(cycle_ticks=1, max_lead_s=0.0)
    d.command(SetLowWatermark(0.0))
    t = threading.Thread(target=b.dispatch, args=(tick("NSE:A-EQ", 10),), daemon=True)
    t.start()
    t.join(0.2)
    assert t.is_alive()
    d.stop()
    t.join(5)
    assert not t.is_alive()


def test_an_idle_feed_flushes_at_once_and_a_complete_second_moves_the_marker_to_it():
    d, b, ws, _ = make(cycle_ticks=10_000)
    b.dispatch(tick("NSE:A-EQ", 10))
    b.idle()                       # live: everything received so far has been handed on
    assert ws[0].frames() == [(1, 9, [tick("NSE:A-EQ", 10)])]
    b.idle(complete_through=10)    # replay pacing: every tick of second 10 has come
    assert ws[1].frames()[-1][:2] == (2, 10)
    b.idle(complete_through=10)    # nothing new: no empty cycle
    assert d.seq == 2


def test_a_cycle_goes_out_once_its_oldest_tick_is_max_age_old():
    d, b, ws, _ = make(cycle_ticks=10_000)
    b.max_age_s = 60.0
    b.dispatch(tick("NSE:A-EQ", 10))
    assert d.seq == 0
    b.first_pending -= 61.0        # the cycle's oldest tick arrived more than max_age ago
    b.dispatch(tick("NSE:A-EQ", 10))
    assert d.seq == 1 and len(ws[0].frames()[0][2]) == 2


def test_a_worker_is_not_woken_for_a_cycle_with_nothing_new_for_it():
    d, b, ws, reports = make(cycle_ticks=1)
    b.dispatch(tick("NSE:A-EQ", 10))
    b.dispatch(tick("NSE:A-EQ", 11))   # the marker moves to 10: worker 1 hears it
    b.dispatch(tick("NSE:A-EQ", 11))   # same marker, nothing for worker 1
    assert [f[:2] for f in ws[1].frames()] == [(1, 9), (2, 10)]
    assert len(ws[0].frames()) == 3
    assert reports[-1].sent == (0,)


def test_every_tick_carries_its_feed_position_and_the_marker_says_how_far_they_have_gone():
    d, b, ws, _ = make(cycle_ticks=3, first_pos=100)  # a restarted feed process goes on from the last position
    for t in (tick("NSE:A-EQ", 10), tick("NSE:B-EQ", 10), tick("NSE:C-EQ", 10)):
        b.dispatch(t)
    f = decode_frame(ws[0].r.recv_bytes())
    assert [t.symbol for t in f.ticks] == ["NSE:A-EQ", "NSE:C-EQ"] and f.positions == [101, 103]
    assert f.through_pos == 103

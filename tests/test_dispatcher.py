"""DataDispatcher routing, batching, markers and restart retention (pure logic: list-backed queues)."""
from __future__ import annotations

import pickle
import threading

from pipeline.batcher import TickBatcher
from pipeline.dispatcher import DataDispatcher
from pipeline.messages import CONTROL, END_OF_FEED, MARKER, TICKS
from tests.conftest import wait_for


class ListQueue:
    def __init__(self) -> None:
        self.items: list[tuple] = []

    def put(self, msg: tuple) -> None:
        self.items.append(msg)


def tick(sym: str, ts: int, ltp: float = 100.0) -> dict:
    return {"symbol": sym, "ltp": ltp, "exch_feed_time": ts, "type": "sf"}


def ticks_of(q: ListQueue) -> list[dict]:
    return [t for m in q.items if m[0] == TICKS for t in pickle.loads(m[1])]


def markers_of(q: ListQueue) -> list[tuple]:
    return [m for m in q.items if m[0] == MARKER]


def make(n: int = 2, cycle_ticks: int = 4096, max_delay_s: float = 0.002,
         **kw) -> tuple[DataDispatcher, TickBatcher, list[ListQueue]]:
    """The two halves wired together in one process, as the feed process and its relay wire them."""
    qs = [ListQueue() for _ in range(n)]
    kw.setdefault("max_lag_markers", 0)
    d = DataDispatcher(qs, **kw)
    b = TickBatcher({"NSE:A-EQ": 0, "NSE:B-EQ": 1, "NSE:C-EQ": 0}, n, d.deliver, cycle_ticks=cycle_ticks,
                    max_delay_s=max_delay_s)
    return d, b, qs


def test_ticks_reach_their_owner_in_order_and_a_cycle_ends_with_a_marker_to_everyone():
    d, b, qs = make(cycle_ticks=4)
    feed = [tick("NSE:A-EQ", 10), tick("NSE:B-EQ", 10), tick("NSE:C-EQ", 11), tick("NSE:A-EQ", 12)]
    for t in feed:
        b.dispatch(t)
    assert ticks_of(qs[0]) == [feed[0], feed[2], feed[3]]
    assert ticks_of(qs[1]) == [feed[1]]
    # everything before the latest second is out; the latest second may still get more ticks
    assert markers_of(qs[0]) == markers_of(qs[1]) == [(MARKER, 1, 11)]
    assert qs[0].items[-1][0] == MARKER  # the batch comes before the marker that closes its cycle
    b.dispatch(tick("NSE:B-EQ", 12))
    b.flush(final=True)
    assert markers_of(qs[1])[-1] == (MARKER, 2, END_OF_FEED)
    assert d.stats() == {"dispatched": 5, "unroutable": 0, "control_or_junk": 0, "dropped": 0}


def test_control_messages_junk_and_unknown_symbols_are_counted_not_routed():
    d, b, qs = make(cycle_ticks=100)
    b.dispatch({"type": "cn", "code": 200, "message": "Authentication done", "s": "ok"})
    b.dispatch("not a dict")
    b.dispatch(tick("NSE:ZZZ-EQ", 10))
    b.dispatch({"ltp": 1.0})  # no symbol at all
    b.flush(final=True)
    assert ticks_of(qs[0]) == ticks_of(qs[1]) == []
    assert d.stats() == {"dispatched": 0, "unroutable": 2, "control_or_junk": 2, "dropped": 0}


def test_a_down_worker_gets_nothing_and_its_restart_resends_everything_since_its_checkpoint():
    d, b, qs = make(cycle_ticks=2)
    b.dispatch(tick("NSE:A-EQ", 10))
    b.dispatch(tick("NSE:B-EQ", 10))          # cycle 1
    d.checkpointed(0, 1)                      # worker 0 saved its state as of marker 1
    d.mark_down(0)
    b.dispatch(tick("NSE:A-EQ", 11))
    b.dispatch(tick("NSE:C-EQ", 12))          # cycle 2, worker 0 down
    d.send_control(0, "an outcome")
    assert len(qs[0].items) == 2              # cycle 1's batch and marker only
    fresh = ListQueue()
    resent = d.replace_queue(0, fresh)
    assert resent == 2
    assert ticks_of(fresh) == [tick("NSE:A-EQ", 11), tick("NSE:C-EQ", 12)]
    assert (CONTROL, "an outcome") in fresh.items and markers_of(fresh) == [(MARKER, 2, 11)]
    assert d.acked[0] == 1  # the restarted worker starts from its checkpoint's marker


def test_what_cannot_be_kept_for_a_restart_is_counted_as_dropped():
    d, b, qs = make(cycle_ticks=2, retain_limit_ticks=3)
    for ts in range(10, 14):
        b.dispatch(tick("NSE:A-EQ", ts))
    assert d.retained_ticks[0] <= 3
    assert d.stats()["dropped"] == 4 - d.retained_ticks[0]


def test_the_flusher_sends_a_partial_cycle_once_the_feed_pauses():
    d, b, qs = make(cycle_ticks=10_000, max_delay_s=0.002)
    b.start_flusher()
    try:
        b.dispatch(tick("NSE:B-EQ", 10))
        wait_for(lambda: ticks_of(qs[1]), timeout=5, what="a paused feed's ticks to be flushed")
        assert markers_of(qs[0]) and markers_of(qs[1])
    finally:
        b.stop()


def test_a_worker_too_far_behind_makes_the_feed_wait():
    d, b, qs = make(cycle_ticks=1, max_lag_markers=2)
    for ts in range(10, 12):
        b.dispatch(tick("NSE:A-EQ", ts))
    assert d.seq == 2
    b.dispatch(tick("NSE:A-EQ", 12))
    t = threading.Thread(target=d.wait_for_workers, daemon=True)  # what the relay does after each cycle
    t.start()
    t.join(0.2)
    assert t.is_alive()  # seq 3 is more than 2 markers ahead of both workers' acks
    d.ack(0, 3)
    d.ack(1, 3)
    t.join(5)
    assert not t.is_alive()


def test_an_idle_feed_flushes_at_once_and_a_complete_second_moves_the_marker_to_it():
    d, b, qs = make(cycle_ticks=10_000)
    b.dispatch(tick("NSE:A-EQ", 10))
    b.idle()                       # live: everything received so far has been handed on
    assert ticks_of(qs[0]) == [tick("NSE:A-EQ", 10)] and markers_of(qs[0])[-1] == (MARKER, 1, 9)
    b.idle(complete_through=10)    # replay pacing: every tick of second 10 has come
    assert markers_of(qs[1])[-1] == (MARKER, 2, 10)
    b.idle(complete_through=10)    # nothing new: no empty cycle
    assert d.seq == 2


def test_a_cycle_goes_out_once_its_oldest_tick_is_max_age_old():
    d, b, qs = make(cycle_ticks=10_000)
    b.max_age_s = 60.0
    for _ in range(8):
        b.dispatch(tick("NSE:A-EQ", 10))  # age is looked at every 8 ticks
    assert d.seq == 0
    b.first_pending -= 61.0        # the cycle's oldest tick arrived more than max_age ago
    for _ in range(8):
        b.dispatch(tick("NSE:A-EQ", 10))
    assert d.seq == 1 and len(ticks_of(qs[0])) == 16

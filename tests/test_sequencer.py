"""SignalSequencer: signals go to the TradeManager in feed order, each as soon as every worker has processed the
ticks before it -- told by its watermark, or known because the feed process sent it nothing newer."""
from __future__ import annotations

from core.enums import PositionSide, SignalType
from core.types import Signal
from pipeline.sequencer import INF, SignalSequencer


def sig(symbol: str, t: int = 100) -> Signal:
    return Signal(symbol=symbol, strategy="orb", time=t, price=100.0, type=SignalType.ENTRY,
                  current_position=PositionSide.LONG, stop_loss=99.0)


def released(s: SignalSequencer) -> list[str]:
    return [x.symbol for x in s.release()]


def test_signals_wait_for_every_worker_and_go_out_in_feed_order_whatever_order_they_came_in():
    s = SignalSequencer(2)
    s.delivered(1, 99, 10, (0, 1))  # frame 1 to both workers: ticks up to position 10
    s.add(sig("B"), 7)              # worker 1's signal came in first
    s.add(sig("A"), 4)
    s.watermark(0, 1, 99, 10, INF, INF)
    assert released(s) == []        # worker 1 has not processed frame 1 yet
    s.watermark(1, 1, 99, 10, INF, INF)
    assert released(s) == ["A", "B"]


def test_a_worker_sent_nothing_newer_is_as_far_as_the_feed():
    s = SignalSequencer(2)
    s.delivered(1, 99, 10, (0, 1))
    s.watermark(0, 1, 99, 10, INF, INF)
    s.watermark(1, 1, 99, 10, INF, INF)
    s.delivered(2, 99, 20, (0,))    # only worker 0 had ticks in positions 11-20
    s.add(sig("A"), 15)
    assert released(s) == []        # worker 0 has not processed frame 2
    s.watermark(0, 2, 99, 20, INF, INF)
    assert released(s) == ["A"]     # worker 1 never saw frame 2: it is through position 20 too
    assert s.low_position() == 20


def test_a_held_symbol_caps_its_worker_until_its_outcome():
    s = SignalSequencer(2)
    s.delivered(1, 99, 10, (0, 1))
    s.watermark(0, 1, 99, 10, INF, INF)
    s.watermark(1, 1, 99, 5, 99, 5)  # worker 1 waits for the outcome of its signal at position 5
    s.add(sig("held"), 5)
    s.add(sig("later"), 8)
    s.delivered(2, 100, 30, (0,))
    s.watermark(0, 2, 100, 30, INF, INF)
    assert released(s) == ["held"]   # the cap lets its own signal through, nothing after it
    s.watermark(1, 1, 99, 10, INF, INF)  # the outcome came: worker 1 reports again, uncapped
    assert released(s) == ["later"]
    assert s.low_watermark == 100 and s.low_position() == 30


def test_a_restarted_worker_counts_from_its_checkpoint_until_it_reports():
    s = SignalSequencer(2)
    s.delivered(1, 99, 10, (0, 1))
    s.watermark(0, 1, 99, 10, INF, INF)
    s.watermark(1, 1, 99, 10, INF, INF)
    s.reset_worker(1, 98, 4)         # restarted from a checkpoint at position 4
    s.add(sig("A"), 6)
    assert released(s) == []
    s.watermark(1, 1, 99, 10, INF, INF)  # it has caught up again
    assert released(s) == ["A"]


def test_the_end_of_feed_marker_moves_the_replay_clock_only_once_the_feed_s_last_time_is_known():
    from driver import replay_time
    from pipeline.messages import END_OF_FEED

    assert replay_time(1_763_612_400.0, False, 1_763_612_000.0) == 1_763_612_400.0
    # the workers saw the marker before the feed's final report reached the driver: no time yet
    assert replay_time(END_OF_FEED, False, 1_763_612_000.0) == 0.0
    assert replay_time(END_OF_FEED, True, 1_763_634_600.0) == 1_763_634_600.0

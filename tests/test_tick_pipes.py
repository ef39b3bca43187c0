"""Real worker processes on their tick pipes: a feed process that dies mid-frame is replaced by one writing
into new pipes (the live feed restart), and a killed worker is restarted from its checkpoint with the frames
sent since resent into its new pipe. The feed side is the real TickBatcher and DataDispatcher, in this
process, in place of the feed process."""
from __future__ import annotations

import copy
import multiprocessing as mp
import os
import queue
import signal
import struct
from pathlib import Path

import yaml

from core.config import parse_config
from pipeline.batcher import TickBatcher
from pipeline.dispatcher import DataDispatcher
from pipeline.events import WorkerEvents
from pipeline.messages import (
    END_OF_FEED,
    CheckpointTaken,
    MarkWorkerDown,
    ReplaceTickPipe,
    WatermarkReached,
    WorkerStopped,
)
from pipeline.sequencer import SignalSequencer
from pipeline.workers import WorkerPool
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_795_140_900  # 2026-11-20 09:15 IST
ROUTES = {"NSE:SBIN-EQ": 0, "NSE:LT-EQ": 1}


def config(tmp: Path):
    raw = copy.deepcopy(yaml.safe_load((ROOT / "config.yaml").read_text()))
    raw["symbols"] = ["SBIN", "LT"]
    raw["market_data"]["persist"] = "off"
    raw["monitoring"]["log_dir"] = str(tmp / "logs")
    return parse_config(raw)


def tick(sym: str, ts: int) -> dict:
    return {"symbol": f"NSE:{sym}-EQ", "ltp": 500.0, "exch_feed_time": ts, "vol_traded_today": 1000, "type": "sf"}


class Feed:
    """What the worker pool asks of the feed process, answered by a DataDispatcher in this process."""

    def __init__(self, pool: WorkerPool, first_pos: int = 0, first_seq: int = 0):
        self.d = DataDispatcher(pool.take_tick_writers(), lambda msg: None, first_seq=first_seq)
        self.b = TickBatcher(ROUTES, 2, self.d.deliver, cycle_ticks=2, first_pos=first_pos)
        self.dropped = 0

    def send(self, *ticks: dict) -> None:
        for t in ticks:
            self.b.dispatch(t)

    def worker_down(self, i: int) -> None:
        self.d.command(MarkWorkerDown(i))

    def worker_replaced(self, i: int, writer) -> None:
        self.d.command(ReplaceTickPipe(i, writer))

    def count_dropped(self, n: int) -> None:
        self.dropped += n


class Watermarks:
    """What the driver's loop would read from the workers, kept for the test."""

    def __init__(self, out_q, pool: WorkerPool) -> None:
        self.out_q = out_q
        self.pool = pool
        self.last: dict[int, tuple] = {}
        self.checkpoints: dict[int, CheckpointTaken] = {}

    def take(self, msg: object) -> None:
        if isinstance(msg, WatermarkReached):
            self.last[msg.worker] = (msg.seq, msg.through_ts, msg.through_pos, msg.cap_ts, msg.cap_pos)
        elif isinstance(msg, CheckpointTaken):
            self.checkpoints[msg.worker] = msg
        elif isinstance(msg, WorkerStopped):
            self.pool.stopped[msg.worker] = msg.stats

    def until(self, cond, what: str) -> None:
        def check() -> bool:
            while True:
                try:
                    self.take(self.out_q.get_nowait())
                except queue.Empty:
                    return cond()
        wait_for(check, timeout=30, what=what)


def test_a_new_feed_process_takes_over_with_new_pipes_after_the_old_one_died_mid_frame(tmp_path):
    ctx = mp.get_context("spawn")
    out_q = WorkerEvents(ctx, 2)
    pool = WorkerPool(ctx, config(tmp_path), [["SBIN"], ["LT"]], out_q, f"sqlite:///{tmp_path / 'd.sqlite'}", [], None)
    wm = Watermarks(out_q, pool)
    try:
        pool.start()
        pool.wait_ready(60)
        feed = Feed(pool)
        feed.send(tick("SBIN", T0), tick("LT", T0 + 1))
        wm.until(lambda: all(wm.last.get(i, (0, 0, 0))[2] == 2 for i in (0, 1)), "both workers through position 2")
        # the feed process is killed in the middle of writing a frame: half a frame, then its end of the pipe goes
        os.write(feed.d.pipes[0].fileno(), struct.pack("!i", 10_000) + b"half a frame")
        feed.d.close()
        pool.new_tick_pipes()
        feed2 = Feed(pool, first_pos=feed.b.pos, first_seq=feed.d.seq)  # the restarted feed numbers on from there
        feed2.send(tick("SBIN", T0 + 5), tick("LT", T0 + 6))
        wm.until(lambda: all(wm.last.get(i, (0, 0, 0))[2] == 4 for i in (0, 1)), "both workers through position 4")
        assert wm.last[0][:2] == (2, T0 + 5)  # the marker of the new process's first frame: frame 2
        feed2.b.flush(final=True)
        wm.until(lambda: all(wm.last[i][1] >= END_OF_FEED for i in (0, 1)), "the last frame")
        assert all(p.is_alive() for p in pool.procs)
    finally:
        pool.stop(out_q, on_message=wm.take, timeout_s=10)
    assert pool.stopped[0]["ticks"] == pool.stopped[1]["ticks"] == 2 and pool.stopped[0]["bad_ticks"] == 0


def test_a_killed_worker_gets_the_frames_since_its_checkpoint_in_a_new_pipe(tmp_path):
    ctx = mp.get_context("spawn")
    out_q = WorkerEvents(ctx, 2)
    pool = WorkerPool(ctx, config(tmp_path), [["SBIN"], ["LT"]], out_q, f"sqlite:///{tmp_path / 'd.sqlite'}", [], None)
    wm = Watermarks(out_q, pool)
    ts = [T0]

    def feed_until_worker_1_checkpoints() -> bool:
        ts[0] += 1
        feed.send(tick("SBIN", ts[0]), tick("LT", ts[0]))  # one cycle, one frame to each worker
        return 1 in wm.checkpoints

    try:
        pool.start()
        pool.wait_ready(60)
        feed = Feed(pool)
        wm.until(feed_until_worker_1_checkpoints, "worker 1 to save a checkpoint (every second)")
        ckpt_seq, state = wm.checkpoints[1].seq, wm.checkpoints[1].state
        pool.checkpointed(1, ckpt_seq, state, (ts[0], float(feed.b.pos)))
        feed.d.checkpointed(1, ckpt_seq)
        victim = pool.procs[1]
        os.kill(victim.pid, signal.SIGKILL)
        victim.join(10)
        feed.send(tick("SBIN", ts[0] + 1), tick("LT", ts[0] + 1))  # the write to the dead worker fails: kept
        assert feed.d.up[1] is False
        pool.restart(1, feed, SignalSequencer(2))
        wm.last.pop(1, None)
        wm.until(lambda: wm.last.get(1, (0, 0, 0))[2] == feed.b.pos, "the restarted worker to catch up")
        assert pool.procs[1].is_alive() and pool.procs[1].pid != victim.pid
        cycles = feed.d.seq
        feed.b.flush(final=True)
    finally:
        pool.stop(out_q, on_message=wm.take, timeout_s=10)
    # one LT tick per cycle: the restarted worker processed exactly those after its checkpoint's frame
    assert pool.stopped[1]["ticks"] == cycles - ckpt_seq and pool.stopped[1]["bad_ticks"] == 0
    assert feed.dropped == 0

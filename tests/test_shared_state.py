"""SharedState on a real multiprocessing Manager: the TradeManager's writes reach it at flush, whole."""
from __future__ import annotations

import multiprocessing as mp
from multiprocessing.managers import SyncManager

import pytest

from pipeline.shared_state import SEED_KEYS, SharedState


@pytest.fixture(scope="module")
def manager():
    m = SyncManager(ctx=mp.get_context("spawn"))
    m.start()
    yield m
    m.shutdown()


def test_starts_valid_with_the_seed_keys(manager):
    s = SharedState(manager)
    assert s.validate() == []
    assert s.snapshot() == SEED_KEYS


def test_writes_are_buffered_until_flush_then_written_together(manager):
    s = SharedState(manager)
    s.set(active_trades=2, trading_state="ACTIVE")
    s.update_entry("incomplete_exit_trades", "SBIN", {"attempt_count": 2})
    s.update_entry("incomplete_exit_trades", "INFY", {"attempt_count": 1})
    s.update_entry("incomplete_exit_trades", "INFY", None)
    assert s.d["active_trades"] == 0  # not yet: one round trip per flush, not per write
    s.flush(min_interval_s=3600)      # the first flush is never throttled
    assert s.d["active_trades"] == 2 and s.d["trading_state"] == "ACTIVE"
    assert s.d["incomplete_exit_trades"] == {"SBIN": {"attempt_count": 2}}
    s.set(active_trades=3)
    s.flush(min_interval_s=3600)      # throttled: flushed less than an hour ago
    assert s.d["active_trades"] == 2
    assert s.get("active_trades") == 3  # a read flushes first
    assert s.validate() == []


def test_a_flushed_value_is_a_copy_not_the_mirror(manager):
    s = SharedState(manager)
    s.update_entry("failed_trades", "TCS", 1)
    s.flush()
    s.update_entry("failed_trades", "TCS", 2)  # mutates the mirror's dict in place
    assert s.d["failed_trades"] == {"TCS": 1}
    s.flush()
    assert s.d["failed_trades"] == {"TCS": 2}

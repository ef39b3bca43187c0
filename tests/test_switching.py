"""The switch interval helper: it shortens, never lengthens, the process's thread switch interval."""
from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from core.switching import SWITCH_INTERVAL_S, shorten_switch_interval


@pytest.fixture
def restore_interval() -> Iterator[None]:
    saved = sys.getswitchinterval()
    yield
    sys.setswitchinterval(saved)


def test_default_interval_is_shortened(restore_interval: None) -> None:
    sys.setswitchinterval(0.005)
    shorten_switch_interval()
    assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_S)
    assert SWITCH_INTERVAL_S < 0.005


def test_a_shorter_interval_is_kept(restore_interval: None) -> None:
    sys.setswitchinterval(0.0001)
    shorten_switch_interval()
    assert sys.getswitchinterval() == pytest.approx(0.0001)


def test_broker_threads_shorten_it(restore_interval: None) -> None:
    """BrokerIO.start is where the daemon's sender and poller threads begin to share the trading thread's lock."""
    from execution.broker_io import BrokerIO
    from gateway.openalgo import OpenAlgoGateway

    sys.setswitchinterval(0.005)
    io = BrokerIO(OpenAlgoGateway("http://127.0.0.1:9", "k"), poll_interval_s=1.0, senders=1)
    io.start()
    try:
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_S)
    finally:
        io.stop()

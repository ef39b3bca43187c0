"""One paper broker per state file: a second one is refused naming the first; a killed one blocks nothing."""
from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest

from paper.client import PaperBrokerError
from paper.instance import AlreadyRunning, InstanceLock, holder, lock_path
from paper.launcher import start_broker, wait_ready
from tests.conftest import ROOT, free_port
from tests.paper_fixtures import FAST, Broker


def _run_second(state, key, port, *extra):
    return subprocess.run([sys.executable, str(ROOT / "paper_broker.py"), "--port", str(port), "--state-file",
                           str(state), *extra], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "APP_KEY": key})


def test_second_broker_on_one_state_file_is_refused_naming_the_first_until_it_dies(tmp_path):
    state = tmp_path / "paper_broker.sqlite"
    key = secrets.token_hex(8)
    first = Broker(state_file=state, key=key, args=FAST, log_file=tmp_path / "first.log").start()
    try:
        expected = f"paper broker already running for {state}: pid {first.proc.pid} on {first.url}"
        assert holder(state) == expected

        oid = first.post("placeorder", {"strategy": "t", "symbol": "SBIN", "exchange": "NSE", "action": "BUY",
                                        "quantity": "1", "pricetype": "LIMIT", "price": "500",
                                        "product": "CNC"}).json()["orderid"]
        r = _run_second(state, key, free_port(), "--reset")        # by hand: exit 2, one line, nothing wiped
        assert r.returncode == 2
        assert r.stderr.strip() == f"paper_broker: {expected}"
        assert [o["orderid"] for o in first.post("orderbook").json()["data"]["orders"]] == [oid]

        port = free_port()                                         # as the driver starts it
        proc = start_broker(port, state_file=state, api_key=key, detached=True)
        second = Broker(state_file=state, key=key, port=port)
        with pytest.raises(PaperBrokerError) as e:
            wait_ready(proc, second.admin(), timeout_s=30)
        assert str(e.value) == f"paper broker exited with code 2 before becoming healthy: {expected}"
        assert first.admin().health()["pid"] == first.proc.pid    # the first one is untouched

        first.kill9()                                              # a stale record is no refusal
        assert holder(state) is None
        third = Broker(state_file=state, key=key, args=FAST, log_file=tmp_path / "third.log").start()
        try:
            assert [o["orderid"] for o in third.post("orderbook").json()["data"]["orders"]] == [oid]  # same books
            assert holder(state) == f"paper broker already running for {state}: pid {third.proc.pid} on {third.url}"
        finally:
            third.stop()
        assert holder(state) is None and lock_path(state).read_text() == ""   # a clean stop clears the record
    finally:
        first.stop()


def test_lock_is_per_state_file(tmp_path):
    a = InstanceLock(tmp_path / "a.sqlite").acquire("http://127.0.0.1:1")
    try:
        b = InstanceLock(tmp_path / "b.sqlite").acquire("http://127.0.0.1:2")
        b.release()
        with pytest.raises(AlreadyRunning, match=r"a\.sqlite: pid \d+ on http://127\.0\.0\.1:1$"):
            InstanceLock(tmp_path / "a.sqlite").acquire()
    finally:
        a.release()
    InstanceLock(tmp_path / "a.sqlite").acquire().release()

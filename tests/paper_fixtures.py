"""A real paper broker process for tests: free port, temporary state file, random key, health deadline."""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from datetime import time as dtime
from pathlib import Path

import pytest
import requests

from core.clock import ist_epoch
from gateway.openalgo import OpenAlgoGateway
from paper.client import PaperBrokerAdmin
from paper.launcher import start_broker, wait_ready
from tests.conftest import free_port

DAY = date(2026, 11, 20)          # a Friday
FAST = ["--order-rate", "100000", "--smart-rate", "100000", "--api-rate", "100000"]


ORDER = {"strategy": "t", "symbol": "SBIN", "exchange": "NSE", "action": "BUY", "quantity": "10",
         "pricetype": "MARKET", "product": "MIS"}


def q(symbol: str, ts: float, ltp: float, bid: float = 0.0, ask: float = 0.0, exchange: str = "NSE") -> list:
    """A market row for /paper/v1/market (high/low 10 either side of the LTP)."""
    return [symbol, exchange, ts, ltp, bid, ask, ltp + 10, ltp - 10, ltp, ltp, 1000]


def status(b: Broker, oid: str) -> dict:
    r = b.post("orderstatus", {"strategy": "t", "orderid": oid})
    assert r.status_code == 200, r.text
    return r.json()["data"]


def T(h: int, m: int = 0, s: int = 0, day: date = DAY) -> float:
    """Epoch seconds of h:m:s IST on the test day."""
    return float(ist_epoch(day, dtime(h, m, s)))


@dataclass
class Broker:
    state_file: Path
    key: str
    args: Sequence[str] = ()
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    log_file: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Broker:
        self.proc = start_broker(self.port, state_file=self.state_file, api_key=self.key, args=list(self.args),
                                 log_file=self.log_file)
        wait_ready(self.proc, self.admin(), timeout_s=20)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(5)
        self.proc = None

    def admin(self) -> PaperBrokerAdmin:
        return PaperBrokerAdmin(self.url, self.key)

    def gateway(self, **kw) -> OpenAlgoGateway:
        kw.setdefault("order_rate_per_s", 100000)
        kw.setdefault("api_rate_per_s", 100000)
        return OpenAlgoGateway(self.url, self.key, **kw)

    def post(self, route: str, body: dict | None = None, key: bool = True, **kw) -> requests.Response:
        payload = dict(body or {})
        if key:
            payload.setdefault("apikey", self.key)
        return requests.post(f"{self.url}/api/v1/{route}", json=payload, timeout=kw.pop("timeout", 10), **kw)


def launch(tmp_path: Path, args: Sequence[str] = FAST, name: str = "broker") -> Broker:
    b = Broker(state_file=tmp_path / f"{name}.sqlite", key=secrets.token_hex(16), args=list(args),
               log_file=tmp_path / f"{name}.log")
    return b.start()


@pytest.fixture(scope="module")
def broker_proc(tmp_path_factory):
    b = launch(tmp_path_factory.mktemp("paper"))
    yield b
    b.stop()


@pytest.fixture
def broker(broker_proc):
    """The module's broker, reset to replay mode at 10:00 IST on DAY, no faults."""
    adm = broker_proc.admin()
    adm.clear_faults()
    adm.reset("replay", T(10))
    yield broker_proc
    adm.clear_faults()

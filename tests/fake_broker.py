"""An in-process stand-in for the broker, for unit tests of the execution core (pure logic, no HTTP).

`FakeGateway` answers what the TradeManager and the Reconciler ask of OpenAlgoGateway from books the test
sets; `FakeIO` takes BrokerIO's place: it records the commands and tracked orders, and the test puts the
broker threads' events (Placed, StatusSeen, ...) on its queue, so every event arrives exactly when the test
says. `paper_trade_manager` builds a real TradeManager (real RiskManager, real database) around both.
"""
from __future__ import annotations

import queue
from datetime import date
from pathlib import Path
from typing import Any

import db
from core.config import Secrets, load_config
from core.enums import PositionSide, SignalType
from core.types import Signal
from execution.commands import BrokerCommand
from gateway.results import Ok, OrderInfo, PositionInfo, Unavailable
from tests.daemon_harness import short_day_config
from tests.paper_fixtures import DAY, T


def info(oid: str, status: str, filled: int = 0, avg: float = 0.0, symbol: str = "SBIN", side: str = "BUY",
         quantity: int = 10) -> OrderInfo:
    """One order as the broker's orderstatus/orderbook gives it."""
    return OrderInfo.from_raw({"orderid": oid, "order_status": status, "symbol": symbol, "exchange": "NSE",
                               "action": side, "quantity": quantity, "filled_quantity": filled,
                               "average_price": avg, "strategy": "daemon"})


def position(symbol: str, qty: int, avg: float) -> PositionInfo:
    return PositionInfo.from_raw({"symbol": symbol, "exchange": "NSE", "product": "MIS", "quantity": qty,
                                  "average_price": avg})


class FakeGateway:
    def __init__(self) -> None:
        self.orders: dict[str, OrderInfo] = {}
        self.positions: list[PositionInfo] | None = []  # None: the positionbook cannot be read
        self.found: list[OrderInfo] | None = []  # what find_order answers; None: the orderbook cannot be read
        self.book_down = False  # the orderbook request fails
        self.asked: list[dict[str, Any]] = []  # find_order's criteria, in order
        self.calls: list[str] = []

    def order_status(self, orderid: str, strategy: str, budget_wait_s: float | None = None) -> Any:
        self.calls.append(f"orderstatus {orderid}")
        return Ok(self.orders[orderid], {})

    def orderbook(self, budget_wait_s: float | None = None) -> Any:
        self.calls.append("orderbook")
        return Unavailable("down") if self.book_down else Ok(list(self.orders.values()), {})

    def positionbook(self) -> Any:
        self.calls.append("positionbook")
        return Unavailable("down") if self.positions is None else Ok(list(self.positions), {})

    def find_order(self, **kw: Any) -> Any:
        self.calls.append("find_order")
        self.asked.append({k: list(v) if isinstance(v, list) else v for k, v in kw.items()})  # as asked then
        return Unavailable("down") if self.found is None else Ok(list(self.found), {})

    def margin(self, positions: Any) -> Any:
        return Unavailable("no margin here")  # the configured margin_multiplier stays

    def close(self) -> None:
        pass


class FakeIO:
    def __init__(self) -> None:
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self.sent: list[BrokerCommand] = []
        self.tracked: dict[int, str] = {}

    def send(self, cmd: BrokerCommand) -> None:
        self.sent.append(cmd)

    def track(self, order_id: int, broker_order_id: str, strategy: str) -> None:
        self.tracked[order_id] = broker_order_id

    def untrack(self, order_id: int) -> None:
        self.tracked.pop(order_id, None)

    def poll_now(self, order_id: int) -> None:
        pass

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


class FixedClock:
    """The daemon's clock, stopped at `at`."""

    def __init__(self, at: float) -> None:
        self.at = at

    def now(self) -> float:
        return self.at


def paper_trade_manager(tmp: Path, url: str, day: date = DAY, **sections: Any) -> Any:
    """A paper-mode TradeManager on the database at `url`, its gateway and broker threads replaced by fakes
    (tm.gateway, tm.io); its risk state loaded, nothing reconciled yet. `sections`: config overrides."""
    from trade_manager import TradeManager

    cfg = load_config(short_day_config(tmp, mode="paper", **sections))
    sec = Secrets(app_key="k", host_server="http://127.0.0.1:9", live_data=False, database_url=url,
                  fyers_app_id=None, fyers_access_token=None)
    tm = TradeManager(cfg, sec, db.DBHandler(db.initialize_database(url)), None, clock=FixedClock(T(10, 30)),
                      replay=False, day=day)
    tm.gateway.close()
    tm.gateway, tm.io = FakeGateway(), FakeIO()
    tm.rm.load()
    return tm


def signal(kind: SignalType, symbol: str = "SBIN", price: float = 600.0, minute: int = 0) -> Signal:
    return Signal(symbol=symbol, time=int(T(10, minute)), price=price, type=kind,
                  current_position=PositionSide.LONG, strategy="orb",
                  stop_loss=price * 0.99 if kind is SignalType.ENTRY else None)

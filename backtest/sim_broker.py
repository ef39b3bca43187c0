"""The backtest's broker: an in-process fill model behind the TradeManager's broker port (execution.broker_port).

Fill model (README "Backtest"):
- A market order fills in full at the price of the data point it was decided on (at its ask for a buy, its bid
  for a sell, when the tick carries them, as the paper broker fills), moved against the order by the slippage
  (a buy pays price x (1 + slippage), a sell gets price x (1 - slippage)), rounded to the paisa.
  The runner feeds a 1-minute candle as the ticks open, the two extremes, close (backtest.ticks); a strategy
  acts on a closed candle at the first tick after it, which is the next candle's open: so a signal on a
  candle's close fills at the next candle's open plus slippage, and a stop or target seen at an extreme fills
  at that extreme. Nothing fills at a price the data had not reached when the order was decided.
- Every order is answered at once (accepted, then complete), so the TradeManager books it before the next tick.
  No partial fills, rejections, latency or liquidity limits are modelled.
"""
from __future__ import annotations

import logging
import math
import queue
from collections.abc import Iterable, Mapping
from typing import Any

from execution.broker_io import BrokerAnswer, CancelAnswered, LookedUp, Placed, Probed, StatusSeen
from execution.commands import BrokerCommand, CancelOrder, FindOrder, ProbeBroker, SubmitOrder
from gateway.results import Accepted, CallResult, Ok, OrderInfo, PositionInfo, Rejected

log = logging.getLogger(__name__)


class FillModel:
    """Market orders at the last price of their symbol, slippage against the order, to the paisa. A tick that
    carries the touch (recorded days) fills a buy at its ask and a sell at its bid, as the paper broker does."""

    def __init__(self, slippage_pct: float):
        self.slip = slippage_pct / 100.0

    def price(self, last: float, buy: bool, bid: float | None = None, ask: float | None = None) -> float:
        side = ask if buy else bid
        base = side if side is not None and 0 < side < math.inf else last
        return round(base * (1.0 + self.slip) if buy else base * (1.0 - self.slip), 2)


class BacktestBroker:
    """Takes the TradeManager's commands and answers them as a broker would, at the data's prices."""

    def __init__(self, fills: FillModel):
        self.fills = fills
        self.events: queue.SimpleQueue[BrokerAnswer] = queue.SimpleQueue()
        self.last: dict[str, float] = {}      # symbol -> price of the data point being run
        self.touch: dict[str, tuple[float | None, float | None]] = {}  # symbol -> its (bid, ask), if it had them
        self.now = 0                          # its time (epoch seconds)
        self._orders: dict[str, dict[str, Any]] = {}  # broker order id -> the order's raw book row
        self._net: dict[str, tuple[int, float]] = {}  # symbol -> (signed quantity, average price)
        self._where: dict[str, tuple[str, str]] = {}  # symbol -> (exchange, product) of its orders
        self._seq = 0

    # ---------------------------------------------------------------- the runner
    def mark(self, symbol: str, price: float, t: int, bid: float | None = None, ask: float | None = None) -> None:
        """The data point about to be run: what an order decided on it fills at."""
        self.last[symbol] = price
        self.touch[symbol] = (bid, ask)
        self.now = t

    def pending(self) -> bool:
        return not self.events.empty()

    def new_day(self) -> None:
        self._orders.clear()

    # ---------------------------------------------------------------- the broker port
    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass

    def send(self, cmd: BrokerCommand) -> None:
        if isinstance(cmd, SubmitOrder):
            self.events.put(Placed(cmd.order_id, self._place(cmd)))
        elif isinstance(cmd, CancelOrder):  # every order is final as soon as it is placed
            self.events.put(CancelAnswered(cmd.order_id, Rejected("order is already complete", 400)))
        elif isinstance(cmd, FindOrder):
            self.events.put(LookedUp(cmd.order_id, Ok([])))
        elif isinstance(cmd, ProbeBroker):
            self.events.put(Probed(True))
        else:
            raise TypeError(f"not a broker command: {cmd!r}")

    def track(self, order_id: int, broker_order_id: str, strategy: str) -> None:
        row = self._orders.get(broker_order_id)
        if row is not None:
            self.events.put(StatusSeen(order_id, Ok(OrderInfo.from_raw(row), row)))

    def untrack(self, order_id: int) -> None:
        pass

    def poll_now(self, order_id: int) -> None:
        pass

    # ---------------------------------------------------------------- books (reconciliation, sizing)
    def order_status(self, orderid: str, strategy: str) -> CallResult[OrderInfo]:
        row = self._orders.get(orderid)
        return Ok(OrderInfo.from_raw(row), row) if row is not None else Rejected("order not found", 404)

    def orderbook(self) -> CallResult[list[OrderInfo]]:
        return Ok([OrderInfo.from_raw(r) for r in self._orders.values()])

    def positionbook(self) -> CallResult[list[PositionInfo]]:
        return Ok([PositionInfo.from_raw({"symbol": s, "exchange": self._where[s][0], "product": self._where[s][1],
                                          "quantity": q, "average_price": a}) for s, (q, a) in self._net.items() if q])

    def find_order(self, *, symbol: str, exchange: str, side: str, quantity: int, strategy: str,
                   placed_after_epoch: float, exclude_broker_ids: Iterable[str] = ()) -> CallResult[list[OrderInfo]]:
        return Ok([])

    def margin(self, positions: Iterable[Mapping[str, Any]]) -> CallResult[dict[str, Any]]:
        return Ok({})  # no broker margin: the configured margin_multiplier applies

    # ---------------------------------------------------------------- fills
    def _place(self, cmd: SubmitOrder) -> Accepted | Rejected:
        last = self.last.get(cmd.symbol)
        if last is None:
            return Rejected(f"no price for {cmd.symbol} yet", 400)
        buy = cmd.action == "BUY"
        price = self.fills.price(last, buy, *self.touch.get(cmd.symbol, (None, None)))
        self._seq += 1
        oid = f"BT{self._seq}"
        self._orders[oid] = {"orderid": oid, "order_status": "complete", "symbol": cmd.symbol,
                             "exchange": cmd.exchange, "action": cmd.action, "quantity": cmd.quantity,
                             "filled_quantity": cmd.quantity, "average_price": price, "price": 0,
                             "pricetype": cmd.pricetype, "product": cmd.product, "strategy": cmd.strategy,
                             "timestamp": self.now}
        self._where[cmd.symbol] = (cmd.exchange, cmd.product)
        q, avg = self._net.get(cmd.symbol, (0, 0.0))
        dq = cmd.quantity if buy else -cmd.quantity
        nq = q + dq
        self._net[cmd.symbol] = (nq, price if nq and (q == 0 or (q > 0) != (nq > 0)) else avg)
        return Accepted(oid)

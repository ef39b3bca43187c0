"""The broker as the TradeManager sees it, so something other than OpenAlgo can stand there.

Live and paper trading use execution.broker_io.BrokerIO (threads calling the OpenAlgo gateway). A backtest puts
an in-process fill model (backtest.sim_broker) in the same place: it takes the same commands and answers with
the same events, so the TradeManager's decision, order and books paths are the ones that trade live.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from execution.commands import BrokerCommand
from execution.reconcile import BrokerBooks
from gateway.results import CallResult


class AnswerQueue(Protocol):
    """Where the broker's answers wait for the TradeManager's thread (queue.SimpleQueue is one)."""

    def get_nowait(self) -> Any: ...

    def empty(self) -> bool: ...


class BrokerPort(Protocol):
    """What the TradeManager asks of the broker threads: commands in, answers (broker_io events) out."""

    @property
    def events(self) -> AnswerQueue: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def send(self, cmd: BrokerCommand) -> None: ...

    def track(self, order_id: int, broker_order_id: str, strategy: str) -> None: ...

    def untrack(self, order_id: int) -> None: ...

    def poll_now(self, order_id: int) -> None: ...


class SimulatedBroker(BrokerPort, BrokerBooks, Protocol):
    """An in-process broker: the broker threads' commands and the books reconciliation and sizing read."""

    def margin(self, positions: Iterable[Mapping[str, Any]]) -> CallResult[dict[str, Any]]: ...

    def close(self) -> None: ...

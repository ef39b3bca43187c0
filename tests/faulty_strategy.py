"""A strategy for tests only, loaded by config as kind "tests.faulty_strategy:EnterThenRaise" (a module:Class
kind; the production registry does not know it). It buys on its `enter_on_tick`-th tick, holds until the
square-off, and raises on its `raise_on_tick`-th tick (0: never), so a run with the fault and one without it
should trade exactly alike."""
from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from core.enums import PositionSide, SignalType
from core.types import Signal, Tick
from strategies.base import Strategy, tick_time_and_price


class StrategyBug(RuntimeError):
    """What the faulty strategy raises: a bug in a trader's strategy."""


@dataclass(frozen=True)
class Params:
    enter_on_tick: int = 20
    raise_on_tick: int = 100
    decimal_stop: bool = False  # the entry's stop as a Decimal: a value the event pipe cannot carry
    unsafe_state: bool = False  # state_dict() holds a deque: a value a checkpoint cannot carry


class EnterThenRaise(Strategy):
    kind = "tests.faulty_strategy:EnterThenRaise"
    Params = Params

    def __init__(self, *a: Any, **kw: Any):
        super().__init__(*a, **kw)
        self.ticks = 0

    def on_tick(self, tick: Tick) -> Signal | None:
        self.ticks += 1
        if self.params.raise_on_tick and self.ticks >= self.params.raise_on_tick:
            raise StrategyBug(f"bug on tick {self.ticks}")
        tp = tick_time_and_price(tick)
        if self.ticks == self.params.enter_on_tick and self.position is None and tp is not None:
            t, price = tp
            self.position = PositionSide.LONG
            stop: Any = Decimal(str(round(price * 0.99, 2))) if self.params.decimal_stop else round(price * 0.99, 2)
            return self.signal(int(t), price, SignalType.ENTRY, PositionSide.LONG, stop_loss=stop)
        return None

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"params": asdict(self.params), "ticks": self.ticks,
                                 "position": None if self.position is None else self.position.value}
        if self.params.unsafe_state:
            state["recent"] = deque([self.ticks], maxlen=20)
        return state

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.ticks = int(state["ticks"])
        self.position = None if state["position"] is None else PositionSide(state["position"])

"""Watching a held option's premium: when to look, what the broker quoted, and whether it closes the position.

A bought option is closed when its premium reaches the stop or the target (options.exits, from the entry's own
fill price), or when its expiry rolls (on the expiry's day from `roll_after`, or at the close). The premium is the
broker's quote for the contract, read every CHECK_EVERY_S seconds:
- in a replay, at fixed points of the data's clock (multiples of CHECK_EVERY_S) with the paper broker's clock
  held at that point, so a replayed day checks the same premiums every run;
- live, by a thread of its own (PremiumPoller) that reads every held contract's quote each cycle and hands the
  readings to the trading thread, which never waits on HTTP for them.
"""
from __future__ import annotations

import logging
import math
import queue
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as dtime

from options.exits import ExitLevels, exit_levels
from options.expiry import rolled_past
from options.spec import OptionsSpec

log = logging.getLogger(__name__)

CHECK_EVERY_S = 5             # seconds between two looks at a held option's premium
DEFAULT_TICK = 0.05           # NSE index options' tick, when the contract's own was not seen today
PREMIUM_STOP = "premium_stop"
PREMIUM_TARGET = "premium_target"
EXPIRY_ROLL = "expiry_roll"


@dataclass(frozen=True)
class PremiumSeen:
    """The broker's LTP of a contract, read at `time` (epoch seconds)."""

    symbol: str
    ltp: float
    time: float


def next_check(after: float, every: int = CHECK_EVERY_S) -> int:
    """The first check point strictly after `after`: a multiple of `every` on the epoch's grid, so a replay
    looks at the same seconds whenever its ticks arrive."""
    return (math.floor(after / every) + 1) * every


def levels(spec: OptionsSpec, entry: float, tick: float | None) -> ExitLevels:
    """Stop and target on the premium from the entry's fill price."""
    if not entry > 0 or (spec.stop is None and spec.target is None):
        return ExitLevels(None, None)
    return exit_levels(entry, spec.stop, spec.target, tick or DEFAULT_TICK)


def exit_reason(ltp: float, lv: ExitLevels) -> str | None:
    """premium_stop at or below the stop, premium_target at or above the target; None otherwise (or no price)."""
    if not ltp > 0:
        return None
    if lv.stop is not None and ltp <= lv.stop:
        return PREMIUM_STOP
    if lv.target is not None and ltp >= lv.target:
        return PREMIUM_TARGET
    return None


def expiry_rolled(expiry: date, at: datetime, roll_after: dtime | None) -> bool:
    """A held contract is closed once its expiry rolls: on its day from roll_after (or the close)."""
    return rolled_past(expiry, at.date(), at.time().replace(tzinfo=None), roll_after)


class PremiumPoller:
    """Live: reads the held contracts' quotes every `every_s` seconds on its own thread; the trading thread takes
    the readings with `take()` and decides on them. `held()` is called on the poller's thread and must be a cheap,
    thread-safe snapshot (a frozenset the trading thread replaces)."""

    def __init__(self, quote: Callable[[str], float | None], held: Callable[[], Collection[str]],
                 clock: Callable[[], float], every_s: float = CHECK_EVERY_S):
        self.quote = quote
        self.held = held
        self.clock = clock
        self.every_s = every_s
        self.readings: queue.Queue[PremiumSeen] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="premium-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def take(self) -> list[PremiumSeen]:
        out: list[PremiumSeen] = []
        while True:
            try:
                out.append(self.readings.get_nowait())
            except queue.Empty:
                return out

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            for symbol in sorted(self.held()):
                try:
                    ltp = self.quote(symbol)
                except Exception as e:  # noqa: BLE001 - a failed read is retried next cycle; trading goes on
                    log.warning("could not read the premium of %s: %s", symbol, e)
                    continue
                if ltp is not None:
                    self.readings.put(PremiumSeen(symbol, ltp, self.clock()))

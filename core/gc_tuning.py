"""Garbage-collector settings for the processes that handle every tick (the feed process, the workers), and
for the driver, which handles every signal.

Why: every tick allocates a few container objects (the Fyers dict, its values tuple, a record), so at
CPython's default threshold (700 allocations) a young-generation collection runs every hundred-odd ticks,
and the survivors it promotes make the older collections walk ever more objects. Nothing on the tick path
makes reference cycles that must be freed soon, so collections are made rarer, and what start-up built
(modules, configuration, strategies) is moved out of their way. Cycles are still collected, only in
larger, rarer passes.
"""
from __future__ import annotations

import gc

YOUNG_EVERY = 20_000  # allocations (net of frees) between young-generation collections; default 700


def tune_for_ticks() -> None:
    """Call once start-up is done, just before the process starts taking ticks."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_EVERY, 10, 10)


def settle_driver() -> None:
    """Call once the driver's start-up is done (TradeManager, database, workers), before the feed starts.

    Why: what start-up built (SQLAlchemy's mappers, the configuration, the books) is tens of thousands of
    objects that a full collection would walk again every time, stalling every signal then in flight for
    milliseconds. Frozen, they are out of its way; the thresholds stay the default, since the driver allocates
    per event, not per tick."""
    gc.collect()
    gc.freeze()

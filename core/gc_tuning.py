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
# the feed process when ticks come in real time (live, paced replay): a collection stops every tick in flight,
# and its pause grows with what survived since the last one. At 20,000 the paced bench's feed process paused
# ~9 ms of CPU per young collection and ~28 ms per middle one (loaded host), each tick then waiting that long;
# ten times as often, each pause is about a tenth. Full speed keeps the larger, rarer passes (throughput).
REAL_TIME_YOUNG_EVERY = 2_000


def tune_for_ticks(young_every: int = YOUNG_EVERY) -> None:
    """Call once start-up is done, just before the process starts taking ticks."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(young_every, 10, 10)


def settle_driver() -> None:
    """Call once the driver's start-up is done (TradeManager, database, workers), before the feed starts.

    Why: what start-up built (SQLAlchemy's mappers, the configuration, the books) is tens of thousands of
    objects that a full collection would walk again every time, stalling every signal then in flight for
    milliseconds. Frozen, they are out of its way; the thresholds stay the default, since the driver allocates
    per event, not per tick."""
    gc.collect()
    gc.freeze()

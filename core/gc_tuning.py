"""Garbage-collector settings for the processes that handle every tick (the feed process, the workers).

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

"""The feed's TickValidator on its own (pure logic): every reason, the feed clock, the first tick of a day and
a real gap in the data; and the TickBatcher it sits in front of."""
from __future__ import annotations

import math

from pipeline.batcher import TickBatcher
from pipeline.messages import decode_frame, encode_frame
from pipeline.tick_validator import (
    AHEAD,
    BACKWARDS,
    BAD_PRICE,
    BAD_TIMESTAMP,
    DUPLICATE,
    MISSING_SYMBOL,
    NON_NUMERIC_PRICE,
    NOT_A_DICT,
    PRICE_OUT_OF_RANGE,
    UNKNOWN_SYMBOL,
    TickValidator,
)

T0 = 1_795_140_900  # 2026-11-20 09:15 IST
SBIN, LT = "NSE:SBIN-EQ", "NSE:LT-EQ"


def validator(**kw) -> TickValidator:
    opts = {"max_ahead_s": 60, "gap_confirm_ticks": 3, "max_price_move_pct": 40, "start": T0}
    opts.update(kw)
    return TickValidator({SBIN, LT}, **opts)


def tick(sym: str = SBIN, ltp: float = 600.0, ts: int = T0, **kw) -> dict:
    return {"symbol": sym, "ltp": ltp, "exch_feed_time": ts, "prev_close_price": 590.0 if sym == SBIN else 3600.0,
            "vol_traded_today": ts - T0 if type(ts) is int else 0, **kw}


def test_each_kind_of_bad_tick_has_its_reason():
    v = validator()
    good = tick(ts=T0 + 10)
    cases = [([1, 2], NOT_A_DICT), ({"ltp": 1.0}, MISSING_SYMBOL), (tick(sym="NSE:NOPE-EQ"), UNKNOWN_SYMBOL),
             (tick(ltp="600"), NON_NUMERIC_PRICE), (tick(ltp=None), NON_NUMERIC_PRICE), (tick(ltp=0.0), BAD_PRICE),
             (tick(ltp=-600.0), BAD_PRICE), (tick(ltp=math.nan), BAD_PRICE), (tick(ltp=math.inf), BAD_PRICE),
             (tick(ltp=1e12), PRICE_OUT_OF_RANGE), (tick(ltp=6000.0), PRICE_OUT_OF_RANGE),
             (tick(ts=None), BAD_TIMESTAMP), (tick(ts="soon"), BAD_TIMESTAMP), (tick(ts=math.nan), BAD_TIMESTAMP),
             (good, None), (dict(good), DUPLICATE), (tick(ts=T0 + 9), BACKWARDS),
             (tick(ts=T0 + 6 * 3600), AHEAD)]
    assert [v.check(t) for t, _ in cases] == [r for _, r in cases]
    v.finish()  # the far-future tick was held in quarantine until now
    assert v.accepted == 1 and v.rejected == len(cases) - 1
    assert v.counts[BAD_PRICE] == 4 and v.counts[NON_NUMERIC_PRICE] == 2


def test_a_duplicate_is_identical_in_every_field_to_the_symbols_last_accepted_tick():
    v = validator()
    first = tick(ts=T0 + 1)
    assert v.check(first) is None
    assert v.check(tick(ts=T0 + 1, vol_traded_today=99)) is None  # same second, same price: a new trade
    assert v.check(tick(ts=T0 + 1, vol_traded_today=99)) == DUPLICATE
    assert v.check(tick(sym=LT, ltp=3600.0, ts=T0 + 1, vol_traded_today=99)) is None  # another symbol's
    assert v.check(dict(first)) is None  # identical to an older tick, not the last one: not a duplicate


def test_price_bound_uses_prev_close_else_the_last_accepted_price():
    v = validator()
    assert v.check(tick(ltp=590 * 1.39)) is None and v.check(tick(ltp=590 * 1.41, ts=T0 + 1)) == PRICE_OUT_OF_RANGE
    bare = {"symbol": LT, "exch_feed_time": T0}
    assert v.check({**bare, "ltp": 3000.0}) is None  # no prev close and no history: nothing to compare with
    assert v.check({**bare, "ltp": 3000.0 * 1.5, "exch_feed_time": T0 + 1}) == PRICE_OUT_OF_RANGE
    assert v.check({**bare, "ltp": 3000.0 * 1.3, "exch_feed_time": T0 + 1}) is None


def test_a_far_future_tick_is_quarantined_and_never_moves_the_clock():
    v = validator(start=T0 + 45 * 60)  # a replay from 10:00
    assert v.check(tick(ts=T0 + 45 * 60)) is None and v.clock == T0 + 45 * 60
    assert v.check(tick(sym=LT, ltp=3600.0, ts=T0 + 6 * 3600 + 5 * 60)) == AHEAD  # 15:20
    assert v.clock == T0 + 45 * 60
    for k in range(1, 200):  # the rest of the day goes on: nothing later is "going backwards"
        assert v.check(tick(sym=(SBIN, LT)[k % 2], ltp=(600.0, 3600.0)[k % 2], ts=T0 + 45 * 60 + k)) is None
    assert v.counts == {AHEAD: 1}


def test_the_first_tick_of_the_day_is_judged_against_the_start_not_trusted():
    v = validator()
    assert v.check(tick(ts=T0 + 6 * 3600)) == AHEAD
    assert v.check(tick(ts=T0 - 10 * 60)) is None  # a pre-open tick is behind the open, not ahead
    assert v.clock == T0


def test_a_gap_in_the_data_moves_the_clock_once_ticks_from_two_symbols_agree_and_loses_nothing():
    v = validator()
    assert v.check(tick(ts=T0)) is None
    gap = T0 + 20 * 60
    held = [tick(ts=gap), tick(ts=gap + 1, vol_traded_today=5)]
    assert [v.admit(t) for t in held] == [[], []]  # held: one symbol alone is not enough
    third = tick(sym=LT, ltp=3600.0, ts=gap + 2)
    assert v.admit(third) == [*held, third]  # from a second symbol: a gap, and every held tick goes on, in order
    assert v.clock == gap + 2 and v.counts == {}
    assert v.check(tick(ts=gap + 3)) is None


def test_one_symbol_alone_never_makes_a_gap_and_each_held_tick_is_counted_once():
    v = validator()
    assert v.check(tick(ts=T0)) is None
    for k in range(10):
        assert v.check(tick(ts=T0 + 1200 + k)) == AHEAD
    assert v.counts == {AHEAD: 8}  # two still held: counted when a tick within the clock comes, or at the end
    v.finish()
    assert v.counts == {AHEAD: 10} and v.clock == T0


def test_far_future_ticks_that_disagree_or_are_interrupted_never_make_a_gap():
    v = validator()
    assert v.check(tick(ts=T0)) is None
    for k in range(1, 10):  # each far ahead, but each more than max_ahead_s from the one before
        assert v.check(tick(sym=(SBIN, LT)[k % 2], ltp=(600.0, 3600.0)[k % 2], ts=T0 + 600 * k + 3600)) == AHEAD
    for k in range(1, 10):  # agreeing, but a good tick comes between each pair
        assert v.check(tick(sym=LT, ltp=3600.0, ts=T0 + 7200 + k)) == AHEAD
        assert v.check(tick(ts=T0 + k)) is None
    assert v.clock == T0 + 9 and v.counts == {AHEAD: 18}


def test_live_the_clock_is_never_behind_the_wall_clock():
    now = [T0 + 3600.0]
    v = validator(start=None, wall=lambda: now[0])
    assert v.check(tick(ts=T0 + 3600 + 30)) is None  # a quiet hour is not a gap: the wall clock moved
    assert v.check(tick(ts=T0 + 3600 + 600)) == AHEAD
    now[0] += 600
    assert v.check(tick(ts=T0 + 3600 + 600)) is None


def test_the_batcher_never_routes_or_clocks_a_rejected_tick():
    cycles = []
    v = validator()
    b = TickBatcher({SBIN: 0, LT: 1}, 2, cycles.append, validator=v)
    for t in (tick(ts=T0 + 1), tick(ltp=-1.0, ts=T0 + 2), tick(ts=T0 + 6 * 3600), {"s": "ok", "type": "cn"},
              "junk", tick(sym=LT, ltp=3600.0, ts=T0 + 2), tick(sym=LT, ltp=3600.0, ts=T0 + 7200)):
        b.dispatch(t)
    b.flush(final=True)
    (c,) = cycles
    assert c.counts == (1, 1) and c.feed_time == T0 + 2 and c.not_ticks == 1
    assert dict(c.rejected) == {BAD_PRICE: 1, AHEAD: 2, NOT_A_DICT: 1}  # the last one, held, counted at the end
    frame = decode_frame(encode_frame(1, T0 + 2, 1, 0.0, c.batches[0]))  # as the worker reads it
    assert [t.exch_feed_time for t in frame.ticks] == [T0 + 1] and frame.positions == [1]


def test_the_plain_path_decides_as_admit_does_on_a_mixed_stream():
    """admit_plain (the feed's path for nearly every tick) accepts only what admit() accepts, leaves the rest to
    it untouched, and so ends in the same state: a seeded stream of good ticks, every bad kind, equal times,
    bools, a gap that proves itself and stamps far ahead."""
    import random

    rnd = random.Random(14)
    stream: list = []
    ts = T0
    for k in range(4000):
        ts += rnd.choice((0, 0, 1, 1, 2, -1, 0))
        sym = rnd.choice((SBIN, LT))
        base = 600.0 if sym == SBIN else 3600.0
        t = tick(sym=sym, ltp=round(base * rnd.uniform(0.7, 1.3), 2), ts=ts, vol_traded_today=k)
        roll = rnd.random()
        if roll < 0.03:
            t["ltp"] = rnd.choice((None, "1", 0, -1.0, math.nan, math.inf, True, 10**9))
        elif roll < 0.06:
            t["exch_feed_time"] = rnd.choice((None, "x", True, math.nan, ts + 7200, ts - 30, float(ts)))
        elif roll < 0.08:
            t["prev_close_price"] = rnd.choice((None, 0, "590", -5.0, math.inf))
        elif roll < 0.09:
            t["symbol"] = rnd.choice(("", None, "NSE:NOPE-EQ"))
        elif roll < 0.10 and stream:
            t = dict(stream[-1])  # a duplicate, if its time is its symbol's last
        elif roll < 0.11:
            ts += 3600  # a real gap: the clock must jump once enough ticks agree
        stream.append(t)
    general, plain = validator(gap_confirm_ticks=3), validator(gap_confirm_ticks=3)
    out_general = [t for m in stream for t in general.admit(m)]
    out_plain = []
    for m in stream:
        if plain.admit_plain(m):
            out_plain.append(m)
        else:
            out_plain.extend(plain.admit(m))
    general.finish()
    plain.finish()
    assert [id(t) for t in out_plain] == [id(t) for t in out_general]
    assert plain.counts == general.counts and plain.accepted == general.accepted and plain.clock == general.clock
    assert plain.last == general.last
    assert 0 < plain.accepted < len(stream) and len(plain.counts) >= 7

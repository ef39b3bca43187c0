"""Strategy.absorb_quiet is a promise the backtest relies on (backtest.day_loop skips the ticks of the candles a
strategy takes in bulk): the state it reaches equals, field for field, the state running those candles' ticks
one by one gives, and nothing it skips would have signalled. Checked for the shipped kinds that implement it
(mac, orb) over seeded random days built to hit the edge cases: prices on a 0.05 grid with flat stretches (fast
and slow averages exactly equal), breakouts at exactly the range's edges, entries that fail (the strategy is
reset, as an Outcome resets it) so a day has many flat stretches. A kind that does not implement it takes
nothing."""
from __future__ import annotations

import random
from datetime import date, datetime, timedelta

import numpy as np
import pytest

from core.clock import ist_epoch
from core.config import load_config
from core.enums import SignalType
from core.types import Tick
from history.frames import CandleColumns
from strategies import strategy_class
from strategies.base import Candle
from strategies.candle_fold import clone
from strategies.candle_strategy import CandleStrategy
from strategies.candles import CandleAggregator
from strategies.indicators import INDICATORS
from strategies.rsi_reversion import RsiParams, RsiReversion
from tests.test_backtest_runner import ROOT

SECONDS = 60


def _day(seed: int, day: date, session) -> list[Candle]:
    """A session of 1-minute candles: a random walk on a 0.05 grid, with flat stretches and wide bars."""
    rng = random.Random(seed)
    t = ist_epoch(day, session.open)
    end = ist_epoch(day, session.close)
    price = rng.choice([100.0, 250.0, 1234.5])
    out = []
    flat = 0
    while t < end:
        if flat:
            flat -= 1
            o = h = lo = c = price
        else:
            if rng.random() < 0.03:
                flat = rng.randint(3, 30)
            o = price
            c = round(max(1.0, o + 0.05 * rng.randint(-8, 8)), 2)
            h = round(max(o, c) + 0.05 * rng.randint(0, 6 if rng.random() < 0.9 else 40), 2)
            lo = round(max(0.05, min(o, c) - 0.05 * rng.randint(0, 6 if rng.random() < 0.9 else 40)), 2)
            price = c
        out.append(Candle("SYM", t, SECONDS, o, h, lo, c, rng.randint(0, 5000)))
        t += SECONDS
    return out


def _ticks(c: Candle, cum: int) -> list[tuple[int, float, int]]:
    first, second = (c.low, c.high) if c.open - c.low <= c.high - c.open else (c.high, c.low)
    return [(c.start, c.open, cum), (c.start + 20, first, cum), (c.start + 40, second, cum),
            (c.start + 59, c.close, cum + c.volume)]


def _drive(make, candles: list[Candle], fail: set[int], bulk: bool, forced: frozenset = frozenset()):
    """The candles' ticks through a fresh strategy as the worker runs them (candles closed before the tick that
    closes them; an entry at a candle in `fail` is refused and the strategy reset; before the i-th tick of the
    k-th candle, (k, i) in `forced`, a position held is force-exited: the strategy reset, as a ForceExit resets
    it). With `bulk`, at each candle's first tick the strategy may take candles whole, as backtest.day_loop asks
    it: flat, absorb_quiet; holding, held_span, whose candles' ticks are then not run while the position stays
    (MarketDataHandler.held_tick), take_held taking the candles they closed once it ends. Returns the signals,
    the state after each candle's last tick (or after a bulk take ending at that candle), and how many candles
    were taken in bulk flat and holding."""
    strat = make()
    seconds = strat.candle_seconds
    agg = CandleAggregator("SYM", seconds) if seconds else None
    cols = CandleColumns.of(candles)
    cum = [0]
    for c in candles:
        cum.append(cum[-1] + c.volume)
    signals, states, taken, held = [], {}, 0, 0

    def force(k: int, i: int) -> None:
        if (k, i) in forced and strat.position is not None:
            strat.discard_signal()
            strat.reset_position_tracking()

    def tick(k: int, t: int, p: float, v: int) -> None:
        sig = None
        for closed in agg.add(t, p, v) if agg is not None else ():
            sig = strat.on_candle(closed) or sig
        sig = strat.run(Tick(ltp=p, vol_traded_today=v, last_traded_time=t, exch_feed_time=t,
                             symbol="NSE:SYM-EQ")) or sig
        if sig is not None:
            signals.append((k, t, sig.type.value, sig.current_position.value, sig.price, sig.stop_loss,
                            sig.take_profit_price, sig.note))
            if sig.type is SignalType.ENTRY and k in fail:
                strat.discard_signal()
                strat.reset_position_tracking()

    def end_held(run, m: int, seen: list) -> None:
        if m:
            strat.take_held(run, SECONDS, m)
            if agg is not None:
                agg.restart()
                for t, p, v in seen:
                    agg.add(t, p, v)

    k = 0
    while k < len(candles):
        if bulk and k and (agg is None or agg.open_start == candles[k - 1].start):
            run = CandleColumns(*(getattr(cols, f)[k - 1:] for f in ("start", "open", "high", "low", "close",
                                                                        "volume")))
            n = strat.absorb_quiet(run, SECONDS)
            assert 0 <= n < len(run)
            if n:
                last = k - 1 + n
                if agg is not None:
                    agg.restart()
                    for t, p, v in _ticks(candles[last], cum[last]):
                        agg.add(t, p, v)
                taken += n
                states[last] = strat.state_dict()
                k = last + 1
                continue
            side = strat.position
            if side is not None:
                before = strat.state_dict()
                n = strat.held_span(run, SECONDS)
                assert 0 <= n < len(run)
                assert strat.state_dict() == before, "held_span changes nothing"
            if side is not None and n:
                hm, going = 0, True
                seen: list[tuple[int, float, int]] = []
                for m in range(1, n + 1):
                    kk = k - 1 + m
                    for i, (t, p, v) in enumerate(_ticks(candles[kk], cum[kk])):
                        force(kk, i)
                        if going:
                            if strat.position is side:
                                if m != hm:
                                    hm, seen = m, []
                                seen.append((t, p, v))
                                continue
                            end_held(run, hm, seen)
                            going = False
                        tick(kk, t, p, v)
                    if not going:
                        states[kk] = strat.state_dict()
                if going:
                    end_held(run, hm, seen)
                    states[k - 1 + n] = strat.state_dict()
                held += n
                k += n
                continue
        for i, (t, p, v) in enumerate(_ticks(candles[k], cum[k])):
            force(k, i)
            tick(k, t, p, v)
        states[k] = strat.state_dict()
        k += 1
    return signals, states, taken, held


TREND_OR_FADE = {  # config.yaml's commented example
    "atr_period": 14, "stop": "2 atr",
    "indicators": {"fast": {"ema": 9}, "slow": {"ema": 21}, "rsi14": {"rsi": 14}, "bb": {"bollinger": [20, 2]}},
    "rules": {"trend_long": {"side": "long", "when": "fast crosses_above slow and rsi14 < 70",
                             "exit": "fast crosses_below slow", "target": "3 atr"},
              "stretched_short": {"side": "short", "when": "close > bb.upper and rsi14 > 70",
                                  "exit": "close <= bb.middle", "stop": "1%"}},
}
EVERY_KIND = {  # every indicator kind and condition kind, quick to warm, so a day enters and exits often
    "atr_period": 3, "stop": 0.5, "target": "0.4%",
    "indicators": {"s": {"sma": 3}, "e": {"ema": 4}, "r": {"rsi": 3}, "a": {"atr": 2}, "bb": {"bollinger": [5, 1]},
                   "md": {"macd": [2, 4, 2]}, "hi": {"highest": 6}, "lo": {"lowest": {"period": 6, "source": "close"}},
                   "roc": {"roc": 2}, "vw": "vwap", "orng": {"opening_range": 10}},
    "rules": {"breakout": {"side": "long", "when": "close crosses_above hi or (volume > 4000 and close > orng.high)",
                           "exit": "close < vw or md.histogram < 0", "stop": "1 atr"},
              "fade": {"side": "short", "when": "r > 80 and close >= bb.upper and roc > 0.1",
                       "exit": "close crosses_below s"},
              "dip": {"side": "long", "when": "close <= lo and e > s and a < atr", "exit": "r >= 50"}},
}


@pytest.mark.parametrize("kind_name,params", [
    ("ma_crossover", {}), ("ma_crossover", {"fast": 2, "slow": 3, "atr_period": 3}),
    ("ma_crossover", {"fast": 5, "slow": 8}),
    ("opening_range_breakout", {}), ("opening_range_breakout", {"range_minutes": 5, "max_entries_per_day": 3}),
    ("rsi", {}), ("rsi", {"period": 4, "oversold": 40.0, "overbought": 60.0, "take_profit_atr": 1.5}),
    ("rsi", {"period": 2, "atr_period": 3, "exit_level": 45.0}),
    ("momentum", {}), ("momentum", {"roc_period": 3, "threshold_pct": 0.1, "ema_period": 5, "take_profit_atr": 2.0}),
    ("momentum", {"roc_period": 1, "threshold_pct": 0.05, "ema_period": 2, "atr_period": 2}),
    ("rules", TREND_OR_FADE), ("rules", EVERY_KIND),
])
def test_a_bulk_take_reaches_the_state_running_every_tick_reaches(kind_name, params):
    cfg = load_config(ROOT / "config.yaml")
    kind = strategy_class(kind_name)
    name = kind_name
    p = params
    total = crossings = held_total = 0
    for seed in range(8):
        day = date(2025, 3, 3) + timedelta(days=seed)
        candles = _day(seed, day, cfg.session)
        fail = {k for k in range(len(candles)) if random.Random(seed * 7919 + k).random() < 0.6}

        def make():
            return kind("SYM", name, p, cfg.session)  # noqa: B023 - called within the iteration
        # forced exits (a cap, a halt, the square-off) at random ticks, some inside held folds
        forced = frozenset((k, i) for k in range(len(candles)) for i in range(4)
                           if random.Random(seed * 104729 + 4 * k + i).random() < 0.01)
        want, every, _, _ = _drive(make, candles, fail, bulk=False, forced=forced)
        got, states, taken, held = _drive(make, candles, fail, bulk=True, forced=forced)
        assert got == want, (seed, day)
        for k, state in states.items():
            assert state == every[k], (seed, k, datetime.fromtimestamp(candles[k].start))
        total += taken
        held_total += held
        crossings += len(want)
    assert crossings >= 8, "the days should signal: entries, exits, failed entries"
    assert total > 200, "flat stretches should be taken in bulk"
    assert held_total > 50, "stretches holding a position should be folded"


class _OwnReading(RsiReversion):
    """A user's subclass with its own read_candle: the fold's proofs are of the shipped rule, not of this one."""

    kind = "own_reading"

    def read_candle(self, candle: Candle) -> tuple[int, str, str]:
        return super().read_candle(candle)


class _NoProof(CandleStrategy):
    """A candle strategy that writes no fold_read: it proves nothing."""

    kind = "no_proof"
    Params = RsiParams

    def make_indicators(self):
        return {}

    def read_candle(self, candle: Candle) -> tuple[int, str, str]:
        return 0, "", ""


@pytest.mark.parametrize("kind", [_OwnReading, _NoProof, strategy_class("rsi")])
def test_a_kind_that_does_not_prove_its_rule_takes_nothing(kind):
    cfg = load_config(ROOT / "config.yaml")
    candles = _day(1, date(2025, 3, 3), cfg.session)
    strat = kind("SYM", "x", {}, cfg.session)
    strat.warm_up(candles[:1], candles[1].start)
    cols = CandleColumns.of(candles[1:])
    took = strat.absorb_quiet(cols, SECONDS)
    assert isinstance(cols.start, np.ndarray)
    if kind is strategy_class("rsi"):
        assert took > 0, "the shipped rule is proven: the same day is taken in bulk"
    else:
        assert took == 0


def test_a_clone_of_every_indicator_kind_continues_as_it_and_shares_nothing():
    """candle_fold.clone, the fold's cheap copy: after the same candles a clone has the original's state, and
    candles fed to the clone leave the original as it was."""
    cfg = load_config(ROOT / "config.yaml")
    candles = _day(3, date(2025, 3, 3), cfg.session)
    specs = {"sma": (3,), "ema": (4,), "rsi": (3,), "atr": (2,), "bollinger": (5, 1), "macd": (2, 4, 2),
             "highest": (6,), "lowest": (6,), "roc": (2,), "vwap": (), "opening_range": (10,)}
    assert set(specs) == set(INDICATORS)
    for kind, args in specs.items():
        ind = INDICATORS[kind](*args)
        for c in candles[:40]:
            ind.update(c)
        twin = clone(ind)
        assert twin.state_dict() == ind.state_dict(), kind
        before = ind.state_dict()
        for c in candles[40:80]:
            twin.update(c)
        assert ind.state_dict() == before, kind
        for c in candles[40:80]:
            ind.update(c)
        assert twin.state_dict() == ind.state_dict(), kind


def test_mac_answers_from_a_days_estimate_only_for_its_candles_and_windows():
    """mac's fold keeps the day's cross estimate between folds (ma_crossover._CrossScan): asked about other
    candles of the same times, or with other windows (a restored state), it answers as a strategy that never
    kept one."""
    cfg = load_config(ROOT / "config.yaml")
    kind = strategy_class("ma_crossover")
    one, other = _day(1, date(2025, 3, 3), cfg.session), _day(2, date(2025, 3, 3), cfg.session)
    assert [c.start for c in one] == [c.start for c in other]

    def fresh(state):
        s = kind("SYM", "mac", {}, cfg.session)
        s.load_state(state)
        return s

    strat = kind("SYM", "mac", {}, cfg.session)
    strat.warm_up(one[:40], one[40].start)
    before = strat.state_dict()
    assert strat.absorb_quiet(CandleColumns.of(one[40:]), SECONDS) > 0
    for state, cols in ((before, CandleColumns.of(other[40:])),       # same windows, other candles
                        (fresh(before).state_dict(), CandleColumns.of(one[41:]))):  # windows of before, not after
        strat.load_state(state)
        twin = fresh(state)
        assert strat.absorb_quiet(cols, SECONDS) == twin.absorb_quiet(cols, SECONDS)
        assert strat.state_dict() == twin.state_dict()


def test_mac_folds_the_same_when_its_estimate_covers_few_candles(monkeypatch):
    """An estimate shorter than the day (ma_crossover._CrossScan.LIMIT) is asked again where it ends: the same
    signals and states as every tick run, as with the whole day estimated."""
    from strategies.ma_crossover import _CrossScan

    monkeypatch.setattr(_CrossScan, "LIMIT", 7)
    cfg = load_config(ROOT / "config.yaml")
    kind = strategy_class("ma_crossover")
    total = 0
    for seed in range(3):
        candles = _day(seed, date(2025, 3, 3) + timedelta(days=seed), cfg.session)
        fail = {k for k in range(len(candles)) if random.Random(seed * 7919 + k).random() < 0.6}

        def make():
            return kind("SYM", "mac", {}, cfg.session)
        want, every, _, _ = _drive(make, candles, fail, bulk=False)
        got, states, taken, _ = _drive(make, candles, fail, bulk=True)
        assert got == want
        for k, state in states.items():
            assert state == every[k], (seed, k)
        total += taken
    assert total > 20


@pytest.mark.parametrize("params", [{}, {"range_minutes": 5, "max_entries_per_day": 3}])
def test_orb_folds_a_flat_day_whose_breakout_side_is_used(monkeypatch, params):
    """After an entry (refused or closed) orb is flat with that side disarmed until a price comes back inside
    it: absorb_quiet still takes the candles that can enter nothing, re-arming the side from their extremes as
    running their ticks does (the same signals and states as every tick run), and such stretches were taken,
    some of them re-arming a side."""
    cfg = load_config(ROOT / "config.yaml")
    kind = strategy_class("opening_range_breakout")
    real, seen = kind.absorb_quiet, {"taken": 0, "rearmed": 0}

    def counted(self, run, seconds):
        before = (self._armed_long, self._armed_short)
        n = real(self, run, seconds)
        if n and not all(before):
            seen["taken"] += n
            seen["rearmed"] += (self._armed_long, self._armed_short) != before
        return n
    monkeypatch.setattr(kind, "absorb_quiet", counted)
    for seed in range(8):
        candles = _day(seed, date(2025, 3, 3) + timedelta(days=seed), cfg.session)
        fail = {k for k in range(len(candles)) if random.Random(seed * 31 + k).random() < 0.5}

        def make():
            return kind("SYM", "orb", params, cfg.session)  # noqa: B023 - called within the iteration
        want, every, _, _ = _drive(make, candles, fail, bulk=False)
        got, states, _, _ = _drive(make, candles, fail, bulk=True)
        assert got == want, seed
        for k, state in states.items():
            assert state == every[k], (seed, k)
    assert seen["taken"] > 200 and seen["rearmed"] > 0, seen


def test_orb_takes_the_range_and_the_quiet_candles_after_it_in_one_fold():
    """One absorb_quiet call takes the candles that form the range and goes on past its end with the candles
    that stay inside it (the day loop asks no second time where a fold stopped), up to the breakout; running
    every tick gives the same signals and states."""
    cfg = load_config(ROOT / "config.yaml")
    kind = strategy_class("opening_range_breakout")
    day = date(2025, 3, 3)
    t0 = ist_epoch(day, cfg.session.open)
    prices = [100.0, 100.5, 99.5] + [100.0] * 40 + [101.0]  # range 99.5-100.5 in the first 15 minutes, breakout
    candles = [Candle("SYM", t0 + SECONDS * i, SECONDS, p, max(p, 100.0), min(p, 100.0), p, 10)
               for i, p in enumerate(prices)]
    strat = kind("SYM", "orb", {}, cfg.session)
    for t, p, v in _ticks(candles[0], 0):
        strat.run(Tick(ltp=p, vol_traded_today=v, last_traded_time=t, exch_feed_time=t, symbol="NSE:SYM-EQ"))
    n = strat.absorb_quiet(CandleColumns.of(candles), SECONDS)
    assert n == len(prices) - 2, "every candle but the breakout, the range's end crossed in the same call"
    assert candles[n].start >= t0 + 15 * 60
    want, every, _, _ = _drive(lambda: kind("SYM", "orb", {}, cfg.session), candles, set(), bulk=False)
    got, states, _, _ = _drive(lambda: kind("SYM", "orb", {}, cfg.session), candles, set(), bulk=True)
    assert got == want and [s[2] for s in got] == ["entry"]
    for k, state in states.items():
        assert state == every[k], k

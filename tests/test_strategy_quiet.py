"""Strategy.quiet_at is a promise the backtest relies on (MarketDataHandler.fold_quiet skips the strategy): at
every tick where a strategy says it is quiet, and that closes none of its candles, running the tick changes
nothing in its state and signals nothing. Checked over synthetic days for the shipped kinds, at the tick's own
price and at prices far above and below it."""
from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from core.config import load_config
from core.types import Tick
from history.synthetic import synthetic_day
from strategies import strategy_class
from strategies.candles import CandleAggregator
from tests.test_backtest_runner import ROOT


def _ticks(candles):
    for c in candles:
        for dt, p in ((0, c.open), (20, c.low), (40, c.high), (59, c.close)):
            yield c.start + dt, p


@pytest.mark.parametrize("name", ["orb", "mac"])
def test_a_quiet_strategy_is_unmoved_by_any_tick_inside_its_candle(name):
    cfg = load_config(ROOT / "config.yaml")
    spec = cfg.strategies[name]
    quiet = loud = 0
    for k in range(6):
        day = date(2025, 3, 3) + timedelta(days=k)
        candles = synthetic_day(f"SYM{k:03d}", "NSE", day, 60, session=cfg.session)
        if not candles:
            continue
        strat = strategy_class(spec.kind)(f"SYM{k:03d}", name, spec.params, cfg.session)
        seconds = strat.candle_seconds
        agg = CandleAggregator(strat.symbol, seconds) if seconds else None
        cum = 0
        for t, p in _ticks(candles):
            cum += 10

            def tick(price, t=t, cum=cum):
                return Tick(ltp=price, vol_traded_today=cum, last_traded_time=t, exch_feed_time=t, symbol="X")
            if strat.quiet_at(t) and (agg is None or agg.in_open_candle(t)):
                quiet += 1
                before = json.dumps(strat.state_dict(), sort_keys=True)
                for probe in (p, p * 1.5, p * 0.5):
                    assert strat.run(tick(probe)) is None, (name, t, probe)
                    assert json.dumps(strat.state_dict(), sort_keys=True) == before, (name, t, probe)
            else:
                loud += 1
            for c in (agg.update(tick(p)) if agg is not None else ()):
                strat.on_candle(c)
            strat.run(tick(p))
    assert quiet > 100 and loud > 100, (quiet, loud)  # both paths were exercised


def test_a_quiet_at_that_raises_disables_the_strategy_like_any_strategy_call():
    from market_data_handler import MarketDataHandler

    cfg = load_config(ROOT / "config.yaml")
    sym = cfg.symbols[0].symbol
    mdh = MarketDataHandler(cfg, [sym], emit=lambda *a: None)

    def broken(t):
        raise RuntimeError("user code")
    mdh.strategies[sym].quiet_at = broken
    assert mdh.fold_quiet(sym, 1_741_000_000, 100.0, 0) is False
    assert sym not in mdh.strategies and "quiet_at" in mdh.disabled[sym]

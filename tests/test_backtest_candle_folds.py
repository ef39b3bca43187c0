"""The rsi, momentum and rules kinds' bulk folds in the backtest (CandleStrategy.absorb_quiet / held_span /
take_held): a run where backtest.day_loop folds their quiet and held stretches trades and signals exactly as the
run where every tick of theirs goes through the strategy, and both kinds of fold did happen for each of them."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import yaml

from backtest.runner import BacktestSpec, run_backtest, signal_key
from core.config import load_config
from history.intervals import parse_interval
from history.synthetic import SyntheticSource
from market_data_handler import MarketDataHandler
from tests.test_backtest_runner import ROOT, _rows
from tests.test_strategy_absorb import TREND_OR_FADE

KINDS = {
    "rsi": {"kind": "rsi", "params": {"period": 7, "oversold": 35, "overbought": 65, "take_profit_atr": 2.0}},
    "momentum": {"kind": "momentum", "params": {"roc_period": 5, "threshold_pct": 0.2, "ema_period": 20}},
    "trend_or_fade": {"kind": "rules", "params": TREND_OR_FADE},
}
SYMBOLS = {"SBIN": "rsi", "RELIANCE": "rsi", "INFY": "momentum", "TCS": "momentum", "LT": "trend_or_fade",
           "ITC": "trend_or_fade"}


def _config(tmp: Path) -> Path:
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    raw["strategies"].update(KINDS)
    raw["symbols"] = [{"symbol": s, "strategy": k} for s, k in SYMBOLS.items()]
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_rsi_momentum_and_rules_folded_trade_as_running_every_tick(tmp_path, monkeypatch):
    cfg = load_config(_config(tmp_path))

    def spec(run_id: str) -> BacktestSpec:
        return BacktestSpec(cfg=cfg, source=SyntheticSource(cfg.replay.seed, cfg.session),
                            interval=parse_interval("1m"), first=date(2025, 3, 3), last=date(2025, 3, 6),
                            symbols=tuple(SYMBOLS), cache_dir=tmp_path / "cache", out_root=tmp_path / "out",
                            run_id=run_id, keep_signals=True)
    folds: dict[str, dict[str, int]] = {"quiet": {}, "held": {}}
    for what, name in (("quiet", "fold_candles"), ("held", "fold_held")):
        real = getattr(MarketDataHandler, name)

        def counted(self, sym, *args, _real=real, _seen=folds[what]):
            n = _real(self, sym, *args)
            _seen[SYMBOLS[sym]] = _seen.get(SYMBOLS[sym], 0) + n
            return n
        monkeypatch.setattr(MarketDataHandler, name, counted)
    folded = run_backtest(spec("folded"))
    for what, seen in folds.items():
        assert {k for k, n in seen.items() if n} == set(KINDS), (what, seen)
    monkeypatch.setattr(MarketDataHandler, "fold_candles", lambda self, *args: 0)
    monkeypatch.setattr(MarketDataHandler, "fold_held", lambda self, *args: 0)
    every = run_backtest(spec("every"))
    assert every.ticks_run > folded.ticks_run
    assert len(every.trades) >= 10
    assert _rows(folded) == _rows(every)
    assert [signal_key(s) for s in folded.signals] == [signal_key(s) for s in every.signals]

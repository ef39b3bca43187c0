"""The candle strategies' own cost per tick, as a worker drives them (candles, on_candle, run); ONE JSON line.

    .venv/bin/python bench/strategies.py [--days 20] [--repeat 3]

A random walk of ticks every 1-5 s over each session (09:10-15:20) feeds, per kind, one strategy instance:
rsi and momentum (the classes), rules_momentum (kind: rules saying what momentum says: same signals) and
rules_mixed (six indicators, three rules with fields, crosses and parentheses). Figures are ticks per second
(best of --repeat), signals counted so the work is seen to happen. A kind missing from the registry (an
older checkout) is reported as null.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import date, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.clock import ist_epoch  # noqa: E402
from core.config import SessionConfig  # noqa: E402
from core.types import Tick  # noqa: E402
from strategies import STRATEGY_KINDS, strategy_class  # noqa: E402
from strategies.candles import CandleAggregator  # noqa: E402

MOMENTUM = {"roc_period": 5, "threshold_pct": 0.1, "ema_period": 20, "atr_period": 7, "atr_multiple": 3.0,
            "take_profit_atr": 4.0}
KINDS: dict[str, tuple[str, dict[str, Any]]] = {
    "rsi": ("rsi", {"period": 7, "oversold": 35, "overbought": 65, "atr_period": 7, "atr_multiple": 3.0}),
    "momentum": ("momentum", MOMENTUM),
    "rules_momentum": ("rules", {
        "atr_period": 7, "stop": "3 atr", "target": "4 atr",
        "indicators": {"roc": {"roc": 5}, "trend": {"ema": 20}},
        "rules": {"long": {"side": "long", "when": "roc > 0.1 and close > trend", "exit": "close < trend"},
                  "short": {"side": "short", "when": "roc < -0.1 and close < trend", "exit": "close > trend"}}}),
    "rules_mixed": ("rules", {
        "atr_period": 7, "stop": "3 atr",
        "indicators": {"fast": {"ema": 5}, "slow": {"sma": 13}, "bb": {"bollinger": [20, 2]}, "r": {"rsi": 7},
                       "hi": {"highest": 15}, "m": {"macd": [5, 13, 4]}},
        "rules": {
            "trend": {"side": "long", "when": "fast crosses_above slow and m.histogram > 0",
                      "exit": "close < slow", "target": "1%"},
            "fade": {"side": "short", "when": "r crosses_below 70 or close > bb.upper", "exit": "r <= 45",
                     "stop": 2.5},
            "breakdown": {"side": "short", "when": "(close < bb.lower and volume > 0) or high >= hi",
                          "stop": "0.5%"}}}),
}


def ticks(days: int, seed: int = 7) -> list[Tick]:
    rng = random.Random(seed)
    out, vol, d = [], 0, date(2026, 11, 2)
    for _ in range(days):
        p, t, end = 500.0, ist_epoch(d, dtime(9, 10)), ist_epoch(d, dtime(15, 20))
        while t < end:
            p = round(max(1.0, p + rng.gauss(0, 0.15)), 2)
            vol += rng.randint(0, 40)
            out.append(Tick.from_feed({"ltp": p, "vol_traded_today": vol, "last_traded_time": t,
                                       "exch_feed_time": t, "symbol": "NSE:SBIN-EQ"}))
            t += rng.randint(1, 5)
        d += timedelta(days=1)
    return out


def run(kind: str, params: dict[str, Any], feed: list[Tick]) -> tuple[float, int]:
    s = strategy_class(kind)("SBIN", kind, params, SessionConfig())
    agg = CandleAggregator("SBIN", s.candle_seconds or 60)
    signals = 0
    t0 = time.perf_counter()
    for tk in feed:
        for c in agg.update(tk):
            s.on_candle(c)
        if s.run(tk) is not None:
            signals += 1
    return len(feed) / (time.perf_counter() - t0), signals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--days", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    feed = ticks(a.days)
    out: dict[str, Any] = {"ticks": len(feed)}
    for name, (kind, params) in KINDS.items():
        if kind not in STRATEGY_KINDS:
            out[f"{name}_ticks_per_s"] = out[f"{name}_signals"] = None
            continue
        runs = [run(kind, params, feed) for _ in range(a.repeat)]
        out[f"{name}_ticks_per_s"] = round(max(r[0] for r in runs))
        out[f"{name}_signals"] = runs[0][1]
    print(json.dumps(out))


if __name__ == "__main__":
    main()

"""A run's outputs: summary.json (backtest.metrics), trades.csv (the ledger's trade log), report.html
(backtest.report_html), and the run's row in the main database (backtest.runs)."""
from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path

from backtest import report_html
from backtest.metrics import Summary, daily_equity, positions, session_length_s, summarize
from backtest.runner import BacktestResult, BacktestSpec, TradeRecord

log = logging.getLogger(__name__)

TRADE_COLUMNS = ("trade_id", "trade_date", "symbol", "strategy", "side", "trade_type", "quantity", "entry_time",
                 "entry_price", "exit_time", "exit_price", "gross_pnl", "costs", "net_pnl", "brokerage", "stt",
                 "exchange_txn", "sebi", "stamp_duty", "gst", "exit_reason")


def summary_of(spec: BacktestSpec, result: BacktestResult) -> tuple[Summary, list[tuple[date, Decimal]]]:
    cfg = spec.cfg
    start = Decimal(str(cfg.risk.capital))
    equity = daily_equity(start, result.trades, result.days)
    s = summarize(result.trades, equity, start, risk_free_rate=cfg.backtest.risk_free_rate,
                  session_seconds=session_length_s(cfg.session.open, cfg.session.close))
    return s, equity


def write_trades(path: Path, trades: Sequence[TradeRecord]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(TRADE_COLUMNS)
        for t in trades:
            w.writerow([getattr(t, c) for c in TRADE_COLUMNS])
    os.replace(tmp, path)


def write_outputs(spec: BacktestSpec, result: BacktestResult, main_db_url: str | None = None,
                  record_run: bool = True) -> Summary:
    """Write the run's files (and its row in the main database); returns its summary."""
    summary, equity = summary_of(spec, result)
    out = result.out_dir
    out.mkdir(parents=True, exist_ok=True)
    d = summary.to_dict()
    d["run"] = {"run_id": result.run_id, "symbols": list(spec.symbols), "from": spec.first.isoformat(),
                "to": spec.last.isoformat(), "source": spec.source.key, "config_hash": result.config_hash,
                # recorded days run at tick resolution: no interval, and the count is of ticks
                **({"interval": "ticks", "ticks": result.candles} if spec.source.key.startswith("recorded:")
                   else {"interval": spec.interval.name, "candles": result.candles}),
                "elapsed_s": round(result.elapsed_s, 3), "skipped_symbol_days": result.skipped,
                "flagged_symbol_days_traded": result.flagged}
    tmp = out / "summary.json.tmp"
    tmp.write_text(json.dumps(d, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, out / "summary.json")
    write_trades(out / "trades.csv", result.trades)
    report_html.write(out / "report.html", summary, equity, positions(result.trades),
                      title=f"Backtest {result.run_id}")
    if record_run:
        from backtest.runs import RunRecord, record

        record(main_db_url, RunRecord(result.run_id, spec.first, spec.last, spec.symbols, result.config_hash, d,
                                      str(out)))
    return summary

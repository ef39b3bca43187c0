"""Backtest results: metrics from the ledger's closed trades and the daily equity, the HTML report, and the
side-by-side comparison of two runs. The runner that produces the trades calls these; nothing here trades."""

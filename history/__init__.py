"""Candle history for the backtest: where candles come from, the local cache, and what is wrong with them.

    sources.py          the interface every source offers the store, and HistoryError
    openalgo_source.py  OpenAlgo /api/v1/history through the official client
    fyers_source.py     Fyers history through the SDK
    files.py            DIR/SYMBOL.csv or DIR/SYMBOL.parquet
    synthetic.py        the replay's synthetic generator as candles (also what the paper broker serves)
    cache.py            one Parquet file per symbol and IST day, so a second read of a range asks no server
    quality.py          per symbol and day: gaps, duplicates, order, prices, ranges, split-like jumps
    store.py            the above together: prefetch a range, then iterate it a day at a time
    cli.py              `python driver.py history fetch ...`

Candles are strategies.base.Candle (the one definition), carried a day at a time as numpy columns
(frames.CandleColumns); epoch seconds, IST days.
"""

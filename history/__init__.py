"""Candle history for the backtest: where candles come from, the local cache, and what is wrong with them.

    sources  -- OpenAlgo /api/v1/history (official client), Fyers history (SDK), CSV/Parquet files, synthetic
    cache    -- one Parquet file per symbol and IST day, so a second read of a range asks no server
    quality  -- per symbol and day: gaps, duplicates, order, prices, ranges, split-like jumps
    store    -- the three together: prefetch a range, then iterate it a day at a time
    cli      -- `python driver.py history fetch ...`

Candles are strategies.base.Candle everywhere (the one definition); epoch seconds, IST days.
"""

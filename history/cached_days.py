"""The read side of the candle cache (history.cache) for a range of one symbol's days, at less cost per day.

Why a module of its own: history.cache writes and reads single days, asking the filesystem twice per day (is
there an empty marker, then open the Parquet file through pyarrow's filesystem layer, which costs more than
the decoding of a 375-row file). A backtest reads every day of a range, so here the symbol's folder is listed
once and each day's file is read whole into memory with one system call and decoded from that buffer, without
threads. The files, their names and what a day reads as are history.cache's; only the cost differs (the tests
compare the two readers day by day).
"""
from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from history.frames import SCHEMA, CandleColumns

_DTYPES = tuple(np.dtype(f.type.to_pandas_dtype()) for f in SCHEMA)


def read_day_file(path: str | os.PathLike[str]) -> CandleColumns:
    """One cached day's Parquet file as columns: its bytes in one read, decoded from memory. FileNotFoundError
    when it is gone."""
    with open(path, "rb") as f:
        data = f.read()
    return columns_of(pq.ParquetFile(pa.BufferReader(data)).read(use_threads=False))


def columns_of(table: pa.Table) -> CandleColumns:
    """CandleColumns.of_table's answer, as numpy views of Arrow's own buffers when the table is the cache's schema,
    each column one chunk without nulls (every file the cache wrote): pyarrow's to_numpy would import pandas (about
    0.3 CPU-s, once in each process) and costs more per column. Any other table goes through of_table (its cast,
    nulls as NaN)."""
    if table.schema != SCHEMA:
        return CandleColumns.of_table(table)
    out = []
    for col, dtype in zip(table.columns, _DTYPES, strict=True):
        if col.num_chunks != 1 or col.null_count:
            return CandleColumns.of_table(table)
        arr = col.chunk(0)
        data = arr.buffers()[1]
        if data is None:
            return CandleColumns.of_table(table)
        view = np.frombuffer(data, dtype=dtype, count=len(arr), offset=arr.offset * dtype.itemsize)
        view.flags.writeable = False  # read-only, as to_numpy's views are: the candles are not edited in place
        out.append(view)
    return CandleColumns(*out)


class CachedDays:
    """One symbol's cache folder as listed once: which days it answers and their candles. Built after the
    range's missing days were fetched (HistoryStore.prefetch), so it sees them; a day's file removed since the
    listing reads as not cached, as history.cache.CandleCache.read says of a missing file."""

    def __init__(self, folder: Path):
        self.folder = str(folder)
        try:
            self.names = frozenset(os.listdir(folder))
        except (FileNotFoundError, NotADirectoryError):
            self.names = frozenset()

    def has(self, day: date) -> bool:
        iso = day.isoformat()
        return f"{iso}.parquet" in self.names or f"{iso}.empty" in self.names

    def read(self, day: date) -> CandleColumns | None:
        """The day's candles (none when the source had none); None when the day is not cached. An empty marker
        wins over a data file, as in CandleCache.read."""
        iso = day.isoformat()
        if f"{iso}.empty" in self.names:
            return CandleColumns.of(())
        name = f"{iso}.parquet"
        if name not in self.names:
            return None
        try:
            return read_day_file(os.path.join(self.folder, name))
        except FileNotFoundError:
            return None

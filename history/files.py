"""Candles from a user's files: DIR/SYMBOL.csv or DIR/SYMBOL.parquet, one file per symbol.

Columns: timestamp (epoch seconds, or ISO 8601 with a UTC offset), open, high, low, close, volume -- the shape
OpenAlgo's history returns; other columns (oi) are ignored. A file is read in batches and only the rows of
the requested days are kept, so a year-long file never sits in memory whole; rows keep the file's order
(the quality checks judge it). The fingerprint is the file's size and modification time: an edited file
replaces its cached days.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import date, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from core.clock import ist_epoch
from history.frames import epoch_of, whole_volume
from history.intervals import Interval
from history.sources import HistoryError
from strategies.base import Candle

COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
BATCH_ROWS = 50_000


class FileSource:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise ValueError(f"--data {folder}: no such folder")
        digest = hashlib.blake2b(str(self.folder.resolve()).encode(), digest_size=4).hexdigest()
        self.key = f"files-{digest}"
        self.requests = 0

    def path(self, symbol: str) -> Path:
        found = [p for p in (self.folder / f"{symbol}.csv", self.folder / f"{symbol}.parquet") if p.is_file()]
        if not found:
            raise HistoryError(f"no {self.folder / symbol}.csv or .parquet -- one file per symbol, named SYMBOL.csv "
                               "or SYMBOL.parquet")
        if len(found) > 1:
            raise HistoryError(f"both {found[0].name} and {found[1].name} are in {self.folder}: keep one")
        return found[0]

    def check_interval(self, interval: Interval) -> None:
        return None

    def chunk_days(self, interval: Interval) -> int:
        return 31

    def fingerprint(self, symbol: str, exchange: str) -> str | None:
        st = self.path(symbol).stat()
        return f"{self.path(symbol).name}:{st.st_size}:{st.st_mtime_ns}"

    def _batches(self, path: Path) -> Iterator[pa.RecordBatch]:
        if path.suffix == ".parquet":
            f = pq.ParquetFile(path)
            missing = [c for c in COLUMNS if c not in f.schema_arrow.names]
            if missing:
                raise HistoryError(f"{path}: missing column(s) {', '.join(missing)} (need {', '.join(COLUMNS)})")
            yield from f.iter_batches(batch_size=BATCH_ROWS, columns=list(COLUMNS))
            return
        try:
            reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 20),
                                    convert_options=pacsv.ConvertOptions(
                                        include_columns=list(COLUMNS), column_types={"timestamp": pa.string()}))
        except (pa.ArrowInvalid, KeyError) as e:
            raise HistoryError(f"{path}: {e} (need columns {', '.join(COLUMNS)})") from None
        try:
            yield from reader
        except pa.ArrowInvalid as e:
            raise HistoryError(f"{path}: {e}") from None

    def fetch(self, symbol: str, exchange: str, interval: Interval, first: date, last: date) -> list[Candle]:
        path = self.path(symbol)
        lo, hi = ist_epoch(first, dtime(0, 0)), ist_epoch(last + timedelta(days=1), dtime(0, 0))
        self.requests += 1
        out: list[Candle] = []
        row = 0
        for batch in self._batches(path):
            cols: list[list[Any]] = [batch.column(name).to_pylist() for name in COLUMNS]
            for ts, o, h, low, c, v in zip(*cols, strict=True):
                row += 1
                try:
                    t = epoch_of(ts)
                    if lo <= t < hi:
                        out.append(Candle(symbol, t, interval.seconds, _price(o), _price(h), _price(low), _price(c),
                                          whole_volume(v)))
                except (TypeError, ValueError) as e:
                    raise HistoryError(f"{path}: data row {row}: {e}") from None
        return out


def _price(v: Any) -> float:
    """A missing price becomes NaN, which the quality checks report as a bad price."""
    return float("nan") if v is None else float(v)

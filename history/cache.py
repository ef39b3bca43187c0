"""The local candle cache: one Parquet file per source, exchange, interval, symbol and IST day.

    ROOT/SOURCE/EXCHANGE/INTERVAL/SYMBOL/2025-01-02.parquet   the day's candles, in the source's order
    ROOT/SOURCE/EXCHANGE/INTERVAL/SYMBOL/2025-01-04.empty     fetched, and the source had nothing that day
    ROOT/SOURCE/EXCHANGE/INTERVAL/SYMBOL/.fingerprint         what the source said its data was (files: size
                                                              and mtime); another answer drops the symbol's days

Why per day: the backtest reads a day at a time (memory stays bounded whatever the range), and a second run
over the same range reads only these files. Writes go to a temporary file renamed into place, so a killed
fetch leaves whole days or nothing. Only finished days are stored (the caller's rule): today's candles are
still coming.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq

from history.frames import CandleColumns, to_table
from history.intervals import Interval
from strategies.base import Candle

log = logging.getLogger(__name__)


def _part(name: str, what: str) -> str:
    if not name or name.startswith(".") or "/" in name or "\\" in name or "\0" in name:
        raise ValueError(f"{what} {name!r} cannot name a cache folder")
    return name


class CandleCache:
    def __init__(self, root: Path, source_key: str):
        self.root = Path(root)
        self.source_key = _part(source_key, "source")

    def folder(self, symbol: str, exchange: str, interval: Interval) -> Path:
        return (self.root / self.source_key / _part(exchange, "exchange") / interval.name
                / _part(symbol, "symbol"))

    def _paths(self, symbol: str, exchange: str, interval: Interval, day: date) -> tuple[Path, Path]:
        d = self.folder(symbol, exchange, interval)
        return d / f"{day.isoformat()}.parquet", d / f"{day.isoformat()}.empty"

    def has(self, symbol: str, exchange: str, interval: Interval, day: date) -> bool:
        data, empty = self._paths(symbol, exchange, interval, day)
        return data.exists() or empty.exists()

    def read(self, symbol: str, exchange: str, interval: Interval, day: date) -> CandleColumns | None:
        """The day's candles (none when the source had none); None when the day is not cached."""
        data, empty = self._paths(symbol, exchange, interval, day)
        if empty.exists():
            return CandleColumns.of(())
        try:
            table = pq.ParquetFile(data).read(use_threads=False)  # a few hundred rows: threads cost more
        except FileNotFoundError:
            return None
        return CandleColumns.of_table(table)

    def write(self, symbol: str, exchange: str, interval: Interval, day: date, candles: list[Candle]) -> None:
        data, empty = self._paths(symbol, exchange, interval, day)
        data.parent.mkdir(parents=True, exist_ok=True)
        if not candles:
            empty.touch()
            data.unlink(missing_ok=True)
            return
        fd, tmp = tempfile.mkstemp(prefix=".part-", dir=data.parent)
        os.close(fd)
        try:
            pq.write_table(to_table(candles), tmp)
            os.replace(tmp, data)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        empty.unlink(missing_ok=True)

    def check_fingerprint(self, symbol: str, exchange: str, interval: Interval, fingerprint: str | None) -> bool:
        """Keep the symbol's cached days if they came from data with this fingerprint; otherwise drop them and
        record the new one. True when the cache was kept. None: the source has no fingerprint (a server)."""
        if fingerprint is None:
            return True
        d = self.folder(symbol, exchange, interval)
        mark = d / ".fingerprint"
        try:
            if mark.read_text() == fingerprint:
                return True
        except FileNotFoundError:
            pass
        if d.exists():
            log.info("history cache: %s %s %s changed at the source; its cached days are dropped", symbol,
                     exchange, interval.name)
            shutil.rmtree(d)
        d.mkdir(parents=True, exist_ok=True)
        mark.write_text(fingerprint)
        return False

"""The record of backtest runs in the main database (table backtest_runs), for `backtest compare` and history.

The table is created here, on first use, with its own metadata: it is the backtest's, and the daemon's schema
(db.py) need not know it. One row per run: id, dates, symbols, config hash, the summary as JSON, and where its
reports are.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Column, Date, DateTime, MetaData, String, Table, Text, insert, select
from sqlalchemy.engine import Engine

from db import setup

log = logging.getLogger(__name__)

_meta = MetaData()
backtest_runs = Table(
    "backtest_runs", _meta,
    Column("run_id", String(64), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("first_day", Date, nullable=False),
    Column("last_day", Date, nullable=False),
    Column("symbols", Text, nullable=False),          # comma-separated
    Column("config_hash", String(64), nullable=False),
    Column("summary", Text, nullable=False),          # summary.json's content
    Column("out_dir", Text, nullable=False),
)


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    first_day: date
    last_day: date
    symbols: tuple[str, ...]
    config_hash: str
    summary: dict[str, Any]
    out_dir: str


def _engine(url: str | None) -> Engine:
    engine, _ = setup(url)
    _meta.create_all(engine, checkfirst=True)
    return engine


def record(url: str | None, rec: RunRecord) -> None:
    """Add the run (a run id is used once)."""
    with _engine(url).begin() as conn:
        conn.execute(insert(backtest_runs).values(
            run_id=rec.run_id, created_at=datetime.now(UTC), first_day=rec.first_day,
            last_day=rec.last_day, symbols=",".join(rec.symbols), config_hash=rec.config_hash,
            summary=json.dumps(rec.summary, sort_keys=True), out_dir=rec.out_dir))


def load(url: str | None, run_id: str) -> RunRecord | None:
    with _engine(url).connect() as conn:
        row = conn.execute(select(backtest_runs).where(backtest_runs.c.run_id == run_id)).mappings().first()
    if row is None:
        return None
    return RunRecord(row["run_id"], row["first_day"], row["last_day"], tuple(row["symbols"].split(",")),
                     row["config_hash"], json.loads(row["summary"]), row["out_dir"])

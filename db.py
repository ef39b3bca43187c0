"""Persistence: SQLAlchemy 2.x models, engine set-up for SQLite (default) or PostgreSQL (DATABASE_URL),
and DBHandler, the one place rows are written.

Each process calls `setup()` itself (engines do not cross a fork). Writes that fail roll back and raise
DatabaseError naming the operation; transient failures (SQLite `database is locked`, a PostgreSQL
server restart) are retried with back-off first, and the retry is logged.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import os
import threading
import time
import warnings
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

from sqlalchemy import (BigInteger, Boolean, Date, DateTime, Float, ForeignKey, Index, Integer, Numeric,
                        String, Text, UniqueConstraint, create_engine, delete, event, exc, func, insert,
                        select, text, update)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent
DEFAULT_SQLITE_PATH = PROJECT_ROOT / "data" / "trading.sqlite"
SCHEMA_VERSION = 1

# Money is Numeric; SQLite stores it as REAL-affinity NUMERIC and SQLAlchemy converts back to Decimal at
# the column's scale, which is exact for rupee amounts with 4 decimals.
warnings.filterwarnings("ignore", message=".*does \\*not\\* support Decimal objects natively.*")
Money = Numeric(20, 4, asdecimal=True)
Price = Numeric(14, 4, asdecimal=True)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class DatabaseError(Exception):
    """A database operation failed after retries; the message says which operation and why."""


class Base(DeclarativeBase):
    pass


# ------------------------------------------------------------------------------------------ models

class Order(Base):
    """The persisted order state machine (seed 002): a row exists before the broker hears of the order."""

    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_order_id: Mapped[str] = mapped_column(String(96), unique=True, nullable=False)
    signal_id: Mapped[str | None] = mapped_column(String(160), index=True)
    trade_id: Mapped[int | None] = mapped_column(Integer, index=True)
    trading_date: Mapped[date] = mapped_column(Date, nullable=False)
    symbol: Mapped[str] = mapped_column(String(32), nullable=False)
    exchange: Mapped[str] = mapped_column(String(16), nullable=False, default="NSE")
    side: Mapped[str] = mapped_column(String(4), nullable=False)          # BUY / SELL
    purpose: Mapped[str] = mapped_column(String(16), nullable=False)      # entry / exit / take_profit / square_off
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    product: Mapped[str] = mapped_column(String(8), nullable=False, default="MIS")
    price_type: Mapped[str] = mapped_column(String(8), nullable=False, default="MARKET")
    price: Mapped[Decimal | None] = mapped_column(Price)                  # reference price at decision time
    strategy_tag: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="CREATED")
    failure_tag: Mapped[str | None] = mapped_column(String(64))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    broker_order_id: Mapped[str | None] = mapped_column(String(64), index=True)
    broker_status: Mapped[str | None] = mapped_column(String(32))
    filled_quantity: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    average_price: Mapped[Decimal | None] = mapped_column(Price)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    decision_time: Mapped[int | None] = mapped_column(BigInteger)          # epoch s on the daemon clock
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow,
                                                 onupdate=utcnow)
    __table_args__ = (
        Index("ix_orders_status", "status"),
        Index("ix_orders_symbol_status", "symbol", "status"),
        Index("ix_orders_date", "trading_date"),
    )


class OrderEvent(Base):
    """Every status change of an order, with what caused it: the audit trail of broker conversations."""

    __tablename__ = "order_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20), nullable=False)
    detail: Mapped[str | None] = mapped_column(Text)


class Fill(Base):
    """A fill applied to our books; unique per (order, cumulative quantity) so a fill is never applied twice."""

    __tablename__ = "fills"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), nullable=False)
    cumulative_quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    price: Mapped[Decimal] = mapped_column(Price, nullable=False)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    __table_args__ = (UniqueConstraint("order_id", "cumulative_quantity", name="uq_fill_order_cumqty"),)


class ActiveTrade(Base):
    """An open position the daemon manages (seed ActiveTrades)."""

    __tablename__ = "active_trades"
    trade_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    symbol: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    strategy: Mapped[str] = mapped_column(String(64), nullable=False)
    side: Mapped[str] = mapped_column(String(8), nullable=False)            # long / short
    trading_date: Mapped[date] = mapped_column(Date, nullable=False)
    entry_time: Mapped[int] = mapped_column(BigInteger, nullable=False)    # epoch s
    entry_price: Mapped[Decimal] = mapped_column(Price, nullable=False)
    stop_loss: Mapped[Decimal | None] = mapped_column(Price)
    take_profit_price: Mapped[Decimal | None] = mapped_column(Price)
    position_size: Mapped[int] = mapped_column(Integer, nullable=False)    # quantity at entry
    remaining_quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    allocated: Mapped[Decimal] = mapped_column(Money, nullable=False)      # margin blocked
    margin_multiplier: Mapped[Decimal] = mapped_column(Numeric(8, 2), nullable=False)
    entry_order_id: Mapped[int | None] = mapped_column(Integer)
    realized_pnl_tp: Mapped[Decimal] = mapped_column(Money, nullable=False, default=Decimal(0))
    position_closed_tp: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    costs: Mapped[Decimal] = mapped_column(Money, nullable=False, default=Decimal(0))
    instrument: Mapped[str] = mapped_column(String(16), nullable=False, default="EQ")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow,
                                                 onupdate=utcnow)


class TradeLog(Base):
    """A closed (or partly closed) trade: one row per exit fill group, P&L at fill prices."""

    __tablename__ = "trade_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trade_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    trade_date: Mapped[date] = mapped_column(Date, nullable=False, index=True)
    symbol: Mapped[str] = mapped_column(String(32), nullable=False)
    strategy: Mapped[str] = mapped_column(String(64), nullable=False)
    side: Mapped[str] = mapped_column(String(8), nullable=False)
    trade_type: Mapped[str] = mapped_column(String(16), nullable=False)    # full / partial
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    entry_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    entry_price: Mapped[Decimal] = mapped_column(Price, nullable=False)
    exit_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    exit_price: Mapped[Decimal] = mapped_column(Price, nullable=False)
    gross_pnl: Mapped[Decimal] = mapped_column(Money, nullable=False)
    costs: Mapped[Decimal] = mapped_column(Money, nullable=False)
    net_pnl: Mapped[Decimal] = mapped_column(Money, nullable=False)
    capital_employed: Mapped[Decimal] = mapped_column(Money, nullable=False)
    capital_at_exit: Mapped[Decimal] = mapped_column(Money, nullable=False)
    percent_change: Mapped[float] = mapped_column(Float, nullable=False)
    exit_reason: Mapped[str] = mapped_column(String(32), nullable=False)
    exit_order_id: Mapped[int | None] = mapped_column(Integer)
    instrument: Mapped[str] = mapped_column(String(16), nullable=False, default="EQ")


class CapitalLog(Base):
    """Capital after each change, with why; the last row is the daemon's capital."""

    __tablename__ = "capital_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    trading_date: Mapped[date] = mapped_column(Date, nullable=False, index=True)
    trade_id: Mapped[int | None] = mapped_column(Integer)
    starting_capital: Mapped[Decimal] = mapped_column(Money, nullable=False)
    capital: Mapped[Decimal] = mapped_column(Money, nullable=False)
    change: Mapped[Decimal] = mapped_column(Money, nullable=False)
    percent_gain: Mapped[float] = mapped_column(Float, nullable=False)
    reason: Mapped[str] = mapped_column(String(64), nullable=False)


class StockSignal(Base):
    __tablename__ = "stock_signals"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    signal_id: Mapped[str] = mapped_column(String(160), nullable=False, index=True)
    symbol: Mapped[str] = mapped_column(String(32), nullable=False)
    strategy: Mapped[str] = mapped_column(String(64), nullable=False)
    time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    price: Mapped[float] = mapped_column(Float, nullable=False)
    type: Mapped[str] = mapped_column(String(16), nullable=False)
    current_position: Mapped[str] = mapped_column(String(8), nullable=False)
    stop_loss: Mapped[float | None] = mapped_column(Float)
    take_profit_price: Mapped[float | None] = mapped_column(Float)
    position_size: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    close_fraction: Mapped[float] = mapped_column(Float, nullable=False, default=1.0)
    note: Mapped[str | None] = mapped_column(Text)
    attempt_count: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    outcome: Mapped[str | None] = mapped_column(String(64))   # set by the TradeManager
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    __table_args__ = (Index("ix_stock_signals_symbol_time", "symbol", "time"),)


class MarketData(Base):
    """Fyers SymbolUpdate fields, one row per persisted tick."""

    __tablename__ = "market_data"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    symbol: Mapped[str] = mapped_column(String(48), nullable=False)
    ltp: Mapped[float | None] = mapped_column(Float)
    vol_traded_today: Mapped[int | None] = mapped_column(BigInteger)
    last_traded_time: Mapped[int | None] = mapped_column(BigInteger)
    exch_feed_time: Mapped[int | None] = mapped_column(BigInteger)
    bid_size: Mapped[int | None] = mapped_column(BigInteger)
    ask_size: Mapped[int | None] = mapped_column(BigInteger)
    bid_price: Mapped[float | None] = mapped_column(Float)
    ask_price: Mapped[float | None] = mapped_column(Float)
    last_traded_qty: Mapped[int | None] = mapped_column(BigInteger)
    tot_buy_qty: Mapped[int | None] = mapped_column(BigInteger)
    tot_sell_qty: Mapped[int | None] = mapped_column(BigInteger)
    avg_trade_price: Mapped[float | None] = mapped_column(Float)
    low_price: Mapped[float | None] = mapped_column(Float)
    high_price: Mapped[float | None] = mapped_column(Float)
    open_price: Mapped[float | None] = mapped_column(Float)
    prev_close_price: Mapped[float | None] = mapped_column(Float)
    type: Mapped[str | None] = mapped_column(String(4))
    ch: Mapped[float | None] = mapped_column(Float)
    chp: Mapped[float | None] = mapped_column(Float)
    instrument: Mapped[str | None] = mapped_column(String(16))
    lower_ckt: Mapped[float | None] = mapped_column(Float)
    upper_ckt: Mapped[float | None] = mapped_column(Float)
    __table_args__ = (Index("ix_market_data_symbol_time", "symbol", "exch_feed_time"),)


class KeyValue(Base):
    """Small named state documents (trading state, replay progress, schema version) as JSON."""

    __tablename__ = "daemon_state"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow,
                                                 onupdate=utcnow)


MARKET_DATA_COLUMNS: tuple[str, ...] = tuple(c.name for c in MarketData.__table__.columns if c.name != "id")

# ------------------------------------------------------------------------------------------ engines

_engines: dict[tuple[int, str], tuple[Engine, sessionmaker]] = {}
_engines_lock = threading.Lock()


def database_url(url: str | None = None) -> str:
    """Explicit URL, else DATABASE_URL, else the SQLite file under data/."""
    url = url or os.environ.get("DATABASE_URL") or ""
    if not url:
        DEFAULT_SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{DEFAULT_SQLITE_PATH}"
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


def safe_url(url: str) -> str:
    """The URL with any password masked, for messages."""
    from sqlalchemy.engine import make_url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL is reported by the caller
        return "<unparseable database URL>"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=15000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    # IMMEDIATE takes the write lock up front, so a read-then-write transaction waits on busy_timeout
    # instead of failing at once with "database is locked" when another process writes.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def setup(url: str | None = None, echo: bool = False) -> tuple[Engine, sessionmaker]:
    """Engine and session factory for this process (cached per process and URL)."""
    url = database_url(url)
    key = (os.getpid(), url)
    with _engines_lock:
        if key in _engines:
            return _engines[key]
        try:
            if url.startswith("sqlite"):
                engine = create_engine(url, echo=echo, connect_args={"timeout": 30, "check_same_thread": False})
                event.listen(engine, "connect", _sqlite_pragmas)
                event.listen(engine, "begin", _sqlite_begin)
            else:
                engine = create_engine(url, echo=echo, pool_size=10, max_overflow=20, pool_timeout=30,
                                       pool_recycle=1800, pool_pre_ping=True,
                                       insertmanyvalues_page_size=1000)
        except Exception as e:  # noqa: BLE001 - turned into a clear message
            raise DatabaseError(f"cannot use database {safe_url(url)}: {e}") from None
        factory = sessionmaker(bind=engine, autoflush=False, expire_on_commit=False)
        _engines[key] = (engine, factory)
        return engine, factory


def dispose_engines() -> None:
    with _engines_lock:
        for (pid, _), (engine, _f) in list(_engines.items()):
            if pid == os.getpid():
                engine.dispose()
        _engines.clear()


def initialize_database(url: str | None = None) -> Engine:
    engine, _ = setup(url)
    try:
        Base.metadata.create_all(engine)
        with Session(engine) as s, s.begin():
            if s.get(KeyValue, "schema_version") is None:
                s.add(KeyValue(key="schema_version", value=json.dumps(SCHEMA_VERSION)))
    except exc.SQLAlchemyError as e:
        raise DatabaseError(f"cannot create tables in {safe_url(str(engine.url))}: {_short(e)}") from None
    log.debug("database ready at %s", safe_url(str(engine.url)))
    return engine


def delete_database_tables(url: str | None = None, table_names: Sequence[str] | None = None) -> None:
    engine, _ = setup(url)
    tables = [Base.metadata.tables[n] for n in table_names] if table_names else None
    Base.metadata.drop_all(engine, tables=tables)


def check_connection(url: str | None = None) -> str:
    """Connect and run a trivial query; returns a description or raises DatabaseError."""
    engine, _ = setup(url)
    try:
        with engine.connect() as c:
            c.execute(text("SELECT 1"))
    except exc.SQLAlchemyError as e:
        raise DatabaseError(f"cannot connect to {safe_url(str(engine.url))}: {_short(e)}") from None
    return safe_url(str(engine.url))


def _short(e: BaseException) -> str:
    orig = getattr(e, "orig", None)
    return str(orig or e).strip().splitlines()[0] if str(orig or e).strip() else type(e).__name__


def is_transient(e: BaseException) -> bool:
    """Worth retrying: a locked SQLite file or a PostgreSQL connection that went away."""
    if isinstance(e, exc.OperationalError):
        msg = str(e).lower()
        return any(s in msg for s in ("database is locked", "database table is locked", "server closed",
                                      "connection refused", "could not connect", "terminating connection",
                                      "connection already closed", "ssl connection has been closed",
                                      "the database system is", "no connection to the server"))
    return isinstance(e, exc.DisconnectionError) or (isinstance(e, exc.DBAPIError) and e.connection_invalidated)


# ------------------------------------------------------------------------------------------ handler

T = TypeVar("T")


class DBHandler:
    """Every write goes through `_run`, which retries transient failures and rolls back on error."""

    def __init__(self, engine: Engine | None = None, retries: int = 8, backoff_s: float = 0.1):
        if engine is None:
            engine, _ = setup()
        self.engine = engine
        self.Session = sessionmaker(bind=engine, autoflush=False, expire_on_commit=False)
        self.retries = retries
        self.backoff_s = backoff_s
        self.is_postgres = engine.dialect.name == "postgresql"

    def _run(self, what: str, fn: Callable[[Session], T]) -> T:
        delay = self.backoff_s
        for attempt in range(1, self.retries + 1):
            session = self.Session()
            try:
                with session.begin():
                    result = fn(session)
                return result
            except exc.SQLAlchemyError as e:
                session.rollback()
                if is_transient(e) and attempt < self.retries:
                    log.warning("database busy or unreachable during %s (attempt %d/%d): %s; retrying in %.1fs",
                                what, attempt, self.retries, _short(e), delay)
                    time.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                raise DatabaseError(f"{what} failed: {_short(e)}") from e
            finally:
                session.close()
        raise AssertionError("unreachable")

    def transaction(self, what: str, fn: Callable[[Session], T]) -> T:
        """Run fn(session) in one transaction with the handler's retry and error policy."""
        return self._run(what, fn)

    # ---- seed interface
    def insert_records(self, records: Base | Iterable[Base]) -> None:
        items = [records] if isinstance(records, Base) else list(records)

        def go(s: Session) -> None:
            s.add_all(items)
            s.flush()
        self._run(f"insert into {items[0].__tablename__ if items else '?'}", go)

    def bulk_insert(self, model: type[Base], rows: Sequence[dict[str, Any]]) -> int:
        """Fast path for many plain rows: COPY on PostgreSQL, executemany on SQLite."""
        if not rows:
            return 0
        if self.is_postgres:
            return self._copy(model, rows)
        self._run(f"bulk insert into {model.__tablename__}", lambda s: s.execute(insert(model), list(rows)))
        return len(rows)

    def bulk_insert_tuples(self, model: type[Base], columns: Sequence[str], rows: Sequence[tuple]) -> int:
        """The hot path for ticks: rows already as tuples in `columns` order, no per-row dicts."""
        if not rows:
            return 0
        if self.is_postgres:
            return self._copy(model, rows, columns)
        sql = (f"INSERT INTO {model.__tablename__} ({', '.join(columns)}) "
               f"VALUES ({', '.join('?' * len(columns))})")
        self._run(f"bulk insert into {model.__tablename__}",
                  lambda s: s.connection().exec_driver_sql(sql, list(rows)))
        return len(rows)

    def _copy(self, model: type[Base], rows: Sequence[Any], columns: Sequence[str] | None = None) -> int:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        if columns is None:
            cols = list(rows[0].keys())
            for r in rows:
                w.writerow(["" if (v := r.get(c)) is None else v for c in cols])
        else:
            cols = list(columns)
            w.writerows(rows)  # csv writes None as an empty field, which COPY reads as NULL
        sql = f"COPY {model.__tablename__} ({', '.join(cols)}) FROM STDIN WITH (FORMAT csv)"
        delay = self.backoff_s
        for attempt in range(1, self.retries + 1):
            raw = self.engine.raw_connection()
            try:
                cur = raw.cursor()
                buf.seek(0)
                cur.copy_expert(sql, buf)
                raw.commit()
                return len(rows)
            except Exception as e:  # noqa: BLE001 - psycopg2 errors; classified below
                try:
                    raw.rollback()
                except Exception:  # noqa: BLE001 - the connection may be gone
                    pass
                transient = "connection" in str(e).lower() or "server" in str(e).lower()
                if transient and attempt < self.retries:
                    raw.invalidate()
                    log.warning("database unreachable during COPY into %s (attempt %d/%d); retrying in %.1fs",
                                model.__tablename__, attempt, self.retries, delay)
                    time.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                raise DatabaseError(f"bulk insert into {model.__tablename__} failed: "
                                    f"{str(e).strip().splitlines()[0]}") from e
            finally:
                raw.close()
        raise AssertionError("unreachable")

    def update_records(self, model: type[Base], record_id: Any, update_data: dict[str, Any],
                       id_column: str | None = None) -> None:
        col = getattr(model, id_column or model.__mapper__.primary_key[0].name)

        def go(s: Session) -> None:
            res = s.execute(update(model).where(col == record_id).values(**update_data))
            if res.rowcount == 0:
                raise DatabaseError(f"update {model.__tablename__}: no row with {col.key}={record_id!r}")
        self._run(f"update {model.__tablename__}", go)

    def query_records(self, model: type[Base], criteria: dict[str, Any] | None = None,
                      limit: int | None = None, order_by: Any = None) -> list[Any]:
        def go(s: Session) -> list[Any]:
            q = select(model)
            for k, v in (criteria or {}).items():
                q = q.where(getattr(model, k) == v)
            if order_by is not None:
                q = q.order_by(order_by)
            if limit:
                q = q.limit(limit)
            return list(s.scalars(q).all())
        return self._run(f"query {model.__tablename__}", go)

    def delete_records(self, model: type[Base], criteria: dict[str, Any]) -> int:
        if not criteria:
            raise ValueError("delete_records needs criteria; use delete_database_tables to drop everything")

        def go(s: Session) -> int:
            q = delete(model)
            for k, v in criteria.items():
                q = q.where(getattr(model, k) == v)
            return s.execute(q).rowcount
        return self._run(f"delete from {model.__tablename__}", go)

    def get_max_trade_id(self, model: type[Base] = TradeLog) -> int:
        def go(s: Session) -> int:
            return s.execute(select(func.max(model.trade_id))).scalar() or 0
        return self._run(f"max trade_id of {model.__tablename__}", go)

    def execute_sql(self, query: str, params: dict[str, Any] | None = None, fetch: bool = True) -> list[Any] | None:
        def go(s: Session) -> list[Any] | None:
            res = s.execute(text(query), params or {})
            return [tuple(r) for r in res.fetchall()] if fetch else None
        return self._run("raw SQL", go)

    # ---- small state documents
    def get_state(self, key: str, default: Any = None) -> Any:
        def go(s: Session) -> Any:
            row = s.get(KeyValue, key)
            return default if row is None else json.loads(row.value)
        return self._run(f"read state {key}", go)

    def set_state(self, key: str, value: Any) -> None:
        payload = json.dumps(value, default=str)

        def go(s: Session) -> None:
            row = s.get(KeyValue, key)
            if row is None:
                s.add(KeyValue(key=key, value=payload))
            else:
                row.value = payload
        self._run(f"write state {key}", go)

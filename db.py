"""Persistence: SQLAlchemy 2.x models, engine set-up for SQLite (default) or PostgreSQL (DATABASE_URL),
and DBHandler, the one place rows are written.

Each process calls `setup()` itself (engines do not cross a fork). Writes that fail roll back and raise
DatabaseError naming the operation; transient failures are retried first: SQLite's `database is locked` a
few times with back-off, an unreachable server (a PostgreSQL restart) for as long as `DBHandler.outage_s`,
logged once when it goes and once when it is back.
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
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    create_engine,
    event,
    exc,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker
from sqlalchemy.schema import CreateIndex

import db_exec
from core.enums import OrderStatus
from db_wal import AUTOCHECKPOINT_PAGES, JOURNAL_SIZE_LIMIT, WalCheckpointer
from execution.order_events import FillRow, OrderEventType
from execution.order_events import applied as planned

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent
DEFAULT_SQLITE_PATH = PROJECT_ROOT / "data" / "trading.sqlite"
SCHEMA_VERSION = 3  # 2: the per-charge cost breakdown on active_trades and trade_log; 3: outcome_note

# Money is Numeric; SQLite stores it as REAL-affinity NUMERIC and SQLAlchemy converts back to Decimal at
# the column's scale, which is exact for rupee amounts with 4 decimals.
warnings.filterwarnings("ignore", message=".*does \\*not\\* support Decimal objects natively.*")
Money = Numeric(20, 4, asdecimal=True)
Price = Numeric(14, 4, asdecimal=True)


def utcnow() -> datetime:
    return datetime.now(UTC)


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
    reserved: Mapped[Decimal | None] = mapped_column(Price)               # margin an entry holds while pending
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

    def apply(self, event: OrderEventType) -> list[Base]:
        """The only way an order changes: `event` is checked against the transition table, the columns it
        names are set, and the rows that record it (an OrderEvent, or a Fill) are returned for the caller's
        transaction. Raises IllegalTransition, changing nothing, when the order's status does not allow it."""
        return self.applied(event)[1]

    def applied(self, event: OrderEventType) -> tuple[dict[str, Any], list[Base]]:
        """`apply`, also returning the columns it set: what an UPDATE of the order's row by its id writes."""
        current = OrderStatus(self.status)
        change, row = planned(current, self.filled_quantity or 0, event)
        values = {**change.fields, "status": change.status.value, "updated_at": utcnow()}
        for name, value in values.items():
            setattr(self, name, value)
        if isinstance(row, FillRow):
            return values, [Fill(order=self, cumulative_quantity=row.cumulative_quantity, quantity=row.quantity,
                                 price=row.price)]
        if row is None:
            return values, []
        return values, [OrderEvent(order=self, from_status=row.from_status, to_status=row.to_status,
                                   detail=row.detail)]


class OrderEvent(Base):
    """Every status change of an order, with what caused it: the audit trail of broker conversations."""

    __tablename__ = "order_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20), nullable=False)
    detail: Mapped[str | None] = mapped_column(Text)
    # set from the order at flush, so an order and its first events are written in one flush
    order: Mapped[Order] = relationship(lazy="raise")


class Fill(Base):
    """A fill applied to our books; unique per (order, cumulative quantity) so a fill is never applied twice."""

    __tablename__ = "fills"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), nullable=False)
    cumulative_quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    price: Mapped[Decimal] = mapped_column(Price, nullable=False)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    order: Mapped[Order] = relationship(lazy="raise")
    __table_args__ = (UniqueConstraint("order_id", "cumulative_quantity", name="uq_fill_order_cumqty"),)


class ChargeColumns:
    """The charges behind `costs` (core.costs.CHARGE_NAMES); costs is their sum."""

    brokerage: Mapped[Decimal] = mapped_column(Money, nullable=False, default=Decimal(0))
    stt: Mapped[Decimal] = mapped_column(Money, nullable=False, default=Decimal(0))
    exchange_txn: Mapped[Decimal] = mapped_column(Money, nullable=False, default=Decimal(0))
    sebi: Mapped[Decimal] = mapped_column(Money, nullable=False, default=Decimal(0))
    stamp_duty: Mapped[Decimal] = mapped_column(Money, nullable=False, default=Decimal(0))
    gst: Mapped[Decimal] = mapped_column(Money, nullable=False, default=Decimal(0))


class ActiveTrade(ChargeColumns, Base):
    """An open position the daemon manages (seed ActiveTrades); the charge columns hold its entry's charges."""

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


class TradeLog(ChargeColumns, Base):
    """A closed (or partly closed) trade: one row per exit fill group, P&L at fill prices; costs (the sum of
    the charge columns) are this exit order's charges, plus the entry's on the row that closes the trade."""

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
    outcome: Mapped[str | None] = mapped_column(String(64))   # an OutcomeStatus value, set by the TradeManager
    outcome_note: Mapped[str | None] = mapped_column(Text)    # what the outcome's status does not say
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    # by time alone: a start reads the day's signals of every symbol (execution.reconcile), which the symbol-first
    # index cannot serve, so without it each start scanned every signal the database ever held
    __table_args__ = (Index("ix_stock_signals_symbol_time", "symbol", "time"), Index("ix_stock_signals_time", "time"))


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


class OperatorControl(Base):
    """A control an operator gave (pause, resume, flatten, halt): recorded before the trading thread acts on
    it, then its outcome. An older database gets the table at start-up (create_all makes missing tables)."""

    __tablename__ = "controls"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trading_date: Mapped[date] = mapped_column(Date, nullable=False, index=True)
    action: Mapped[str] = mapped_column(String(32), nullable=False)   # pause / resume / flatten / flatten_all / halt
    symbol: Mapped[str | None] = mapped_column(String(32))
    who: Mapped[str] = mapped_column(String(128), nullable=False)     # where it came from (dashboard and client)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="REQUESTED")  # DONE / REFUSED / FAILED
    note: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_time: Mapped[int | None] = mapped_column(BigInteger)    # epoch s on the daemon clock (replay: data time)


def disabled_strategies_key(day: date) -> str:
    """The daemon_state row of a day's disabled strategies: {symbol: {strategy, reason, time}}."""
    return f"disabled_strategies:{day.isoformat()}"


MARKET_DATA_COLUMNS: tuple[str, ...] = tuple(c.name for c in MarketData.__table__.columns if c.name != "id")

class Unit(Protocol):
    """A transaction that Core statements run in, with a place for rows not written yet: a Session, or a
    CoreUnit (a plain Connection's, cheaper where no ORM object is involved)."""

    @property
    def info(self) -> dict[Any, Any]: ...

    def connection(self) -> Connection: ...


class CoreUnit:
    """A Connection's transaction seen as a Unit (DBHandler.unit)."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.info: dict[Any, Any] = {}

    def connection(self) -> Connection:
        return self.conn


def insert_row(s: Unit, model: type[Base], values: dict[str, Any]) -> int:
    """One row through SQLAlchemy Core in `s`'s transaction (no unit-of-work bookkeeping): a None value is left
    out, so the column's default applies as the ORM would; returns the new primary key."""
    table = model.__table__
    stmt = _INSERTS.get(model)
    if stmt is None:
        stmt = _INSERTS[model] = insert(table)  # type: ignore[arg-type]
    key = db_exec.run(s.connection(), stmt, {k: v for k, v in values.items() if v is not None}).primary_key
    if key is None:
        raise DatabaseError(f"the database gave no id for the new {table.name} row")  # type: ignore[attr-defined]
    return key


def write_state(conn: Connection, key: str, payload: str) -> None:
    """Replace the state document `key` with `payload` (JSON) in `conn`'s transaction: one UPDATE, or an INSERT
    when the key is new."""
    if db_exec.run(conn, _SET_STATE, {"k": key, "value": payload, "updated_at": utcnow()}).rowcount == 0:
        db_exec.run(conn, _NEW_STATE, {"key": key, "value": payload, "updated_at": utcnow()})


_INSERTS: dict[type[Base], Any] = {}
_STATE = cast(Table, KeyValue.__table__)
_GET_STATE = select(_STATE.c.value).where(_STATE.c.key == bindparam("k"))
_SET_STATE = update(_STATE).where(_STATE.c.key == bindparam("k"))  # SET: the parameters that name columns
_NEW_STATE = insert(_STATE)

# ------------------------------------------------------------------------------------------ engines

_engines: dict[tuple[int, str], tuple[Engine, sessionmaker]] = {}
_engines_lock = threading.Lock()
_checkpointers: dict[tuple[int, str], WalCheckpointer] = {}  # one per SQLite file engine (db_wal)


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


# page cache of a connection that bulk-inserts ticks (KiB): the (symbol, exch_feed_time) index's inner pages and
# each symbol's latest leaf, so a row's index insert seldom reads a page back (SQLite's default is 2 MiB)
BULK_CACHE_KIB = 16384


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=15000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")  # db_wal's thread checkpoints instead
    cur.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")  # so the log's file size is its length (db_wal)
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    # IMMEDIATE takes the write lock up front, so a read-then-write transaction waits on busy_timeout
    # instead of failing at once with "database is locked" when another process writes. Sent on the driver's
    # connection itself: through exec_driver_sql it cost 15 us more per transaction, on every order's path
    # (a failure raises sqlite3's OperationalError, which transient_kind reads as SQLAlchemy's).
    conn.connection.driver_connection.execute("BEGIN IMMEDIATE")


def stop_checkpointer(url: str) -> None:
    """Leave this SQLite file's log to its commits' own checkpoints (db_wal off for it): a backtest's run
    database has one writer and no order waiting on a commit, and its folder may be removed while this process
    lives, where the thread's next checkpoint would create a log file in a folder being deleted."""
    key = (os.getpid(), database_url(url))
    with _engines_lock:
        cp = _checkpointers.pop(key, None)
    if cp is not None:
        cp.stop()


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
                path = engine.url.database
                if path and path != ":memory:" and not path.startswith("file:"):
                    _checkpointers[key] = WalCheckpointer(str(Path(path).resolve()))
                    _checkpointers[key].start()
            else:
                engine = create_engine(url, echo=echo, pool_size=10, max_overflow=20, pool_timeout=30,
                                       pool_recycle=1800, pool_pre_ping=True,
                                       insertmanyvalues_page_size=1000)
        except Exception as e:  # noqa: BLE001 - turned into a clear message
            raise DatabaseError(f"cannot use database {safe_url(url)}: {e}") from None
        factory = sessionmaker(bind=engine, autoflush=False, expire_on_commit=False)
        _engines[key] = (engine, factory)
        return engine, factory


def release_engine(url: str) -> None:
    """Close this process's engine for `url` and forget it: a backtest's run database is done with once its
    trades are read, and an optimisation runs thousands of them in one process (each engine kept its file, log
    and -shm open: descriptors run out, and a deleted run's disk space is never given back)."""
    key = (os.getpid(), database_url(url))
    with _engines_lock:
        entry = _engines.pop(key, None)
        cp = _checkpointers.pop(key, None)
    if cp is not None:
        cp.stop()
    if entry is not None:
        entry[0].dispose()


def dispose_engines() -> None:
    with _engines_lock:
        for (pid, _), (engine, _f) in list(_engines.items()):
            if pid == os.getpid():
                engine.dispose()
        _engines.clear()
        for (pid, _), ck in list(_checkpointers.items()):
            if pid == os.getpid():
                ck.stop()
        _checkpointers.clear()


def _tables_present(insp: Any) -> list[Table]:
    """The model's tables the database already has (create_all made the others whole)."""
    existing = set(insp.get_table_names())
    return [t for t in Base.metadata.sorted_tables if t.name in existing]


def _add_missing_indexes(engine: Engine) -> list[str]:
    """create_all makes a missing table's indexes, never a new index of a table that exists: each is made here,
    in a transaction of its own. Another process upgrading the same database may make one first (on PostgreSQL
    both can find it missing, and the second CREATE fails): an index there after a failed CREATE counts as made.
    One on a column the table lacks (a column _add_missing_columns could not add) is left out, with a warning."""
    wanted: list[tuple[str, Index]] = []
    with engine.connect() as conn:
        insp = inspect(conn)
        for table in _tables_present(insp):
            have = {i["name"] for i in insp.get_indexes(table.name)}
            columns = {c["name"] for c in insp.get_columns(table.name)}
            for index in sorted(table.indexes, key=lambda i: str(i.name)):
                if index.name in have:
                    continue
                lacking = [c.name for c in index.columns if c.name not in columns]
                if lacking:
                    log.warning("index %s not made: %s.%s is missing", index.name, table.name, ", ".join(lacking))
                    continue
                wanted.append((table.name, index))
    added: list[str] = []
    for table_name, index in wanted:
        try:
            with engine.begin() as conn:
                conn.execute(CreateIndex(index, if_not_exists=True))
        except exc.SQLAlchemyError:
            with engine.connect() as conn:
                if index.name not in {i["name"] for i in inspect(conn).get_indexes(table_name)}:
                    raise
            continue
        added.append(f"index {index.name}")
    return added


def _add_missing_columns(engine: Engine) -> list[str]:
    """create_all makes missing tables, never missing columns: a database from an earlier version gets each
    new column that can be added safely (nullable, or with a constant default) by ALTER TABLE ADD COLUMN."""
    added: list[str] = []
    with engine.begin() as conn:
        insp = inspect(conn)
        for table in _tables_present(insp):
            have = {c["name"] for c in insp.get_columns(table.name)}
            for col in table.columns:
                if col.name in have:
                    continue
                default = col.default.arg if col.default is not None and col.default.is_scalar else None
                if not col.nullable and default is None:
                    log.warning("%s.%s is missing and cannot be added without a default; recreate the table",
                                table.name, col.name)
                    continue
                ddl = f"ALTER TABLE {table.name} ADD COLUMN {col.name} {col.type.compile(dialect=engine.dialect)}"
                if isinstance(default, str):
                    ddl += " DEFAULT '" + default.replace("'", "''") + "'"
                elif default is not None:
                    ddl += f" DEFAULT {int(default) if isinstance(default, bool) else default}"
                if not col.nullable:
                    ddl += " NOT NULL"
                conn.exec_driver_sql(ddl)
                added.append(f"{table.name}.{col.name}")
        for table in ("active_trades", "trade_log"):
            if f"{table}.brokerage" in added:  # before version 2, costs was the flat brokerage
                conn.exec_driver_sql(f"UPDATE {table} SET brokerage = costs")
        if "stock_signals.outcome_note" in added:  # before version 3, outcome held "status: note"
            rows = conn.execute(text("SELECT id, outcome FROM stock_signals WHERE outcome IS NOT NULL")).all()
            for row_id, was in rows:
                status, _, note = was.partition(": ")
                conn.execute(text("UPDATE stock_signals SET outcome = :o, outcome_note = :n WHERE id = :i"),
                             {"o": status, "n": note or None, "i": row_id})
    return added


def initialize_database(url: str | None = None) -> Engine:
    engine, _ = setup(url)
    try:
        Base.metadata.create_all(engine)
        added = _add_missing_columns(engine) + _add_missing_indexes(engine)
        if added:
            log.info("database upgraded: added %s", ", ".join(added))
        with Session(engine) as s, s.begin():
            row = s.get(KeyValue, "schema_version")
            if row is None:
                s.add(KeyValue(key="schema_version", value=json.dumps(SCHEMA_VERSION)))
            elif json.loads(row.value) < SCHEMA_VERSION:
                row.value = json.dumps(SCHEMA_VERSION)
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


_LOCKED = ("database is locked", "database table is locked")
_GONE = ("server closed", "connection refused", "could not connect", "terminating connection",
         "connection already closed", "ssl connection has been closed", "the database system is",
         "no connection to the server", "server terminated", "connection not open", "cannot connect now",
         "could not receive data from server", "could not send data to server", "broken pipe",
         "connection reset")


def transient_kind(e: BaseException) -> str | None:
    """'locked' (SQLite: another writer holds the file), 'unreachable' (the server went away: restart,
    network), or None for an error retrying cannot fix. Takes SQLAlchemy's wrappers and raw DBAPI errors."""
    if isinstance(e, exc.DisconnectionError) or (isinstance(e, exc.DBAPIError) and e.connection_invalidated):
        return "unreachable"
    if not any(c.__name__ in ("OperationalError", "InterfaceError") for c in type(e).__mro__):
        return None
    msg = str(e).lower()
    if any(s in msg for s in _LOCKED):
        return "locked"
    if any(s in msg for s in _GONE):
        return "unreachable"
    return None


class _Outage:
    """This process's view of the database being unreachable: one WARNING when it goes (and a reminder every
    REMIND_S while it stays away), one INFO when it is back, whichever thread notices; and the start of the
    outage, from which every held operation's deadline is counted. An outage nobody has met for STALE_S
    (no operation retrying) is over as far as this process knows: the next failure starts a new one."""

    REMIND_S = 5.0
    STALE_S = 10.0

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.since: float | None = None
        self.said = self.last = 0.0
        self.held = 0

    def failed(self, e: BaseException, limit_s: float, first: bool) -> float:
        """An operation met the outage (`first`: for the first time); returns when the outage began."""
        with self.lock:
            now = time.monotonic()
            if self.since is not None and now - self.last > self.STALE_S:
                self.since = None
            self.last = now
            say = None
            if self.since is None:
                self.since = self.said = now
                self.held = 0
                say = "begin"
            elif now - self.said >= self.REMIND_S:
                self.said = now
                say = "remind"
            self.held += first
            since = self.since
        if say == "begin":
            log.warning("database unavailable (%s): holding writes and retrying for up to %gs; nothing is sent to "
                        "the broker before its record is written", _short(e), limit_s)
        elif say == "remind":
            log.warning("database still unavailable after %.0fs; writes held (giving up in %.0fs)", now - since,
                        max(0.0, since + limit_s - now))
        return since

    def end(self) -> None:
        with self.lock:
            if self.since is None:
                return
            down, held, self.since, self.held = time.monotonic() - self.since, self.held, None, 0
        log.info("database available again after %.1fs: %d held operation(s) retried and written", down, held)


_outage = _Outage()


# ------------------------------------------------------------------------------------------ handler

T = TypeVar("T")


class DBHandler:
    """Every write goes through `_retry`, which retries transient failures and rolls back on error.

    A locked SQLite file is retried `retries` times with back-off. An unreachable server (a PostgreSQL
    restart, a dropped connection) is waited for: the operation is retried, the calling thread blocked, until
    it succeeds or `outage_s` has passed since the outage began; the outage is logged once when it begins and
    once when it ends. A caller therefore never goes on as if a write had happened that did not."""

    def __init__(self, engine: Engine | None = None, retries: int = 8, backoff_s: float = 0.1,
                 outage_s: float = 120.0, max_backoff_s: float = 1.0):
        if engine is None:
            engine, _ = setup()
        self.engine = engine
        self.Session = sessionmaker(bind=engine, autoflush=False, expire_on_commit=False)
        self.retries = retries
        self.backoff_s = backoff_s
        self.outage_s = outage_s
        self.max_backoff_s = max_backoff_s
        self.is_postgres = engine.dialect.name == "postgresql"

    def _retry(self, what: str, once: Callable[[], T]) -> T:
        delay = self.backoff_s
        attempt = 0
        since: float | None = None  # when the outage this operation waits out began, once it has met it
        while True:
            attempt += 1
            try:
                result = once()
            except DatabaseError:
                raise
            except Exception as e:  # noqa: BLE001 - classified below; anything else is not a database error
                kind = transient_kind(e)
                if kind is None:
                    driver_error = type(e).__module__.split(".")[0] in ("psycopg2", "sqlite3")  # raw DBAPI (COPY)
                    if isinstance(e, exc.SQLAlchemyError) or driver_error:
                        raise DatabaseError(f"{what} failed: {_short(e)}") from e
                    raise
                if kind == "unreachable":
                    since = _outage.failed(e, self.outage_s, first=since is None)
                    left = since + self.outage_s - time.monotonic()
                    if left <= 0:
                        raise DatabaseError(f"{what} failed: the database has been unreachable for "
                                            f"{self.outage_s:g}s ({_short(e)})") from e
                    log.debug("database unreachable during %s (attempt %d): %s", what, attempt, _short(e))
                    time.sleep(min(delay, left))
                    delay = min(delay * 2, self.max_backoff_s)
                    continue
                if attempt >= self.retries:
                    raise DatabaseError(f"{what} failed: {_short(e)}") from e
                log.warning("database busy during %s (attempt %d/%d): %s; retrying in %.1fs",
                            what, attempt, self.retries, _short(e), delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if _outage.since is not None:
                _outage.end()
            return result

    def _run(self, what: str, fn: Callable[[Session], T]) -> T:
        """fn(session) in one transaction (rolled back on any error, run again from the start on a retry)."""
        def once() -> T:
            session = self.Session()
            try:
                with session.begin():
                    return fn(session)
            finally:
                try:
                    session.close()
                except Exception:  # noqa: BLE001 - the connection may be gone; the pool discards it
                    pass
        return self._retry(what, once)

    def transaction(self, what: str, fn: Callable[[Session], T]) -> T:
        """Run fn(session) in one transaction with the handler's retry and error policy."""
        return self._run(what, fn)

    def core(self, what: str, fn: Callable[[Connection], T]) -> T:
        """fn(connection) in one transaction of Core statements, without an ORM Session (whose bookkeeping
        costs more than a small write): the same retry and error policy as `transaction`."""
        def once() -> T:
            with self.engine.begin() as conn:
                return fn(conn)
        return self._retry(what, once)

    def unit(self, what: str, fn: Callable[[CoreUnit], T]) -> T:
        """`core`, with the connection as a Unit (rows waiting in its `info` die with a failed attempt)."""
        return self.core(what, lambda conn: fn(CoreUnit(conn)))

    def record(self, what: str, item: Any, write: Callable[[Connection, list[Any]], None]) -> None:
        """Records that nothing sent or to be sent depends on (a denied signal's rows): `write(conn, [item])`
        in one transaction, committed when this returns. A handler whose units share one transaction (the
        backtest's day, backtest.day_db) may keep them and write many together, before anything else it runs."""
        self.core(what, lambda conn: write(conn, [item]))

    def bulk_insert_tuples(self, model: type[Base], columns: Sequence[str], rows: Sequence[tuple]) -> int:
        """The hot path for ticks: rows already as tuples in `columns` order, no per-row dicts. On SQLite one
        executemany on the driver's own connection (the statement prepared once and kept in its cache; through
        SQLAlchemy's session it cost ~0.7 us more per row), in a transaction of its own."""
        if not rows:
            return 0
        if self.is_postgres:
            return self._copy(model, columns, rows)
        sql = (f"INSERT INTO {model.__tablename__} ({', '.join(columns)}) "
               f"VALUES ({', '.join('?' * len(columns))})")

        def once() -> int:
            raw = self.engine.raw_connection()
            try:
                con = raw.driver_connection
                assert con is not None
                con.execute(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")  # the index's hot pages stay in memory
                con.execute("BEGIN IMMEDIATE")
                try:
                    con.executemany(sql, rows)
                    con.execute("COMMIT")
                except BaseException:
                    if con.in_transaction:
                        con.execute("ROLLBACK")
                    raise
                return len(rows)
            finally:
                raw.close()
        return self._retry(f"bulk insert into {model.__tablename__}", once)

    def _copy(self, model: type[Base], columns: Sequence[str], rows: Sequence[tuple]) -> int:
        """COPY on PostgreSQL: many times faster than INSERT for the tick stream."""
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)  # None becomes an empty field, which COPY reads as NULL
        sql = f"COPY {model.__tablename__} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)"

        def once() -> int:
            raw = self.engine.raw_connection()  # may fail too while the server is down: retried below
            try:
                cur = raw.cursor()
                buf.seek(0)
                cur.copy_expert(sql, buf)
                raw.commit()
                return len(rows)
            except Exception as e:
                try:
                    raw.rollback()
                except Exception:  # noqa: BLE001 - the connection is gone
                    pass
                if transient_kind(e) == "unreachable":
                    raw.invalidate()
                raise
            finally:
                raw.close()
        return self._retry(f"bulk insert into {model.__tablename__}", once)

    def execute_sql(self, query: str, params: dict[str, Any] | None = None, fetch: bool = True) -> list[Any] | None:
        def go(s: Session) -> list[Any] | None:
            res = s.execute(text(query), params or {})
            return [tuple(r) for r in res.fetchall()] if fetch else None
        return self._run("raw SQL", go)

    # ---- small state documents
    def get_state(self, key: str, default: Any = None) -> Any:
        row = self.core(f"read state {key}", lambda conn: conn.execute(_GET_STATE, {"k": key}).first())
        return default if row is None else json.loads(row[0])

    def set_state(self, key: str, value: Any) -> None:
        """Write a state document: one UPDATE, or an INSERT when the key is new (a replay's control log and the
        trading state are written on fills: no ORM session for a row that is only ever replaced)."""
        payload = json.dumps(value, default=str)
        self.core(f"write state {key}", lambda conn: write_state(conn, key, payload))

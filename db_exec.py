"""Hot Core statements compiled once and run on the DBAPI cursor of the unit's own connection.

Why: the order path's and the ledger's units are a handful of small INSERTs and UPDATEs, and SQLAlchemy's
Connection.execute costs ~0.1 ms of CPU around each (cache key, execution context, defaults, result object),
more than SQLite's own work. Here a statement is compiled by SQLAlchemy for the connection's dialect once per set
of parameter names, its Python-side column defaults (and an UPDATE's onupdate values) and its types' bind
processors are applied as SQLAlchemy would, and the SQL goes to the driver's cursor in the same transaction. So
the rows are byte for byte what Connection.execute writes, on SQLite and on PostgreSQL; only the per-call
bookkeeping is gone. A statement this module cannot plan (a server-side or SQL-expression default) runs through
Connection.execute as before.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Delete, Insert, Update, exc
from sqlalchemy.engine import Connection, Dialect

log = logging.getLogger(__name__)

Statement = Insert | Update | Delete


@dataclass(frozen=True, slots=True)
class Result:
    """What a caller reads back: the new row's primary key (a single-row INSERT) and the rows matched."""

    primary_key: int | None
    rowcount: int


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    names: tuple[str, ...]                      # parameter names in the driver's order (positional) or all
    positional: bool
    processors: tuple[Callable[[Any], Any] | None, ...]
    defaults: tuple[tuple[str, Callable[[], Any]], ...]  # name -> value of a column the caller did not give
    returning: bool                             # the INSERT returns its primary key (PostgreSQL)
    converted: tuple[tuple[int, Callable[[Any], Any]], ...] = ()  # (position in names, processor): those that have one


# keyed by the statement itself (kept alive here, so an id is never reused): for statements built once, at import
_PLANS: dict[tuple[Statement, str, tuple[str, ...]], _Plan | None] = {}


def run(conn: Connection, stmt: Statement, params: dict[str, Any] | Sequence[dict[str, Any]]) -> Result:
    """Execute `stmt` with one row of parameters, or many rows sharing the same names (executemany), in
    `conn`'s transaction. Returns the new primary key of a one-row INSERT and the rows matched."""
    rows = [params] if isinstance(params, dict) else list(params)
    if not rows:
        return Result(None, 0)
    keys = tuple(rows[0])
    key = (stmt, conn.dialect.name, keys)
    try:
        plan = _PLANS[key]
    except KeyError:
        plan = _PLANS[key] = _plan(stmt, conn.dialect, keys)
    if plan is None:  # not plannable: the ordinary path
        res = conn.execute(stmt, rows[0] if len(rows) == 1 else rows)
        pk = res.inserted_primary_key if isinstance(stmt, Insert) and len(rows) == 1 else None
        return Result(None if pk is None else int(pk[0]), res.rowcount)
    raw: Any = conn.connection.dbapi_connection
    cur = raw.cursor()
    try:
        args = [_args(plan, r) for r in rows]
        try:
            if len(args) == 1:
                cur.execute(plan.sql, args[0])
            else:
                cur.executemany(plan.sql, args)
        except conn.dialect.loaded_dbapi.Error as e:
            raise driver_error(conn, raw, cur, plan.sql, args, e) from e
        pk = None
        if isinstance(stmt, Insert) and len(rows) == 1:
            pk = cur.fetchone()[0] if plan.returning else cur.lastrowid
        return Result(None if pk is None else int(pk), cur.rowcount)
    finally:
        cur.close()


def driver_error(conn: Connection, raw: Any, cur: Any, sql: str, args: list[Any], e: Any) -> exc.StatementError:
    """The driver's error as Connection.execute would raise it: SQLAlchemy's class for it, and a connection the
    server dropped invalidated, so the pool never hands it out again and the handler's retry sees an outage."""
    gone = conn.dialect.is_disconnect(e, raw, cur)
    if gone:
        conn.invalidate(e)
    return exc.DBAPIError.instance(sql, args[0] if len(args) == 1 else args, e, conn.dialect.loaded_dbapi.Error,
                                   connection_invalidated=gone, dialect=conn.dialect)


def _args(plan: _Plan, row: dict[str, Any]) -> Any:
    if plan.defaults:
        row = dict(row)
        for name, fn in plan.defaults:
            row[name] = fn()
    if plan.positional:  # the values in order, then only the columns whose type converts them
        values = [row[n] for n in plan.names]
        for i, p in plan.converted:
            values[i] = p(values[i])
        return values
    return {n: (row[n] if p is None else p(row[n])) for n, p in zip(plan.names, plan.processors, strict=True)}


def _plan(stmt: Statement, dialect: Dialect, keys: tuple[str, ...]) -> _Plan | None:
    """Compile `stmt` for `dialect` with these parameter names (and the defaults the caller left out)."""
    table: Any = stmt.table
    given = set(keys)
    defaults: list[tuple[str, Callable[[], Any]]] = []
    for col in table.columns:
        if col.key in given:
            continue
        d = col.default if isinstance(stmt, Insert) else col.onupdate if isinstance(stmt, Update) else None
        if isinstance(stmt, Insert) and col.server_default is not None and d is None:
            continue  # the database fills it
        if d is None:
            continue
        arg: Any = getattr(d, "arg", None)
        if getattr(d, "is_scalar", False):
            defaults.append((col.key, _constant(arg)))
        elif getattr(d, "is_callable", False):
            defaults.append((col.key, _called(arg)))
        else:
            log.debug("%s: default of %s is not plannable; using Connection.execute", table.name, col.key)
            return None
    names_given = list(keys) + [n for n, _ in defaults]
    column_keys = [n for n in names_given if n in table.c]
    compiled = stmt.compile(dialect=dialect, column_keys=column_keys)
    returning = bool(compiled.effective_returning) if isinstance(stmt, Insert) else False
    if returning and not dialect.insert_returning:
        return None
    bind_names = list(compiled.positiontup) if compiled.positional else list(compiled.binds)  # type: ignore[arg-type]
    binds = compiled.binds
    name_of = {b: binds[b].key for b in bind_names}
    if any(name_of[b] not in names_given for b in bind_names):
        return None  # a bound literal in the statement itself: the ordinary path handles it
    processors = compiled._bind_processors  # noqa: SLF001 - the processors SQLAlchemy itself applies
    sql = compiled.string
    ordered = tuple(name_of[b] for b in bind_names)
    if not compiled.positional:
        escaped = getattr(compiled, "escaped_bind_names", None) or {}
        if escaped or any(b != name_of[b] for b in bind_names):
            return None
    procs: Any = processors
    processors_ = tuple(procs.get(b) for b in bind_names)
    return _Plan(sql, ordered, bool(compiled.positional), processors_, tuple(defaults), returning,
                 tuple((i, p) for i, p in enumerate(processors_) if p is not None))


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


def _called(fn: Callable[[Any], Any]) -> Callable[[], Any]:
    """A Python-side default: SQLAlchemy keeps a no-argument function wrapped as fn(context)."""
    return lambda: fn(None)

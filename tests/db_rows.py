"""Rows into and out of the database in tests, through DBHandler.transaction: the one path the daemon uses."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from db import Base, DBHandler


def insert(h: DBHandler, records: Base | Iterable[Base]) -> None:
    """Add `records` in one transaction (all or none), with the handler's retry and error policy."""
    items = [records] if isinstance(records, Base) else list(records)

    def go(s: Any) -> None:
        s.add_all(items)
        s.flush()
    h.transaction(f"insert into {items[0].__tablename__ if items else '?'}", go)


def select_rows(h: DBHandler, model: type[Base], **where: Any) -> list[Any]:
    """Every row of `model` whose columns equal `where`, in primary-key order."""
    def go(s: Any) -> list[Any]:
        q = select(model)
        for k, v in where.items():
            q = q.where(getattr(model, k) == v)
        return list(s.scalars(q.order_by(*model.__mapper__.primary_key)).all())
    return h.transaction(f"query {model.__tablename__}", go)
